"""Benchmark: `tiup mirror serve` vs nginx serving the same mirror on 127.0.0.1, same run.

Load generator: wrk (Debian package `wrk`: `apt-get install wrk`), 64 connections,
2 threads. Both servers run with the same number of worker processes (default 2),
access logs off for nginx and on for ours (we always log). Two workloads:

- small: `GET /timestamp.json` (813 bytes) and `/1.index.json`: requests/s;
- large: `GET` of a 64 MiB tarball: MB/s.

Goals: small ≥ 0.5× nginx requests/s; large ≥ 0.8× nginx MB/s.

Usage: .venv/bin/python bench/serve.py [--seconds 5] [--workers 2] [--write]
(--write replaces the "## serve" section of docs/benchmarks.md.)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "support"))

CONNECTIONS = 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def start_ours(mirror: Path, workers: int, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = open(work / "ours.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "tiup", "mirror", "serve", str(mirror), "--read-only",
         "--addr", f"127.0.0.1:{port}", "--workers", str(workers)],
        stdout=log, stderr=subprocess.STDOUT)
    wait_port(port, proc)
    return proc, f"http://127.0.0.1:{port}"


def start_nginx(mirror: Path, workers: int, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    from nginx import find_nginx, render_site

    binary = find_nginx()
    if binary is None:
        raise SystemExit("nginx is not installed: apt-get install nginx-light")
    port = free_port()
    (work / "site.conf").write_text(render_site(port, mirror))
    temps = "\n".join(f"    {t}_temp_path {work / ('tmp-' + t)};"
                      for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (work / "nginx.conf").write_text(f"""daemon off;
worker_processes {workers};
pid {work / 'nginx.pid'};
error_log {work / 'error.log'} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
{temps}
    include {work / 'site.conf'};
}}
""")
    proc = subprocess.Popen([binary, "-p", str(work), "-c", str(work / "nginx.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return proc, f"http://127.0.0.1:{port}"


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def wrk(url: str, seconds: int) -> tuple[float, float, int]:
    """(requests/s, MB/s, non-2xx responses) from one wrk run."""
    out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?)B", out)
    mbps = float(m.group(1)) * _UNITS[m.group(2)] / 1e6 if m else 0.0
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, mbps, int(bad.group(1)) if bad else 0


def build_mirror(base: Path, big_mib: int) -> tuple[Path, str]:
    from tiup.repository.init import init_mirror

    mirror = base / "mirror"
    init_mirror(mirror, datetime(2026, 1, 1, tzinfo=UTC), key_dir=base / "keys")
    big = "big-v1.0.0-linux-amd64.tar.gz"
    with open(mirror / big, "wb") as fh:
        for _ in range(big_mib):
            fh.write(os.urandom(1 << 20))
    return mirror, big


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--big-mib", type=int, default=64)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is required: apt-get install wrk (Debian package)", file=sys.stderr)
        return 2
    results: dict[str, dict[str, tuple[float, float, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="tiup-bench-serve-") as tmp:
        base = Path(tmp)
        base.chmod(0o755)  # nginx workers run as an unprivileged user when started as root
        mirror, big = build_mirror(base, args.big_mib)
        for name, start in (("nginx", start_nginx), ("tiup", start_ours)):
            work = base / name
            work.mkdir()
            proc, url = start(mirror, args.workers, work)
            try:
                wrk(f"{url}/timestamp.json", 1)  # warm-up
                results[name] = {
                    "timestamp": wrk(f"{url}/timestamp.json", args.seconds),
                    "index": wrk(f"{url}/1.index.json", args.seconds),
                    "big": wrk(f"{url}/{big}", args.seconds),
                }
            finally:
                stop(proc)
    ours, theirs = results["tiup"], results["nginx"]
    rows = [
        ("small: /timestamp.json (req/s)", "timestamp", 0),
        ("small: /1.index.json (req/s)", "index", 0),
        (f"large: {args.big_mib} MiB tarball (MB/s)", "big", 1),
    ]
    lines = ["## serve", "",
             f"`bench/serve.py`: `tiup mirror serve` (granian, {args.workers} workers) vs nginx "
             f"({args.workers} worker processes, sendfile, the shipped site config) serving the "
             f"same mirror on 127.0.0.1, measured with `wrk -t2 -c{CONNECTIONS} "
             f"-d{args.seconds}s` in the same run, one after the other "
             f"({datetime.now(UTC):%Y-%m-%d}). Goals: small files ≥ 0.5× nginx req/s, "
             "large files ≥ 0.8× nginx MB/s.", "",
             "| workload | nginx | tiup mirror serve | ratio |", "|---|---|---|---|"]
    for label, key, idx in rows:
        a, b = theirs[key][idx], ours[key][idx]
        lines.append(f"| {label} | {a:,.0f} | {b:,.0f} | {b / a:.2f} |")
    errors = sum(r[2] for res in results.values() for r in res.values())
    lines += ["", f"Non-2xx responses: {errors}. Our server also writes one access-log line "
              "per request (nginx's access log is off). Run: `.venv/bin/python bench/serve.py "
              "[--seconds 5] [--workers 2] [--write]` (needs `wrk`: `apt-get install wrk`).", ""]
    text = "\n".join(lines)
    print(text)
    if args.write:
        doc = REPO / "docs" / "benchmarks.md"
        current = doc.read_text()
        section = re.compile(r"## serve\n.*?(?=\n## |\Z)", re.S)
        new = section.sub(text.rstrip() + "\n", current) if section.search(current) else \
            current.rstrip() + "\n\n" + text
        doc.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
