"""`tiup mirror merge`: the guide's example, conflicts, verified sources, one commit."""

from __future__ import annotations

import json
from pathlib import Path

from publishkit import ENV, assert_valid, make_tarball
from servers import StaticServer

USER = "jdoe"
E = {**ENV, "USER": USER}


def ok(tiup, *args: str) -> str:  # type: ignore[no-untyped-def]
    r = tiup(*args, env=E)
    assert r.returncode == 0, (args, r.output)
    return r.stdout


def setup_two_mirrors(tiup, tmp_path: Path) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """/data/my_custom_components with hello v0.0.1 and v0.0.2; /data/my_mirror with base."""
    custom, base = tmp_path / "my_custom_components", tmp_path / "my_mirror"
    ok(tiup, "mirror", "genkey")
    ok(tiup, "mirror", "init", str(custom))
    ok(tiup, "mirror", "--repo", str(custom), "grant", USER)
    for ver in ("v0.0.1", "v0.0.2"):
        ball = make_tarball(tmp_path / f"hello-{ver}.tar.gz",
                            body=f"#!/bin/sh\necho hello {ver}\n".encode())
        ok(tiup, "mirror", "--repo", str(custom), "publish", "hello", ver, str(ball), "hello",
           "--os", "linux", "--arch", "amd64", "--desc", "Say hello")
    ok(tiup, "mirror", "init", str(base))
    ball = make_tarball(tmp_path / "base.tar.gz", entry="base", body=b"#!/bin/sh\necho base\n")
    ok(tiup, "mirror", "--repo", str(base), "grant", "pingcap", "-k",
       str(next((base / "keys").glob("*-index.json"))))
    return custom, base


def test_guide_merge_example(tiup, tmp_path: Path) -> None:
    custom, base = setup_two_mirrors(tiup, tmp_path)
    ok(tiup, "mirror", "set", str(base))
    ok(tiup, "mirror", "grant", USER)
    ts_before = (base / "timestamp.json").read_bytes()
    out = ok(tiup, "mirror", "merge", str(custom), "--dry-run")
    assert "would merge hello: v0.0.1 linux/amd64, v0.0.2 linux/amd64" in out
    assert (base / "timestamp.json").read_bytes() == ts_before
    out = ok(tiup, "mirror", "merge", str(custom))
    assert "merged hello: v0.0.1 linux/amd64, v0.0.2 linux/amd64" in out
    assert_valid(base)
    r = tiup("hello:v0.0.2", env=E, subprocess=True)
    assert r.returncode == 0 and r.stdout == "hello v0.0.2\n", r.output
    assert tiup("hello:v0.0.1", env=E, subprocess=True).stdout == "hello v0.0.1\n"
    # one commit: one index bump (owner grant was 2, merge makes 3) and hello at version 1
    assert sorted(p.name for p in base.glob("*.hello.json")) == ["1.hello.json"]
    hello = json.loads((base / "1.hello.json").read_text())["signed"]
    assert hello["description"] == "Say hello"
    # merging again: nothing to do
    out = ok(tiup, "mirror", "merge", str(custom))
    assert "nothing to merge" in out and "skipped 2 version(s) already in the base" in out


def test_conflict_is_reported_and_not_merged(tiup, tmp_path: Path) -> None:
    custom, base = setup_two_mirrors(tiup, tmp_path)
    ok(tiup, "mirror", "set", str(base))
    ok(tiup, "mirror", "grant", USER)
    other = make_tarball(tmp_path / "other.tar.gz", body=b"#!/bin/sh\necho different\n")
    ok(tiup, "mirror", "publish", "hello", "v0.0.2", str(other), "hello", "--os", "linux",
       "--arch", "amd64")
    r = tiup("mirror", "merge", str(custom), env=E)
    assert r.returncode == 1, r.output
    assert "conflict: hello v0.0.2 linux/amd64: keeping base copy" in r.stdout
    assert "merged hello: v0.0.1 linux/amd64" in r.stdout
    r = tiup("hello:v0.0.2", env=E, subprocess=True)
    assert r.stdout == "different\n"
    assert_valid(base)


def test_source_is_verified_and_tarballs_checked(tiup, tmp_path: Path) -> None:
    custom, base = setup_two_mirrors(tiup, tmp_path)
    ok(tiup, "mirror", "set", str(base))
    ok(tiup, "mirror", "grant", USER)
    ts = (base / "timestamp.json").read_bytes()
    ball = custom / "hello-v0.0.2-linux-amd64.tar.gz"
    good = ball.read_bytes()
    ball.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    r = tiup("mirror", "merge", str(custom), env=E)
    assert r.returncode == 1 and "does not match" in r.stderr, r.output
    assert (base / "timestamp.json").read_bytes() == ts
    assert not list(base.glob("hello-*"))
    ball.write_bytes(good)
    manifest = custom / "2.hello.json"
    manifest.write_text(manifest.read_text().replace("Say hello", "Say hallo"))
    r = tiup("mirror", "merge", str(custom), env=E)
    assert r.returncode == 1 and "does not verify" in r.stderr, r.output
    assert (base / "timestamp.json").read_bytes() == ts


def test_merge_from_url_and_missing_owner(tiup, tmp_path: Path) -> None:
    custom, base = setup_two_mirrors(tiup, tmp_path)
    with StaticServer(custom) as srv:
        r = tiup("mirror", "--repo", str(base), "merge", srv.url, env=E)
        assert r.returncode == 1 and f"owners of the sources are not in the base mirror: " \
            f"{USER}" in r.stderr and "tiup mirror grant" in r.stderr, r.output
        ok(tiup, "mirror", "--repo", str(base), "grant", USER)
        out = ok(tiup, "mirror", "--repo", str(base), "merge", srv.url)
        assert "merged hello" in out
    assert_valid(base)


def test_tiup_integration_scenario_merge(tiup, tmp_path: Path) -> None:
    """TiUP's tests/tiup/test_tiup.sh step 4: init A/B, grant pingcap, publish, merge B."""
    a, b = tmp_path / "A", tmp_path / "B"
    ok(tiup, "mirror", "genkey")
    for mirror, ver in ((a, "v0.0.1"), (b, "v0.0.2")):
        ok(tiup, "mirror", "init", str(mirror))
        ok(tiup, "mirror", "set", str(mirror))
        ok(tiup, "mirror", "grant", "pingcap")
        ball = make_tarball(tmp_path / f"hello-{ver}.tar.gz", entry="hello.sh",
                            body=b"#!/bin/sh\necho hello, TiDB\n")
        ok(tiup, "mirror", "publish", "hello", ver, str(ball), "hello.sh")
    ok(tiup, "mirror", "set", str(a))
    ok(tiup, "mirror", "merge", str(b))
    r = tiup("hello:v0.0.2", env=E, subprocess=True)
    assert r.returncode == 0 and "TiDB" in r.stdout, r.output
