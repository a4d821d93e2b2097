"""The publish path without its redundant work (issue 16), and without losing a check.

* A key ring loads its keys without OpenSSL's RSA key check; every signature is verified
  against the key's public half before it is returned, so a damaged key (which the check
  would refuse) signs nothing and a write that needs it stores nothing.
* A component manifest signed in this process (``sign_component``) is stored from the
  bytes encoded when it was signed, never parsed back; the store checks its model as the
  parser checks bytes: every hostile manifest the bytes path refuses, the model path
  refuses too (one table for both).
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from publishkit import NOW, assert_valid, make_tarball
from tiup.errors import KeyFormatError, ManifestError
from tiup.hashing import FileInfo
from tiup.keys import (
    PrivateKey,
    RSAPrivateKey,
    generate,
    keyinfo_file_bytes,
    load_key_file,
    private_key,
)
from tiup.manifest.canonical import encode_canonical
from tiup.manifest.envelope import parse_envelope, signed_bytes, signed_envelope_bytes
from tiup.manifest.models import Component, VersionItem
from tiup.manifest.names import component_id, version_str
from tiup.repository.admin import grant
from tiup.repository.init import init_mirror
from tiup.repository.keyring import load_keyring
from tiup.repository.publish import owner_signers, plan_publish
from tiup.repository.store import Store, sign, sign_component

PLAT = "linux/amd64"


def files_of(mirror: Path) -> dict[str, bytes]:
    return {str(p.relative_to(mirror)): p.read_bytes()
            for p in sorted(mirror.rglob("*")) if p.is_file() and p.name != "lock"}


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, PrivateKey, Path]:
    """A mirror where jdoe owns ``hello`` with v1.0.0 published; a tarball for the next."""
    mirror = tmp_path / "m"
    init_mirror(mirror, NOW)
    owner = generate()
    ring = load_keyring([mirror / "keys"])
    ring.add(owner, "owner")
    with Store(mirror, now=NOW, keyring=ring) as store:
        grant(store, "jdoe", "jdoe", [owner.keyinfo()])
        store.commit()
    first = make_tarball(tmp_path / "a.tar.gz", body=b"one")
    _publish(mirror, owner, "v1.0.0", first, signed=True)
    return mirror, owner, make_tarball(tmp_path / "b.tar.gz", body=b"two")


def _plan(store: Store, version: str, tarball: Path) -> Component:
    plan = plan_publish(store, component_id("hello"), version_str(version), PLAT, "hello",
                        FileInfo.of_file(tarball), desc="", overwrite=False, now=NOW)
    assert plan.manifest is not None
    return plan.manifest


def _publish(mirror: Path, owner: PrivateKey, version: str, tarball: Path, *,
             signed: bool) -> bytes:
    """Publish ``version`` of hello; ``signed``: through ``sign_component`` (else bytes)."""
    ring = load_keyring([mirror / "keys"])
    ring.add(owner, "owner")
    with Store(mirror, now=NOW, keyring=ring) as store:
        comp = _plan(store, version, tarball)
        signers = owner_signers(store, "jdoe", ring)
        name = f"hello-{version}-linux-amd64.tar.gz"
        if signed:
            built = sign_component(comp, signers)
            store.publish_component(built, tarball, tarball_name=name)
            data = built.file_bytes()
        else:
            data = sign(comp, signers)
            store.publish_component(data, tarball, tarball_name=name)
        store.commit()
    return data


# ------------------------------------------------------------ encode once
def test_a_manifest_signed_here_is_written_as_it_was_signed(
        world: tuple[Path, PrivateKey, Path]) -> None:
    mirror, owner, tarball = world
    data = _publish(mirror, owner, "v1.0.1", tarball, signed=True)
    written = (mirror / "2.hello.json").read_bytes()
    assert written == data
    env = parse_envelope(written, "2.hello.json")
    assert env.signed_raw == encode_canonical(env.signed)  # canonical, as the parser sees it
    comp = Component.from_dict(env.signed)
    assert set(comp.platforms[PLAT]) == {"v1.0.0", "v1.0.1"}
    assert_valid(mirror)


def test_envelope_bytes_from_signed_bytes_are_the_canonical_envelope(
        world: tuple[Path, PrivateKey, Path]) -> None:
    mirror, owner, _tarball = world
    env = parse_envelope((mirror / "1.hello.json").read_bytes(), "1.hello.json")
    comp = Component.from_dict(env.signed)
    payload = signed_bytes(comp)
    sigs = [owner.signature(payload), generate().signature(payload)]
    expected = encode_canonical({"signatures": [s.to_dict() for s in sigs],
                                 "signed": comp.to_dict()})
    assert signed_envelope_bytes(sigs, payload) == expected
    assert parse_envelope(sign(comp, [owner]), "x").signed_raw == payload


# ------------------------------------------------- no check lost: one table
def _item(comp: Component, version: str = "v1.0.1") -> VersionItem:
    return comp.platforms[PLAT][version]


def _set_item(comp: Component, version: str = "v1.0.1", **changes: object) -> None:
    comp.platforms[PLAT][version] = dataclasses.replace(_item(comp, version), **changes)


def _rename_version(comp: Component, new: str) -> None:
    comp.platforms[PLAT][new] = comp.platforms[PLAT].pop("v1.0.1")


#: name → how the planned manifest is spoiled; each is refused by the parser's checks
HOSTILE: dict[str, Callable[[Component], None]] = {
    "entry climbs out": lambda c: _set_item(c, entry="../../bin/sh"),
    "entry absolute": lambda c: _set_item(c, entry="/bin/sh"),
    "url climbs out": lambda c: _set_item(c, url="/../../etc/x.tar.gz"),
    "url without slash": lambda c: _set_item(c, url="hello.tar.gz"),
    "negative length": lambda c: _set_item(c, length=-1),
    "length beyond uint64": lambda c: _set_item(c, length=2**64),
    "hash not a string": lambda c: _set_item(c, sha512=5),
    "dependency not a string": lambda c: _set_item(c, dependencies={"tidb": 1}),
    "released not a string": lambda c: _set_item(c, released=7),
    "item member differing in case": lambda c: _set_item(c, unrecognized={"URL": "x"}),
    "item member nested too deep": lambda c: _set_item(
        c, unrecognized={"x": _deep(40)}),
    "version climbs out": lambda c: _rename_version(c, "v1/../../x"),
    "version with NUL": lambda c: _rename_version(c, "v1.0.1\x00"),
    "platform climbs out": lambda c: c.platforms.update({"linux/../x": c.platforms.pop(PLAT)}),
    "platform without arch": lambda c: c.platforms.update({"linux": c.platforms.pop(PLAT)}),
    "nightly climbs out": lambda c: setattr(c, "nightly", "../x"),
    "description not a string": lambda c: setattr(c, "description", 5),
    "top member differing in case": lambda c: setattr(c, "unrecognized", {"ID": "x"}),
    "top member nested too deep": lambda c: setattr(c, "unrecognized", {"x": _deep(40)}),
    "old item changed: bad entry": lambda c: _set_item(c, "v1.0.0", entry="../sh"),
    "old item changed: bad url": lambda c: _set_item(c, "v1.0.0", url="/a/../../b"),
}


def _deep(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("signed", [False, True], ids=["bytes", "signed-here"])
@pytest.mark.parametrize("spoil", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_manifest_is_refused_by_both_paths(
        world: tuple[Path, PrivateKey, Path], spoil: Callable[[Component], None],
        signed: bool) -> None:
    mirror, owner, tarball = world
    before = files_of(mirror)
    ring = load_keyring([mirror / "keys"])
    ring.add(owner, "owner")
    with Store(mirror, now=NOW, keyring=ring) as store:
        comp = _plan(store, "v1.0.1", tarball)
        spoil(comp)
        signers = owner_signers(store, "jdoe", ring)
        manifest = sign_component(comp, signers) if signed else sign(comp, signers)
        with pytest.raises(ManifestError):
            store.publish_component(manifest, tarball,
                                    tarball_name="hello-v1.0.1-linux-amd64.tar.gz")
    assert files_of(mirror) == before


def test_a_model_that_differs_from_its_bytes_is_refused(
        world: tuple[Path, PrivateKey, Path]) -> None:
    """A hash the bytes cannot hold (shadowed by the sha256 member) makes the model say
    something its bytes do not: the store refuses it rather than check the wrong thing."""
    mirror, owner, tarball = world
    ring = load_keyring([mirror / "keys"])
    ring.add(owner, "owner")
    with Store(mirror, now=NOW, keyring=ring) as store:
        comp = _plan(store, "v1.0.1", tarball)
        _set_item(comp, other_hashes={"sha256": "0" * 64})
        built = sign_component(comp, owner_signers(store, "jdoe", ring))
        with pytest.raises(ManifestError, match="does not read back"):
            store.publish_component(built, tarball,
                                    tarball_name="hello-v1.0.1-linux-amd64.tar.gz")


def test_both_paths_store_the_same_manifest(world: tuple[Path, PrivateKey, Path],
                                            tmp_path: Path) -> None:
    mirror, owner, tarball = world
    twin = tmp_path / "twin"
    shutil.copytree(mirror, twin)
    _publish(mirror, owner, "v1.0.1", tarball, signed=True)
    _publish(twin, owner, "v1.0.1", tarball, signed=False)
    a = parse_envelope((mirror / "2.hello.json").read_bytes(), "a")
    b = parse_envelope((twin / "2.hello.json").read_bytes(), "b")
    assert a.signed_raw == b.signed_raw  # PSS signatures differ; what they sign does not
    assert_valid(mirror)
    assert_valid(twin)


# ---------------------------------------------------------------- keys
def _damaged(key: PrivateKey) -> RSAPrivateKey:
    """``key`` with a wrong private exponent (and CRT value): the public half is intact,
    so its key id is the same, but its signatures are wrong."""
    assert isinstance(key, RSAPrivateKey)
    n = key._key.private_numbers()
    bad = rsa.RSAPrivateNumbers(n.p, n.q, n.d + 2, n.dmp1 + 2, n.dmq1, n.iqmp,
                                n.public_numbers)
    return RSAPrivateKey(bad.private_key(unsafe_skip_rsa_key_validation=True), "damaged")


def test_a_damaged_key_loads_unchecked_but_signs_nothing(tmp_path: Path) -> None:
    key = generate()
    info = _damaged(key).keyinfo()
    with pytest.raises(KeyFormatError, match="Invalid private key"):
        private_key(info, "k.json")  # the check, where a key is loaded to be shown
    loaded = private_key(info, "k.json", check=False)
    assert loaded.keyid == key.keyid
    with pytest.raises(KeyFormatError, match=re.escape("k.json: a signature made with this "
                                                       "private key does not verify")):
        loaded.signature(b"payload")
    good = private_key(key.keyinfo(), "good.json", check=False)
    assert key.public.verify(b"payload", good.sign(b"payload"))


def test_a_write_needing_a_damaged_key_writes_nothing(
        world: tuple[Path, PrivateKey, Path]) -> None:
    mirror, owner, tarball = world
    snapshot_file = next((mirror / "keys").glob("*-snapshot.json"))
    key = private_key(load_key_file(snapshot_file), str(snapshot_file))
    snapshot_file.write_bytes(keyinfo_file_bytes(_damaged(key).keyinfo()))
    before = files_of(mirror)
    with pytest.raises(KeyFormatError, match=re.escape("-snapshot.json: a signature made")):
        _publish(mirror, owner, "v1.0.1", tarball, signed=True)
    assert files_of(mirror) == before
