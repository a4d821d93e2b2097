"""The client over HTTP (Python's http.server, nginx), TiUP's own fixture mirror, and faults."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import killpoints
from reposim import SIM_NOW_TEXT, RepoSim, make_tarball, script
from servers import Fault, StaticServer
from tiup.client.profile import address_hash

ENV = {"TIUP_TEST_NOW": SIM_NOW_TEXT}
HELLO_MSG = "The component `hello` version  is not installed; downloading from repository."

pytest_plugins = ["nginx"]


@pytest.fixture
def sim(tmp_path: Path) -> RepoSim:
    s = RepoSim(tmp_path / "mirror")
    s.publish("hello", "v0.0.1", files={"hello": script("echo hello")})
    return s


def _guide_flow(tiup, url: str, home: Path) -> None:
    r = tiup("mirror", "set", url, env=ENV)
    assert r.returncode == 0, r.output
    assert f"Successfully set mirror to {url}" in r.stdout
    pin = home / "bin" / f"{address_hash(url)}.root.json"
    assert pin.read_bytes() == (home / "bin" / "root.json").read_bytes()
    assert "WARN: Trusting component distribution key via insecure Internet" in r.stderr
    r = tiup("list", env=ENV)
    assert r.returncode == 0 and "hello  alice" in r.stdout, r.output
    r = tiup("hello", env=ENV, subprocess=True)
    assert r.returncode == 0, r.output
    assert HELLO_MSG in r.stderr and r.stdout == "hello\n"


def test_guide_flow_over_python_http_server(tiup, sim: RepoSim, clean_home: Path) -> None:
    with StaticServer(sim.path) as srv:
        _guide_flow(tiup, srv.url, clean_home)
        # a no-op refresh is one request for timestamp.json
        n = len(srv.log)
        assert tiup("list", "--installed", env=ENV).returncode == 0
        assert len(srv.log) == n
        assert tiup("install", "hello", env=ENV).returncode == 0
        assert [e.path for e in srv.log[n:]] == ["/timestamp.json"]
        assert srv.log[-1].sent <= 2048


def test_tiup_mirrors_over_http_in_fresh_home(tiup, sim: RepoSim, clean_home: Path) -> None:
    with StaticServer(sim.path) as srv:
        r = tiup("hello", env={**ENV, "TIUP_MIRRORS": srv.url}, subprocess=True)
        assert r.returncode == 0 and r.stdout == "hello\n", r.output
        assert "trusting the root of" in r.stderr
        state = clean_home / "mirrors" / address_hash(srv.url.rstrip("/"))
        assert (state / "root.json").read_bytes() == sim.read("root.json")
    assert tiup("mirror", "show").stdout.strip() == "https://tiup-mirrors.pingcap.com/"
    assert not (clean_home / "tiup.toml").exists()


def test_guide_flow_over_nginx(tiup, sim: RepoSim, clean_home: Path, nginx) -> None:
    srv = nginx(sim.path)
    _guide_flow(tiup, srv.url, clean_home)


def test_install_over_http_resumes_after_a_dropped_connection(tiup, tmp_path: Path,
                                                              clean_home: Path) -> None:
    s = RepoSim(tmp_path / "m")
    big = os.urandom(300_000)
    s.publish("hello", "v1.0.0", files={"hello": script("echo big"), "blob": big})
    tar = f"/hello-v1.0.0-{_plat()}.tar.gz"
    with StaticServer(s.path) as srv:
        srv.add_fault(tar, Fault(drop_after=100_000))
        assert tiup("mirror", "set", srv.url, env=ENV).returncode == 0
        r = tiup("hello", env=ENV, subprocess=True)
        assert r.returncode == 0 and r.stdout == "big\n", r.output
        reqs = srv.requests(tar)
        assert len(reqs) >= 2 and reqs[-1].range == "bytes=100000-"
    blob = clean_home / "components" / "hello" / "v1.0.0" / "blob"
    assert blob.read_bytes() == big


def _plat() -> str:
    from tiup.client.resolve import current_platform

    return current_platform().replace("/", "-")


def test_fixture_mirror_interop(tiup, fixture_mirror: Path, clean_home: Path) -> None:
    env = {"TIUP_TEST_NOW": "2026-01-01T00:00:00Z"}
    r = tiup("mirror", "set", str(fixture_mirror), "--root",
             str(fixture_mirror / "1.root.json"), env=env)
    assert r.returncode == 0, r.output
    r = tiup("list", env=env)
    assert r.returncode == 0, r.output
    names = [line.split()[0] for line in r.stdout.splitlines()[3:]]
    assert {"tidb", "tikv", "pd", "cluster", "playground"} <= set(names)
    r = tiup("list", "tidb", env=env)
    assert r.returncode == 0 and "Available versions for tidb:" in r.stdout
    assert "v4.0.0" in r.stdout or "nightly" in r.stdout
    cached = sorted(p.name for p in (clean_home / "manifests").iterdir())
    assert "index.json" in cached and "tidb.json" in cached
    # the cache is byte-for-byte what the mirror serves
    assert (clean_home / "manifests" / "tidb.json").read_bytes() == \
        (fixture_mirror / "1.tidb.json").read_bytes()


#: Where ``kill -9`` lands in ``tiup install`` once the tarball is downloaded: what has
#: happened by then, the step (see ``killpoints``) the child is stopped before, and how
#: many data files the killed install left in staging (None: all moved into components/).
INSTALL_KILL_POINTS = [
    ("29 of the 60 data files extracted", "open staging/install-*/data/*", 30, 29),
    ("all extracted, not yet moved into components/",
     "rename staging/install-* -> components/hello/v1.0.0", 1, 60),
    ("moved into components/, no install record yet", "open installed/hello/*", 1, None),
    ("install record in its temp file, not yet in place",
     "rename * -> installed/hello/v1.0.0.json", 1, None),
]


def test_kill_9_during_install_then_reinstall(tmp_path: Path, clean_home: Path) -> None:
    """``kill -9`` mid-download and at each later step of an install leaves nothing
    half-installed, and the next ``tiup hello`` installs and runs it.

    Every kill provably lands mid-install, however busy the machine: mid-download the
    server holds the rest of the tarball back until the client is dead; after that the
    child is stopped before a chosen file-system step (``killpoints``) and killed there.
    """
    s = RepoSim(tmp_path / "m")
    files = {"hello": script("echo survived")}
    files.update({f"data/f{i}": os.urandom(20_000) for i in range(60)})
    item = s.publish("hello", "v1.0.0", files=files, tarball=make_tarball(files))
    env = {**os.environ, **ENV}
    tiup = [sys.executable, "-m", "tiup"]
    comp_dir = clean_home / "components" / "hello" / "v1.0.0"
    record = clean_home / "installed" / "hello" / "v1.0.0.json"
    staging = clean_home / "staging"

    def nothing_half_installed() -> None:
        # either nothing counts as installed, or everything is complete
        if comp_dir.exists():
            assert (comp_dir / "hello").is_file()
            assert len(list((comp_dir / "data").iterdir())) == 60
        if record.exists():
            assert comp_dir.is_dir()
            assert json.loads(record.read_text())["version"] == "v1.0.0"

    def reinstall_works(with_record: bool) -> None:
        r = subprocess.run([*tiup, "hello"], env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0 and r.stdout == "survived\n", r.stderr
        assert len(list((comp_dir / "data").iterdir())) == 60
        if with_record:
            assert json.loads(record.read_text())["version"] == "v1.0.0"
        assert not list(staging.glob("install-*")) and not list(staging.glob("trash-*"))
        assert not list((staging / "downloads").iterdir())  # no partial download left
        shutil.rmtree(comp_dir.parent)  # uninstalled by hand for the next round
        shutil.rmtree(record.parent, ignore_errors=True)

    with StaticServer(s.path) as srv:
        subprocess.run([*tiup, "mirror", "set", srv.url], env=env, check=True,
                       capture_output=True, timeout=120)
        # mid-download: the server sends 256 KiB of the tarball, then holds the rest back
        # (on every attempt) until the client is dead
        held = 1 << 18
        assert item.length > 4 * held
        srv.add_fault(item.url, Fault(stall_after=held, times=-1))
        proc = subprocess.Popen([*tiup, "install", "hello"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while not (any(e.sent == held for e in srv.requests(item.url))
                       and list(staging.glob("downloads/*.part"))):
                assert proc.poll() is None, "tiup install ended before the kill"
                assert time.monotonic() < deadline, "the download never started"
                time.sleep(0.01)  # polling for an event, not waiting for time to pass
        finally:
            proc.kill()
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        del srv.faults[item.url]
        assert not comp_dir.exists() and not record.exists()
        assert list(staging.glob("downloads/*.part"))  # the partial download is kept aside
        nothing_half_installed()
        reinstall_works(with_record=True)

        for i, (what, stop, nth, in_staging) in enumerate(INSTALL_KILL_POINTS):
            with killpoints.start(["install", "hello"], root=clean_home, stop=stop, nth=nth,
                                  env=env, marker=tmp_path / f"stopped-{i}") as child:
                step = child.wait_stopped()
                child.kill()
            extracted = list(staging.glob("install-*"))
            if in_staging is not None:
                assert not comp_dir.exists() and not record.exists(), what
                assert len(extracted) == 1, what
                assert len(list((extracted[0] / "data").iterdir())) == in_staging, (what, step)
            else:
                assert (comp_dir / "hello").is_file() and not record.exists(), (what, step)
            nothing_half_installed()
            # an install record is written unless the files were already complete
            reinstall_works(with_record=in_staging is not None)


def test_list_fetches_each_manifest_once(tiup, tmp_path: Path) -> None:
    """`tiup list` downloads the component manifests in parallel, each exactly once, and
    none again while the cache is current."""
    sim = RepoSim(tmp_path / "many")
    names = [f"comp{i}" for i in range(10)]
    for name in names:
        sim.publish(name, "v1.0.0", files={name: script("echo hi")})
    with StaticServer(sim.path) as srv:
        assert tiup("mirror", "set", srv.url, env=ENV).returncode == 0
        r = tiup("list", env=ENV)
        assert r.returncode == 0, r.output
        assert all(f"{n}  alice" in r.stdout for n in names)
        fetched = sorted(e.path for e in srv.log if e.path.endswith(tuple(
            f".{n}.json" for n in names)))
        assert len(fetched) == len(names) == len(set(fetched))
        n = len(srv.log)
        assert tiup("list", env=ENV).returncode == 0
        assert [e.path for e in srv.log[n:]] == ["/timestamp.json"]
