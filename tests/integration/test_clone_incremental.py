"""Re-running `tiup mirror clone` into the same target: incremental, same keys, old versions
kept, and a client that trusts the clone just updates (TiUP #1704)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clonekit import copy_upstream, publish_version, tarballs_in
from nginx import NginxServer, start_nginx, stop_nginx_process
from publishkit import ENV, assert_valid


@pytest.fixture
def upstream(template: tuple[Path, Path], tmp_path: Path) -> Iterator[tuple[Path, Path,
                                                                             NginxServer]]:
    mirror, key = copy_upstream(template, tmp_path / "up")
    srv = start_nginx(mirror, tmp_path / "nginx")
    yield mirror, key, srv
    stop_nginx_process(srv.process)


def tarball_gets(srv: NginxServer, since: int = 0) -> list[str]:
    return [e[2].split()[1] for e in srv.access_entries()[since:]
            if e[2].startswith("GET") and e[2].split()[1].endswith(".tar.gz")]


def test_incremental_reclone(tiup, upstream: tuple[Path, Path, NginxServer],
                             tmp_path: Path) -> None:
    mirror, key, srv = upstream
    target = tmp_path / "clone"
    args = ("mirror", "clone", str(target), "--full", "-o", "linux", "-a", "amd64",
            "--source", srv.url)
    r = tiup(*args, env=ENV)
    assert r.returncode == 0, r.output
    first = tarball_gets(srv)
    assert len(first) == len(tarballs_in(target)) == 10
    root = (target / "root.json").read_bytes()
    keys = sorted(p.name for p in (target / "keys").iterdir())
    # a client trusts the clone
    assert tiup("mirror", "set", str(target), env=ENV).returncode == 0
    r = tiup("list", "tidb", env=ENV)
    assert r.returncode == 0 and "v8.5.3" not in r.stdout

    new = publish_version(mirror, key, "tidb", "v8.5.3", "linux/amd64")
    mark = len(srv.access_entries())
    r = tiup(*args, env=ENV)
    assert r.returncode == 0, r.output
    assert tarball_gets(srv, mark) == [f"/{new}"]
    assert "1 files downloaded" in r.stdout and "10 already present" in r.stdout
    assert (target / "root.json").read_bytes() == root
    assert sorted(p.name for p in (target / "keys").iterdir()) == keys
    assert_valid(target)

    # nothing new: no tarball fetched, nothing rewritten
    ts = (target / "timestamp.json").read_bytes()
    mark = len(srv.access_entries())
    r = tiup(*args, env=ENV)
    assert r.returncode == 0, r.output
    assert tarball_gets(srv, mark) == []
    assert (target / "timestamp.json").read_bytes() == ts
    assert "0 files downloaded" in r.stdout

    # the client that trusted the clone sees the new version without `mirror set`
    r = tiup("list", "tidb", env=ENV)
    assert r.returncode == 0 and "v8.5.3" in r.stdout, r.output
    r = tiup("tidb:v8.5.3", env=ENV, subprocess=True)
    assert r.returncode == 0 and r.stdout.strip() == "tidb v8.5.3 linux/amd64", r.output
    r = tiup("update", "tidb", env=ENV)
    assert r.returncode == 0, r.output

    # a narrower re-run keeps the versions the earlier clone had
    r = tiup("mirror", "clone", str(target), "--pd", "v8.5.1", "-o", "linux", "-a", "amd64",
             "--source", srv.url, env=ENV)
    assert r.returncode == 0, r.output
    assert len(tarballs_in(target)) == 11
    r = tiup("list", "tidb", env=ENV)
    assert "v7.5.0" in r.stdout and "v8.5.3" in r.stdout
    assert_valid(target)


def test_reclone_follows_upstream_yank_and_changed_content(
        tiup, upstream: tuple[Path, Path, NginxServer], tmp_path: Path) -> None:
    mirror, key, srv = upstream
    target = tmp_path / "clone"
    args = ("mirror", "clone", str(target), "--tidb", "all", "-o", "linux", "-a", "amd64",
            "--source", srv.url)
    assert tiup(*args, env=ENV).returncode == 0
    r = tiup("mirror", "--repo", str(mirror), "modify", "tidb:v7.5.0", "--yank", "-k", str(key),
             env=ENV)
    assert r.returncode == 0, r.output
    r = tiup(*args, env=ENV)
    assert r.returncode == 0, r.output
    import json

    newest = max(target.glob("*.tidb.json"), key=lambda p: int(p.name.split(".")[0]))
    tidb = json.loads(newest.read_text())["signed"]
    assert tidb["platforms"]["linux/amd64"]["v7.5.0"]["yanked"] is True
    assert_valid(target)


def test_fresh_keys_when_the_clone_keys_are_gone(tiup, upstream: tuple[Path, Path, NginxServer],
                                                 tmp_path: Path) -> None:
    _mirror, _key, srv = upstream
    target = tmp_path / "clone"
    args = ("mirror", "clone", str(target), "--pd", "v8.5.1", "--source", srv.url)
    assert tiup(*args, env=ENV).returncode == 0
    root = (target / "root.json").read_bytes()
    for p in (target / "keys").glob("*-index.json"):
        p.unlink()
    # without its keys the clone cannot be told from another mirror: refused (issue 9) ...
    r = tiup(*args, env=ENV)
    assert r.returncode == 1 and "--force" in r.stderr, r.output
    assert (target / "root.json").read_bytes() == root
    # ... and replaced with new keys only when asked
    r = tiup(*args, "--force", env=ENV)
    assert r.returncode == 0, r.output
    assert "replaced by a new clone with new keys" in r.stderr
    assert (target / "root.json").read_bytes() != root
    assert_valid(target)
