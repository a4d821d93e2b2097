"""LocalFetcher: caps, ranged streams with validators, and the capped fast-copy download."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tiup.errors import FetchError, NotFoundError, SizeLimitError
from tiup.transport import Chunks, open_fetcher
from tiup.transport.local import LocalFetcher

SIZE = 5 * 1024 * 1024 + 3


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    root = tmp_path / "mirror"
    root.mkdir()
    (root / "timestamp.json").write_bytes(b"x" * 900)
    (root / "big.tar.gz").write_bytes(os.urandom(SIZE))
    return root


def test_open_fetcher_local(mirror: Path) -> None:
    f = open_fetcher(str(mirror))
    assert isinstance(f, LocalFetcher) and f.local_path() == str(mirror.resolve())
    assert f.list_files() == ["big.tar.gz", "timestamp.json"]


def test_fetch_caps_and_not_found(mirror: Path) -> None:
    f = LocalFetcher(str(mirror))
    assert len(f.fetch("/timestamp.json", 1024)) == 900
    with pytest.raises(SizeLimitError, match="900 > 899"):
        f.fetch("timestamp.json", 899)
    with pytest.raises(NotFoundError):
        f.fetch("nope.json", None)
    with pytest.raises(NotFoundError):
        f.fetch("../mirror/timestamp.json", None)
    assert not f.exists("keys/x.json") and f.exists("timestamp.json")


def test_stream_range_offset_and_validator(mirror: Path) -> None:
    data = (mirror / "big.tar.gz").read_bytes()
    f = LocalFetcher(str(mirror))
    with f.stream("big.tar.gz", None, 100) as chunks:
        assert isinstance(chunks, Chunks) and chunks.start == 100 and chunks.size == SIZE
        validator = chunks.validator
        assert b"".join(chunks) == data[100:]
    with f.stream_range("big.tar.gz", None, 100, if_range=validator) as chunks:
        assert chunks.start == 100
    with f.stream_range("big.tar.gz", None, 100, if_range="0-0") as chunks:
        assert chunks.start == 0 and chunks.restarted
        assert b"".join(chunks) == data


def test_download_copies_with_progress(mirror: Path, tmp_path: Path) -> None:
    f = LocalFetcher(str(mirror))
    dest = tmp_path / "out" / "big.tar.gz"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "big.tar.gz.part").write_bytes(b"stale")
    seen: list[int] = []
    f.download("big.tar.gz", dest, expected_length=SIZE, progress=seen.append)
    src = (mirror / "big.tar.gz").read_bytes()
    assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(src).digest()
    assert seen[-1] == SIZE and seen == sorted(seen)
    assert not (tmp_path / "out" / "big.tar.gz.part").exists()


def test_download_cap(mirror: Path, tmp_path: Path) -> None:
    f = LocalFetcher(str(mirror))
    dest = tmp_path / "big.tar.gz"
    with pytest.raises(SizeLimitError):
        f.download("big.tar.gz", dest, expected_length=SIZE - 1)
    assert not dest.exists() and not (tmp_path / "big.tar.gz.part").exists()
    with pytest.raises(NotFoundError):
        f.download("missing.tar.gz", dest)


def test_download_unwritable_destination(mirror: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(FetchError):
        LocalFetcher(str(mirror)).download("timestamp.json", blocker / "sub" / "t.json")


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="not a directory"):
        LocalFetcher(str(tmp_path / "nope"))
