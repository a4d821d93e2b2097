"""`tiup mirror clone` with each flag combination of the guide's section 克隆镜像, from an
upstream served by a real nginx on 127.0.0.1: exactly the expected tarballs, a valid clone,
and a client that installs and runs components from it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from clonekit import ALL4, NIGHTLY, build_upstream, expected_tarballs, tarballs_in
from nginx import NginxServer, start_nginx, stop_nginx_process
from publishkit import ENV, assert_valid, make_tarball
from tiup.client.profile import address_hash


def latest(mirror: Path, name: str) -> Path:
    """The newest versioned manifest ``N.<name>.json`` of a mirror."""
    return max(mirror.glob(f"*.{name}.json"), key=lambda p: int(p.name.split(".")[0]))


@pytest.fixture(scope="session")
def upstream_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("upstream")
    build_upstream(base / "mirror", base / "owner.json")
    return base / "mirror", base / "owner.json"


@pytest.fixture(scope="session")
def served(upstream_template: tuple[Path, Path],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    srv = start_nginx(upstream_template[0], tmp_path_factory.mktemp("nginx"))
    yield srv
    stop_nginx_process(srv.process)


L = ("linux/amd64", "linux/arm64")
A = ("linux/amd64", "darwin/amd64")
LA = ("linux/amd64",)
FULL = {
    "tidb": {"v7.5.0": ALL4, "v8.5.0": ALL4, "v8.5.1": ALL4[:3], NIGHTLY: LA},
    "tikv": {"v8.5.0": ALL4[:3], "v8.5.1": ALL4[:3]},
    "pd": {"v8.5.1": A},
    "tiup": {"v1.16.0": ("linux/amd64", "darwin/arm64"),
             "v1.16.1": ("linux/amd64", "darwin/arm64")},
    "hider": {"v1.0.0": LA},
}

CASES: list[tuple[str, list[str], dict[str, dict[str, tuple[str, ...]]]]] = [
    ("--full", ["--full"], FULL),
    ("--os=linux", ["v8.5.1", "--os=linux"],
     {"tidb": {"v8.5.1": L}, "tikv": {"v8.5.1": L}, "pd": {"v8.5.1": LA},
      "tiup": {"v1.16.1": LA}, "hider": {"v1.0.0": LA}}),
    ("--arch=amd64", ["v8.5.1", "--arch=amd64"],
     {"tidb": {"v8.5.1": A}, "tikv": {"v8.5.1": A}, "pd": {"v8.5.1": A},
      "tiup": {"v1.16.1": LA}, "hider": {"v1.0.0": LA}}),
    ("--os=linux --arch=amd64", ["v8.5.1", "--os=linux", "--arch=amd64"],
     {"tidb": {"v8.5.1": LA}, "tikv": {"v8.5.1": LA}, "pd": {"v8.5.1": LA},
      "tiup": {"v1.16.1": LA}, "hider": {"v1.0.0": LA}}),
    ("--tidb v8.5.1", ["--tidb", "v8.5.1"], {"tidb": {"v8.5.1": ALL4[:3]}}),
    ("--tidb v8.5.1 --tikv all", ["--tidb", "v8.5.1", "--tikv", "all"],
     {"tidb": {"v8.5.1": ALL4[:3]}, "tikv": {"v8.5.0": ALL4[:3], "v8.5.1": ALL4[:3]}}),
    ("global v8.5.1", ["v8.5.1"],
     {"tidb": {"v8.5.1": ALL4[:3], "v8.5.0": ("darwin/arm64",)}, "tikv": {"v8.5.1": ALL4[:3]},
      "pd": {"v8.5.1": A}, "tiup": {"v1.16.1": ("linux/amd64", "darwin/arm64")},
      "hider": {"v1.0.0": LA}}),
    ("--prefix --tidb v8.5", ["--prefix", "--tidb=v8.5", "--os", "linux", "--arch", "amd64"],
     {"tidb": {"v8.5.0": LA, "v8.5.1": LA}}),
    ("--tidb nightly,latest", ["--tidb", "nightly,latest", "-o", "linux", "-a", "amd64"],
     {"tidb": {NIGHTLY: LA, "v8.5.1": LA}}),
    ("metadata only", [], {}),
]


@pytest.mark.parametrize(("name", "args", "expected"), CASES, ids=[c[0] for c in CASES])
def test_guide_flag_combinations(tiup, served: NginxServer, tmp_path: Path, name: str,
                                 args: list[str], expected: dict[str, dict[str, tuple[str, ...]]]
                                 ) -> None:
    target = tmp_path / "clone"
    r = tiup("mirror", "clone", str(target), *args, "--source", served.url, env=ENV)
    assert r.returncode == 0, r.output
    assert tarballs_in(target) == expected_tarballs(expected)
    assert f"{len(expected_tarballs(expected))} files downloaded" in r.stdout
    assert_valid(target)
    index = json.loads(latest(target, "index").read_text())["signed"]
    assert set(index["components"]) == set(expected)
    assert set(index["owners"]) == {"pingcap"}
    if "hider" in expected:
        assert index["components"]["hider"]["hidden"] is True
        assert index["components"]["hider"]["standalone"] is True
    if name == "metadata only":
        assert "only metadata is cloned" in r.stderr
    if name.startswith("--tidb nightly"):
        tidb = json.loads(latest(target, "tidb").read_text())["signed"]
        assert tidb["nightly"] == NIGHTLY
    if name == "--tidb v8.5.1":
        assert "tidb darwin/arm64: v8.5.1 not available, skipped" in r.stderr
    # yanked versions and components are never downloaded
    assert not [e for e in served.access_entries() if "v8.5.2" in e[2] or "/old-" in e[2]]


def test_clone_installs_runs_and_accepts_publishes(tiup, served: NginxServer, tmp_path: Path,
                                                   clean_home: Path) -> None:
    target = tmp_path / "offline"
    r = tiup("mirror", "clone", str(target), "v8.5.1", "--os", "linux", "--source", served.url,
             env=ENV)
    assert r.returncode == 0, r.output
    # bootstrap copy of the cloned tiup, install script
    assert (target / "tiup-linux-amd64.tar.gz").read_bytes() == \
        (target / "tiup-v1.16.1-linux-amd64.tar.gz").read_bytes()
    assert (target / "local_install.sh").stat().st_mode & 0o111
    keys = sorted(p.name for p in (target / "keys").iterdir())
    assert len(keys) == 7 and sum(k.endswith("-pingcap.json") for k in keys) == 1
    r = tiup("mirror", "verify", str(target), env=ENV)
    assert r.returncode == 0, r.output
    assert tiup("mirror", "set", str(target), env=ENV).returncode == 0
    r = tiup("tidb:v8.5.1", env=ENV, subprocess=True)
    assert r.returncode == 0, r.output
    assert r.stdout.strip() == "tidb v8.5.1 linux/amd64"
    # the clone's signing keys are set up: publish into it needs no -k
    ball = make_tarball(tmp_path / "mine.tar.gz", entry="tidb",
                        body=b"#!/bin/sh\necho my own tidb\n")
    r = tiup("mirror", "publish", "tidb", "v8.5.9", str(ball), "tidb", "--os", "linux",
             "--arch", "amd64", env=ENV)
    assert r.returncode == 0, r.output
    r = tiup("tidb:v8.5.9", env=ENV, subprocess=True)
    assert r.returncode == 0 and r.stdout.strip() == "my own tidb", r.output
    owner_key = next((target / "keys").glob("*-pingcap.json"))
    r = tiup("mirror", "publish", "mine", "v0.1.0", str(ball), "tidb", "-k", str(owner_key),
             env=ENV)
    assert r.returncode == 0, r.output
    assert_valid(target)


def test_help_needs_no_network_and_bad_options(tiup, tmp_path: Path,
                                               served: NginxServer) -> None:
    r = tiup("mirror", "clone", "--help", env={**ENV, "TIUP_MIRRORS": "http://127.0.0.1:9"})
    assert r.returncode == 0 and "--<component>" in r.stdout
    r = tiup("mirror", "clone", str(tmp_path / "c"), "--os=", "--source", served.url, env=ENV)
    assert r.returncode == 2 and "--os is empty" in r.stderr
    # an OS or architecture becomes part of file names: the shared rule, before any I/O
    for flag in ("--os=../../../tmp/x", "--arch=a b"):
        r = tiup("mirror", "clone", str(tmp_path / "c"), flag, "--full", "--source",
                 served.url, env=ENV)
        assert r.returncode == 2 and "--os/--arch: invalid" in r.stderr, r.output
        assert "Traceback" not in r.output and not (tmp_path / "c").exists()
    r = tiup("mirror", "clone", str(tmp_path / "c"), "--nosuch", "v1", "--source", served.url,
             env=ENV)
    assert r.returncode == 2 and "unknown component nosuch" in r.stderr
    r = tiup("mirror", "clone", str(tmp_path / "c"), "v8.x", "--source", served.url, env=ENV)
    assert r.returncode == 2 and "not a valid SemVer" in r.stderr
    r = tiup("mirror", "clone", str(tmp_path / "c"), "--tidb", "v6.0.0", "--source", served.url,
             env=ENV)
    assert r.returncode == 1 and "v6.0.0 of tidb not found" in r.stderr


def test_refuses_to_clone_the_configured_mirror_into_itself(tiup, tmp_path: Path,
                                                            upstream_template: tuple[Path, Path]
                                                            ) -> None:
    mirror = tmp_path / "m"
    shutil.copytree(upstream_template[0], mirror)
    assert tiup("mirror", "set", str(mirror), env=ENV).returncode == 0
    r = tiup("mirror", "clone", str(mirror) + "/", "--full", env=ENV)
    assert r.returncode == 2, r.output
    assert "Refusing to clone" in r.stderr and "tiup mirror set --reset" in r.stderr
    r = tiup("mirror", "clone", str(tmp_path / "x" / ".." / "m"), "--full",
             "--source", str(mirror), env=ENV)
    assert r.returncode == 2 and "Refusing to clone" in r.stderr


def test_tiup_mirrors_selects_the_source_without_touching_config(
        tiup, served: NginxServer, tmp_path: Path, clean_home: Path) -> None:
    r = tiup("mirror", "clone", str(tmp_path / "c"), "--pd", "v8.5.1", "-o", "linux",
             env={**ENV, "TIUP_MIRRORS": served.url})
    assert r.returncode == 0, r.output
    assert tarballs_in(tmp_path / "c") == {"pd-v8.5.1-linux-amd64.tar.gz"}
    assert not (clean_home / "tiup.toml").exists()
    assert (clean_home / "bin" / f"{address_hash(served.url)}.root.json").exists()


def test_verify_accepts_a_url(tiup, served: NginxServer, clean_home: Path) -> None:
    mark = len(served.access_entries())
    r = tiup("mirror", "verify", served.url, env=ENV)
    assert r.returncode == 0, r.output
    assert "0 errors" in r.stdout
    gets = [e for e in served.access_entries()[mark:] if e[2].endswith(".tar.gz HTTP/1.1")]
    assert len(gets) >= 20  # every non-yanked tarball streamed and hashed
    assert not list(clean_home.rglob("*.tar.gz"))  # never stored
