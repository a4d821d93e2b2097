"""A mirror for the web page's tests: roles close to expiry, a component with hundreds of
versions on two platforms, a yanked version, a hidden component and a description that
tries to inject markup.

Written with the library in one transaction (manifests signed once, not published one
version at a time); the tarballs are small files of random bytes whose length and hashes
match their items, so ``tiup mirror verify`` (and the server's verification) passes.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from publishkit import NOW
from tiup.keys import PrivateKey, generate
from tiup.manifest.models import Component, ComponentItem, VersionItem
from tiup.manifest.timefmt import format_time
from tiup.repository.admin import grant
from tiup.repository.init import init_mirror
from tiup.repository.keyring import load_keyring
from tiup.repository.lifetimes import Lifetimes
from tiup.repository.store import Store, sign

#: Days each role lives after a write: at NOW the timestamp is red (< 7 days left), the
#: snapshot amber (< 30), root and index green.
LIFETIMES = Lifetimes(root=3650, index=3650, component=1825, snapshot=20, timestamp=5)
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">'
PLATFORMS = ("linux/amd64", "linux/arm64")


@dataclass
class UiMirror:
    mirror: Path
    keys: Path
    owner: PrivateKey
    #: component id → number of versions
    components: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Spec:
    versions: int
    description: str = ""
    hidden: bool = False
    expires_days: int = 1825
    yank: tuple[str, ...] = ()


SPECS = {
    "hello": Spec(3, "Says hello to the world"),
    "world": Spec(2, "The other side of hello"),
    "big": Spec(250, "A component with many versions"),
    "sneaky": Spec(1, HOSTILE),
    "ghost": Spec(1, "Hidden from tiup list", hidden=True),
    "fading": Spec(1, "Its manifest expires in three days", expires_days=3),
    "oldies": Spec(3, "One version yanked", yank=("v1.0.1",)),
}


def _version(n: int) -> str:
    return f"v1.{n // 100}.{n % 100}"


def _items(mirror: Path, cid: str, spec: Spec, plat: str, now: datetime
               ) -> dict[str, VersionItem]:
    out: dict[str, VersionItem] = {}
    os_name, arch = plat.split("/")
    for n in range(spec.versions):
        ver = _version(n)
        name = f"{cid}-{ver}-{os_name}-{arch}.tar.gz"
        body = os.urandom(200 + n)
        (mirror / name).write_bytes(body)
        out[ver] = VersionItem(
            url=f"/{name}", entry=cid, sha256=hashlib.sha256(body).hexdigest(),
            sha512=hashlib.sha512(body).hexdigest(), length=len(body),
            released=format_time(now - timedelta(hours=spec.versions - n)),
            yanked=ver in spec.yank)
    return out


def make_ui_mirror(base: Path, specs: dict[str, Spec] | None = None, now: datetime = NOW
                   ) -> UiMirror:
    specs = SPECS if specs is None else specs
    mirror, keys = base / "mirror", base / "keys"
    init_mirror(mirror, now, key_dir=keys, lifetimes=LIFETIMES)
    owner = generate()
    ring = load_keyring([keys])
    with Store(mirror, now=now, keyring=ring) as store:
        grant(store, "jdoe", "J. Doe", [owner.keyinfo()])
        store.commit()
    with Store(mirror, now=now, keyring=ring) as store:
        idx = store.edit_index()
        for cid, spec in specs.items():
            comp = Component(expires=format_time(now + timedelta(days=spec.expires_days)),
                             version=1, id=cid, description=spec.description,
                             platforms={p: _items(mirror, cid, spec, p, now)
                                        for p in PLATFORMS})
            idx.components[cid] = ComponentItem(owner="jdoe", url=f"/{cid}.json",
                                                hidden=spec.hidden)
            store.new_components[cid] = (comp, sign(comp, [owner]))
        store.commit()
    return UiMirror(mirror, keys, owner, {c: s.versions for c, s in specs.items()})
