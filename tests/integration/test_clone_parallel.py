"""The clone's parallel download over HTTP (the byte path itself is in unit/test_clone_io)."""

from __future__ import annotations

from pathlib import Path

from clonekit import build_upstream, publish_version
from publishkit import ENV, assert_valid
from servers import StaticServer


def test_two_versions_with_the_same_bytes_clone_in_parallel(tiup, tmp_path: Path) -> None:
    """Two tarballs with identical content (same sha256) download at the same time
    without sharing a part file."""
    mirror, key = tmp_path / "up" / "mirror", tmp_path / "up" / "owner.json"
    build_upstream(mirror, key)
    names = [publish_version(mirror, key, "tikv", f"v9.0.{n}", "linux/amd64",
                             text="identical") for n in range(4)]
    assert len({(mirror / n).read_bytes() for n in names}) == 1
    target = tmp_path / "clone"
    with StaticServer(mirror) as srv:
        r = tiup("mirror", "clone", str(target), "--tikv", "all", "-o", "linux", "-a",
                 "amd64", "--jobs", "4", "--source", srv.url, env=ENV)
    assert r.returncode == 0, r.output
    for n in names:
        assert (target / n).read_bytes() == (mirror / n).read_bytes()
    assert_valid(target)
