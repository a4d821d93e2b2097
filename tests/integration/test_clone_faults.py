"""Clone under faults: connections cut at random by a TCP proxy, and kill -9 mid-clone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clonekit import build_upstream_with_big_tikv, copy_upstream, tarballs_in
from faultproxy import FlakyProxy
from nginx import start_nginx, stop_nginx_process
from publishkit import ENV, assert_valid
from servers import Fault, StaticServer
from tiup.hashing import FileInfo


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("upstream")
    mirror, key = base / "mirror", base / "owner.json"
    build_upstream_with_big_tikv(mirror, key)
    return mirror, key


def test_clone_through_a_proxy_that_drops_connections(tiup, template: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    mirror, _key = copy_upstream(template, tmp_path / "up")
    srv = start_nginx(mirror, tmp_path / "nginx")
    target = tmp_path / "clone"
    env = {**ENV, "TIUP_HTTP_RETRIES": "10"}
    try:
        # cuts anywhere from the first byte on: scripted ones in a status line and in
        # header blocks (the first connections fetch the manifests; the None keeps the
        # next one whole so no single request sleeps through a long backoff), then random
        # ones (1..250000 bytes) in headers and bodies
        with FlakyProxy(int(srv.url.rsplit(":", 1)[1]), drop=0.35, max_bytes=250_000,
                        seed=20260101, cuts=[5, 120, None, 200, 1]) as proxy:
            r = tiup("mirror", "clone", str(target), "--full", "-o", "linux", "-a", "amd64",
                     "--jobs", "4", "--source", proxy.url, env=env, timeout=240)
            assert proxy.cut >= 4, "the proxy cut too few connections: the test proves little"
    finally:
        stop_nginx_process(srv.process)
    expected = {p.name for p in mirror.glob("*.tar.gz")} - {
        "tidb-v8.5.2-linux-amd64.tar.gz", "old-v1.0.0-linux-amd64.tar.gz"}
    expected = {n for n in expected if "linux-amd64" in n}
    got = tarballs_in(target)
    # every file present is byte-identical to the source; whatever is missing is reported
    for name in got:
        assert FileInfo.of_file(target / name) == FileInfo.of_file(mirror / name), name
    missing = expected - got
    if r.returncode == 0:
        assert not missing, r.output
    else:
        assert f"Failed to fetch {len(missing)} files:" in r.stdout, r.output
        for name in missing:
            assert f"/{name}: " in r.stdout
    assert_valid(target)


def test_kill_9_then_resume(template: tuple[Path, Path], tmp_path: Path) -> None:
    mirror, _key = copy_upstream(template, tmp_path / "up")
    target = tmp_path / "clone"
    big = "tikv-v9.0.2-linux-amd64.tar.gz"
    size = (mirror / big).stat().st_size
    env = {**os.environ, **ENV, "TIUP_HTTP_READ_TIMEOUT": "60"}
    cmd = [sys.executable, "-m", "tiup", "mirror", "clone", str(target), "--tikv", "v9.0.2",
           "-o", "linux", "-a", "amd64", "--no-progress"]
    with StaticServer(mirror) as srv:
        srv.add_fault(f"/{big}", Fault(stall_after=100_000))
        proc = subprocess.Popen([*cmd, "--source", srv.url], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        work = target / ".tiup-clone"
        deadline = time.monotonic() + 60
        parts: list[Path] = []
        while time.monotonic() < deadline:
            # the stalled bytes are on disk up to the last whole 4 KiB block (O_DIRECT
            # writes whole blocks; the rest is written when the body ends or breaks)
            parts = [p for p in work.glob("*.part") if p.stat().st_size >= 96 * 1024] \
                if work.is_dir() else []
            if parts:
                break
            time.sleep(0.05)
        assert parts, "the clone never wrote its partial download"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        kept = parts[0].stat().st_size
        assert 96 * 1024 <= kept <= 100_000
        assert not (target / big).exists()
        r = subprocess.run([*cmd, "--source", srv.url], env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        ranged = [e for e in srv.requests(f"/{big}") if e.range]
        assert ranged and ranged[-1].range == f"bytes={kept}-" and ranged[-1].status == 206
        assert ranged[-1].sent == size - kept
    assert FileInfo.of_file(target / big) == FileInfo.of_file(mirror / big)
    assert not list((target / ".tiup-clone").glob("*.part"))
    assert_valid(target)
