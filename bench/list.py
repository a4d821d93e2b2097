"""First reads of an official-scale mirror: this tree vs the previous implementation, same run.

The mirror is the shape of TiUP's official one at its largest: 150 components, one
("big") with 20,000 versions (a 7.6 MB manifest), the others with 3; one owner; versions
``v1.<i // 100>.<i % 100>`` for linux/amd64, as in ``bench/publish.py``. It is generated
directly with the library and signed (``tests/support/builders.py``); the tarballs it
names do not exist (nothing here downloads them).

Timed, each as a whole process (start-up included), wall clock:

- ``tiup list big`` and ``tiup list`` by a fresh client (an empty ``TIUP_HOME``,
  ``TIUP_MIRRORS`` naming the mirror, so the root is trusted on first use and every
  manifest is fetched, verified and cached): over HTTP from nginx on 127.0.0.1 (the
  shipped site config, ``tests/support/nginx.py``) and as a local directory;
- ``tiup mirror verify --skip-tarballs <mirror>`` (every signature, threshold, length,
  hash, expiry, canonical form and version item of the metadata).

The previous implementation is ``git archive <rev> src`` (default ``HEAD``) unpacked in a
temporary directory outside the repository; both trees run on the same interpreter with
``PYTHONPATH`` naming their ``src``, interleaved: every round runs each (command, tree)
once in a random order. One warm-up round is not counted (bytecode caches on, as for an
installed tiup). Reported: the median per command and tree, and the median of the per-round
ratios new / old. Both trees must print the same output (a cross-check). Exits 1 if a goal
(absolute, this machine) is missed.

Run: .venv/bin/python bench/list.py [--rounds 9] [--baseline REV | --baseline-src DIR]
     [--serve both|http|dir] [--write]
(--write replaces the "## list" section of docs/benchmarks.md.)
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PYTHON = str(REPO / ".venv" / "bin" / "python")
sys.path.insert(0, str(REPO / "tests" / "support"))

from benchdoc import machine, source_tree, write_section  # noqa: E402

COMPONENTS = 150
BIG_VERSIONS = 20_000
#: command label → goal in seconds (issue 16; Go TiUP 1.16.5 on this machine in the issue:
#: list big 0.82 s, list 1.19 s, verify of all metadata 1.36 s)
GOALS = {"list big": 0.9, "list": 1.2, "mirror verify --skip-tarballs": 1.2}


def build_mirror(target: Path) -> int:
    """Write the official-scale mirror to ``target``; returns the big manifest's size."""
    from builders import make_owner, make_root, make_timestamp, sign
    from tiup import keys
    from tiup.fsutil import atomic_write
    from tiup.manifest.models import (
        Component,
        ComponentItem,
        FileMeta,
        Index,
        Snapshot,
        VersionItem,
    )
    from tiup.manifest.timefmt import format_time

    now = datetime.now(UTC)
    later = format_time(now + timedelta(days=3650))
    released = format_time(now)
    root_keys = [keys.generate() for _ in range(3)]
    index_key, snap_key, ts_key, owner_key = (keys.generate() for _ in range(4))
    root = make_root(1, tuple(root_keys), 3, later, index_key=index_key,
                     snapshot_key=snap_key, timestamp_key=ts_key)
    root_bytes = sign(root, *root_keys)
    atomic_write(target / "root.json", root_bytes)
    atomic_write(target / "1.root.json", root_bytes)
    meta = {"/root.json": FileMeta(1, len(root_bytes))}
    index = Index(expires=later, version=1, default_components=[],
                  owners={"bench": make_owner("bench", owner_key)})
    big_size = 0
    for n in range(COMPONENTS):
        cid = "big" if n == 0 else f"small-{n}"
        count = BIG_VERSIONS if n == 0 else 3
        items = {}
        for i in range(count):
            ver = f"v1.{i // 100}.{i % 100}"
            items[ver] = VersionItem(url=f"/{cid}-{ver}-linux-amd64.tar.gz", entry="hello",
                                     sha256=f"{i:064x}", sha512=f"{i:0128x}", length=1000 + i,
                                     released=released)
        comp = Component(expires=later, version=1, id=cid, description=f"component {n}",
                         platforms={"linux/amd64": items})
        data = sign(comp, owner_key)
        atomic_write(target / f"1.{cid}.json", data)
        big_size = max(big_size, len(data))
        meta[f"/{cid}.json"] = FileMeta(1, len(data))
        index.components[cid] = ComponentItem(owner="bench", url=f"/{cid}.json")
    index_bytes = sign(index, index_key)
    atomic_write(target / "1.index.json", index_bytes)
    meta["/index.json"] = FileMeta(1, len(index_bytes))
    snap_bytes = sign(Snapshot(expires=later, version=0, meta=meta), snap_key)
    atomic_write(target / "snapshot.json", snap_bytes)
    atomic_write(target / "timestamp.json",
                 sign(make_timestamp(snap_bytes, 1, later, sha512=True), ts_key))
    return big_size


@dataclass(frozen=True)
class Case:
    label: str          # "list big", "list", "mirror verify --skip-tarballs"
    via: str            # "http", "dir"
    args: tuple[str, ...]
    fresh_home: bool


