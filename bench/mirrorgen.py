"""Generate a valid, signed mirror directly with the library (for benchmarks).

The mirror has one owner and components whose tarballs are random bytes
(not real archives: benchmarks of hashing and transfer do not extract them).
"""

from __future__ import annotations

import hashlib
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))

from builders import make_owner, make_root, make_timestamp, sign
from tiup import keys
from tiup.fsutil import atomic_write
from tiup.manifest.models import (
    Component,
    ComponentItem,
    FileMeta,
    Index,
    Snapshot,
    VersionItem,
)
from tiup.manifest.timefmt import format_time


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

    root = make_root(1, tuple(root_keys), 3, later, index_key=index_key,
                     snapshot_key=snap_key, timestamp_key=ts_key)
    root_bytes = sign(root, *root_keys)
    atomic_write(target / "root.json", root_bytes)
    atomic_write(target / "1.root.json", root_bytes)
    meta = {"/root.json": FileMeta(1, len(root_bytes))}
    index = Index(expires=later, version=1, default_components=[],
                  owners={"bench": make_owner("bench", owner_key)})
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
        data = sign(manifest, owner_key)
        atomic_write(target / f"1.{comp}.json", data)
        meta[f"/{comp}.json"] = FileMeta(1, len(data))
        index.components[comp] = ComponentItem(owner="bench", url=f"/{comp}.json")
    index_bytes = sign(index, index_key)
    atomic_write(target / "1.index.json", index_bytes)
    meta["/index.json"] = FileMeta(1, len(index_bytes))
    snap_bytes = sign(Snapshot(expires=later, version=0, meta=meta), snap_key)
    atomic_write(target / "snapshot.json", snap_bytes)
    ts = make_timestamp(snap_bytes, 1, later, sha512=True)
    atomic_write(target / "timestamp.json", sign(ts, ts_key))
