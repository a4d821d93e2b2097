"""Benchmark: `tiup mirror serve` vs nginx serving the same mirror on 127.0.0.1, same run.

Load generator: wrk (Debian package `wrk`: `apt-get install wrk`), 64 connections,
2 threads. Both servers run with the same number of worker processes (default 2),
access logs off for nginx and on for ours (we always log). Two workloads:

- small: `GET /timestamp.json` (813 bytes) and `/1.index.json`: requests/s;
- large: `GET` of a 64 MiB tarball: MB/s.

Goals: small ≥ 0.5× nginx requests/s; large ≥ 0.8× nginx MB/s.

The web page, on an official-scale mirror (150 components, one with 20,000 versions,
written with the library like ``bench/publish.py``'s):

- the index page and the 20,000-version component's pages under 64 concurrent clients
  (wrk: req/s and p99 latency), and the server time of their first render (the
  ``Server-Timing`` header; goal for the index: ≤ 50 ms);
- the mirror files' req/s while people browse the page (a paced client asking for a
  page every 50 ms, index and component pages in turn) against the same files alone,
  interleaved rounds, medians. Goal: ≥ 0.95 (serving the page lowers file serving by at
  most 5 %).

Usage: .venv/bin/python bench/serve.py [--seconds 5] [--workers 2] [--rounds 3] [--write]
(--write replaces the "## serve" section of docs/benchmarks.md.)
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "support"))

from benchdoc import write_section  # noqa: E402

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


def wrk(url: str, seconds: int, script: Path | None = None) -> tuple[float, float, int]:
    """(requests/s, MB/s, non-2xx responses) from one wrk run."""
    rps, mbps, bad, _p99 = wrk_full(url, seconds, script)
    return rps, mbps, bad


def wrk_full(url: str, seconds: int, script: Path | None = None
             ) -> tuple[float, float, int, float]:
    """(requests/s, MB/s, non-2xx responses, p99 latency in ms) from one wrk run."""
    extra = ["-s", str(script)] if script else []
    out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency",
                          *extra, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?)B", out)
    mbps = float(m.group(1)) * _UNITS[m.group(2)] / 1e6 if m else 0.0
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    p = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", out)
    p99 = float(p.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p.group(2)] if p else 0.0
    return rps, mbps, int(bad.group(1)) if bad else 0, p99


def build_mirror(base: Path, big_mib: int) -> tuple[Path, str]:
    from tiup.repository.init import init_mirror

    mirror = base / "mirror"
    init_mirror(mirror, datetime(2026, 1, 1, tzinfo=UTC), key_dir=base / "keys")
    big = "big-v1.0.0-linux-amd64.tar.gz"
    with open(mirror / big, "wb") as fh:
        for _ in range(big_mib):
            fh.write(os.urandom(1 << 20))
    return mirror, big


# --------------------------------------------------------------------- the web page
COMPONENTS = 150
BIG_VERSIONS = 20_000
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def build_official_scale(path: Path) -> None:
    """150 components, ``big`` with 20,000 versions; one transaction, signed once (the
    tarballs are not written: the page shows manifests, it never reads tarballs)."""
    from tiup.keys import generate
    from tiup.manifest.models import Component, ComponentItem, VersionItem
    from tiup.manifest.timefmt import format_time
    from tiup.repository.admin import grant
    from tiup.repository.init import init_mirror
    from tiup.repository.keyring import load_keyring
    from tiup.repository.store import Store, sign

    init_mirror(path, NOW)
    owner = generate()
    ring = load_keyring([path / "keys"])
    with Store(path, now=NOW, keyring=ring) as store:
        grant(store, "bench", "bench", [owner.keyinfo()])
        store.commit()
    with Store(path, now=NOW, keyring=ring) as store:
        idx = store.edit_index()
        for n in range(COMPONENTS):
            cid = "big" if n == 0 else f"comp-{n}"
            count = BIG_VERSIONS if n == 0 else 3
            items = {}
            for i in range(count):
                ver = f"v1.{i // 100}.{i % 100}"
                items[ver] = VersionItem(
                    url=f"/{cid}-{ver}-linux-amd64.tar.gz", entry=cid, sha256=f"{i:064x}",
                    sha512=f"{i:0128x}", length=1000 + i,
                    released=format_time(NOW - timedelta(minutes=count - i)))
            comp = Component(expires=format_time(NOW.replace(year=2030)), version=1, id=cid,
                             description=f"component {n} of the benchmark",
                             platforms={"linux/amd64": items})
            idx.components[cid] = ComponentItem(owner="bench", url=f"/{cid}.json")
            store.new_components[cid] = (comp, sign(comp, [owner]))
        store.commit()
    shutil.rmtree(path / "keys")  # served read-only


def get(url: str, html: bool = False) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers={"Accept": "text/html"} if html else {})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


def server_ms(url: str) -> float:
    _status, headers, _body = get(url, html=True)
    return float(headers["server-timing"].split("dur=")[1])


def wait_verified(url: str) -> None:
    """Until the monitor has read the mirror and finished its verification (so neither
    runs during a measurement)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            body = get(f"{url}/metrics")[2].decode()
        except OSError:
            body = ""
        if "tiup_mirror_verification_timestamp_seconds" in body:
            return
        time.sleep(0.2)
    raise SystemExit("the server's monitor never finished its first verification")


