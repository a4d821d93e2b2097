"""Benchmark: `tiup mirror clone` vs `aria2c` over the same nginx, plus peak memory.

A generated mirror (default ≈ 1 GiB in 300 tarballs, bench/mirrorgen.py) is served by
nginx on 127.0.0.1 (the shipped config, via tests/nginx.py). In the same run:

* `aria2c -i list -j 4` fetches the same tarball URLs, unverified;
* `tiup mirror clone <fresh dir> --full --jobs 4` clones it (every byte hashed with sha256
  and sha512 and checked, manifests verified and re-signed with new keys).

Throughput ratio = aria2c time / clone time (goal ≥ 0.9); best of --rounds each,
interleaved. Then the peak RSS of the clone process while cloning one --big-mib tarball
(goal ≤ 100 MiB), from wait4()'s rusage.

Needs nginx (Debian nginx-light) and aria2c (Debian aria2: `apt-get install aria2`).

Usage: .venv/bin/python bench/clone.py [--mib 1024] [--files 300] [--big-mib 1024]
       [--rounds 2] [--jobs 4] [--write]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO / "tests"))

from mirrorgen import build_mirror  # noqa: E402

from nginx import start_nginx, stop_nginx_process  # noqa: E402

MIB = 1024 * 1024


def run_clone(url: str, target: Path, home: Path, jobs: int) -> tuple[float, int]:
    """Clone ``url`` into ``target``; (seconds, peak RSS in bytes) of the tiup process."""
    env = {**os.environ, "TIUP_HOME": str(home), "NO_PROXY": "127.0.0.1"}
    cmd = [str(REPO / ".venv" / "bin" / "tiup"), "mirror", "clone", str(target), "--full",
           "--os", "linux", "--arch", "amd64", "--jobs", str(jobs), "--source", url,
           "--no-progress"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    out = (proc.stdout.read() if proc.stdout else b"").decode()
    err = (proc.stderr.read() if proc.stderr else b"").decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"clone failed:\n{out}\n{err}")
    return elapsed, usage.ru_maxrss * 1024


def run_aria2c(urls: list[str], dest: Path, jobs: int) -> float:
    listing = dest.parent / (dest.name + ".list")
    listing.write_text("\n".join(urls) + "\n")
    dest.mkdir(parents=True)
    start = time.perf_counter()
    subprocess.run(["aria2c", "-i", str(listing), "-j", str(jobs), "-d", str(dest),
                    "--allow-overwrite=true", "--auto-file-renaming=false", "-q"], check=True)
    return time.perf_counter() - start


def write_section(text: str) -> None:
    path = REPO / "docs" / "benchmarks.md"
    doc = path.read_text()
    section = "## clone\n\n" + text.strip() + "\n"
    if "\n## clone\n" in doc:
        doc = re.sub(r"\n## clone\n.*?(?=\n## |\Z)", "\n" + section, doc, flags=re.S)
    else:
        doc = doc.rstrip("\n") + "\n\n" + section
    path.write_text(doc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=1024, help="total size of the mirror's tarballs")
    ap.add_argument("--files", type=int, default=300, help="number of tarballs")
    ap.add_argument("--big-mib", type=int, default=1024, help="size of the single tarball "
                    "cloned for the memory measurement (0 skips it)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    if not shutil.which("aria2c"):
        print("aria2c not found: apt-get install aria2", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="tiup-bench-clone-"))
    try:
        mirror = work / "mirror"
        per = args.mib * MIB // args.files
        comps = {f"comp{i:02d}": [per] * 10 for i in range(args.files // 10)}
        rest = args.files - 10 * (args.files // 10)
        if rest:
            comps["rest"] = [per] * rest
        t = time.perf_counter()
        build_mirror(mirror, comps)
        gen = time.perf_counter() - t
        tarballs = sorted(p.name for p in mirror.glob("*.tar.gz"))
        total = sum((mirror / n).stat().st_size for n in tarballs)
        srv = start_nginx(mirror, work / "nginx")
        try:
            urls = [f"{srv.url}/{n}" for n in tarballs]
            ours: list[float] = []
            theirs: list[float] = []
            rss: list[int] = []
            for r in range(args.rounds):
                theirs.append(run_aria2c(urls, work / f"aria-{r}", args.jobs))
                shutil.rmtree(work / f"aria-{r}")
                elapsed, peak = run_clone(srv.url, work / f"clone-{r}", work / f"home-{r}",
                                          args.jobs)
                ours.append(elapsed)
                rss.append(peak)
                shutil.rmtree(work / f"clone-{r}")
        finally:
            stop_nginx_process(srv.process)
        best_ours, best_theirs = min(ours), min(theirs)
        ratio = best_theirs / best_ours
        big_rss = None
        big_time = None
        if args.big_mib:
            shutil.rmtree(mirror)
            build_mirror(mirror, {"big": [args.big_mib * MIB]})
            srv = start_nginx(mirror, work / "nginx-big")
            try:
                big_time, big_rss = run_clone(srv.url, work / "clone-big", work / "home-big",
                                              args.jobs)
            finally:
                stop_nginx_process(srv.process)
        lines = [
            "`bench/clone.py`: `tiup mirror clone --full --jobs "
            f"{args.jobs}` of a generated mirror served by nginx on 127.0.0.1 vs `aria2c -i "
            f"list -j {args.jobs}` fetching the same tarball URLs from the same server "
            "(unverified), same run, interleaved, best of "
            f"{args.rounds}. The clone also verifies the source's manifests, hashes every "
            "byte with sha256 and sha512, generates 7 RSA keys and signs its manifests; both "
            "include process start-up. Goal: ratio ≥ 0.9; peak RSS ≤ 100 MiB.",
            "",
            "| data | aria2c | tiup mirror clone | ratio (aria2c time / clone time) |",
            "|---|---|---|---|",
            f"| {len(tarballs)} tarballs, {total / MIB:.0f} MiB | {best_theirs:.2f} s "
            f"({total / MIB / best_theirs:.0f} MiB/s) | {best_ours:.2f} s "
            f"({total / MIB / best_ours:.0f} MiB/s) | {ratio:.2f} |",
            "",
            f"- peak RSS of the clone process ({len(tarballs)} tarballs): "
            f"{max(rss) / MIB:.0f} MiB",
        ]
        if big_rss is not None and big_time is not None:
            lines.append(f"- peak RSS cloning one {args.big_mib} MiB tarball: "
                         f"**{big_rss / MIB:.0f} MiB** ({big_time:.2f} s)")
        lines += [f"- mirror generation: {gen:.1f} s", "",
                  "Run: `.venv/bin/python bench/clone.py [--mib 1024] [--files 300] "
                  "[--big-mib 1024] [--write]` (needs `nginx-light` and `aria2`)."]
        text = "\n".join(lines)
        print(text)
        if args.write:
            write_section(text)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
