"""Small builders for signed manifests, used by the trust-rule tests.

Keys are generated once per test session (RSA generation is slow) and reused.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from tiup import keys
from tiup.manifest.envelope import Signature, envelope_bytes, signed_bytes
from tiup.manifest.models import (
    Component,
    ComponentItem,
    FileMeta,
    HashedMeta,
    Index,
    KeyInfo,
    Owner,
    Role,
    Root,
    Signed,
    Snapshot,
    Timestamp,
    VersionItem,
)
from tiup.manifest.timefmt import format_time

NOW = datetime(2030, 6, 1, tzinfo=UTC)
LATER = format_time(NOW + timedelta(days=365))
EARLIER = format_time(NOW - timedelta(days=1))


@functools.cache
def key(n: int) -> keys.PrivateKey:
    """The n-th test key (cached for the session)."""
    return keys.generate()


def pub(k: keys.PrivateKey) -> KeyInfo:
    return k.public.keyinfo()


def sign(signed: Signed, *signers: keys.PrivateKey) -> bytes:
    payload = signed_bytes(signed)
    return envelope_bytes([s.signature(payload) for s in signers], signed)


def sign_raw(signed: Signed, sigs: list[Signature]) -> bytes:
    return envelope_bytes(sigs, signed)


def make_root(version: int = 1, root_keys: tuple[int, ...] = (0, 1, 2), threshold: int = 2,
              expires: str = LATER, index_key: int = 10, snapshot_key: int = 11,
              timestamp_key: int = 12) -> Root:
    def role(ids: tuple[int, ...], t: int, url: str) -> Role:
        return Role({key(i).keyid: pub(key(i)) for i in ids}, t, url)

    return Root(expires=expires, version=version, roles={
        "root": role(root_keys, threshold, "/root.json"),
        "index": role((index_key,), 1, "/index.json"),
        "snapshot": role((snapshot_key,), 1, "/snapshot.json"),
        "timestamp": role((timestamp_key,), 1, "/timestamp.json"),
    })


def make_index(version: int = 1, owners: dict[str, int] | None = None,
               components: dict[str, str] | None = None, expires: str = LATER) -> Index:
    owners = {"alice": 20} if owners is None else owners
    components = {"hello": "alice"} if components is None else components
    return Index(
        expires=expires, version=version,
        owners={o: Owner({key(k).keyid: pub(key(k))}, o.title(), 1) for o, k in owners.items()},
        components={c: ComponentItem(owner=o, url=f"/{c}.json") for c, o in components.items()},
        default_components=[],
    )


def make_component(comp: str = "hello", version: int = 1, expires: str = LATER) -> Component:
    item = VersionItem(url=f"/{comp}-v1.0.0-linux-amd64.tar.gz", entry="hello", sha256="00" * 32,
                       sha512="00" * 64, length=10, released=EARLIER)
    return Component(expires=expires, version=version, id=comp, description="test",
                     platforms={"linux/amd64": {"v1.0.0": item}})


def make_snapshot(root_version: int = 1, index: tuple[int, int] = (1, 100000),
                  components: dict[str, tuple[int, int]] | None = None,
                  expires: str = LATER) -> Snapshot:
    components = {"hello": (1, 100000)} if components is None else components
    meta = {"/root.json": FileMeta(root_version, 100000),
            "/index.json": FileMeta(index[0], index[1])}
    for c, (v, n) in components.items():
        meta[f"/{c}.json"] = FileMeta(v, n)
    return Snapshot(expires=expires, version=0, meta=meta)


def make_timestamp(snapshot_bytes: bytes, version: int = 1, expires: str = LATER) -> Timestamp:
    import hashlib

    return Timestamp(expires=expires, version=version, meta={"/snapshot.json": HashedMeta(
        {"sha256": hashlib.sha256(snapshot_bytes).hexdigest()}, len(snapshot_bytes))})
