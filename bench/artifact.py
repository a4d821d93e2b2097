"""The self-contained tiup (``scripts/build-dist``) vs the virtualenv install: size and
start-up.

Builds the linux/amd64 artifact (warm wheel cache: about a second), installs a ``hello``
component (a shell script doing ``exit 0``) into one ``$TIUP_HOME`` with the venv's tiup,
then times, in rounds of random order (wall clock, process start to exit):

- ``python3 -c pass`` with the host's ``/usr/bin/python3`` and with the venv's python;
- ``tiup --version`` and ``tiup hello`` with the venv install and with the artifact
  (run as ``tiup`` with ``PATH=/usr/bin:/bin``: the shell prologue picks
  ``/usr/bin/python3.11``; its wheels were unpacked by a warm-up run).

Each tiup row's ratio is to ``python3 -c pass`` of the interpreter it runs on; the
start-up goals of ``bench/startup.py`` apply to the artifact (``tiup hello`` ≤ 2.5×,
``--version`` ≤ 4×): exits 1 if one is missed.

Run: ``.venv/bin/python bench/artifact.py [--runs 30]``
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for _sub in ("tests/support", "tests"):
    sys.path.insert(0, str(REPO / _sub))


#: the start-up goals of bench/startup.py, as ratios to ``python3 -c pass``
GOALS = {"tiup --version": 4.0, "tiup hello": 2.5}


def _once(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed with {proc.returncode}")
    return took


def main() -> int:
    from reposim import SIM_NOW_TEXT, RepoSim, script
    from servers import StaticServer

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tiup-bench-artifact-"))
    subprocess.run([str(REPO / "scripts" / "build-dist"), "--arch", "amd64", "--out",
                    str(work / "dist")], check=True, capture_output=True)
    tarball = next((work / "dist").glob("tiup-*-linux-amd64.tar.gz"))
    with tarfile.open(tarball) as tar:
        tar.extractall(work / "bin", filter="data")
    artifact = work / "bin" / "tiup"

    sim = RepoSim(work / "mirror")
    sim.publish("hello", "v1.0.0", files={"hello": script("exit 0")})
    home = work / "home"
    env = {**os.environ, "TIUP_HOME": str(home), "TIUP_TEST_NOW": SIM_NOW_TEXT,
           "NO_PROXY": "127.0.0.1"}
    env.pop("TIUP_MIRRORS", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    venv_tiup = [str(REPO / ".venv" / "bin" / "tiup")]
    with StaticServer(sim.path) as srv:
        subprocess.run([*venv_tiup, "mirror", "set", srv.url], env=env, check=True,
                       capture_output=True)
        subprocess.run([*venv_tiup, "install", "hello"], env=env, check=True,
                       capture_output=True)
    host_env = {"HOME": env.get("HOME", "/root"), "PATH": "/usr/bin:/bin",
                "TIUP_HOME": str(home), "TIUP_TEST_NOW": SIM_NOW_TEXT}
    jobs: dict[str, tuple[list[str], dict[str, str]]] = {
        "/usr/bin/python3 -c pass": (["/usr/bin/python3", "-c", "pass"], host_env),
        "venv python3 -c pass": ([str(REPO / ".venv" / "bin" / "python3"), "-c", "pass"], env),
        "venv: tiup --version": ([*venv_tiup, "--version"], env),
        "venv: tiup hello": ([*venv_tiup, "hello"], env),
        "artifact: tiup --version": ([str(artifact), "--version"], host_env),
        "artifact: tiup hello": ([str(artifact), "hello"], host_env),
    }
    first = _once([str(artifact), "--version"], host_env | {"TIUP_HOME": str(work / "h2")})
    for cmd, e in jobs.values():  # warm-up: page cache, .pyc files, unpacked wheels
        _once(cmd, e)
        _once(cmd, e)
    times: dict[str, list[float]] = {k: [] for k in jobs}
    for _ in range(args.runs):
        order = list(jobs)
        random.shuffle(order)
        for k in order:
            times[k].append(_once(*jobs[k]))
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    base = {"venv": med["venv python3 -c pass"], "artifact": med["/usr/bin/python3 -c pass"]}
    runtime = home / "runtime"
    unpacked = sum(f.stat().st_size for f in runtime.rglob("*") if f.is_file())
    print(f"artifact {tarball.name}: {tarball.stat().st_size / 1e6:.1f} MB "
          f"(the tiup file {artifact.stat().st_size / 1e6:.1f} MB); unpacked for one Python "
          f"version: {unpacked / 1e6:.0f} MB in $TIUP_HOME/runtime")
    print(f"first run of the artifact (unpacks its wheels): {first * 1000:.0f} ms")
    print("| command | median | ratio |")
    print("|---|---|---|")
    missed = []
    for k, v in med.items():
        kind = k.split(":")[0]
        ratio = v / base[kind] if kind in base else 1.0
        print(f"| `{k}` | {v:.1f} ms | {ratio:.2f} |")
        goal = GOALS.get(k.split(": ")[-1])
        if kind == "artifact" and goal is not None and ratio > goal:
            missed.append(f"{k}: {ratio:.2f}x > {goal}x")
    for line in missed:
        print(f"goal missed: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
