"""The local profile: ``$TIUP_HOME`` laid out as Go TiUP lays it out.

``$TIUP_HOME`` is the ``TIUP_HOME`` environment variable, else ``~/.tiup``.
``tiup.toml`` holds the configured mirror; ``TIUP_MIRRORS`` selects a mirror
for one run only and is never written back (TiUP #651).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from tiup.client.homefast import DEFAULT_MIRROR as DEFAULT_MIRROR
from tiup.client.homefast import simple_mirror_config
from tiup.errors import TiupError


def tiup_home(env: Mapping[str, str] | None = None) -> Path:
    """``$TIUP_HOME``, else ``~/.tiup``."""
    env = os.environ if env is None else env
    value = env.get("TIUP_HOME")
    if value:
        return Path(value).expanduser()
    return Path("~/.tiup").expanduser()


def address_hash(address: str) -> str:
    """First 16 hex chars of sha256 of the exact address string (TiUP's pin naming)."""
    import hashlib

    return hashlib.sha256(address.encode("utf-8")).hexdigest()[:16]


class Profile:
    """Paths and settings of one ``$TIUP_HOME``."""

    def __init__(self, home: Path | None = None, env: Mapping[str, str] | None = None):
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.home = home if home is not None else tiup_home(self.env)

    # paths shared with Go TiUP
    @property
    def config_path(self) -> Path:
        return self.home / "tiup.toml"

    @property
    def bin_dir(self) -> Path:
        return self.home / "bin"

    @property
    def manifests_dir(self) -> Path:
        return self.home / "manifests"

    @property
    def components_dir(self) -> Path:
        return self.home / "components"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def storage_dir(self) -> Path:
        return self.home / "storage"

    # paths this project adds (behavior.md §12.14; ignored by Go TiUP)
    @property
    def staging_dir(self) -> Path:
        return self.home / "staging"

    @property
    def downloads_dir(self) -> Path:
        return self.staging_dir / "downloads"

    @property
    def installed_dir(self) -> Path:
        return self.home / "installed"

    @property
    def mirrors_dir(self) -> Path:
        return self.home / "mirrors"

    def installed_versions(self, comp: str) -> list[str]:
        """Non-empty version directories under ``components/<id>/`` (TiUP's notion of
        installed); ``comp`` must be validated by the caller."""
        try:
            entries = list(os.scandir(self.component_dir(comp)))
        except OSError:
            return []
        out = []
        for entry in entries:
            try:
                if entry.is_dir() and any(os.scandir(entry.path)):
                    out.append(entry.name)
            except OSError:
                continue
        return sorted(out)

    def component_dir(self, comp: str, version: str | None = None) -> Path:
        """``components/<id>[/<version>]``; both names must be validated by the caller."""
        base = self.components_dir / comp
        return base if version is None else base / version

    def record_path(self, comp: str, version: str) -> Path:
        """The install record ``installed/<id>/<version>.json``."""
        return self.installed_dir / comp / f"{version}.json"

    def pin_path(self, address: str) -> Path:
        """TiUP's pinned root of an HTTP mirror: ``bin/<sha16(exact address)>.root.json``."""
        return self.bin_dir / f"{address_hash(address)}.root.json"

    def find_pin(self, address: str) -> Path | None:
        """The pin of ``address``: the exact string, then with and without a trailing ``/``."""
        trimmed = address.rstrip("/")
        for candidate in (address, trimmed + "/", trimmed):
            path = self.pin_path(candidate)
            if path.is_file():
                return path
        return None

    def mirror_state(self, address: str) -> MirrorState:
        """Where the trust anchor and manifest cache of ``address`` live (§12.2).

        The configured mirror (``tiup.toml``, else the default) uses ``bin/root.json``
        and ``manifests/`` shared with Go TiUP; any other address gets its own
        directory ``mirrors/<sha16>/`` so trust is never mixed.

        Raises:
            TiupError: ``tiup.toml`` cannot be read.
        """
        from tiup.transport.address import normalise_address

        ident = normalise_address(address)
        configured = normalise_address(self.configured_mirror() or DEFAULT_MIRROR)
        if ident == configured:
            return MirrorState(address, ident, self.bin_dir / "root.json",
                               self.manifests_dir, True)
        base = self.mirrors_dir / address_hash(ident)
        return MirrorState(address, ident, base / "root.json", base / "manifests", False)

    @property
    def offline(self) -> bool:
        """``TIUP_OFFLINE=1``: no network access at all (§12.9)."""
        return self.env.get("TIUP_OFFLINE", "") in ("1", "true", "enable")

    @property
    def default_key_path(self) -> Path:
        """``$TIUP_HOME/keys/private.json``, the default key of genkey, grant, publish..."""
        return self.keys_dir / "private.json"

    # configuration
    def configured_mirror(self) -> str | None:
        """The ``mirror`` of ``tiup.toml``, or None if unset.

        Raises:
            TiupError: ``tiup.toml`` exists but cannot be read or parsed.
        """
        try:
            data = self.config_path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TiupError(f"cannot read config {self.config_path}: {exc.strerror}") from exc
        simple = simple_mirror_config(data)
        if simple is not None:  # the one-line file TiUP writes: no TOML parser needed
            return simple or None
        import tomllib

        try:
            config = tomllib.loads(data.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise TiupError(
                f"cannot read config {self.config_path}: {exc}",
                hint="fix the file, or run `tiup mirror set <dir|url>` to rewrite it",
            ) from exc
        value = config.get("mirror")
        return value if isinstance(value, str) and value else None

    def effective_mirror(self) -> str:
        """``TIUP_MIRRORS`` (this run only) → ``tiup.toml`` → TiUP's official mirror."""
        from_env = self.env.get("TIUP_MIRRORS")
        if from_env:
            return from_env
        return self.configured_mirror() or DEFAULT_MIRROR

    def write_config(self, mirror: str) -> None:
        """Rewrite ``tiup.toml`` with ``mirror`` (mode 0664, atomically).

        Raises:
            OSError: the file cannot be written.
        """
        import tomli_w

        from tiup.fsutil import atomic_write

        atomic_write(self.config_path, tomli_w.dumps({"mirror": mirror}).encode("utf-8"), 0o664)


class MirrorState:
    """Trust anchor and manifest cache of one mirror address.

    (A plain class, not a dataclass: this module is on the fast run path.)
    """

    __slots__ = ("address", "configured", "ident", "manifests_dir", "root_path")

    def __init__(self, address: str, ident: str, root_path: Path, manifests_dir: Path,
                 configured: bool):
        self.address = address
        self.ident = ident
        self.root_path = root_path
        self.manifests_dir = manifests_dir
        self.configured = configured
