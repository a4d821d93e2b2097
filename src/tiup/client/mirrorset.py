"""``tiup mirror set``: choose the configured mirror and install its trusted root.

As TiUP (``behavior.md`` §6.8) with the changes of §12.2: ``bin/`` is
created, the root is verified against itself before it is installed, and
the pin lookup tolerates a trailing ``/``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tiup.client import trust
from tiup.client.profile import DEFAULT_MIRROR, Profile
from tiup.errors import TiupError, VerificationError
from tiup.fsutil import atomic_write
from tiup.transport import open_fetcher


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


def set_mirror(profile: Profile, address: str | None, root: str | None = None) -> SetResult:
    """Configure ``address`` (None = TiUP's official mirror) as the mirror.

    Root source: ``root`` (a path or URL); else the pin ``bin/<sha16>.root.json``;
    else ``<address>/root.json``. It must verify against itself.

    Raises:
        FetchError: the root cannot be read.
        VerificationError: the root is not validly self-signed.
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
    profile.bin_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(profile.bin_dir / "root.json", data, 0o664)
    pinned = None
    if remote and pin is None:
        pinned = profile.pin_path(addr)
        atomic_write(pinned, data, 0o664)
    shutil.rmtree(profile.manifests_dir, ignore_errors=True)
    profile.write_config(addr)
    return SetResult(addr, source, model.version, pinned, remote)
