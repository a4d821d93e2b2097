"""The bundle's names, index and parts (``repository/bundle/format.py``): hostile input as
tables, each refused with the code that says why."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tiup.errors import BundleError
from tiup.repository.bundle.format import (
    MANIFEST,
    ROOT,
    SNAPSHOT,
    TARBALL,
    TIMESTAMP,
    BundleIndex,
    Member,
    PartsReader,
    PartWriter,
    Since,
    member_kind,
    parts_file,
    read_parts_list,
)

GOOD = [
    ("root.json", ROOT), ("1.root.json", ROOT), ("12.root.json", ROOT),
    ("timestamp.json", TIMESTAMP), ("snapshot.json", SNAPSHOT),
    ("3.index.json", MANIFEST), ("2.tidb.json", MANIFEST), ("7.tidb-lightning.json", MANIFEST),
    ("tidb-v8.5.1-linux-amd64.tar.gz", TARBALL), ("tiup-linux-amd64.tar.gz", TARBALL),
]

HOSTILE = [
    "../escape.tar.gz", "/etc/passwd", "a/b.tar.gz", "keys/1-root.json", "lock", ".tmp-x",
    "bundle.json", "x.json", "0.root.json", "01.root.json", "1..json", "1.a/b.json",
    "1.../x.json", "local_install.sh", "hello.txt", "tidb-v1-linux-amd64.tar.gz/../x",
    "nul\x00.tar.gz", "", ".", "..", "1.-x.json", "C:\\x.tar.gz",
]


@pytest.mark.parametrize(("name", "kind"), GOOD)
def test_member_names_a_bundle_carries(name: str, kind: int) -> None:
    assert member_kind(name) == kind


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_member_names_are_refused(name: str) -> None:
    with pytest.raises(BundleError) as info:
        member_kind(name)
    assert info.value.code == "malformed"


def _index() -> BundleIndex:
    data = b"abc"
    return BundleIndex("1" * 64, "2" * 64, 3, 4, "5" * 64, Since("6" * 64, 2), [
        Member("2.tidb.json", 3, hashlib.sha256(data).hexdigest(),
               hashlib.sha512(data).hexdigest())])


def test_index_round_trips() -> None:
    idx = _index()
    back = BundleIndex.decode(idx.encode(), "bundle.json")
    assert back == idx and not back.full and back.total() == 3


@pytest.mark.parametrize("mutate", [
    lambda d: d.replace(b"tiup-bundle/1", b"tiup-bundle/9"),
    lambda d: d.replace(b'"length":3', b'"length":-3'),
    lambda d: d.replace(b'"length":3', b'"length":true'),
    lambda d: d.replace(b'"2.tidb.json"', b'"../tidb.json"'),
    lambda d: d.replace(b'"sha256":"', b'"sha256":"zz', 1),
    lambda d: d.replace(b'"mirror_id"', b'"mirror"'),
    lambda d: d[:-1],
    lambda d: d.replace(b'"files":[', b'"files":[{"length":3,"name":"2.tidb.json","sha256":"'
                        + b"0" * 64 + b'","sha512":"' + b"0" * 128 + b'"},'),
], ids=["format", "negative", "bool", "traversal", "hash", "member", "json", "duplicate"])
def test_bad_indexes_are_refused(mutate) -> None:  # type: ignore[no-untyped-def]
    data = mutate(_index().encode())
    with pytest.raises(BundleError) as info:
        BundleIndex.decode(data, "bundle.json")
    assert info.value.code == "malformed"


def _split(tmp_path: Path, data: bytes, size: int) -> Path:
    bundle = tmp_path / "b.tar"
    writer = PartWriter(bundle, size)
    writer.write(data)
    written = writer.finish()
    assert written[-1] == parts_file(bundle)
    return parts_file(bundle)


def test_parts_round_trip(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000
    listing = _split(tmp_path, data, 70_000)
    parts = read_parts_list(listing)
    assert [p[0].name for p in parts] == ["b.tar.001", "b.tar.002", "b.tar.003", "b.tar.004"]
    with PartsReader(parts) as reader:
        assert reader.read() == data


def test_a_damaged_part_is_named(tmp_path: Path) -> None:
    listing = _split(tmp_path, b"x" * 200_000, 70_000)
    part = tmp_path / "b.tar.002"
    part.write_bytes(b"y" + part.read_bytes()[1:])
    with PartsReader(read_parts_list(listing)) as reader, pytest.raises(BundleError) as info:
        reader.read()
    assert info.value.code == "tampered" and "b.tar.002" in info.value.message


@pytest.mark.parametrize("damage", ["missing", "short"])
def test_a_missing_or_short_part_is_refused_before_reading(tmp_path: Path, damage: str) -> None:
    listing = _split(tmp_path, b"x" * 200_000, 70_000)
    part = tmp_path / "b.tar.003"
    if damage == "missing":
        part.unlink()
    else:
        part.write_bytes(part.read_bytes()[:-1])
    with pytest.raises(BundleError) as info:
        read_parts_list(listing)
    assert info.value.code == ("malformed" if damage == "missing" else "tampered")
    assert "b.tar.003" in info.value.message
