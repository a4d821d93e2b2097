"""Helpers shared by the commands that write a local mirror."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tiup.cli import output

if TYPE_CHECKING:
    from tiup.errors import ExpiredError
    from tiup.repository.keyring import KeyRing
    from tiup.repository.store import Store

F = TypeVar("F", bound=Callable[..., Any])


def write_options(func: F) -> F:
    """``--key-dir`` and ``--lock-timeout``, common to every mirror write."""
    func = click.option("--lock-timeout", type=click.FloatRange(0), default=60.0,
                        show_default=True, metavar="SECONDS",
                        help="Wait at most this long for another writer to finish.")(func)
    func = click.option("--key-dir", metavar="DIR",
                        help="Extra directory of private keys (also searched: <mirror>/keys, "
                             "$TIUP_HOME/keys).")(func)
    return func


def mirror_dir(ctx: click.Context) -> Path:
    """The mirror to write: ``--repo``, else the configured mirror, which must be local.

    Raises:
        RepositoryError: an HTTP mirror, or not a directory.
    """
    from tiup.client.profile import Profile
    from tiup.errors import RepositoryError

    repo = (ctx.obj or {}).get("repo") or Profile().effective_mirror()
    if repo.startswith(("http://", "https://")):
        raise RepositoryError(
            f"the mirror {repo} is not a local directory; this command writes a local mirror",
            hint="pass `tiup mirror --repo <dir> ...` or `tiup mirror set <dir>` first")
    path = Path(repo).expanduser()
    if not path.is_dir():
        raise RepositoryError(f"local mirror {repo} is not a directory",
                              hint="create one with `tiup mirror init <dir>`")
    return path.resolve()


def keyring(mirror: Path, key_files: Iterable[str], key_dir: str | None,
            default_key: bool = False) -> KeyRing:
    """Keys from ``-k`` files, ``<mirror>/keys``, ``--key-dir`` and ``$TIUP_HOME/keys``.

    With ``default_key`` and no ``-k``, ``$TIUP_HOME/keys/private.json`` is the
    explicit key when it exists.
    """
    from tiup.client.profile import Profile
    from tiup.repository.keyring import load_keyring

    profile = Profile()
    files = [Path(f) for f in key_files]
    if not files and default_key and profile.default_key_path.is_file():
        files = [profile.default_key_path]
    dirs = [mirror / "keys"] + ([Path(key_dir)] if key_dir else []) + [profile.keys_dir]
    ring = load_keyring(dirs, files)
    for warning in ring.warnings:
        output.warn(warning)
    return ring


def open_store(mirror: Path, ring: KeyRing, lock_timeout: float) -> Store:
    from tiup.clock import now
    from tiup.repository.store import Store

    store = Store(mirror, now=now(), keyring=ring, lock_timeout=lock_timeout)
    return store


def report_commit(store: Store, written: list[str]) -> None:
    """Leftovers removed and the root-expiry warning (writers warn within 60 days)."""
    from datetime import timedelta

    if store.removed_leftovers:
        output.info(f"Removed {len(store.removed_leftovers)} leftover file(s) of an interrupted "
                    "write")
    root = store.root
    at = root.expires_at()
    if at < store.now + timedelta(days=60):
        output.warn(f"root.json of mirror {store.directory} expires at {root.expires}; "
                    f"run `tiup mirror rotate --days {store.lifetimes.root}` to extend it")
    if output.verbose():
        output.info("wrote " + ", ".join(written))


def explain_expired(exc: ExpiredError, address: str) -> ExpiredError:
    """An expiry error of a mirror a publisher reads (a remote mirror it writes, a clone's
    source), naming the mirror and the file, with the command that fixes it.

    (A local mirror never fails this way: its writers ignore expiry and re-sign.)
    """
    from tiup.errors import ExpiredError

    message = exc.message if address in exc.message else f"mirror {address}: {exc.message}"
    where = f"{exc.file or ''} {exc.message}"
    if "root.json" in where or "declared in" in where:
        fix = "publish a new root: `tiup mirror --repo <mirror-dir> rotate --days N`"
    elif "index.json" in where:
        fix = "renew the index: `tiup mirror --repo <mirror-dir> renew --index`"
    else:
        fix = ("re-sign snapshot.json and timestamp.json: `tiup mirror --repo <mirror-dir> "
               "renew`")
    return ExpiredError(message, file=exc.file,
                        hint=f"the administrator of {address} can {fix}, on the mirror's "
                             "directory (a running `tiup mirror serve` picks it up)")
