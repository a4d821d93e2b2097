"""The manifest cache in ``$TIUP_HOME`` writes its verification record once per batch
(:meth:`_HomeCache.flush`, called by ``Updater.close``), with the same result as recording
each write at once: entries under the anchor of the time they were written, a drop
removing what was written before it, and nothing on record before a flush."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tiup.client import verified
from tiup.client.profile import MirrorState
from tiup.client.updater import _HomeCache


def _cache(tmp_path: Path) -> tuple[_HomeCache, Path]:
    anchor = tmp_path / "root.json"
    anchor.write_bytes(b"root v1")
    state = MirrorState("/mirror", "x", anchor, tmp_path / "manifests", True)
    return _HomeCache(state), anchor


def _record(cache: _HomeCache) -> dict[str, object]:
    path = cache.dir / verified.RECORD
    return json.loads(path.read_bytes()) if path.exists() else {}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_writes_are_recorded_together_on_flush(tmp_path: Path) -> None:
    cache, anchor = _cache(tmp_path)
    for n in range(5):
        cache.write(f"c{n}.json", b"x%d" % n)
    assert _record(cache) == {}  # nothing on record before the flush: verified again
    cache.flush()
    files = {f"c{n}.json": _digest(b"x%d" % n) for n in range(5)}
    assert _record(cache) == {"anchor": verified.anchor_digest(anchor), "files": files}
    for n in range(5):
        assert verified.verified_bytes(cache.dir, f"c{n}.json",
                                       verified.anchor_digest(anchor)) == b"x%d" % n


def test_a_drop_removes_what_was_written_before_it(tmp_path: Path) -> None:
    cache, _anchor = _cache(tmp_path)
    cache.write("a.json", b"a")
    cache.write("b.json", b"b")
    cache.drop("a.json")
    cache.write("c.json", b"c")
    cache.flush()
    files = _record(cache)["files"]
    assert files == {"b.json": _digest(b"b"), "c.json": _digest(b"c")}
    assert not (cache.dir / "a.json").exists()


def test_a_new_anchor_starts_a_new_record(tmp_path: Path) -> None:
    cache, anchor = _cache(tmp_path)
    cache.write("a.json", b"a")
    anchor.write_bytes(b"root v2")  # a root rotation rewrote the trust anchor
    cache.write("b.json", b"b")
    cache.flush()
    assert _record(cache) == {"anchor": verified.anchor_digest(anchor),
                              "files": {"b.json": _digest(b"b")}}
