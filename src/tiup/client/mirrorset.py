"""``tiup mirror set``: choose the configured mirror and install its trusted root.

As TiUP (``behavior.md`` §6.8) with the changes of §12.2: ``bin/`` is
created, the root is verified against itself before it is installed, and
the pin lookup tolerates a trailing ``/``. A root given with ``--root`` must
be one the mirror chains from (a mirror re-created with new keys is refused
rather than trusted under an old root), and it replaces a remote mirror's pin.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tiup import trust
from tiup.client.profile import DEFAULT_MIRROR, Profile
from tiup.errors import (
    FetchError,
    ManifestError,
    NotFoundError,
    TiupError,
    VerificationError,
)
from tiup.fsutil import atomic_write
from tiup.reader import probe_root
from tiup.transport import Fetcher, open_fetcher


@dataclass
class SetResult:
    address: str
    root_source: str
    root_version: int
    pinned: Path | None  # the pin written (first trust of a remote mirror), if any
    remote: bool


def resolve_address(address: str) -> str:
    """The address as stored: a URL as given, a directory made absolute.

    Raises:
        FetchError: the address cannot be opened (e.g. a missing directory).
    """
    with open_fetcher(address) as fetcher:
        local = fetcher.local_path()
    return local if local is not None else address


def _fetch_file(source: str, cap: int) -> bytes:
    """Read one file named by a path or URL through the transport layer."""
    base, sep, name = source.rstrip("/").rpartition("/")
    if not sep:
        base, name = ".", source
    with open_fetcher(base or "/") as fetcher:
        return fetcher.fetch(name, cap)


def check_chain(fetcher: Fetcher, addr: str, data: bytes, source: str) -> None:
    """Refuse a trusted root (``--root``) that the mirror at ``addr`` does not chain from.

    Walks ``N+1.root.json`` from the given root (each must be signed by the old
    and the new root keys, as clients require), then checks that the mirror's
    ``root.json`` is not a different root of a version the chain reaches, and
    that ``timestamp.json`` is signed by the timestamp key of the chain's last
    root. Expiry is ignored: this is about identity, not freshness.

    Raises:
        VerificationError: the mirror does not chain from the root (e.g. it was
            re-created with new keys), or cannot be checked.
        FetchError: the mirror could not be read.
    """
    state = trust.TrustedState(data, None, source)
    given = trust.describe_root(state.root)

    def refuse(why: str) -> VerificationError:
        return VerificationError(
            f"mirror {addr} does not chain from {source} ({given}): {why}", file=source,
            hint="pass the root.json the mirror's administrator gives you for its current "
                 "keys (a mirror re-created at the same address has new keys)",
        )

    seen = {state.root.version: state.root_env.signed_raw}

    def next_root(version: int) -> tuple[bytes, str] | None:
        return probe_root(fetcher.fetch, version)

    def accepted(_data: bytes, _name: str) -> None:
        seen[state.root.version] = state.root_env.signed_raw

    try:
        state.walk_roots(next_root, accepted)
    except FetchError:
        raise
    except TiupError as exc:
        raise refuse(f"{exc.file or 'the root chain'}: {exc.message}") from exc
    try:
        env, theirs = trust.verify_self_signed_root(
            fetcher.fetch("root.json", trust.MAX_ROOT_SIZE), "root.json")
    except NotFoundError:
        theirs = None
    except TiupError as exc:
        raise refuse(f"its root.json is unusable: {exc.message}") from exc
    if theirs is not None and theirs.version in seen and seen[theirs.version] != env.signed_raw:
        raise refuse(f"its root.json is a different root ({trust.describe_root(theirs)})")
    try:
        state.update_timestamp(fetcher.fetch("timestamp.json", trust.MAX_TIMESTAMP_SIZE),
                               allow_expired=True)
    except (VerificationError, ManifestError) as exc:
        now = f" (its root.json: {trust.describe_root(theirs)})" if theirs else ""
        raise refuse(f"its timestamp.json is not signed by the timestamp key of root "
                     f"v{state.root.version}{now}") from exc


def set_mirror(profile: Profile, address: str | None, root: str | None = None) -> SetResult:
    """Configure ``address`` (None = TiUP's official mirror) as the mirror.

    Root source: ``root`` (a path or URL); else the pin ``bin/<sha16>.root.json``;
    else ``<address>/root.json``. It must verify against itself. A ``root`` given
    explicitly must also be one the mirror chains from (:func:`check_chain`); it
    replaces the pin of a remote mirror.

    Raises:
        FetchError: the root or the mirror cannot be read.
        VerificationError: the root is not validly self-signed, or the mirror does
            not chain from it.
        OSError: the profile cannot be written.
    """
    addr = resolve_address(address or DEFAULT_MIRROR)
    with open_fetcher(addr) as fetcher:
        remote = fetcher.local_path() is None
        pin = profile.find_pin(addr)
        if root:
            source = root
            data = _fetch_file(root, trust.MAX_ROOT_SIZE)
        elif pin is not None:
            source = str(pin)
            data = pin.read_bytes()
        else:
            source = f"{addr.rstrip('/')}/root.json"
            data = fetcher.fetch("root.json", trust.MAX_ROOT_SIZE)
        try:
            _env, model = trust.verify_self_signed_root(data, source)
        except TiupError as exc:
            raise VerificationError(
                f"root.json from {source} is not validly signed: {exc.message}", file=source,
                hint="check the mirror address and --root; the mirror may be damaged",
            ) from exc
        if root:
            check_chain(fetcher, addr, data, source)
    profile.bin_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(profile.bin_dir / "root.json", data, 0o664)
    pinned = None
    if remote and (pin is None or root):
        # a root given explicitly replaces the pin: it is what the user chose to trust
        pinned = pin if pin is not None else profile.pin_path(addr)
        atomic_write(pinned, data, 0o664)
    shutil.rmtree(profile.manifests_dir, ignore_errors=True)
    profile.write_config(addr)
    return SetResult(addr, source, model.version, pinned, remote)