class Browsing:
    """A person browsing: one request every ``interval`` seconds on one keep-alive
    connection, cycling through ``paths``, until stopped; counts the requests."""

    def __init__(self, url: str, paths: list[str], interval: float = 0.05):
        host, port = url.split("//")[1].split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)
        self.paths, self.interval = paths, interval
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            path = self.paths[self.count % len(self.paths)]
            self.conn.request("GET", path, headers={"Accept": "text/html"})
            self.conn.getresponse().read()
            self.count += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> Browsing:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.conn.close()


def bench_pages(base: Path, workers: int, seconds: int, rounds: int) -> list[str]:
    mirror = base / "official"
    t0 = time.perf_counter()
    build_official_scale(mirror)
    built = time.perf_counter() - t0
    work = base / "pages"
    work.mkdir()
    proc, url = start_ours(mirror, workers, work)
    try:
        wait_verified(url)
        big = f"{url}/ui/component/big"
        first_index = server_ms(f"{url}/")
        first_big = server_ms(big)
        cached_index = statistics.median(server_ms(f"{url}/") for _ in range(50))
        cached_big = statistics.median(server_ms(big) for _ in range(50))
        size_index = len(get(f"{url}/ui/")[2])
        size_big = len(get(big)[2])
        script = work / "pages.lua"
        script.write_text('n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format('
                          '"GET", "/ui/component/big?page=" .. (n % 200 + 1))\nend\n')
        wrk(f"{url}/ui/", 1)  # warm-up: every worker renders the pages once
        wrk_full(big, 1, script)
        load = {"index": wrk_full(f"{url}/ui/", seconds),
                "big": wrk_full(big, seconds),
                "pages": wrk_full(big, seconds, script)}
        # the same client at the same rate: pages, or manifests of the mirror (the
        # control: what any client of this kind costs the machine)
        page_paths = ["/ui/"] + [f"/ui/component/big?page={n}" for n in range(1, 100)]
        file_paths = ["/1.index.json"] + [f"/1.comp-{n}.json" for n in range(1, 100)]
        runs: dict[str, list[float]] = {"alone": [], "pages": [], "files": []}
        pages = 0
        for _ in range(rounds):
            runs["alone"].append(wrk(f"{url}/timestamp.json", seconds)[0])
            with Browsing(url, page_paths) as b:
                runs["pages"].append(wrk(f"{url}/timestamp.json", seconds)[0])
            pages += b.count
            with Browsing(url, file_paths):
                runs["files"].append(wrk(f"{url}/timestamp.json", seconds)[0])
    finally:
        stop(proc)
    med = {k: statistics.median(v) for k, v in runs.items()}
    ratio = med["pages"] / med["alone"]
    control = med["pages"] / med["files"]
    spread = f"{min(runs['alone']):,.0f}–{max(runs['alone']):,.0f}"
    lines = [
        "", f"### The web page ({COMPONENTS} components, one with {BIG_VERSIONS:,} versions)",
        "",
        f"Same tool, same {workers} workers; the mirror written with the library in "
        f"{built:.0f} s. Server time is the page's `Server-Timing` (request in, response "
        "handed to granian).", "",
        "| page | size | first render (server) | cached (server, median) | req/s "
        f"(wrk -c{CONNECTIONS}) | p99 |", "|---|---|---|---|---|---|",
        f"| index `/ui/` | {size_index / 1024:.0f} KiB | {first_index:.1f} ms | "
        f"{cached_index:.2f} ms | {load['index'][0]:,.0f} | {load['index'][3]:.1f} ms |",
        f"| `big`, page 1 (100 of {BIG_VERSIONS:,} versions) | {size_big / 1024:.0f} KiB | "
        f"{first_big:.1f} ms | {cached_big:.2f} ms | {load['big'][0]:,.0f} | "
        f"{load['big'][3]:.1f} ms |",
        f"| `big`, pages 1–200 in turn | | | | {load['pages'][0]:,.0f} | "
        f"{load['pages'][3]:.1f} ms |", "",
        f"The first render of `big` includes loading its {BIG_VERSIONS:,} versions from the "
        "monitor's catalog, once per worker and `timestamp.json` version.", "",
        f"Mirror files while people browse: `/timestamp.json` under wrk -c{CONNECTIONS}, "
        f"alone, while a client reads a page every 50 ms ({pages:,} pages in all), and "
        "while the same client reads manifests instead (`1.index.json` and component "
        "manifests: the control, what any such client costs a machine whose two cores wrk "
        f"and the server already fill); medians of {rounds} interleaved rounds of "
        f"{seconds} s. The spread of the rounds alone is the machine's noise.", "",
        "| files (req/s) | alone | while browsing pages | while reading manifests |",
        "|---|---|---|---|",
        f"| `/timestamp.json` | {med['alone']:,.0f} (rounds: {spread}) | {med['pages']:,.0f} "
        f"| {med['files']:,.0f} |", "",
        f"Ratio while browsing / alone: **{ratio:.3f}** (goal ≥ 0.95); pages / manifests: "
        f"**{control:.3f}**. Non-2xx responses: {sum(r[2] for r in load.values())}.",
    ]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--big-mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-pages", action="store_true", help="skip the web page part")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is required: apt-get install wrk (Debian package)", file=sys.stderr)
        return 2
    results: dict[str, dict[str, tuple[float, float, int]]] = {}
    page_lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tiup-bench-serve-") as tmp:
        base = Path(tmp)
        base.chmod(0o755)  # nginx workers run as an unprivileged user when started as root
        if not args.no_pages:
            page_lines = bench_pages(base, args.workers, args.seconds, args.rounds)
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
              "[--seconds 5] [--workers 2] [--rounds 3] [--write]` (needs `wrk`: "
              "`apt-get install wrk`).", *page_lines, ""]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("serve", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
