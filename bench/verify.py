"""Benchmark: `tiup mirror verify` tarball hashing throughput vs `sha256sum`.

Both read the same tarballs of a generated mirror in the same run (warm page
cache for both). Goal: throughput ratio (sha256sum time / our time) >= 0.8,
although we compute sha256 and sha512 and check signatures too.

Usage: .venv/bin/python bench/verify.py [--mib 512] [--files 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mirrorgen import build_mirror

from tiup.repository.audit import audit_mirror
from tiup.transport.local import LocalFetcher


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mib", type=int, default=512, help="total tarball size")
    ap.add_argument("--files", type=int, default=16, help="number of tarballs")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=4)
    args = ap.parse_args()
    if not shutil.which("sha256sum"):
        print("sha256sum not found", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="tiup-bench-verify-"))
    try:
        size = args.mib * 1024 * 1024 // args.files
        comps = {f"comp{i:03d}": [size] for i in range(args.files)}
        build_mirror(work, comps)
        tarballs = sorted(str(p) for p in work.glob("*.tar.gz"))
        total = sum(Path(p).stat().st_size for p in tarballs)
        ours, theirs = [], []
        subprocess.run(["cat", *tarballs], stdout=subprocess.DEVNULL, check=True)  # warm cache
        for _ in range(args.rounds):
            t = time.perf_counter()
            subprocess.run(["sha256sum", *tarballs], stdout=subprocess.DEVNULL, check=True)
            theirs.append(time.perf_counter() - t)
            t = time.perf_counter()
            report = audit_mirror(LocalFetcher(str(work)), datetime.now(UTC), jobs=args.jobs)
            ours.append(time.perf_counter() - t)
            assert report.ok and report.tarballs_checked == args.files, report.errors
        ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
        mb = total / 1e6
        print(f"data: {args.files} tarballs, {mb:.0f} MB; rounds: {args.rounds} (median)")
        print(f"sha256sum:          {theirs_s:.3f} s  {mb / theirs_s:8.1f} MB/s")
        print(f"tiup mirror verify: {ours_s:.3f} s  {mb / ours_s:8.1f} MB/s "
              f"(sha256+sha512, jobs={args.jobs}, incl. manifests)")
        ratio = theirs_s / ours_s
        print(f"throughput ratio (ours / sha256sum): {ratio:.2f}  (goal >= 0.8)")
        return 0 if ratio >= 0.8 else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
