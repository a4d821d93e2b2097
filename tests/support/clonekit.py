"""An upstream mirror for the clone, merge and prune tests, built with the library.

Components (tarballs hold an executable shell script ``<id>`` printing ``<id> <version>``):

* tidb: v7.5.0, v8.5.0, v8.5.1 on linux/amd64, linux/arm64, darwin/amd64, darwin/arm64,
  except v8.5.1 on darwin/arm64; v8.5.2 yanked (linux/amd64); nightly
  v9.0.0-nightly-20260101 (linux/amd64).
* tikv: v8.5.0, v8.5.1 on linux/amd64, linux/arm64, darwin/amd64.
* pd: v8.5.1 on linux/amd64 and darwin/amd64.
* tiup: v1.16.0, v1.16.1 on linux/amd64 and darwin/arm64.
* hider (hidden, standalone): v1.0.0 on linux/amd64.
* old (a yanked component): v1.0.0 on linux/amd64.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from publishkit import NOW
from tiup.hashing import FileInfo
from tiup.keys import PrivateKey, generate, load_private_key, save_private_key
from tiup.manifest.models import Component, VersionItem
from tiup.manifest.timefmt import format_time
from tiup.repository.admin import grant
from tiup.repository.clone import flow
from tiup.repository.init import init_mirror
from tiup.repository.keyring import load_keyring
from tiup.repository.store import IndexFlags, Store, sign

ALL4 = ("linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64")
NIGHTLY = "v9.0.0-nightly-20260101"

#: component → version → platforms
LAYOUT: dict[str, dict[str, tuple[str, ...]]] = {
    "tidb": {"v7.5.0": ALL4, "v8.5.0": ALL4, "v8.5.1": ALL4[:3], "v8.5.2": ("linux/amd64",),
             NIGHTLY: ("linux/amd64",)},
    "tikv": {"v8.5.0": ALL4[:3], "v8.5.1": ALL4[:3]},
    "pd": {"v8.5.1": ("linux/amd64", "darwin/amd64")},
    "tiup": {"v1.16.0": ("linux/amd64", "darwin/arm64"),
             "v1.16.1": ("linux/amd64", "darwin/arm64")},
    "hider": {"v1.0.0": ("linux/amd64",)},
    "old": {"v1.0.0": ("linux/amd64",)},
}
YANKED_VERSIONS = {("tidb", "v8.5.2")}


def tarball_bytes(comp: str, version: str, plat: str, text: str | None = None) -> bytes:
    """A gzip tar with the executable ``comp`` script (deterministic bytes)."""
    body = f"#!/bin/sh\necho {text or f'{comp} {version} {plat}'}\n".encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo(comp)
        info.size = len(body)
        info.mode = 0o755
        info.mtime = 1_700_000_000
        tar.addfile(info, io.BytesIO(body))
    import gzip

    return gzip.compress(raw.getvalue(), mtime=0)


def tarball_name(comp: str, version: str, plat: str) -> str:
    os_name, arch = plat.split("/")
    return f"{comp}-{version}-{os_name}-{arch}.tar.gz"


def _item(path: Path, name: str, entry: str, yanked: bool = False) -> VersionItem:
    info = FileInfo.of_file(path)
    return VersionItem(url=f"/{name}", entry=entry, sha256=info.sha256, sha512=info.sha512,
                       length=info.length, released=format_time(NOW), yanked=yanked)


def build_upstream(mirror: Path, key_path: Path) -> None:
    """Write the upstream mirror (see the module docstring); the owner key ``pingcap`` is
    saved at ``key_path``."""
    init_mirror(mirror, NOW)
    owner = generate()
    save_private_key(key_path, owner)
    ring = load_keyring([mirror / "keys"], [key_path])
    work = mirror.parent / "upstream-tarballs"
    work.mkdir(exist_ok=True)
    with Store(mirror, now=NOW, keyring=ring) as store:
        grant(store, "pingcap", "PingCAP", [owner.keyinfo()])
        for comp, versions in LAYOUT.items():
            platforms: dict[str, dict[str, VersionItem]] = {}
            for ver, plats in versions.items():
                for plat in plats:
                    name = tarball_name(comp, ver, plat)
                    path = work / name
                    path.write_bytes(tarball_bytes(comp, ver, plat))
                    yanked = (comp, ver) in YANKED_VERSIONS
                    if yanked:
                        shutil.copy(path, mirror / name)
                    else:
                        store.stage_tarball(name, path)
                    platforms.setdefault(plat, {})[ver] = _item(path, name, comp, yanked)
            manifest = Component(expires=format_time(NOW.replace(year=2036)), version=1, id=comp,
                                 description=f"{comp} component", platforms=platforms,
                                 nightly=NIGHTLY if comp == "tidb" else "")
            flags = IndexFlags(owner="pingcap", hidden=comp == "hider",
                               standalone=comp == "hider", yanked=comp == "old")
            store.publish_component(sign(manifest, [owner]), flags=flags)
        store.commit()
    shutil.rmtree(work)


def publish_version(mirror: Path, key_path: Path, comp: str, version: str, plat: str,
                    text: str | None = None, payload: bytes | None = None) -> str:
    """Publish one more version into ``mirror`` (as ``tiup mirror publish`` would); returns
    the tarball name. ``payload`` adds an uncompressible file ``data`` of that content."""
    key: PrivateKey = load_private_key(key_path)
    ring = load_keyring([mirror / "keys"], [key_path])
    name = tarball_name(comp, version, plat)
    src = mirror.parent / name
    if payload is None:
        src.write_bytes(tarball_bytes(comp, version, plat, text))
    else:
        from publishkit import make_tarball

        make_tarball(src, entry=comp, body=f"#!/bin/sh\necho {comp} {version}\n".encode(),
                     extra={"data": payload})
    with Store(mirror, now=NOW, keyring=ring) as store:
        current = store.component(comp)
        assert current is not None
        platforms = {p: dict(vs) for p, vs in current.platforms.items()}
        platforms.setdefault(plat, {})[version] = _item(src, name, comp)
        new = Component(expires=current.expires, version=current.version + 1, id=comp,
                        description=current.description, platforms=platforms,
                        nightly=current.nightly)
        store.publish_component(sign(new, [key]), src, tarball_name=name)
        store.commit()
    src.unlink()
    return name


def expected_tarballs(selection: dict[str, dict[str, tuple[str, ...]]]) -> set[str]:
    """Tarball names for component → version → platforms."""
    return {tarball_name(c, v, p) for c, vs in selection.items() for v, ps in vs.items()
            for p in ps}


def component_tarballs(names: Iterable[str]) -> set[str]:
    """The component tarballs among file names or object keys (the last part of each):
    the bootstrap copies tiup-<os>-<arch>.tar.gz left out."""
    out = {n.rsplit("/", 1)[-1] for n in names}
    return {n for n in out if n.endswith(".tar.gz")
            and not (n.startswith("tiup-") and n.count("-") == 2)}


def tarballs_in(directory: Path) -> set[str]:
    """Component tarballs in a directory (bootstrap copies tiup-<os>-<arch> excluded)."""
    return component_tarballs(p.name for p in directory.glob("*.tar.gz"))


def copy_upstream(template: tuple[Path, Path], dest: Path) -> tuple[Path, Path]:
    """A private copy of a built upstream (mirror, owner key) under ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(template[0], dest / "mirror")
    shutil.copy(template[1], dest / "owner.json")
    return dest / "mirror", dest / "owner.json"


def build_upstream_with_big_tikv(mirror: Path, key_path: Path) -> None:
    """:func:`build_upstream`, then tikv v9.0.0-v9.0.2 (linux/amd64) with ~300 KB of
    random bytes each: tarballs large enough to be cut or slowed mid-transfer."""
    build_upstream(mirror, key_path)
    for n in range(3):
        publish_version(mirror, key_path, "tikv", f"v9.0.{n}", "linux/amd64",
                        payload=os.urandom(300_000 + n))


def watch_ahead(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, list[bool]]:
    """Set the event when the clone has signed its manifests ahead; record each answer
    of whether they could be used (every file arrived as signed)."""
    signed = threading.Event()
    used: list[bool] = []
    sign_ahead, holds = flow._sign_ahead, flow._Ahead.holds

    def signing(*args: Any, **kwargs: Any) -> Any:
        try:
            return sign_ahead(*args, **kwargs)
        finally:
            signed.set()

    def checking(self: flow._Ahead, fetched: Any) -> bool:
        used.append(holds(self, fetched))
        return used[-1]

    monkeypatch.setattr(flow, "_sign_ahead", signing)
    monkeypatch.setattr(flow._Ahead, "holds", checking)
    return signed, used

