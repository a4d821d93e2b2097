"""The server's monitor process: reads the mirror when it changes, off the request path.

:func:`tiup.server.run.serve` starts one monitor next to granian's workers
(``python -m tiup.server.monitor MIRROR STATE_DIR PARENT_PID``). At start-up and
whenever ``timestamp.json``, ``snapshot.json`` or ``root.json`` change (a publish
through the API, or a ``tiup mirror`` command: every commit ends by replacing
``timestamp.json``), checked every :data:`POLL` seconds (their inode, size and mtime in a
directory; their ETags, three HEADs, in a bucket), it

1. builds the catalog of the web page from the verified state
   (:func:`tiup.server.ui.catalog.build_catalog`) and writes it to the state
   directory, or records why the current state does not verify;
2. runs the audit of ``tiup mirror verify`` (:func:`tiup.repository.audit.audit_mirror`:
   the root chain, every signature, threshold, hash, length, expiry and version, leftover
   files, private keys in the mirror; tarballs checked for presence, not hashed, since
   hashing every tarball after every publish would read the whole mirror each time; the
   store hashes each tarball when it is published) and writes the result to
   ``<state>/verification.json``.

One process does this for all workers: the verification runs once per change, and
its CPU time never holds a worker's interpreter lock while files are being served.
It runs at a lower priority (``nice`` 5) and ends with its parent (SIGTERM, SIGINT, or
the parent gone).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tiup.clock import now
from tiup.errors import TiupError

#: Seconds between two looks at the mirror's top-level metadata files.
POLL = 1.0
WATCHED = ("timestamp.json", "snapshot.json", "root.json")
VERIFICATION = "verification.json"
#: Findings kept in verification.json (the page shows the first ten).
KEEP_FINDINGS = 20

log = logging.getLogger("tiup.server")


def signature(mirror: Path) -> tuple[object, ...]:
    """What changes when a mirror directory is written (inode, size, mtime of the watched
    files)."""
    out: list[object] = []
    for name in WATCHED:
        try:
            st = os.stat(mirror / name)
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


def _iso() -> str:
    return now().strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_json(path: Path, value: object) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_bytes(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    os.replace(tmp, path)


class Monitor:
    """One monitor (see the module docstring); :meth:`run` loops until :meth:`stop`."""

    def __init__(self, mirror: Path | str, state_dir: Path, tarballs: str = "exist"):
        from tiup.transport.address import is_s3

        self.mirror = mirror
        self.state_dir = state_dir
        self.tarballs = tarballs
        self.generation = 0
        self.previous: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._bucket: Any = None
        if is_s3(str(mirror)):
            from tiup.repository.s3_storage import S3Storage

            self._bucket = S3Storage(str(mirror))

    def signature(self) -> tuple[object, ...]:
        """What changes when the mirror is written: :func:`signature` of a directory; the
        ETags of the watched objects of a bucket (a HEAD each; an unreadable one counts as
        absent, so the next good read is a change)."""
        if self._bucket is None:
            return signature(Path(self.mirror))
        out: list[object] = []
        for name in WATCHED:
            try:
                out.append(self._bucket.tag(name))
            except TiupError:
                out.append(None)
        return tuple(out)

    def stop(self) -> None:
        self._stop.set()

    def run(self, alive: Any = lambda: True) -> None:
        last: tuple[object, ...] | None = None
        while not self._stop.is_set() and alive():
            sig = self.signature()
            if sig != last:
                last = sig
                self.refresh()
                continue  # look again at once: the mirror may have changed meanwhile
            self._stop.wait(POLL)

    def refresh(self) -> None:
        """Build the catalog, then verify. Never raises for problems of the mirror."""
        timestamp_version = self.build()
        if not self._stop.is_set():
            self.verify(timestamp_version)

    def build(self) -> int | None:
        from tiup.server.ui.catalog import build_catalog, write_catalog, write_status

        try:
            catalog = build_catalog(self.mirror, now())
        except TiupError as exc:
            log.warning("the mirror's current state does not verify: %s", exc.message)
            write_status(self.state_dir, exc.message, _iso())
            return None
        self.generation += 1
        write_catalog(self.state_dir, catalog, f"g{self.generation}")
        return catalog.roles["timestamp"].version

    def verify(self, timestamp_version: int | None) -> None:
        from tiup.repository.audit import audit_mirror
        from tiup.server.ui.catalog import open_mirror

        path = self.state_dir / VERIFICATION
        started = _iso()
        _write_json(path, {"state": "running", "started": started,
                           "previous": self.previous})
        t0 = time.perf_counter()
        try:
            with open_mirror(self.mirror) as fetcher:
                report = audit_mirror(fetcher, now(), tarballs=self.tarballs, jobs=2)
            findings = [{"severity": f.severity, "file": f.file, "message": f.message}
                        for f in report.findings if f.severity != "NOTE"]
            result: dict[str, Any] = {
                "ok": report.ok, "errors": len(report.errors),
                "warnings": len(report.warnings), "findings": findings[:KEEP_FINDINGS],
                "manifests_checked": report.manifests_checked,
                "tarballs_checked": report.tarballs_checked,
            }
        except TiupError as exc:
            result = {"ok": False, "errors": 1, "warnings": 0, "manifests_checked": 0,
                      "tarballs_checked": 0,
                      "findings": [{"severity": "ERROR", "file": "", "message": exc.message}]}
        result.update(state="done", started=started, finished=_iso(),
                      seconds=round(time.perf_counter() - t0, 3), tarballs=self.tarballs,
                      timestamp_version=timestamp_version)
        _write_json(path, result)
        self.previous = result
        log.info("verification%s: %s, %d errors, %d warnings (%.1f s)",
                 f" of timestamp version {timestamp_version}" if timestamp_version else "",
                 "passed" if result["ok"] else "FAILED", result["errors"], result["warnings"],
                 result["seconds"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tiup.server.monitor")
    parser.add_argument("mirror")
    parser.add_argument("state_dir")
    parser.add_argument("parent", type=int)
    parser.add_argument("--tarballs", choices=("exist", "skip"), default="exist")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with contextlib.suppress(OSError):
        os.nice(5)
    mirror = args.mirror if args.mirror.startswith("s3://") else Path(args.mirror)
    monitor = Monitor(mirror, Path(args.state_dir), args.tarballs)

    def on_signal(signum: int, frame: Any) -> None:
        # At once, even in the middle of an audit: every file is written atomically, and
        # the state directory is removed by the server right after.
        os._exit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        monitor.run(alive=lambda: os.getppid() == args.parent)
    except OSError as exc:  # the state directory went away: the server is stopping
        log.warning("monitor stopped: %s", exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
