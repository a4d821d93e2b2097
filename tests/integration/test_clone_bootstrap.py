"""The clone's bootstrap tarballs tiup-<os>-<arch>.tar.gz (behavior.md §12.6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clonekit import build_upstream, copy_upstream
from publishkit import ENV, assert_valid
from servers import StaticServer

SOURCE_BOOT = b"the source's own bootstrap for linux/amd64 (not in any manifest)"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("upstream")
    build_upstream(base / "mirror", base / "owner.json")
    (base / "mirror" / "tiup-linux-amd64.tar.gz").write_bytes(SOURCE_BOOT)
    return base / "mirror", base / "owner.json"


def test_without_a_cloned_tiup_the_source_file_is_fetched_unverified(
        tiup, template: tuple[Path, Path], tmp_path: Path) -> None:
    mirror, _key = copy_upstream(template, tmp_path / "up")
    target = tmp_path / "clone"
    with StaticServer(mirror) as srv:
        r = tiup("mirror", "clone", str(target), "--tidb", "v8.5.1", "-o", "linux,darwin",
                 "-a", "amd64,arm64", "--source", srv.url, env=ENV)
        boot_requests = [e for e in srv.log if e.path.startswith("/tiup-")]
    assert r.returncode == 0, r.output
    assert (target / "tiup-linux-amd64.tar.gz").read_bytes() == SOURCE_BOOT
    assert "tiup-linux-amd64.tar.gz is the source's own file, downloaded without " \
           "verification" in r.stderr
    for plat in ("linux/arm64", "darwin/amd64", "darwin/arm64"):
        assert f"TiUP doesn't have {plat}, skipped" in r.stderr
        assert not (target / f"tiup-{plat.replace('/', '-')}.tar.gz").exists()
    assert sorted((e.path, e.status) for e in boot_requests) == [
        ("/tiup-darwin-amd64.tar.gz", 404), ("/tiup-darwin-arm64.tar.gz", 404),
        ("/tiup-linux-amd64.tar.gz", 200), ("/tiup-linux-arm64.tar.gz", 404)]
    assert not list((target / ".tiup-clone").glob("tiup-*"))
    assert_valid(target)
    # a re-run with the same file changes nothing
    with StaticServer(mirror) as srv:
        r = tiup("mirror", "clone", str(target), "--tidb", "v8.5.1", "-o", "linux",
                 "-a", "amd64", "--source", srv.url, env=ENV)
    assert r.returncode == 0, r.output
    assert (target / "tiup-linux-amd64.tar.gz").read_bytes() == SOURCE_BOOT


def test_with_a_cloned_tiup_its_verified_tarball_is_copied(
        tiup, template: tuple[Path, Path], tmp_path: Path) -> None:
    mirror, _key = copy_upstream(template, tmp_path / "up")
    target = tmp_path / "clone"
    with StaticServer(mirror) as srv:
        r = tiup("mirror", "clone", str(target), "--tiup", "all", "-o", "linux", "-a", "amd64",
                 "--source", srv.url, env=ENV)
        boot_requests = [e for e in srv.log if e.path.startswith("/tiup-linux-amd64")]
    assert r.returncode == 0, r.output
    # the newest stable cloned version, hash-verified; the source's own file is not fetched
    assert (target / "tiup-linux-amd64.tar.gz").read_bytes() == \
        (mirror / "tiup-v1.16.1-linux-amd64.tar.gz").read_bytes()
    assert not boot_requests
    assert "without verification" not in r.stderr
    assert_valid(target)
