"""MirrorWriter: the CLI's one choice of writer, the local writer's transaction and the
remote writer's retried attempts."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import pytest

from publishkit import NOW, assert_valid
from tiup.cli.commands.mirror_common import mirror_target, open_writer
from tiup.errors import ConflictError, RepositoryError, SignatureError, UsageError
from tiup.manifest.models import Root
from tiup.repository.init import init_mirror
from tiup.repository.keyring import KeyRing, load_keyring
from tiup.repository.local_storage import LocalStorage
from tiup.repository.remote import publish_retry
from tiup.repository.store import Store
from tiup.repository.view import MirrorView
from tiup.repository.writer import LocalWriter, RemoteWriter


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    m = tmp_path / "m"
    init_mirror(m, NOW)
    return m


def _ctx(repo: str) -> click.Context:
    return click.Context(click.Command("x"), obj={"repo": repo})


# ------------------------------------------------------------- the one choice
def test_a_directory_gets_a_local_writer(mirror: Path) -> None:
    target = mirror_target(_ctx(str(mirror)))
    assert target == mirror.resolve()
    with open_writer(target) as writer:
        assert isinstance(writer, LocalWriter)
        assert isinstance(writer.storage, LocalStorage)
        assert writer.address == str(mirror.resolve())
        assert writer.role_keys is writer.keyring  # the commit signs with the mirror's keys
        assert writer.local() is writer
        writer.local_only("never raised for a local mirror")


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/", "https://mirror.example/tiup"])
def test_a_url_gets_a_remote_writer(url: str) -> None:
    target = mirror_target(_ctx(url))
    assert target == url.rstrip("/")
    assert isinstance(target, str)
    with open_writer(target) as writer:  # nothing is fetched until a transaction runs
        assert isinstance(writer, RemoteWriter)
        assert writer.address == url.rstrip("/") and writer.role_keys is None
        with pytest.raises(RepositoryError, match="is not a local directory; this command "
                                                  "writes a local mirror") as info:
            writer.local()
        assert "--repo <dir>" in (info.value.hint or "")
        with pytest.raises(UsageError, match="--index needs"):
            writer.local_only("--index needs the mirror's index key")


def test_a_missing_directory_is_refused_before_any_writer(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="is not a directory"):
        mirror_target(_ctx(str(tmp_path / "nope")))


# -------------------------------------------------------------- local writer
def _writer(mirror: Path, seen: list[list[str]]) -> LocalWriter:
    return LocalWriter(mirror, load_keyring([mirror / "keys"]), clock=lambda: NOW,
                       on_commit=lambda _store, written: seen.append(written))


def _version(mirror: Path, name: str) -> int:
    return int(json.loads((mirror / name).read_bytes())["signed"]["version"])


def test_local_run_is_one_transaction(mirror: Path) -> None:
    seen: list[list[str]] = []
    writer = _writer(mirror, seen)
    ts = _version(mirror, "timestamp.json")

    def build(view: MirrorView) -> int:
        assert isinstance(view, Store)
        return view.renew_index().version

    assert writer.run(build) == 2
    assert seen and seen[0][-2:] == ["snapshot.json", "timestamp.json"]
    assert _version(mirror, "timestamp.json") == ts + 1
    assert (mirror / "2.index.json").exists()
    assert_valid(mirror)


def test_local_commit_if_and_read_write_nothing(mirror: Path) -> None:
    seen: list[list[str]] = []
    writer = _writer(mirror, seen)
    before = (mirror / "timestamp.json").read_bytes()
    assert writer.run(lambda view: view.index.version, commit_if=lambda _v: False) == 1
    assert writer.read(lambda view: view.root.version) == 1
    assert seen == [] and (mirror / "timestamp.json").read_bytes() == before


def test_local_failure_leaves_the_mirror_and_the_lock(mirror: Path) -> None:
    writer = _writer(mirror, [])
    before = (mirror / "timestamp.json").read_bytes()

    def build(view: MirrorView) -> None:
        view.renew_index()
        raise SignatureError("owner refused")

    with pytest.raises(SignatureError):
        writer.run(build)
    assert (mirror / "timestamp.json").read_bytes() == before
    assert not list(mirror.glob(".tmp-*"))
    assert writer.read(lambda view: view.index.version) == 1  # the lock was released


# ------------------------------------------------------------- remote writer
class _Source:
    """Stands in for the client's updater: only what RemoteMirror touches here."""

    def __init__(self, address: str, at: datetime):
        self.address, self.at, self.closed = address, at, False

    def close(self) -> None:
        self.closed = True


class _Client:
    def __init__(self) -> None:
        self.roots: list[bytes] = []
        self.closed = False

    def post_rotate(self, root: bytes) -> None:
        self.roots.append(root)

    def close(self) -> None:
        self.closed = True


def _remote(client: _Client, sources: list[_Source], waits: list[float],
            **kw: Any) -> RemoteWriter[Any]:
    def source(at: datetime) -> Any:
        sources.append(_Source("http://m.example", at))
        return sources[-1]

    return RemoteWriter("http://m.example", KeyRing(), client, source,  # type: ignore[arg-type]
                        clock=lambda: NOW, policy=publish_retry(base=0.5, sleep=waits.append),
                        **kw)


def test_remote_run_retries_a_conflict_with_a_fresh_source() -> None:
    client, sources, waits, told = _Client(), [], [], []  # type: ignore[var-annotated]
    root = Root(expires="2030-01-01T00:00:00Z", version=2, roles={})
    attempts: list[int] = []

    def build(view: MirrorView) -> str:
        attempts.append(len(attempts) + 1)
        view.set_root(root, b"signed root")
        if len(attempts) == 1:
            raise ConflictError("someone published first")
        return "done"

    with _remote(client, sources, waits, after=told.append) as writer:
        assert writer.run(build) == "done"
    assert attempts == [1, 2] and len(waits) == 1
    assert client.roots == [b"signed root"]              # sent once: by the attempt that won
    assert len(sources) == 2 and all(s.closed for s in sources)
    assert told == [sources[1]] and client.closed


def test_remote_gives_up_on_errors_retrying_cannot_fix() -> None:
    client, sources, waits = _Client(), [], []  # type: ignore[var-annotated]

    def build(view: MirrorView) -> None:
        raise SignatureError("not enough signatures")

    with pytest.raises(SignatureError), _remote(client, sources, waits) as writer:
        writer.run(build)
    assert len(sources) == 1 and waits == []


def test_remote_read_sends_nothing() -> None:
    client, sources, waits = _Client(), [], []  # type: ignore[var-annotated]
    root = Root(expires="2030-01-01T00:00:00Z", version=2, roles={})

    def look(view: MirrorView) -> str:
        view.set_root(root, b"never sent")
        return "looked"

    with _remote(client, sources, waits) as writer:
        assert writer.read(look) == "looked"
    assert client.roots == []
