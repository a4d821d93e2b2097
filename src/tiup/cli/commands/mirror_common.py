"""Helpers shared by the commands that write a mirror; :func:`open_writer` is the one place
that picks a local or a remote writer (:mod:`tiup.repository.writer`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tiup.cli import output

if TYPE_CHECKING:
    from datetime import datetime

    from tiup.errors import ExpiredError
    from tiup.repository.keyring import KeyRing
    from tiup.repository.storage import Storage
    from tiup.repository.store import Store
    from tiup.repository.writer import MirrorWriter

F = TypeVar("F", bound=Callable[..., Any])


def read_root_option(path: str, option: str) -> bytes:
    """The bytes of a ``root.json`` named on the command line (``option``: ``--root``,
    ``--trust-root``), read through the local transport: a regular file only (never a
    FIFO or a device), capped as clients cap a root.

    Raises:
        UsageError: it cannot be read.
    """
    from tiup.errors import FetchError, UsageError
    from tiup.transport.local import LocalFetcher
    from tiup.trust import MAX_ROOT_SIZE

    where = Path(path)
    try:
        return LocalFetcher(str(where.parent)).fetch(where.name, MAX_ROOT_SIZE)
    except FetchError as exc:
        raise UsageError(f"cannot read {option} {path}: {exc.reason}") from exc


def write_options(func: F) -> F:
    """``--key-dir`` and ``--lock-timeout``, common to every mirror write."""
    func = click.option("--lock-timeout", type=click.FloatRange(0), default=60.0,
                        show_default=True, metavar="SECONDS",
                        help="Wait at most this long for another writer to finish.")(func)
    func = click.option("--key-dir", metavar="DIR",
                        help="Extra directory of private keys (also searched: <mirror>/keys, "
                             "$TIUP_HOME/keys).")(func)
    return func


def timeout_option(func: F) -> F:
    """``--timeout SECONDS`` for requests to a remote mirror (TiUP #1002)."""
    return click.option("--timeout", type=click.FloatRange(0), default=600.0,
                        show_default=True, metavar="SECONDS",
                        help="Timeout of each request to an http(s) mirror (0 = none).")(func)


def key_option(func: F) -> F:
    """``-k/--key FILE|URI`` (repeatable): an owner's private key, or a ``pkcs11:`` URI."""
    return click.option("-k", "--key", "key_files", multiple=True, metavar="FILE|URI",
                        help="Owner's private key file or 'pkcs11:…' token key (repeatable; "
                             "default: "
                             "$TIUP_HOME/keys/private.json and the key directories).")(func)


def mirror_target(ctx: click.Context) -> str | Path | Storage:
    """``--repo``, else the effective mirror: a URL (str) for http(s), an ``s3://`` bucket
    (its :class:`~tiup.repository.storage.Storage`), else a local dir (:func:`open_writer`
    makes the writer of each).

    Raises:
        RepositoryError: a local mirror that is not a directory.
    """
    from tiup.cli.clientctx import effective_mirror
    from tiup.client.profile import Profile

    repo = (ctx.obj or {}).get("repo") or effective_mirror(Profile())
    if repo.startswith(("http://", "https://")):
        return str(repo).rstrip("/")
    return mirror_dir(ctx)


def open_storage(address: str) -> Storage:
    """The storage of an ``s3://BUCKET/PREFIX`` mirror (boto3 is loaded here, only).

    Raises:
        InvalidNameError: an unsafe bucket or prefix.
    """
    from tiup.repository.s3_storage import S3Storage

    return S3Storage(address)


def mirror_dir(ctx: click.Context) -> Path | Storage:
    """The mirror to write: ``--repo``, else the configured mirror, which must be a local
    directory or an ``s3://`` bucket.

    Raises:
        RepositoryError: an HTTP mirror, or not a directory.
    """
    from tiup.cli.clientctx import effective_mirror
    from tiup.client.profile import Profile
    from tiup.errors import RepositoryError
    from tiup.transport.address import is_s3

    repo = (ctx.obj or {}).get("repo") or effective_mirror(Profile())
    if repo.startswith(("http://", "https://")):
        from tiup.repository.writer import not_local

        raise not_local(repo)
    if is_s3(repo):
        return open_storage(repo)
    path = Path(repo).expanduser()
    if not path.is_dir():
        raise RepositoryError(f"local mirror {repo} is not a directory",
                              hint="create one with `tiup mirror init <dir>`")
    return path.resolve()


def keyring(mirror: Path | None, key_files: Iterable[str], key_dir: str | None,
            default_key: bool = False) -> KeyRing:
    """Keys from ``-k`` files, ``<mirror>/keys`` (a local ``mirror``), ``--key-dir`` and
    ``$TIUP_HOME/keys``.

    With ``default_key`` and no ``-k``, ``$TIUP_HOME/keys/private.json`` is the
    explicit key when it exists.
    """
    from tiup.cli import tokens
    from tiup.client.profile import Profile
    from tiup.repository.keyring import load_keyring

    profile = Profile()
    key_files = list(key_files)
    tokens.setup(key_files)
    files: list[Path | str] = [f if tokens.is_uri(f) else Path(f) for f in key_files]
    if not files and default_key and profile.default_key_path.is_file():
        files = [profile.default_key_path]
    dirs = ([mirror / "keys"] if mirror is not None else []) + \
        ([Path(key_dir)] if key_dir else []) + [profile.keys_dir]
    ring = load_keyring(dirs, files)
    for warning in ring.warnings:
        output.warn(warning)
    return ring


def open_writer(target: str | Path | Storage, key_files: Iterable[str] = (),
                key_dir: str | None = None, *, default_key: bool = True, timeout: float = 600.0,
                lock_timeout: float = 60.0) -> MirrorWriter:
    """The writer of ``target`` (from :func:`mirror_target`):
    a URL (str) is written through its publish API, a directory through the store.

    The key ring: ``-k`` files (with ``default_key`` and none given,
    ``$TIUP_HOME/keys/private.json``), ``<mirror>/keys`` (local), ``--key-dir``,
    ``$TIUP_HOME/keys``. A remote writer retries a conflicting or failed attempt
    (``TIUP_PUBLISH_BACKOFF``), each request within ``timeout`` seconds (0: none); a
    local one waits ``lock_timeout`` seconds for the lock.

    Raises:
        UsageError: a malformed environment. TiupKeyError: an unusable key file.
    """
    from tiup.clock import now
    from tiup.settings import current

    settings = current()  # TIUP_PUBLISH_BACKOFF (tests set it low), proxies, CA bundle
    if isinstance(target, str):
        from tiup.client.profile import Profile
        from tiup.client.updater import Updater
        from tiup.errors import TiupError
        from tiup.repository.remote import publish_retry
        from tiup.repository.writer import RemoteWriter
        from tiup.transport.publish_api import APIClient

        address = target
        ring = keyring(None, key_files, key_dir, default_key)

        def source(at: datetime) -> Updater:
            return Updater(Profile(), address, at, command="this write", settings=settings)

        def warn(updater: Updater) -> None:
            for warning in updater.warnings:
                output.warn(warning)

        def on_retry(n: int, exc: TiupError, wait: float) -> None:
            output.warn(f"server returned an error: {exc.message}, retry {n} in {wait:g} s...")

        client = APIClient(address, timeout=timeout or None, settings=settings.http)
        return RemoteWriter(address, ring, client, source, clock=now,
                            policy=publish_retry(base=settings.publish_backoff),
                            on_retry=on_retry, after=warn,
                            explain=lambda exc: explain_expired(exc, address))
    from tiup.repository.writer import LocalWriter

    local = target if isinstance(target, Path) else None
    ring = keyring(local, key_files, key_dir, default_key=default_key)
    return LocalWriter(target, ring, clock=now, lock_timeout=lock_timeout, settings=settings,
                       on_commit=report_commit, on_conflict=report_conflict)


def report_conflict(attempt: int, exc: Exception) -> None:
    """A commit to object storage lost a race: it runs again on the new state."""
    if output.verbose() or attempt % 5 == 0:
        output.info(f"another writer committed first ({exc}); retrying on the new state "
                    f"(attempt {attempt + 1})")


def report_commit(store: Store, written: list[str]) -> None:
    """Leftovers removed and the root-expiry warning (writers warn within 60 days)."""
    from datetime import timedelta

    if store.removed_leftovers:
        output.info(f"Removed {len(store.removed_leftovers)} leftover file(s) of an interrupted "
                    "write")
    root = store.root
    at = root.expires_at()
    if at < store.now + timedelta(days=60):
        output.warn(f"root.json of mirror {store.location} expires at {root.expires}; "
                    f"run `tiup mirror rotate --days {store.lifetimes.root}` to extend it")
    if output.verbose():
        output.info("wrote " + ", ".join(written))


def explain_expired(exc: ExpiredError, address: str) -> ExpiredError:
    """An expiry error of a mirror a publisher reads (a remote mirror it writes, a clone's
    source), naming the mirror and the file, with the command that fixes it.

    (A local mirror never fails this way: its writers ignore expiry and re-sign.)
    """
    from pathlib import Path

    from tiup.errors import ExpiredError

    message = exc.message if exc.mirror is not None else f"mirror {address}: {exc.message}"
    expired = Path(exc.expired_file or "").name
    if expired.endswith("root.json"):
        fix = "publish a new root: `tiup mirror --repo <mirror-dir> rotate --days N`"
    elif expired.endswith("index.json"):
        fix = "renew the index: `tiup mirror --repo <mirror-dir> renew --index`"
    else:
        fix = ("re-sign snapshot.json and timestamp.json: `tiup mirror --repo <mirror-dir> "
               "renew`")
    return ExpiredError(message, file=exc.file, expired_file=exc.expired_file,
                        mirror=address,
                        hint=f"the administrator of {address} can {fix}, on the mirror's "
                             "directory (a running `tiup mirror serve` picks it up)")
