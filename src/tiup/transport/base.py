"""The fetcher interface every transport implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager


class Fetcher(ABC):
    """Reads files of one mirror by their name relative to the mirror root.

    Resource names are given without a leading ``/`` (``timestamp.json``,
    ``62.tidb.json``); a leading ``/`` is tolerated and stripped.
    """

    #: The mirror address as given (directory path or URL).
    address: str

    @abstractmethod
    def fetch(self, resource: str, max_size: int | None) -> bytes:
        """The whole content of ``resource``, at most ``max_size`` bytes.

        Raises:
            NotFoundError: the mirror has no such file.
            SizeLimitError: the file is larger than ``max_size``.
            FetchError: any other failure to read it.
        """

    @abstractmethod
    def stream(
        self, resource: str, max_size: int | None, offset: int = 0
    ) -> AbstractContextManager[Iterator[bytes]]:
        """A context manager yielding an iterator of chunks of ``resource`` from ``offset``.

        Raises (on entering or while iterating):
            NotFoundError, SizeLimitError, FetchError: as for :meth:`fetch`.
        """

    def exists(self, resource: str) -> bool:
        """True if the mirror has ``resource``. Raises FetchError for other failures."""
        from tiup.errors import NotFoundError

        try:
            with self.stream(resource, None) as chunks:
                next(iter(chunks), None)
        except NotFoundError:
            return False
        return True

    def list_files(self) -> list[str] | None:
        """Names of the files at the mirror's top level, or None if the transport cannot list."""
        return None

    def local_path(self) -> str | None:
        """The mirror's directory if it is local, else None."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, most transports hold nothing
        """Release pooled connections and temporary files."""

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_http(address: str) -> bool:
    """True for ``http://`` and ``https://`` addresses."""
    return address.startswith(("http://", "https://"))


def open_fetcher(address: str) -> Fetcher:
    """The fetcher for a mirror address: a directory path or an HTTP(S) URL.

    Raises:
        FetchError: the address cannot be used.
    """
    if is_http(address):
        from tiup.errors import FetchError

        raise FetchError(f"HTTP mirrors are not supported yet: {address}")
    from tiup.transport.local import LocalFetcher

    return LocalFetcher(address)