def run(src: Path, case: Case, mirror_addr: str, work: Path) -> tuple[float, str]:
    """One ``tiup`` process of ``src`` for ``case``; (seconds, normalised stdout)."""
    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "TIUP_MIRRORS", "TIUP_HOME")}
    env.update(PYTHONPATH=str(src), TIUP_HOME=str(home), NO_PROXY="127.0.0.1",
               TIUP_NO_PROGRESS="1")
    if case.fresh_home:
        env["TIUP_MIRRORS"] = mirror_addr
    cmd = [PYTHON, "-m", "tiup", *case.args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(case.args)} ({src}) failed: {proc.stdout}{proc.stderr}")
    # the verify summary names the time it ran
    return took, re.sub(r"at \S+\)", "at <now>)", proc.stdout)





def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=9)
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--baseline", default="HEAD", help="git revision to compare with")
    group.add_argument("--baseline-src", type=Path, help="a tiup source tree (its src/)")
    ap.add_argument("--serve", choices=("both", "http", "dir"), default="both")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    from nginx import find_nginx, start_nginx, stop_nginx_process

    if args.serve != "dir" and find_nginx() is None:
        print("nginx not found (apt-get install nginx-light); use --serve dir",
              file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="tiup-bench-list-"))
    srv = None
    try:
        old_src = args.baseline_src or source_tree(args.baseline, work)
        trees = {"new": REPO / "src", "old": old_src.resolve()}
        mirror = work / "mirror"
        mirror.mkdir()
        t0 = time.perf_counter()
        big_size = build_mirror(mirror)
        gen = time.perf_counter() - t0
        addrs = {"dir": str(mirror)}
        vias = ["dir"] if args.serve == "dir" else ["http"] if args.serve == "http" \
            else ["http", "dir"]
        if "http" in vias:
            srv = start_nginx(mirror, work / "nginx")
            addrs["http"] = srv.url
        cases = [Case(label, via, argv, True) for via in vias
                 for label, argv in (("list big", ("list", "big")), ("list", ("list",)))]
        cases.append(Case("mirror verify --skip-tarballs", "dir",
                          ("mirror", "verify", "--skip-tarballs", str(mirror)), False))
        times: dict[tuple[Case, str], list[float]] = {(c, t): [] for c in cases for t in trees}
        load = [os.getloadavg()[0]]
        for rnd in range(args.rounds + 1):
            jobs = [(c, t) for c in cases for t in trees]
            random.shuffle(jobs)
            outputs: dict[tuple[Case, str], str] = {}
            for case, tree in jobs:
                took, out = run(trees[tree], case, addrs[case.via], work)
                outputs[(case, tree)] = out
                if rnd:  # round 0 warms the bytecode caches
                    times[(case, tree)].append(took)
            for case in cases:
                if outputs[(case, "new")] != outputs[(case, "old")]:
                    raise SystemExit(f"{case.label} ({case.via}): outputs differ between trees")
        load.append(os.getloadavg()[0])
    finally:
        if srv is not None:
            stop_nginx_process(srv.process)
        shutil.rmtree(work, ignore_errors=True)

    where = {"http": "HTTP, nginx on 127.0.0.1", "dir": "local directory"}
    rows, missed = [], []
    for case in cases:
        new, old = times[(case, "new")], times[(case, "old")]
        ratio = statistics.median(n / o for n, o in zip(new, old, strict=True))
        med = statistics.median(new)
        goal = GOALS[case.label]
        ok = med <= goal
        if not ok:
            missed.append(f"{case.label} ({case.via})")
        rows.append(f"| `tiup {case.label}` | {where[case.via]} | {statistics.median(old):.2f} s "
                    f"| {med:.2f} s | {ratio:.2f} | ≤ {goal} s: {'yes' if ok else 'NO'} |")
    rev = "a source tree" if args.baseline_src else f"`{args.baseline}`"
    text = "\n".join([
        "## list",
        "",
        "`bench/list.py`: a fresh client's first `tiup list <component>` and `tiup list`, and "
        "`tiup mirror verify --skip-tarballs`, on a generated mirror of official scale "
        f"({COMPONENTS} components, one with {BIG_VERSIONS:,} versions: a "
        f"{big_size / 1e6:.1f} MB manifest), whole processes, this tree (new) vs {rev} "
        f"(old: `git archive` in a temporary directory) in the same run, interleaved in a "
        f"random order, median of {args.rounds} rounds; ratio: median of the per-round "
        f"new / old ({date.today():%Y-%m-%d}; machine: {machine()}; load average "
        f"{load[0]:.1f} → {load[1]:.1f}).",
        "",
        "| command | mirror | old | new | new / old | goal |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Both trees printed the same output in every round. Goals (issue 16, measured "
        "against Go TiUP 1.16.5 on this machine: `tiup list <component>` 0.82 s, `tiup "
        "list` 1.19 s, verify all metadata 1.36 s): ≤ 0.9 s, ≤ 1.2 s, ≤ 1.2 s.",
        f"Mirror generation: {gen:.1f} s.",
        "",
    ])
    print(text)
    if args.write:
        write_section("list", text, keep_subsections=True, after="verify")
    if missed:
        print(f"goal missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
