"""Benchmark: `tiup mirror export` / `tiup mirror import` of a full bundle vs plain `tar`.

A generated mirror (bench/mirrorgen.py: random tarballs, signed manifests). In the same
run, per round: our export of a full bundle vs `tar -cf` of the same files, and our
import into an empty directory (every signature, sha256 and sha512 checked, staged,
fsynced, renamed in the store's order) vs `tar -xf` of the same bundle into an empty
directory (no checks, no fsync). Warm page cache; median of the rounds.

Usage: .venv/bin/python bench/bundle.py [--mib 512] [--files 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
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

from tiup.repository.bundle.export import plan_export, write_bundle
from tiup.repository.bundle.importer import import_bundle


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mib", type=int, default=512, help="total tarball size")
    ap.add_argument("--files", type=int, default=16, help="number of tarballs")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not shutil.which("tar"):
        print("tar not found", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="tiup-bench-bundle-"))
    try:
        mirror = work / "mirror"
        size = args.mib * 1024 * 1024 // args.files
        build_mirror(mirror, {f"comp{i:03d}": [size] for i in range(args.files)})
        fingerprint = hashlib.sha256((mirror / "root.json").read_bytes()).hexdigest()
        plan = plan_export(mirror)
        names = [m.name for m in plan.files]
        total = sum(m.length for m in plan.files)
        subprocess.run(["cat", *(str(mirror / n) for n in names)], stdout=subprocess.DEVNULL,
                       check=True)  # warm cache
        times: dict[str, list[float]] = {"export": [], "tar -c": [], "import": [], "tar -x": []}
        for r in range(args.rounds):
            ours, theirs = work / f"ours-{r}.tar", work / f"theirs-{r}.tar"
            t = time.perf_counter()
            write_bundle(plan_export(mirror), ours)
            times["export"].append(time.perf_counter() - t)
            t = time.perf_counter()
            subprocess.run(["tar", "-cf", str(theirs), "-C", str(mirror), *names], check=True)
            times["tar -c"].append(time.perf_counter() - t)
            target, plain = work / f"in-{r}", work / f"plain-{r}"
            plain.mkdir()
            t = time.perf_counter()
            import_bundle(str(ours), target, now=datetime.now(UTC), fingerprint=fingerprint)
            times["import"].append(time.perf_counter() - t)
            t = time.perf_counter()
            subprocess.run(["tar", "-xf", str(ours), "-C", str(plain)], check=True)
            times["tar -x"].append(time.perf_counter() - t)
            for p in (ours, theirs):
                p.unlink()
            shutil.rmtree(target)
            shutil.rmtree(plain)
        med = {k: statistics.median(v) for k, v in times.items()}
        mb = total / 1e6
        print(f"data: {args.files} tarballs + {len(names) - args.files} manifests, "
              f"{mb:.0f} MB; rounds: {args.rounds} (median)")
        for k in ("tar -c", "export", "tar -x", "import"):
            print(f"{k:<8} {med[k]:7.3f} s  {mb / med[k]:8.1f} MB/s")
        print(f"throughput ratio export / tar -c: {med['tar -c'] / med['export']:.2f}")
        print(f"throughput ratio import / tar -x: {med['tar -x'] / med['import']:.2f}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
