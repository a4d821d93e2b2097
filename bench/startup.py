"""Startup benchmark: ``tiup`` start-up vs ``python3 -c pass``, same interpreter, same run.

Commands timed (wall clock, process start to exit):

- ``tiup --version`` and ``tiup --help``: answered without click;
- ``tiup --offline list``: the component list from a warm manifest cache;
- ``tiup hello``: an installed component (a shell script doing ``exit 0``),
  through the fast path of ``tiup.cli.entry``.

Each round runs every command once, in a fresh random order, so that the
machine's noise falls on all of them alike; the table shows the median of
each command over all rounds and its ratio to the median of
``python3 -c pass``. ``--compare-src DIR`` also times another source tree
(for example ``git archive HEAD src | tar -x -C DIR``) in the same rounds.

Two reference rows time what the list path would import without its fast path. Also
measures a no-op update (requests made, bytes transferred) over HTTP, and
lists the watched modules each command has loaded at exit (``sys.modules``;
``-X importtime`` misses modules loaded by ``importlib.import_module``).
Exits 1 if a goal is missed or a path loads a module it must not.

Run: ``.venv/bin/python bench/startup.py [--runs 40] [--compare-src DIR
[--compare-label NAME]] [--write]``
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from benchdoc import write_section

REPO = Path(__file__).resolve().parent.parent
for _sub in ("tests/support", "tests"):
    sys.path.insert(0, str(REPO / _sub))

#: label → (arguments after ``tiup``, goal as a ratio to ``python3 -c pass``)
COMMANDS: dict[str, tuple[list[str], float]] = {
    "tiup --version": (["--version"], 4.0),
    "tiup --help": (["--help"], 4.0),
    "tiup --offline list": (["--offline", "list"], 6.0),
    "tiup hello": (["hello"], 2.5),
}
#: label → modules that command must not import (a name covers its submodules).
MUST_NOT_IMPORT: dict[str, tuple[str, ...]] = {
    "tiup --version": ("click", "rich", "cryptography", "urllib3", "semver", "tiup.trust",
                       "tiup.cli.commands", "tiup.client", "tiup.repository", "tiup.server"),
    "tiup --help": ("click", "rich", "cryptography", "urllib3", "semver", "tiup.trust",
                    "tiup.cli.commands", "tiup.client", "tiup.repository", "tiup.server"),
    "tiup --offline list": ("click", "rich", "cryptography", "urllib3", "tiup.trust",
                            "tiup.repository", "tiup.server"),
    "tiup hello": ("click", "rich", "cryptography", "urllib3", "semver", "tiup.trust"),
}
#: label → Python code: what the imports a path would need without its fast path cost.
REFERENCES: dict[str, str] = {
    "import click": "import click",
    "import click, tiup.client.updater": "import click, tiup.client.updater",
}
WATCHED = ("click", "rich", "cryptography", "urllib3", "semver", "tiup.trust", "tiup.client",
           "tiup.cli.commands", "tiup.repository", "tiup.server", "tiup.transport")


def _wrapper(work: Path, name: str, src: Path | None) -> list[str]:
    """A start script like the installed console script, optionally on another tree."""
    py = str(REPO / ".venv" / "bin" / "python3")
    if src is None:
        return [str(REPO / ".venv" / "bin" / "tiup")]
    path = work / name
    path.write_text("import sys\n"
                    f"sys.path.insert(0, {str(src)!r})\n"
                    "from tiup.cli.entry import main\n"
                    "sys.exit(main())\n")
    return [py, str(path)]


def _once(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    return time.perf_counter() - start


#: Runs ``tiup`` and writes the modules loaded at exit to $TIUP_PROBE_OUT
#: (``-X importtime`` misses the modules ``importlib.import_module`` loads).
PROBE = """
import atexit, os, sys
out = os.environ["TIUP_PROBE_OUT"]
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
from tiup.cli.entry import main
main()
"""


def _imports(argv: list[str], env: dict[str, str], work: Path) -> set[str]:
    """The watched modules (or their parents) loaded by ``tiup ARGV``."""
    out = work / "modules.txt"
    py = str(REPO / ".venv" / "bin" / "python3")
    subprocess.run([py, "-c", PROBE, *argv], env={**env, "TIUP_PROBE_OUT": str(out)},
                   capture_output=True, check=True)
    found = set()
    for name in out.read_text().split():
        for w in WATCHED:
            if name == w or name.startswith(w + "."):
                found.add(w)
    return found


def main() -> int:
    from reposim import SIM_NOW_TEXT, RepoSim, script
    from servers import StaticServer

    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40, help="rounds (each runs every command)")
    parser.add_argument("--compare-src", type=Path, default=None,
                        help="another source tree (its src/ directory) timed in the same rounds")
    parser.add_argument("--compare-label", default="before",
                        help="what to call --compare-src in the table (e.g. a commit)")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tiup-bench-"))
    sim = RepoSim(work / "mirror")
    sim.publish("hello", "v1.0.0", files={"hello": script("exit 0")})
    home = work / "home"
    env = {**os.environ, "TIUP_HOME": str(home), "TIUP_TEST_NOW": SIM_NOW_TEXT,
           "NO_PROXY": "127.0.0.1"}
    env.pop("TIUP_MIRRORS", None)
    # An installed tiup runs from bytecode caches (pip compiles them): let the warm-up
    # runs write them, whatever the calling shell says.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    tiup = _wrapper(work, "tiup-now.py", None)
    py = str(REPO / ".venv" / "bin" / "python3")
    with StaticServer(sim.path) as srv:
        subprocess.run([*tiup, "mirror", "set", srv.url], env=env, check=True,
                       capture_output=True)
        subprocess.run([*tiup, "install", "hello"], env=env, check=True, capture_output=True)
        subprocess.run([*tiup, "list"], env=env, check=True, capture_output=True)  # warm cache
        before = len(srv.log)
        subprocess.run([*tiup, "install", "hello"], env=env, check=True, capture_output=True)
        noop = srv.log[before:]
        noop_requests = len(noop)
        noop_bytes = sum(e.sent for e in noop)
        noop_paths = [e.path for e in noop]

    trees: list[tuple[str, list[str]]] = [("now", tiup)]
    if args.compare_src is not None:
        trees.append(("before", _wrapper(work, "tiup-before.py", args.compare_src.resolve())))
    jobs: dict[tuple[str, str], list[str]] = {("", "python3 -c pass"): [py, "-c", "pass"]}
    for label, code in REFERENCES.items():
        jobs[("ref", label)] = [py, "-c", code]
    for tree, base_cmd in trees:
        for label, (argv, _goal) in COMMANDS.items():
            jobs[(tree, label)] = [*base_cmd, *argv]
    for cmd in jobs.values():  # warm the page cache and the .pyc files
        for _ in range(2):
            _once(cmd, env)
    samples: dict[tuple[str, str], list[float]] = {k: [] for k in jobs}
    keys = list(jobs)
    for _ in range(args.runs):
        random.shuffle(keys)
        for k in keys:
            samples[k].append(_once(jobs[k], env))
    med = {k: statistics.median(v) for k, v in samples.items()}
    base = med[("", "python3 -c pass")]
    heavy = {label: _imports(argv, env, work) for label, (argv, _g) in COMMANDS.items()}

    head = "| command | goal | median | ratio |"
    rule = "|---|---|---|---|"
    if len(trees) > 1:
        head += f" {args.compare_label} | ratio {args.compare_label} |"
        rule += "---|---|"
    rows = [head, rule, f"| `python3 -c pass` | | {base * 1000:.1f} ms | 1 |"
            + (" | |" if len(trees) > 1 else "")]
    ok = True
    for label, (_argv, goal) in COMMANDS.items():
        t = med[("now", label)]
        ratio = t / base
        ok = ok and ratio <= goal
        row = f"| `{label}` | ≤ {goal:g}× | {t * 1000:.1f} ms | {ratio:.2f} |"
        if len(trees) > 1:
            tb = med[("before", label)]
            row += f" {tb * 1000:.1f} ms | {tb / base:.2f} |"
        rows.append(row)
    for label in REFERENCES:
        t = med[("ref", label)]
        rows.append(f"| reference: `python3 -c '{label}'` | | {t * 1000:.1f} ms | "
                    f"{t / base:.2f} |" + (" | |" if len(trees) > 1 else ""))
    import_lines = []
    for label, found in heavy.items():
        bad = sorted(m for m in found if m.startswith(MUST_NOT_IMPORT[label]))
        ok = ok and not bad
        import_lines.append(f"- `{label}`: {', '.join(sorted(found)) or 'none of them'}"
                            + (f" (**must not**: {', '.join(bad)})" if bad else ""))

    lines = [
        "## startup",
        "",
        "`bench/startup.py`: start-up of `tiup` vs `python3 -c pass`, the same interpreter,",
        f"same run ({date.today().isoformat()}, a 2-core VM shared with other work): "
        f"{args.runs} rounds, each",
        "running every command once in a random order; the median of each command and its",
        "ratio to the median of `python3 -c pass`. `tiup hello` is an installed component",
        "whose entry is a shell script doing `exit 0`; `tiup --offline list` lists the",
        "components from a warm manifest cache. Bytecode caches are on, as for an installed",
        "tiup."
        + (f" The `{args.compare_label}` columns time another tree (`--compare-src`) in"
           " the same rounds." if len(trees) > 1 else ""),
        "",
        *rows,
        "",
        "Watched modules loaded (of " + ", ".join(f"`{w}`" for w in WATCHED) + "):",
        "",
        *import_lines,
        "",
        "What each path loads. `tiup --version` and the root help (`tiup`, `-h`, `--help`,",
        "`help`) are answered by `tiup.cli.entry` without click: the help is rendered by",
        "`tiup.cli.fasthelp` from `tiup.cli.registry`, and a test requires it to equal",
        "click's rendering at every width. Other commands load click and, through",
        "`tiup.cli.group.LazyGroup`, only the module of the command that runs; crypto, HTTP",
        "and rich are imported inside the functions that use them. `tiup hello` is the",
        "install-record fast path (no click, no crypto, no network). (The 2.74× recorded",
        "for it before 2026-11-30 was likely measured without up-to-date bytecode caches:",
        "this environment sets `PYTHONDONTWRITEBYTECODE=1`, which the bench now clears.)",
        "",
        "`tiup --offline list` is answered by `tiup.cli.listing.fast_list` without click or",
        "cryptography: every manifest it shows is in the verified cache's record",
        "(`tiup.client.verified`: the sha256 of each cached file as it was verified, under",
        "the sha256 of the trust anchor), so it compares digests instead of checking RSA",
        "signatures again, as the run path trusts install records. Any file not on record,",
        "or a record made under another anchor, takes the full command, which verifies.",
        "",
        "No-op update (`tiup install hello` when nothing changed, over HTTP from",
        f"`tests/support/servers.py`): {noop_requests} request(s) ({', '.join(noop_paths)}),",
        f"{noop_bytes} bytes of body. Goal: 1 request, ≤ 2048 bytes.",
        "",
        "Run: `.venv/bin/python bench/startup.py [--runs 40] [--compare-src DIR "
        "[--compare-label NAME]] [--write]`.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("startup", text)
    ok = ok and noop_requests == 1 and noop_bytes <= 2048
    return 0 if ok else 1



if __name__ == "__main__":
    sys.exit(main())
