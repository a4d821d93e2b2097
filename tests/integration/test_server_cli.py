"""`tiup mirror serve` / `tiup-server` startup, shutdown, publishing switch, upstream, and the
shipped systemd unit."""

from __future__ import annotations

import configparser
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import urllib3

from publishkit import ENV, NOW
from serverkit import ServerProc, Setup, free_port, make_setup, start_server
from tiup.repository.init import init_mirror

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "systemd" / "tiup-mirror.service"


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return make_setup(tmp_path / "data")


def test_startup_failures_exit_1(tiup, setup: Setup, tmp_path: Path) -> None:
    r = tiup("mirror", "serve", str(tmp_path / "nope"), "--addr", "127.0.0.1:1", env=ENV)
    assert r.returncode == 1 and "does not exist" in r.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    r = tiup("mirror", "serve", str(empty), "--addr", "127.0.0.1:1", env=ENV)
    assert r.returncode == 1 and "not a mirror" in r.stderr
    # publishing needs every index/snapshot/timestamp key
    partial = tmp_path / "partial"
    shutil.copytree(setup.keys, partial)
    next(p for p in partial.iterdir() if p.name.endswith("-timestamp.json")).unlink()
    r = tiup("mirror", "serve", str(setup.mirror), "--key-dir", str(partial), "--addr",
             "127.0.0.1:1", env=ENV)
    assert r.returncode == 1 and "role timestamp" in r.stderr and "--read-only" in r.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = tiup("mirror", "serve", str(setup.mirror), "--read-only", "--addr",
                 f"127.0.0.1:{port}", env=ENV)
        assert r.returncode == 1 and "cannot listen" in r.stderr, r.output
    r = tiup("mirror", "serve", str(setup.mirror), "--addr", "nonsense", env=ENV)
    assert r.returncode == 1 and "invalid address" in r.stderr
    r = tiup("mirror", "serve", str(setup.mirror), "--tls-cert", "x.pem", "--addr",
             "127.0.0.1:1", "--read-only", env=ENV)
    assert r.returncode == 1 and "--tls-key" in r.stderr


def test_tiup_server_entry_point_and_read_only(setup: Setup, tmp_path: Path) -> None:
    """`tiup-server DIR` with keys inside the mirror: warns, serves, publishing on;
    --read-only turns the API off."""
    inside = setup.mirror / "keys"
    shutil.copytree(setup.keys, inside)
    exe = Path(sys.executable).parent / "tiup-server"
    port = free_port()
    proc = subprocess.Popen([str(exe), str(setup.mirror), "--addr", f"127.0.0.1:{port}",
                             "--workers", "1"], env={**os.environ, **ENV},
                            stderr=subprocess.PIPE, text=True)
    pool = urllib3.PoolManager(retries=False)
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline() for _ in range(3)]
        assert "lies inside the served mirror" in lines[0], lines
        assert lines[1].startswith(f"Serving {setup.mirror} on http://127.0.0.1:{port}")
        assert "Publishing is enabled" in lines[2]
        _wait(pool, f"http://127.0.0.1:{port}/root.json")
        for name in os.listdir(inside):
            assert pool.request("GET", f"http://127.0.0.1:{port}/keys/{name}").status == 404
        resp = pool.request("POST", f"http://127.0.0.1:{port}/api/v1/component/x/hello",
                            body=b"{")
        assert resp.status == 400
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    srv = start_server(setup.mirror, "--read-only", workdir=tmp_path)
    try:
        resp = srv.pool().request("POST", f"{srv.url}/api/v1/rotate", body=b"{}")
        assert resp.status == 404 and "not enabled" in json.loads(resp.data)["message"]
        assert "Publishing is disabled" in srv.log()
    finally:
        assert srv.stop() == 0


def _wait(pool: urllib3.PoolManager, url: str) -> None:
    deadline = time.monotonic() + 60  # an upper bound for a busy machine, not a wait
    while time.monotonic() < deadline:
        try:
            if pool.request("HEAD", url).status == 200:
                return
        except urllib3.exceptions.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} never answered")


def test_upstream_serves_missing_files(setup: Setup, tmp_path: Path) -> None:
    other = tmp_path / "other"
    init_mirror(other, NOW, key_dir=tmp_path / "other-keys")
    (other / "only-upstream.tar.gz").write_bytes(b"x" * 300_000)
    up = start_server(other, "--read-only", workdir=tmp_path)
    srv = start_server(setup.mirror, "--read-only", "--upstream", up.url, workdir=tmp_path)
    try:
        pool = srv.pool()
        resp = pool.request("GET", f"{srv.url}/only-upstream.tar.gz")
        assert resp.status == 200 and resp.data == b"x" * 300_000
        assert pool.request("HEAD", f"{srv.url}/only-upstream.tar.gz").status == 200
        # local files win; keys and missing files stay 404
        assert pool.request("GET", f"{srv.url}/root.json").data == \
            (setup.mirror / "root.json").read_bytes()
        assert pool.request("GET", f"{srv.url}/missing.json").status == 404
        assert pool.request("GET", f"{srv.url}/keys/x.json").status == 404
    finally:
        assert srv.stop() == 0
        assert up.stop() == 0


def _unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser


def test_systemd_unit_parses_and_verifies(tmp_path: Path) -> None:
    unit = _unit()
    service = unit["Service"]
    for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                       ("KillSignal", "SIGTERM"), ("PrivateTmp", "yes")):
        assert service[key] == value
    argv = shlex.split(service["ExecStart"])
    assert argv[1:3] == ["mirror", "serve"]
    mirror = argv[3]
    assert mirror in service["ReadWritePaths"].split()
    key_dir = argv[argv.index("--key-dir") + 1]
    assert not Path(key_dir).is_relative_to(mirror), "keys must live outside the served tree"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return
    local = tmp_path / "tiup-mirror.service"
    local.write_text(UNIT.read_text().replace(argv[0], str(Path(sys.executable).parent / "tiup")))
    r = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True,
                       cwd=tmp_path)
    problems = [line for line in (r.stdout + r.stderr).splitlines()
                if "tiup-mirror.service" in line]
    assert r.returncode == 0 and problems == [], r.stdout + r.stderr


def test_systemd_exec_start_runs(setup: Setup, tmp_path: Path) -> None:
    """The unit's ExecStart, with its paths mapped into a temp dir, serves and stops on SIGTERM."""
    argv = shlex.split(_unit()["Service"]["ExecStart"])
    mirror, keys = argv[3], argv[argv.index("--key-dir") + 1]
    port = free_port()
    mapped = [str(Path(sys.executable).parent / "tiup")] + [
        {mirror: str(setup.mirror), keys: str(setup.keys)}.get(a, a) for a in argv[1:]]
    mapped[mapped.index("--addr") + 1] = f"127.0.0.1:{port}"
    env = {**os.environ, **ENV, "TIUP_HOME": str(tmp_path / "home"),
           "TIUP_COMPONENT_DATA_DIR": str(tmp_path / "data-dir")}
    log = tmp_path / "unit.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(mapped, env=env, stdout=fh, stderr=subprocess.STDOUT)
    srv = ServerProc(proc, f"http://127.0.0.1:{port}", log)  # type: ignore[arg-type]
    try:
        _wait(srv.pool(), f"{srv.url}/timestamp.json")
        assert (tmp_path / "data-dir" / "packages").is_dir()
        assert "Publishing is enabled" in srv.log()
    finally:
        assert srv.stop() == 0
    assert "HEAD /timestamp.json 200" in srv.log()
