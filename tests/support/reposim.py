"""A repository simulator for client tests (after python-tuf's tests/repository_simulator.py).

It writes a real mirror directory: root / index / snapshot / timestamp /
component manifests and tarballs, signed with real keys, in the byte format
Go TiUP writes. Tests publish versions, then misbehave on purpose: roll a
manifest back, tamper with bytes, let metadata expire, rotate roots (with or
without enough signatures), or serve tarballs that do not match their
manifests or that try to escape the install directory.

Keys come from ``builders.key(n)`` (generated once per session); manifests are built and
signed with ``builders``.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from builders import KeyRef, key, key_by_id, make_owner, make_root, make_timestamp, sign
from tiup import keys
from tiup.client.resolve import current_platform
from tiup.manifest.models import (
    Component,
    ComponentItem,
    FileMeta,
    Index,
    Root,
    Snapshot,
    VersionItem,
)
from tiup.manifest.timefmt import format_time

#: The simulator's clock; pass it to the CLI as TIUP_TEST_NOW.
SIM_NOW = datetime(2030, 6, 1, tzinfo=UTC)
SIM_NOW_TEXT = "2030-06-01T00:00:00Z"

ROOT_KEYS = (0, 1, 2)
INDEX_KEY, SNAPSHOT_KEY, TIMESTAMP_KEY = 10, 11, 12
ALICE, BOB = 20, 21


def script(text: str = "echo hello") -> bytes:
    return f"#!/bin/sh\n{text}\n".encode()


def make_tarball(files: dict[str, bytes], mode: int = 0o755,
                 extra: list[tarfile.TarInfo] | None = None) -> bytes:
    """A gzip tarball of ``files`` (name → content), plus raw ``extra`` members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return buf.getvalue()


