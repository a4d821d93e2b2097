"""A source that dies in the middle of a clone: bounded retries, one short summary, exit 1.

The attack (or accident): ``tiup mirror clone`` is fetching tarballs when the source's
host dies (every connection reset from then on). Before, each file was retried on its
own for ~90 s in all, then 36 near-identical 250-character errors with urllib3 reprs
were printed. Now the files in flight fail after their bounded retries, the source
counts as gone after ``TIUP_CLONE_GIVE_UP`` seconds without a byte, the rest is not
tried, and one summary lists one short line per file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from clonekit import build_upstream_with_big_tikv, copy_upstream, tarballs_in
from faultproxy import FlakyProxy
from publishkit import ENV
from servers import Fault, StaticServer

INTERNALS = ("HTTPConnection", "urllib3", "Max retries", "object at 0x", "Caused by",
             "Traceback", "Errno")
BIG = ("tikv-v9.0.0-linux-amd64.tar.gz", "tikv-v9.0.1-linux-amd64.tar.gz",
       "tikv-v9.0.2-linux-amd64.tar.gz")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("upstream")
    mirror, key = base / "mirror", base / "owner.json"
    build_upstream_with_big_tikv(mirror, key)
    return mirror, key


def _wait_for(condition: object, what: str, timeout: float = 120) -> None:
    """Poll an observable event (never a fixed sleep standing in for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_source_dies_mid_clone(tiup, template: tuple[Path, Path], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    mirror, _key = copy_upstream(template, tmp_path / "up")
    target = tmp_path / "clone"
    env = {**os.environ, **ENV, "TIUP_HTTP_RETRIES": "3", "TIUP_CLONE_GIVE_UP": "0.5",
           "NO_PROXY": "127.0.0.1,localhost"}
    with StaticServer(mirror) as srv:
        for name in BIG:  # the largest files start first: both download threads stall
            srv.add_fault(f"/{name}", Fault(stall_after=50_000, times=-1))
        with FlakyProxy(srv.port, drop=0.0, cut_first=0) as proxy:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tiup", "mirror", "clone", str(target), "--full",
                 "-o", "linux", "-a", "amd64", "--jobs", "2", "--no-progress",
                 "--source", proxy.url],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                # both download threads are inside a big file: now the source dies
                _wait_for(lambda: sum(len(srv.requests(f"/{n}")) for n in BIG) >= 2,
                          "the clone to start two big downloads")
                proxy.refuse()
                out, err = proc.communicate(timeout=300)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            after_death = proxy.refused
    assert proc.returncode == 1, out + err
    text = out + err
    for bad in INTERNALS:
        assert bad not in text, text
    # one summary, one short line per failed file
    assert text.count("Failed to fetch") == 1, text
    header = next(line for line in out.splitlines() if line.startswith("Failed to fetch"))
    count = int(header.split()[3])
    lines = [line for line in out.splitlines() if line.startswith("  /")]
    assert len(lines) == count, out
    assert all(len(line) <= 120 for line in lines), lines
    failed = {line.split(":", 1)[0].strip().lstrip("/") for line in lines}
    assert len(failed) == count  # one line per file, no repeats
    expected = {p.name for p in mirror.glob("*.tar.gz") if "linux-amd64" in p.name}
    missing = {n for n in expected - tarballs_in(target) if not n.startswith(("tidb-v8.5.2",
                                                                               "old-"))}
    assert missing <= failed, (missing, failed)
    assert set(BIG) <= failed
    # the rest was given up at once instead of being retried file by file
    not_tried = [line for line in lines if "not tried" in line]
    assert not_tried, out
    assert all("source stopped answering" in line for line in not_tried)
    # bounded: the two files in flight (3 attempts each) and the bootstrap file (3) at
    # most; without the give-up every queued file would cost 3 connections more
    assert after_death <= 2 * 3 + 3 + 2, (after_death, out)
    assert not any(target.glob("*.tar.gz.part"))
