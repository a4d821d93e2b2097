"""Generate a valid, signed mirror directly with the library (for benchmarks).

The mirror has one owner and components whose tarballs are random bytes
(not real archives: benchmarks of hashing and transfer do not extract them).
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tiup import keys
from tiup.fsutil import atomic_write
from tiup.manifest.envelope import envelope_bytes, signed_bytes
from tiup.manifest.models import (
    Component,
    ComponentItem,
    FileMeta,
    HashedMeta,
    Index,
    Owner,
    Role,
    Root,
    Signed,
    Snapshot,
    Timestamp,
    VersionItem,
)
from tiup.manifest.timefmt import format_time


def _sign(signed: Signed, *signers: keys.PrivateKey) -> bytes:
    payload = signed_bytes(signed)
    return envelope_bytes([k.signature(payload) for k in signers], signed)


def random_file(path: Path, size: int, chunk: int = 8 << 20) -> tuple[str, str]:
    """Write ``size`` random bytes; return (sha256, sha512)."""
    h256, h512 = hashlib.sha256(), hashlib.sha512()
    with open(path, "wb") as fh:
        left = size
        while left:
            block = os.urandom(min(chunk, left))
            h256.update(block)
            h512.update(block)
            fh.write(block)
            left -= len(block)
    return h256.hexdigest(), h512.hexdigest()


def build_mirror(target: Path, components: dict[str, list[int]], *,
                 now: datetime | None = None) -> None:
    """Write a mirror to ``target``: ``components`` maps id → tarball sizes (one version each).

    Versions are v1.0.0, v1.0.1, ... for linux/amd64.
    """
    now = now or datetime.now(UTC)
    target.mkdir(parents=True, exist_ok=True)
    root_keys = [keys.generate() for _ in range(3)]
    index_key, snap_key, ts_key, owner_key = (keys.generate() for _ in range(4))
    later = format_time(now + timedelta(days=3650))

    def role(ks: list[keys.PrivateKey], url: str, t: int = 1) -> Role:
        return Role({k.keyid: k.public.keyinfo() for k in ks}, t, url)

    root = Root(expires=later, version=1, roles={
        "root": role(root_keys, "/root.json", 3), "index": role([index_key], "/index.json"),
        "snapshot": role([snap_key], "/snapshot.json"),
        "timestamp": role([ts_key], "/timestamp.json"),
    })
    root_bytes = _sign(root, *root_keys)
    atomic_write(target / "root.json", root_bytes)
    atomic_write(target / "1.root.json", root_bytes)
    meta = {"/root.json": FileMeta(1, len(root_bytes))}
    index = Index(expires=later, version=1, default_components=[], owners={
        "bench": Owner({owner_key.keyid: owner_key.public.keyinfo()}, "Bench", 1)})
    for comp, sizes in components.items():
        platforms: dict[str, VersionItem] = {}
        for n, size in enumerate(sizes):
            ver = f"v1.0.{n}"
            name = f"{comp}-{ver}-linux-amd64.tar.gz"
            sha256, sha512 = random_file(target / name, size)
            platforms[ver] = VersionItem(url=f"/{name}", entry=comp, sha256=sha256,
                                         sha512=sha512, length=size,
                                         released=format_time(now))
        manifest = Component(expires=later, version=1, id=comp, description=f"{comp} (bench)",
                             platforms={"linux/amd64": platforms})
        data = _sign(manifest, owner_key)
        atomic_write(target / f"1.{comp}.json", data)
        meta[f"/{comp}.json"] = FileMeta(1, len(data))
        index.components[comp] = ComponentItem(owner="bench", url=f"/{comp}.json")
    index_bytes = _sign(index, index_key)
    atomic_write(target / "1.index.json", index_bytes)
    meta["/index.json"] = FileMeta(1, len(index_bytes))
    snap_bytes = _sign(Snapshot(expires=later, version=0, meta=meta), snap_key)
    atomic_write(target / "snapshot.json", snap_bytes)
    ts = Timestamp(expires=later, version=1, meta={"/snapshot.json": HashedMeta(
        {"sha256": hashlib.sha256(snap_bytes).hexdigest(),
         "sha512": hashlib.sha512(snap_bytes).hexdigest()}, len(snap_bytes))})
    atomic_write(target / "timestamp.json", _sign(ts, ts_key))
