"""LocalStorage: the Storage contract on a directory (put-new, replace-if-unchanged, read,
list, delete, the lock, transactions and their leftovers), and the store's use of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from publishkit import NOW, assert_valid
from tiup.errors import ConflictError, NotFoundError, RepositoryError
from tiup.hashing import FileInfo
from tiup.repository.init import init_mirror
from tiup.repository.keyring import load_keyring
from tiup.repository.local_storage import LocalStorage, tag_of
from tiup.repository.storage import CHANGED, EXISTS, Write
from tiup.repository.store import Store


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    (tmp_path / "m").mkdir()
    return LocalStorage(tmp_path / "m")


def test_put_new_refuses_an_existing_name(storage: LocalStorage) -> None:
    tag = storage.put_new("a.json", b"first")
    assert tag == tag_of(b"first") == storage.tag("a.json")
    with pytest.raises(ConflictError) as info:
        storage.put_new("a.json", b"second")
    assert info.value.code == EXISTS
    assert storage.read("a.json") == b"first"
    assert not list(storage.directory.glob(".tmp-*"))


def test_replace_refuses_a_file_changed_since_it_was_read(storage: LocalStorage) -> None:
    storage.put_new("snapshot.json", b"v1")
    read = storage.tag("snapshot.json")
    storage.replace("snapshot.json", b"v2", read)          # unchanged since read: replaced
    assert storage.read("snapshot.json") == b"v2"
    with pytest.raises(ConflictError) as info:             # v2 is not what was read
        storage.replace("snapshot.json", b"v3", read)
    assert info.value.code == CHANGED
    assert storage.read("snapshot.json") == b"v2"
    with pytest.raises(ConflictError):                     # None: only while still absent
        storage.replace("snapshot.json", b"v3", None)
    storage.replace("new.json", b"x", None)
    assert storage.read("new.json") == b"x"


def test_read_stat_list_and_delete(storage: LocalStorage) -> None:
    for name, data in {"b.tar.gz": b"bb", "a.json": b"a", "1.a.json": b"1"}.items():
        storage.put_new(name, data)
    (storage.directory / "commits" / "x").mkdir(parents=True)
    (storage.directory / "commits" / "x" / "c").write_bytes(b"ccc")
    assert [e.name for e in storage.list()] == ["1.a.json", "a.json", "b.tar.gz"]
    assert [e.name for e in storage.list("a")] == ["a.json"]
    assert [(e.name, e.size) for e in storage.list("commits/")] == [("commits/x/c", 3)]
    entry = storage.stat("b.tar.gz")
    assert entry is not None and (entry.size, entry.directory) == (2, False)
    commits = storage.stat("commits")
    assert commits is not None and (commits.size, commits.directory) == (3, True)
    assert storage.stat("missing") is None
    assert storage.file_info("b.tar.gz") == FileInfo.of_bytes(b"bb")
    with pytest.raises(NotFoundError):
        storage.read("missing")
    with pytest.raises(NotFoundError):
        storage.file_info("missing")
    with pytest.raises(NotFoundError):
        storage.stat("../escape")
    assert storage.delete("b.tar.gz") and storage.delete("commits")
    assert not storage.delete("b.tar.gz")
    assert [e.name for e in storage.list()] == ["1.a.json", "a.json"]
    assert not (storage.directory / "commits").exists()


def test_the_lock_is_reentrant_and_excludes_other_writers(storage: LocalStorage) -> None:
    other = LocalStorage(storage.directory)
    storage.acquire(0)
    storage.acquire(0)  # the same writer again (a clone's store under the clone's lock)
    storage.release()
    with pytest.raises(ConflictError):
        other.acquire(0)
    storage.release()
    other.acquire(0)
    other.release()
    with pytest.raises(RepositoryError, match="is not a directory"):
        LocalStorage(storage.directory / "nope").acquire(0)


def test_transaction_publishes_in_order_and_leaves_no_leftovers(storage: LocalStorage) -> None:
    storage.put_new("timestamp.json", b"old")
    assert storage.fetcher().fetch("timestamp.json", None) == b"old"
    read = storage.read_tag("timestamp.json")
    assert read == storage.tag("timestamp.json")
    txn = storage.begin()
    txn.put_bytes("2.a.json", b"manifest")
    source = storage.directory.parent / "t.tar.gz"
    source.write_bytes(b"tarball")
    assert txn.put_file("a-v1-linux-amd64.tar.gz", source) == FileInfo.of_bytes(b"tarball")
    txn.put_bytes("timestamp.json", b"new")
    assert txn.has("2.a.json") and storage.stat("2.a.json") is None  # invisible until commit
    done = txn.commit([[Write.put("a-v1-linux-amd64.tar.gz")], [Write.new("2.a.json")],
                       [Write.swap("timestamp.json", read)]])
    assert done == ["a-v1-linux-amd64.tar.gz", "2.a.json", "timestamp.json"]
    assert storage.read("timestamp.json") == b"new"
    assert not list(storage.directory.glob(".tmp-*"))


def test_swap_refuses_a_changed_file_and_discard_cleans_up(storage: LocalStorage) -> None:
    storage.put_new("snapshot.json", b"old")
    storage.fetcher().fetch("snapshot.json", None)
    (storage.directory / "snapshot.json").write_bytes(b"written without the lock")
    txn = storage.begin()
    txn.put_bytes("snapshot.json", b"new")
    with pytest.raises(ConflictError) as info:
        txn.commit([[Write.swap("snapshot.json", storage.read_tag("snapshot.json"))]])
    assert info.value.code == CHANGED
    txn.discard()
    assert storage.read("snapshot.json") == b"written without the lock"
    assert not list(storage.directory.glob(".tmp-*"))


def test_new_replaces_what_a_dead_writer_left_unreferenced(storage: LocalStorage) -> None:
    """Under the lock no other writer is live: a versioned name that exists was renamed
    into place by a writer that died before its snapshot; nothing references it."""
    (storage.directory / "2.a.json").write_bytes(b"dead writer's")
    txn = storage.begin()
    txn.put_bytes("2.a.json", b"mine")
    txn.commit([[Write.new("2.a.json")]])
    assert storage.read("2.a.json") == b"mine"


def test_leftovers_are_listed_and_removed(storage: LocalStorage) -> None:
    txn = storage.begin()
    txn.put_bytes("timestamp.json", b"half")  # a writer that dies here leaves its .tmp-*
    (storage.directory / ".tmp-abc123-x.json").write_bytes(b"older")
    leftovers = sorted(p.name for p in storage.directory.glob(".tmp-*"))
    assert len(leftovers) == 2
    storage.acquire(0)
    try:
        assert sorted(storage.remove_leftovers()) == leftovers
    finally:
        storage.release()
    assert not list(storage.directory.glob(".tmp-*"))


def test_store_commit_refuses_a_snapshot_changed_behind_the_lock(tmp_path: Path) -> None:
    mirror = tmp_path / "m"
    init_mirror(mirror, NOW)
    ring = load_keyring([mirror / "keys"])
    before = (mirror / "timestamp.json").read_bytes()
    with Store(mirror, now=NOW, keyring=ring) as store:
        assert isinstance(store.storage, LocalStorage) and store.directory == mirror.resolve()
        os.utime(mirror / "snapshot.json")  # touched, same bytes: still what was read
        snapshot = (mirror / "snapshot.json").read_bytes()
        (mirror / "snapshot.json").write_bytes(snapshot + b" ")
        with pytest.raises(ConflictError) as info:
            store.commit()
        assert info.value.code == CHANGED
        (mirror / "snapshot.json").write_bytes(snapshot)
    assert (mirror / "timestamp.json").read_bytes() == before
    assert_valid(mirror)
    with Store(mirror, now=NOW, keyring=ring) as store:
        assert store.commit()[-2:] == ["snapshot.json", "timestamp.json"]
    assert_valid(mirror)