@dataclass
class RepoSim:
    """A signed mirror in ``path`` that tests change step by step."""

    path: Path
    now: datetime = SIM_NOW
    root_keys: tuple[int, ...] = ROOT_KEYS
    root_threshold: int = 2
    owners: dict[str, int] = field(default_factory=lambda: {"alice": ALICE})
    lifetime: timedelta = timedelta(days=365)
    root: Root | None = None
    index: Index | None = None
    components: dict[str, Component] = field(default_factory=dict)
    comp_owner: dict[str, str] = field(default_factory=dict)
    ts_version: int = 0
    files_written: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.root = self.make_root(1, self.root_keys, self.root_threshold)
        data = sign(self.root, *self.root_keys)
        self.write("root.json", data)
        self.write("1.root.json", data)
        self.index = Index(expires=self.expires(), version=1, owners={}, components={},
                           default_components=[])
        for owner, k in self.owners.items():
            self.index.owners[owner] = make_owner(owner, k)
        self.write_index()
        self.commit()

    # ------------------------------------------------------------ helpers
    def expires(self, days: float | None = None) -> str:
        delta = self.lifetime if days is None else timedelta(days=days)
        return format_time(self.now + delta)

    def write(self, name: str, data: bytes) -> None:
        (self.path / name).write_bytes(data)
        self.files_written.append(name)

    def read(self, name: str) -> bytes:
        return (self.path / name).read_bytes()

    def make_root(self, version: int, root_keys: tuple[KeyRef, ...], threshold: int,
                  index_key: KeyRef = INDEX_KEY, snapshot_key: KeyRef = SNAPSHOT_KEY,
                  timestamp_key: KeyRef = TIMESTAMP_KEY, expires: str | None = None) -> Root:
        """``builders.make_root`` with this mirror's lifetime as the default expiry."""
        return make_root(version, root_keys, threshold, expires or self.expires(),
                         index_key=index_key, snapshot_key=snapshot_key,
                         timestamp_key=timestamp_key)

    def role_key(self, name: str) -> keys.PrivateKey:
        assert self.root is not None
        return key_by_id(next(iter(self.root.roles[name].keys)))

    # ----------------------------------------------------------- writing
    def write_index(self, bump: bool = False, signer: keys.PrivateKey | None = None) -> bytes:
        assert self.index is not None
        if bump:
            self.index.version += 1
        data = sign(self.index, signer or self.role_key("index"))
        self.write(f"{self.index.version}.index.json", data)
        return data

    def write_component(self, comp_id: str, signer: keys.PrivateKey | None = None) -> bytes:
        comp = self.components[comp_id]
        owner = self.comp_owner[comp_id]
        data = sign(comp, signer or key(self.owners[owner]))
        self.write(f"{comp.version}.{comp_id}.json", data)
        return data

    def snapshot(self, expires: str | None = None, *, index_version: int | None = None,
                 comp_versions: dict[str, int] | None = None) -> Snapshot:
        assert self.root is not None and self.index is not None
        meta = {"/root.json": FileMeta(self.root.version, self._size(
            f"{self.root.version}.root.json")),
            "/index.json": FileMeta(index_version or self.index.version,
                                    self._size(f"{index_version or self.index.version}"
                                               ".index.json"))}
        for cid, comp in self.components.items():
            v = (comp_versions or {}).get(cid, comp.version)
            meta[f"/{cid}.json"] = FileMeta(v, self._size(f"{v}.{cid}.json"))
        return Snapshot(expires=expires or self.expires(), version=0, meta=meta)

    def _size(self, name: str) -> int:
        p = self.path / name
        return p.stat().st_size if p.exists() else 0

    def commit(self, *, snapshot_expires: str | None = None, ts_expires: str | None = None,
               ts_version: int | None = None, snapshot: Snapshot | None = None,
               ts_signer: keys.PrivateKey | None = None) -> None:
        """Write snapshot.json, then timestamp.json (version +1)."""
        snap = snapshot or self.snapshot(snapshot_expires)
        snap_bytes = sign(snap, self.role_key("snapshot"))
        self.write("snapshot.json", snap_bytes)
        self.ts_version = ts_version if ts_version is not None else self.ts_version + 1
        ts = make_timestamp(snap_bytes, self.ts_version, ts_expires or self.expires(),
                            sha512=True)
        self.write("timestamp.json", sign(ts, ts_signer or self.role_key("timestamp")))

    def publish(self, comp_id: str, version: str, *, files: dict[str, bytes] | None = None,
                entry: str = "hello", tarball: bytes | None = None, owner: str = "alice",
                plat: str | None = None, nightly: bool = False, hidden: bool = False,
                description: str = "A test component", commit: bool = True,
                declared: VersionItem | None = None) -> VersionItem:
        """Publish ``comp_id`` ``version`` (tarball from ``files``), bump manifests, commit."""
        assert self.index is not None
        plat = plat or current_platform()
        os_name, arch = plat.split("/")
        data = tarball if tarball is not None else make_tarball(
            files or {entry: script(f"echo {comp_id} {version}")})
        url = f"/{comp_id}-{version}-{os_name}-{arch}.tar.gz"
        self.write(url.lstrip("/"), data)
        item = declared or VersionItem(
            url=url, entry=entry, sha256=hashlib.sha256(data).hexdigest(),
            sha512=hashlib.sha512(data).hexdigest(), length=len(data),
            released=format_time(self.now))
        comp = self.components.get(comp_id)
        if comp is None:
            comp = Component(expires=self.expires(), version=0, id=comp_id,
                             description=description, platforms={})
            self.components[comp_id] = comp
            self.comp_owner[comp_id] = owner
            self.index.components[comp_id] = ComponentItem(owner=owner, url=f"/{comp_id}.json",
                                                          hidden=hidden)
            self.write_index(bump=True)
        comp.version += 1
        comp.platforms.setdefault(plat, {})[version] = item
        if nightly:
            comp.nightly = version
        self.write_component(comp_id)
        if commit:
            self.commit()
        return item

    def yank(self, comp_id: str, version: str) -> None:
        comp = self.components[comp_id]
        for versions in comp.platforms.values():
            if version in versions:
                versions[version].yanked = True
        comp.version += 1
        self.write_component(comp_id)
        self.commit()

    def rotate_root(self, new_keys: tuple[int, ...], threshold: int = 2, *,
                    signers: tuple[int, ...] | None = None, timestamp_key: int = TIMESTAMP_KEY,
                    update_root_json: bool = False) -> bytes:
        """Write ``N+1.root.json`` with ``new_keys``, signed by ``signers`` (old + new by
        default), then re-sign snapshot and timestamp with the (new) role keys."""
        assert self.root is not None
        old_keys = self.root_keys
        new = self.make_root(self.root.version + 1, new_keys, threshold,
                             timestamp_key=timestamp_key)
        signer_ids = signers if signers is not None else tuple(dict.fromkeys(old_keys + new_keys))
        data = sign(new, *signer_ids)
        self.write(f"{new.version}.root.json", data)
        if update_root_json:
            self.write("root.json", data)
        self.root, self.root_keys, self.root_threshold = new, new_keys, threshold
        self.commit()
        return data

    def set_owner_key(self, owner: str, k: int) -> None:
        """Replace an owner's key in a new index version."""
        assert self.index is not None
        self.owners[owner] = k
        self.index.owners[owner] = make_owner(owner, k)
        self.write_index(bump=True)
        self.commit()
