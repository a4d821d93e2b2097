"""`tiup mirror prune`: old and yanked versions removed as a signed update, then files."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clonekit import NIGHTLY, copy_upstream
from publishkit import ENV, assert_valid


@pytest.fixture
def mirror(template: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    return copy_upstream(template, tmp_path / "up")


def manifest(mirror: Path, name: str) -> dict[str, object]:
    path = max(mirror.glob(f"*.{name}.json"), key=lambda p: int(p.name.split(".")[0]))
    data: dict[str, object] = json.loads(path.read_text())["signed"]
    return data


def versions_of(comp: dict[str, object], plat: str) -> dict[str, bool]:
    """version → yanked, of one platform of a component manifest."""
    platforms = comp["platforms"]
    assert isinstance(platforms, dict)
    return {v: bool(item.get("yanked")) for v, item in platforms[plat].items()}


def test_keep_yanks_old_versions_in_a_signed_update_then_deletes(
        tiup, mirror: tuple[Path, Path]) -> None:
    m, key = mirror
    size = (m / "tidb-v7.5.0-linux-amd64.tar.gz").stat().st_size
    before = manifest(m, "tidb")
    r = tiup("mirror", "--repo", str(m), "prune", "--keep", "1", "--component", "tidb",
             "-k", str(key), "--dry-run", env=ENV)
    assert r.returncode == 0, r.output
    assert "would yank tidb v7.5.0 linux/amd64 (older than the newest 1)" in r.stdout
    assert "would delete tidb-v7.5.0-linux-amd64.tar.gz" in r.stdout
    assert (m / "tidb-v7.5.0-linux-amd64.tar.gz").exists()
    assert manifest(m, "tidb") == before
    r = tiup("mirror", "--repo", str(m), "prune", "--keep", "1", "--component", "tidb",
             "-k", str(key), "--yes", env=ENV)
    assert r.returncode == 0, r.output
    tidb = manifest(m, "tidb")
    assert tidb["version"] == int(str(before["version"])) + 1
    # the chosen versions are yanked, not removed; the yanked v8.5.2 stays as it was
    assert versions_of(tidb, "linux/amd64") == {
        "v7.5.0": True, "v8.5.0": True, "v8.5.1": False, "v8.5.2": True, NIGHTLY: False}
    # darwin/arm64 has no v8.5.1: its latest stable v8.5.0 is never chosen
    assert versions_of(tidb, "darwin/arm64") == {"v7.5.0": True, "v8.5.0": False}
    assert tidb["nightly"] == NIGHTLY
    assert not (m / "tidb-v7.5.0-linux-amd64.tar.gz").exists()
    assert not (m / "tidb-v8.5.0-linux-amd64.tar.gz").exists()
    assert (m / "tidb-v8.5.0-darwin-arm64.tar.gz").exists()
    assert (m / "tidb-v8.5.2-linux-amd64.tar.gz").exists()  # already yanked: needs --yanked
    assert (m / "tikv-v8.5.0-linux-amd64.tar.gz").exists()  # other components untouched
    assert "yank tidb v7.5.0 linux/amd64" in r.stdout
    assert f"deleted {m}/tidb-v7.5.0-linux-amd64.tar.gz" in r.stdout
    freed = int(r.stdout.split("freed ")[1].split()[0])
    assert freed >= 7 * size - 100 and r.stdout.count("\ndeleted ") + \
        r.stdout.startswith("deleted ") == 7
    assert "verifies" in r.stderr
    assert_valid(m)
    # a second run finds nothing left to do
    r = tiup("mirror", "--repo", str(m), "prune", "--keep", "1", "--component", "tidb",
             "-k", str(key), "--yes", env=ENV)
    assert r.returncode == 0 and "nothing to prune" in r.stdout, r.output


def test_yanked_versions_need_no_key(tiup, mirror: tuple[Path, Path]) -> None:
    m, _key = mirror
    ts = (m / "timestamp.json").read_bytes()
    tidb = manifest(m, "tidb")
    # no -k and no owner key anywhere: deleting the tarball of an already yanked version
    # changes no manifest, so it needs none
    r = tiup("mirror", "--repo", str(m), "prune", "--yanked", "--component", "tidb", "-y",
             env=ENV)
    assert r.returncode == 0, r.output
    assert "prune tidb v8.5.2 linux/amd64 (yanked)" in r.stdout
    assert not (m / "tidb-v8.5.2-linux-amd64.tar.gz").exists()
    assert (m / "timestamp.json").read_bytes() == ts
    assert manifest(m, "tidb") == tidb  # v8.5.2 is still listed, yanked
    assert_valid(m)
    r = tiup("mirror", "--repo", str(m), "prune", "--yanked", "--component", "tidb", "-y",
             env=ENV)
    assert r.returncode == 0 and "nothing to prune" in r.stdout, r.output


def test_default_prunes_yanked_and_superseded(tiup, mirror: tuple[Path, Path]) -> None:
    m, key = mirror
    old = datetime(2025, 6, 1, tzinfo=UTC).timestamp()
    os.utime(m / "1.index.json", (old, old))
    tidb = manifest(m, "tidb")
    r = tiup("mirror", "--repo", str(m), "prune", "-k", str(key), "-y", env=ENV)
    assert r.returncode == 0, r.output
    assert "prune tidb v8.5.2 linux/amd64 (yanked)" in r.stdout
    # the versions of the yanked component `old` are yanked (signed update), then deleted
    assert "yank old v1.0.0 linux/amd64 (component yanked)" in r.stdout
    assert versions_of(manifest(m, "old"), "linux/amd64") == {"v1.0.0": True}
    assert not (m / "tidb-v8.5.2-linux-amd64.tar.gz").exists()
    assert not (m / "old-v1.0.0-linux-amd64.tar.gz").exists()
    assert manifest(m, "tidb") == tidb
    assert not (m / "1.index.json").exists()
    assert (m / "1.root.json").exists() and (m / "root.json").exists()
    assert_valid(m)


def test_keep_and_yanked_together(tiup, mirror: tuple[Path, Path]) -> None:
    m, key = mirror
    r = tiup("mirror", "--repo", str(m), "prune", "--keep", "0", "--yanked", "--component",
             "tikv", "--component", "tidb", "-k", str(key), "-y", env=ENV)
    assert r.returncode == 0, r.output
    assert versions_of(manifest(m, "tikv"), "linux/amd64") == {"v8.5.0": True,
                                                               "v8.5.1": False}
    assert not (m / "tikv-v8.5.0-linux-amd64.tar.gz").exists()
    assert not (m / "tidb-v8.5.2-linux-amd64.tar.gz").exists()
    assert (m / "tikv-v8.5.1-linux-amd64.tar.gz").exists()
    assert (m / "old-v1.0.0-linux-amd64.tar.gz").exists()  # not a chosen component
    assert_valid(m)


def test_orphans_and_confirmation(tiup, mirror: tuple[Path, Path]) -> None:
    m, _key = mirror
    (m / "stray-v1-linux-amd64.tar.gz").write_bytes(b"x" * 100)
    r = tiup("mirror", "--repo", str(m), "prune", "--orphans", env=ENV, input="")
    assert r.returncode == 2 and "--yes" in r.stderr, r.output
    assert (m / "stray-v1-linux-amd64.tar.gz").exists()
    r = tiup("mirror", "--repo", str(m), "prune", "--orphans", "-y", env=ENV)
    assert r.returncode == 0, r.output
    assert not (m / "stray-v1-linux-amd64.tar.gz").exists()
    assert "freed 100 bytes" in r.stdout
    assert_valid(m)


def test_needs_owner_key(tiup, mirror: tuple[Path, Path]) -> None:
    m, _key = mirror
    ts = (m / "timestamp.json").read_bytes()
    r = tiup("mirror", "--repo", str(m), "prune", "--keep", "0", "-y", env=ENV)
    assert r.returncode == 1 and "owner pingcap" in r.stderr, r.output
    assert (m / "timestamp.json").read_bytes() == ts
    assert (m / "tidb-v7.5.0-linux-amd64.tar.gz").exists()
