"""The one place tests build and sign manifests by hand: numbered test keys, the envelope
signer, the root builder, and small builders for the other manifest types.

Numbered keys (``key(n)``) are generated once per test process (RSA generation is slow)
and reused: the same ``n`` is the same key everywhere in a session. Anything that takes a
key here takes either a number or a :class:`tiup.keys.PrivateKey`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
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

#: A key given by number (``key(n)``) or as the key itself.
KeyRef = int | keys.PrivateKey

_numbered: dict[int, keys.PrivateKey] = {}
_by_id: dict[str, keys.PrivateKey] = {}


def key(n: int) -> keys.PrivateKey:
    """The n-th test key (generated on first use, then kept for the session).

    Always a fresh key of its own: never one that ``keys.generate`` hands out to a test
    (``keypool``), so a numbered key cannot turn up as some test's "other" key.
    """
    k = _numbered.get(n)
    if k is None:
        from keypool import fresh_rsa_key

        k = _numbered[n] = fresh_rsa_key()
        _by_id[k.keyid] = k
    return k


def key_by_id(keyid: str) -> keys.PrivateKey:
    """The numbered test key with this id (KeyError for any other)."""
    return _by_id[keyid]


def private(ref: KeyRef) -> keys.PrivateKey:
    return key(ref) if isinstance(ref, int) else ref


def pub(k: KeyRef) -> KeyInfo:
    """The public key info of a key, as a role or an owner lists it."""
    return private(k).public.keyinfo()


def sign(signed: Signed, *signers: KeyRef) -> bytes:
    """File bytes of ``signed`` with one signature per signer (in order)."""
    payload = signed_bytes(signed)
    return envelope_bytes([private(s).signature(payload) for s in signers], signed)


def sign_raw(signed: Signed, sigs: list[Signature]) -> bytes:
    """File bytes of ``signed`` with exactly these signature entries (forged, duplicated...)."""
    return envelope_bytes(sigs, signed)


def role(refs: Iterable[KeyRef], threshold: int, url: str) -> Role:
    ks = [private(r) for r in refs]
    return Role({k.keyid: pub(k) for k in ks}, threshold, url)


def make_root(version: int = 1, root_keys: tuple[KeyRef, ...] = (0, 1, 2), threshold: int = 2,
              expires: str = LATER, index_key: KeyRef = 10, snapshot_key: KeyRef = 11,
              timestamp_key: KeyRef = 12) -> Root:
    """A root manifest: ``root_keys`` with ``threshold``, one key for each other role."""
    return Root(expires=expires, version=version, roles={
        "root": role(root_keys, threshold, "/root.json"),
        "index": role((index_key,), 1, "/index.json"),
        "snapshot": role((snapshot_key,), 1, "/snapshot.json"),
        "timestamp": role((timestamp_key,), 1, "/timestamp.json"),
    })


def make_owner(name: str, k: KeyRef) -> Owner:
    """An index owner entry with one key, threshold 1."""
    return Owner({private(k).keyid: pub(k)}, name.title(), 1)


def make_index(version: int = 1, owners: dict[str, int] | None = None,
               components: dict[str, str] | None = None, expires: str = LATER) -> Index:
    owners = {"alice": 20} if owners is None else owners
    components = {"hello": "alice"} if components is None else components
    return Index(
        expires=expires, version=version,
        owners={o: make_owner(o, k) for o, k in owners.items()},
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


def make_timestamp(snapshot_bytes: bytes, version: int = 1, expires: str = LATER,
                   sha512: bool = False) -> Timestamp:
    """A timestamp naming ``snapshot_bytes`` (sha256, and sha512 when asked)."""
    hashes = {"sha256": hashlib.sha256(snapshot_bytes).hexdigest()}
    if sha512:
        hashes["sha512"] = hashlib.sha512(snapshot_bytes).hexdigest()
    return Timestamp(expires=expires, version=version,
                     meta={"/snapshot.json": HashedMeta(hashes, len(snapshot_bytes))})
