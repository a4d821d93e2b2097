"""Benchmark: `tiup mirror clone` vs `aria2c` over the same nginx, plus peak memory.

A generated mirror (default ≈ 1 GiB in 300 tarballs, bench/mirrorgen.py) is served by
nginx on 127.0.0.1 (the shipped config, via tests/support/nginx.py). In the same run:

* `aria2c -i list -j 4` fetches the same tarball URLs, unverified;
* `tiup mirror clone <fresh dir> --full --jobs 4` clones it (every byte hashed with sha256
  and sha512 and checked, manifests verified and re-signed with new keys).

Throughput ratio = aria2c time / clone time (goal ≥ 0.9); best of --rounds each,
interleaved. Then one --big-mib tarball: clone vs aria2c with one connection and with
`-x4 -s4` (4 connections), interleaved, and the peak RSS of the clone process (goal
≤ 100 MiB), from wait4()'s rusage.

Needs nginx (Debian nginx-light) and aria2c (Debian aria2: `apt-get install aria2`).

Usage: .venv/bin/python bench/clone.py [--mib 1024] [--files 300] [--big-mib 1024]
       [--rounds 3] [--jobs 4] [--write]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO / "tests" / "support"))

from benchdoc import write_section  # noqa: E402
from mirrorgen import build_mirror  # noqa: E402

from nginx import start_nginx, stop_nginx_process  # noqa: E402

MIB = 1024 * 1024


def run_clone(url: str, target: Path, home: Path, jobs: int,
              src: Path | None = None) -> tuple[float, int]:
    """Clone ``url`` into ``target``; (seconds, peak RSS in bytes) of the tiup process.

    ``src``: run the ``tiup`` package found there instead of the installed one."""
    env = {**os.environ, "TIUP_HOME": str(home), "NO_PROXY": "127.0.0.1"}
    tiup = [str(REPO / ".venv" / "bin" / "tiup")]
    if src is not None:
        env["PYTHONPATH"] = str(src)
        tiup = [str(REPO / ".venv" / "bin" / "python"), "-m", "tiup"]
    cmd = [*tiup, "mirror", "clone", str(target), "--full",
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


def run_aria2c(urls: list[str], dest: Path, jobs: int, split: int = 1) -> float:
    """aria2c fetching ``urls`` into ``dest`` (then deleted); seconds.

    ``split`` > 1 also splits each file over that many connections (-x/-s)."""
    listing = dest.parent / (dest.name + ".list")
    listing.write_text("\n".join(urls) + "\n")
    dest.mkdir(parents=True)
    extra = [f"-x{split}", f"-s{split}", "-k1M"] if split > 1 else []
    start = time.perf_counter()
    subprocess.run(["aria2c", "-i", str(listing), "-j", str(jobs), "-d", str(dest),
                    "--allow-overwrite=true", "--auto-file-renaming=false", "-q", *extra],
                   check=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(dest)
    return elapsed



def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=1024, help="total size of the mirror's tarballs")
    ap.add_argument("--files", type=int, default=300, help="number of tarballs")
    ap.add_argument("--big-mib", type=int, default=1024, help="size of the single tarball "
                    "cloned for the memory measurement (0 skips it)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    ap.add_argument("--compare-src", type=Path, metavar="DIR",
                    help="also time the tiup package in DIR (e.g. an earlier version: "
                         "`git archive HEAD src | tar -x -C /tmp/old`, DIR=/tmp/old/src) in "
                         "the same interleaved rounds, as 'before'")
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
            before: list[float] = []
            theirs: list[float] = []
            rss: list[int] = []
            for r in range(args.rounds):
                theirs.append(run_aria2c(urls, work / f"aria-{r}", args.jobs))
                elapsed, peak = run_clone(srv.url, work / f"clone-{r}", work / f"home-{r}",
                                          args.jobs)
                ours.append(elapsed)
                rss.append(peak)
                shutil.rmtree(work / f"clone-{r}")
                if args.compare_src:
                    before.append(run_clone(srv.url, work / f"old-{r}", work / f"ohome-{r}",
                                            args.jobs, args.compare_src)[0])
                    shutil.rmtree(work / f"old-{r}")
        finally:
            stop_nginx_process(srv.process)
        best_ours, best_theirs = min(ours), min(theirs)
        ratio = best_theirs / best_ours
        big_rss = 0
        big: list[float] = []
        big_before: list[float] = []
        big_one: list[float] = []
        big_split: list[float] = []
        if args.big_mib:
            shutil.rmtree(mirror)
            build_mirror(mirror, {"big": [args.big_mib * MIB]})
            srv = start_nginx(mirror, work / "nginx-big")
            try:
                big_urls = [f"{srv.url}/{p.name}" for p in mirror.glob("*.tar.gz")]
                for r in range(args.rounds):
                    big_one.append(run_aria2c(big_urls, work / f"baria-{r}", args.jobs))
                    big_split.append(run_aria2c(big_urls, work / f"bsplit-{r}", args.jobs, 4))
                    elapsed, peak = run_clone(srv.url, work / f"clone-big-{r}",
                                              work / f"home-big-{r}", args.jobs)
                    big.append(elapsed)
                    big_rss = max(big_rss, peak)
                    shutil.rmtree(work / f"clone-big-{r}")
                    if args.compare_src:
                        big_before.append(run_clone(srv.url, work / f"obig-{r}",
                                                    work / f"ohome-big-{r}", args.jobs,
                                                    args.compare_src)[0])
                        shutil.rmtree(work / f"obig-{r}")
            finally:
                stop_nginx_process(srv.process)
        lines = [
            "`bench/clone.py`: `tiup mirror clone --full --jobs "
            f"{args.jobs}` of a generated mirror served by nginx on 127.0.0.1 vs `aria2c -i "
            f"list -j {args.jobs}` fetching the same tarball URLs from the same server "
            "(unverified), same run, interleaved, best of "
            f"{args.rounds}. The clone also verifies the source's manifests, hashes every "
            "byte with sha256 and sha512, fsyncs every file, generates 7 RSA keys and signs "
            "its manifests; both include process start-up. Goal: ratio ≥ 0.9; peak RSS "
            "≤ 100 MiB.",
            "",
            "| data | aria2c | tiup mirror clone | ratio (aria2c time / clone time) |",
            "|---|---|---|---|",
            f"| {len(tarballs)} tarballs, {total / MIB:.0f} MiB | {best_theirs:.2f} s "
            f"({total / MIB / best_theirs:.0f} MiB/s) | {best_ours:.2f} s "
            f"({total / MIB / best_ours:.0f} MiB/s) | {ratio:.2f} |",
        ]
        if big:
            b_ours, b_one, b_split = min(big), min(big_one), min(big_split)
            mib = args.big_mib
            lines += [
                f"| 1 tarball, {mib} MiB (aria2c: 1 connection) | {b_one:.2f} s "
                f"({mib / b_one:.0f} MiB/s) | {b_ours:.2f} s ({mib / b_ours:.0f} MiB/s) | "
                f"{b_one / b_ours:.2f} |",
                f"| 1 tarball, {mib} MiB (aria2c `-x4 -s4 -k1M`: 4 connections) | "
                f"{b_split:.2f} s ({mib / b_split:.0f} MiB/s) | {b_ours:.2f} s | "
                f"{b_split / b_ours:.2f} |",
            ]
        if before:
            lines.append(f"| {len(tarballs)} tarballs, before (`--compare-src`) | "
                         f"{best_theirs:.2f} s | {min(before):.2f} s | "
                         f"{best_theirs / min(before):.2f} |")
        if big_before:
            lines.append(f"| 1 tarball, before (`--compare-src`; aria2c: 1 connection) | "
                         f"{min(big_one):.2f} s | {min(big_before):.2f} s | "
                         f"{min(big_one) / min(big_before):.2f} |")
        lines += [
            "",
            f"- all rounds (s): aria2c {', '.join(f'{t:.2f}' for t in theirs)}; clone "
            f"{', '.join(f'{t:.2f}' for t in ours)}",
            f"- peak RSS of the clone process ({len(tarballs)} tarballs): "
            f"{max(rss) / MIB:.0f} MiB",
        ]
        if big:
            def fmt(ts: list[float]) -> str:
                return ", ".join(f"{t:.2f}" for t in ts)

            lines += [f"- single tarball rounds (s): aria2c {fmt(big_one)}; aria2c -x4 "
                      f"{fmt(big_split)}; clone {fmt(big)}",
                      f"- peak RSS cloning one {args.big_mib} MiB tarball: "
                      f"**{big_rss / MIB:.0f} MiB**"]
        lines += [f"- mirror generation: {gen:.1f} s", "",
                  "Run: `.venv/bin/python bench/clone.py [--mib 1024] [--files 300] "
                  "[--big-mib 1024] [--rounds 3] [--compare-src DIR] [--write]` (needs "
                  "`nginx-light` and `aria2`). The machine is a 2-core VM shared with other "
                  "work: runs vary by ±30 %; compare rows of the same run only."]
        text = "\n".join(lines)
        print(text)
        if args.write:
            write_section("clone", text, keep_subsections=True)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
