"""Transport: one fetcher interface, with local-directory and HTTP(S) implementations.

Nothing above this layer looks at URL schemes: :func:`open_fetcher` picks the
implementation from the address. Every fetch is bounded by a size cap. This layer
knows bytes only: no manifest, no trust decision, no ``$TIUP_HOME``.

| module | what it holds |
|---|---|
| :mod:`~tiup.transport.base` | the :class:`Fetcher` interface |
| :mod:`~tiup.transport.chunks` | :class:`Chunks`, the body of a ranged read |
| :mod:`~tiup.transport.resume` | the one resumable-download engine (part files) |
| :mod:`~tiup.transport.retry` | the one retry policy, :class:`TransientError` |
| :mod:`~tiup.transport.speed` | slow retrieval: minimum speed, per-file deadline |
| :mod:`~tiup.transport.local` | a mirror directory (disk, NFS, mounted share) |
| :mod:`~tiup.transport.http`, :mod:`~tiup.transport.httputil` | HTTP(S) over urllib3 |
| :mod:`~tiup.transport.publish_api` | the client of the tiup-server publish API |
| :mod:`~tiup.transport.address` | address identity (:func:`normalise_address`) |

Modules inside this package import each other's modules, never this one, so that
importing it (the fetcher interface) stays cheap and free of circles; the HTTP stack
is imported only when an HTTP address is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tiup.transport.address import is_http, normalise_address

if TYPE_CHECKING:  # resolved lazily below: the address helpers must stay cheap to import
    from tiup.errors import TransientError
    from tiup.settings import Settings
    from tiup.transport.base import Fetcher
    from tiup.transport.chunks import Chunks
    from tiup.transport.retry import RetryPolicy

_LAZY = {"Fetcher": "tiup.transport.base", "Chunks": "tiup.transport.chunks",
         "RetryPolicy": "tiup.transport.retry", "TransientError": "tiup.errors"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tiup.transport' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def open_fetcher(address: str, settings: Settings | None = None) -> Fetcher:
    """The fetcher for a mirror address: a directory path or an HTTP(S) URL.

    HTTP settings (timeouts, retries, proxies, CA bundle) come from ``settings``, by
    default the process's (:func:`tiup.settings.current`).

    Raises:
        FetchError: the address cannot be used.
        UsageError: no ``settings`` were passed and an environment variable is malformed.
    """
    if is_http(address):
        from tiup.settings import current
        from tiup.transport.http import HTTPFetcher

        http = (settings if settings is not None else current()).http
        return HTTPFetcher(address, settings=http)
    from tiup.transport.local import LocalFetcher

    return LocalFetcher(address)


__all__ = ["Chunks", "Fetcher", "RetryPolicy", "TransientError", "is_http",
           "normalise_address", "open_fetcher"]
