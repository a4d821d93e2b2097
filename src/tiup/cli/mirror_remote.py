"""Write commands against an ``http(s)://`` mirror: target choice, keys, retries, ``--timeout``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tiup.cli import output

if TYPE_CHECKING:
    from tiup.repository.keyring import KeyRing
    from tiup.repository.remote import RemoteMirror

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: Seconds of the first retry wait (doubling to 30 s); tests set it low.
BACKOFF_ENV = "TIUP_PUBLISH_BACKOFF"


def timeout_option(func: F) -> F:
    """``--timeout SECONDS`` for requests to a remote mirror (TiUP #1002)."""
    return click.option("--timeout", type=click.FloatRange(0), default=600.0,
                        show_default=True, metavar="SECONDS",
                        help="Timeout of each request to an http(s) mirror (0 = none).")(func)


def mirror_target(ctx: click.Context) -> str | Path:
    """``--repo``, else the effective mirror: a URL (str) for http(s), else a local dir.

    Raises:
        RepositoryError: a local mirror that is not a directory.
    """
    from tiup.cli.mirror_common import mirror_dir
    from tiup.client.profile import Profile

    repo = (ctx.obj or {}).get("repo") or Profile().effective_mirror()
    if repo.startswith(("http://", "https://")):
        return str(repo).rstrip("/")
    return mirror_dir(ctx)


def remote_keyring(key_files: Iterable[str], key_dir: str | None,
                   default_key: bool = True) -> KeyRing:
    """Keys for writing a remote mirror: ``-k`` files, ``--key-dir``, ``$TIUP_HOME/keys``."""
    from tiup.client.profile import Profile
    from tiup.repository.keyring import load_keyring

    profile = Profile()
    files = [Path(f) for f in key_files]
    if not files and default_key and profile.default_key_path.is_file():
        files = [profile.default_key_path]
    dirs = ([Path(key_dir)] if key_dir else []) + [profile.keys_dir]
    ring = load_keyring(dirs, files)
    for warning in ring.warnings:
        output.warn(warning)
    return ring


def backoff_base() -> float:
    from tiup.errors import UsageError
    from tiup.repository.remote import BACKOFF_BASE

    raw = os.environ.get(BACKOFF_ENV, "").strip()
    if not raw:
        return BACKOFF_BASE
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise UsageError(f"{BACKOFF_ENV}={raw!r} is not a number of seconds") from None


def run_remote(address: str, timeout: float, build: Callable[[RemoteMirror], T]) -> T:
    """Build (fetch, edit, sign) against fresh verified metadata and send; retry on 409.

    Raises:
        TiupError: the last failure.
    """
    from tiup.client.profile import Profile
    from tiup.client.remote import APIClient
    from tiup.clock import now
    from tiup.errors import ExpiredError, TiupError
    from tiup.repository.remote import RemoteMirror, RetryPolicy, with_retries

    client = APIClient(address, timeout=timeout or None)

    def attempt(_n: int) -> T:
        view = RemoteMirror(address, Profile(), now(), client)
        try:
            result = build(view)
            view.commit()
            for warning in view.updater.warnings:
                output.warn(warning)
            return result
        finally:
            view.close()

    def on_retry(n: int, exc: TiupError, wait: float) -> None:
        output.warn(f"server returned an error: {exc.message}, retry {n} in {wait:g} s...")

    try:
        return with_retries(attempt, RetryPolicy(base=backoff_base()), on_retry)
    except ExpiredError as exc:
        from tiup.cli.mirror_common import explain_expired

        raise explain_expired(exc, address) from exc
    finally:
        client.close()
