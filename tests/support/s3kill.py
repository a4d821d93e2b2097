"""Stop a ``tiup`` subprocess before its n-th S3 request, so a test can ``kill -9`` it there.

The S3 counterpart of :mod:`killpoints`: the child runs ``python -m tiup`` with
``tiup.repository.s3_storage.request_hook`` set, which sees every request before boto3
sends it. With ``S3KILL_TRACE=<file>`` it appends each operation name (``PutObject``...)
to the file and goes on; with ``S3KILL_AT=<n>`` and ``S3KILL_MARK=<file>`` it writes the
marker before the n-th request and blocks (every other thread reaching a request blocks
too). The test waits for the marker, then SIGKILLs the child: the kill provably lands
before that request, however busy the machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
_BOOT = (f"import sys; sys.path.insert(0, {_TESTS!r}); import s3kill; s3kill.child_main()")
#: only reached when a test fails
REACH_TIMEOUT = 180.0


def child_main() -> None:
    from tiup.repository import s3_storage

    trace = os.environ.get("S3KILL_TRACE")
    at = int(os.environ.get("S3KILL_AT", "0") or 0)
    mark = os.environ.get("S3KILL_MARK")
    lock = threading.Lock()
    count = [0]

    def hook(op: str) -> None:
        with lock:
            count[0] += 1
            n = count[0]
            if trace:
                with open(trace, "a") as fh:
                    fh.write(op + "\n")
        if at and n >= at and mark:
            with lock:
                if not os.path.exists(mark):
                    Path(mark).write_text(f"{n} {op}\n")
            while True:  # wait for the SIGKILL
                time.sleep(3600)

    s3_storage.request_hook = hook
    from tiup.cli.entry import main

    sys.argv = ["tiup", *sys.argv[1:]]
    main()


def trace(args: list[str], *, env: dict[str, str], log: Path) -> list[str]:
    """Run the command to the end; the S3 operations it made, in order."""
    r = subprocess.run([sys.executable, "-c", _BOOT, *args],
                       env={**env, "S3KILL_TRACE": str(log)}, capture_output=True, text=True,
                       timeout=REACH_TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    return log.read_text().splitlines()


def kill_at(args: list[str], *, env: dict[str, str], at: int, marker: Path) -> str:
    """Run the command, SIGKILL it before its ``at``-th S3 request; returns the marker
    (``"<n> <operation>"``)."""
    assert not marker.exists()
    proc = subprocess.Popen([sys.executable, "-c", _BOOT, *args],
                            env={**env, "S3KILL_AT": str(at), "S3KILL_MARK": str(marker)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + REACH_TIMEOUT
        while not marker.exists():
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(f"the child ended before request {at}: {out}{err}")
            assert time.monotonic() < deadline, "the child never reached its stop"
            time.sleep(0.01)  # polling for an event, not a timing assumption
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        return marker.read_text().strip()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
