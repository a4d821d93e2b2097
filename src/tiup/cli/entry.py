"""The ``tiup`` entry point: a fast path for running installed components.

``tiup <component>[:version] [args...]`` for a version installed by this
project (it has an install record, written only after the tarball was
verified) starts the component without loading click, rich, cryptography or
an HTTP library, and without touching the network: the record is the proof
of verification, so signatures are not checked again on every run.

``tiup --version`` and the root help (``tiup``, ``tiup -h``, ``tiup
--help``, ``tiup help``) are answered here too, without click
(:mod:`tiup.cli.fasthelp`). Every other run is recorded in
``$TIUP_HOME/history`` when it ends, as Go TiUP records it.

Everything else — subcommands, their help, components that need a download
or whose install predates the records — goes to :func:`tiup.cli.main.main`,
which loads click and then only the command that runs.
"""

from __future__ import annotations

import os
import sys

from tiup.cli.driver import DriverArgs, scan
from tiup.cli.registry import RESERVED_WORDS, version_line


def _record_versions(home: str, comp: str) -> list[str]:
    try:
        names = os.listdir(os.path.join(home, "installed", comp))
    except OSError:
        return []
    return [n[:-5] for n in names if n.endswith(".json") and not n.startswith(".")]


def _pick(versions: list[str], wanted: str) -> str | None:
    if wanted and wanted != "nightly":
        for candidate in (wanted, "v" + wanted if wanted[:1].isdigit() else None):
            if candidate and candidate in versions:
                return candidate
        return None
    nightly = wanted == "nightly"
    pool = [v for v in versions if ("nightly" in v) == nightly]
    if not pool:
        return None
    if len(pool) == 1:
        return pool[0]
    if not nightly:
        keys = [_plain_key(v) for v in pool]
        if all(k is not None for k in keys):  # plain vX.Y.Z releases: no semver import
            return max(zip(keys, pool, strict=True))[1]
    from tiup.client.resolve import pick_installed

    return pick_installed(versions, wanted)


def _plain_key(version: str) -> tuple[int, int, int] | None:
    parts = version[1:].split(".") if version.startswith("v") else []
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


def fast_run(d: DriverArgs) -> int | None:
    """Run an installed component; None if the fast path does not apply."""
    if d.binary or d.binpath or d.force_pull or d.error or not d.word:
        return None
    word = d.word
    if word in RESERVED_WORDS or word.startswith("-"):
        return None
    comp, _, wanted = word.partition(":")
    if not comp or "/" in comp or comp.startswith(".") or "\0" in comp:
        return None
    from tiup.client.homefast import home_dir, quick_mirror

    home = home_dir(os.environ)
    version = _pick(_record_versions(home, comp), wanted)
    if version is None:
        return None
    import json

    try:
        with open(os.path.join(home, "installed", comp, version + ".json"), "rb") as fh:
            record = json.load(fh)
        entry = record["entry"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(entry, str) or not entry or entry.startswith("/") or ".." in entry:
        return None
    binary = os.path.join(home, "components", comp, version, entry)
    if not os.path.isfile(binary):
        return None
    mirror = quick_mirror(home, os.environ)
    if mirror is None:  # a tiup.toml that needs the full parser (or reports an error)
        return None
    if d.offline:
        os.environ["TIUP_OFFLINE"] = "1"
    from tiup.client.runner import run_binary

    def announce(argv: str) -> None:
        sys.stderr.write(f"Starting component `{comp}`: {argv}\n")
        sys.stderr.flush()

    try:
        return run_binary(home, os.environ, comp=comp, binary=binary, args=d.rest,
                          user_version=wanted, tag=d.tag, mirror=mirror, announce=announce)
    except OSError as exc:
        sys.stderr.write(f"Error: cannot start {binary}: {exc.strerror or exc}\n")
        return 1


def fast_answer(d: DriverArgs) -> str | None:
    """The output of ``tiup --version`` or of the root help; None for anything else.

    Only the plain forms qualify (driver flags before them are fine): with any
    argument after them, click parses the line and reports what is wrong.
    """
    if d.error or d.binary is not None or d.raw_rest:
        return None
    if d.word in ("-v", "--version"):
        return version_line()
    if d.word in (None, "-h", "--help", "help"):
        from tiup.cli.fasthelp import root_help

        return root_help()
    return None


def record_history(started_ns: int, code: object) -> None:
    """Append this run to ``$TIUP_HOME/history`` (:mod:`tiup.client.history`), as Go TiUP
    does after every command; a failure is only a warning."""
    exit_code = 0 if code is None else code if isinstance(code, int) else 1
    try:
        from tiup.client.history import record
        from tiup.client.homefast import home_dir

        record(home_dir(os.environ), ["tiup", *sys.argv[1:]], started_ns, exit_code)
    except OSError as exc:
        sys.stderr.write(f"Warning: Recording TiUP execution history failed: {exc}\n")


def _run(d: DriverArgs) -> None:
    """Run the command (fast paths first); always ends with ``SystemExit``."""
    if d.word == "list":
        from tiup.cli.listing import fast_list

        code = fast_list(d)
        if code is not None:
            sys.exit(code)
    code = fast_run(d)
    if code is not None:
        sys.exit(code)
    from tiup.cli.main import main as full_main

    full_main()


def main() -> None:
    """Entry point of the ``tiup`` command.

    Every run except ``--version``, help pages and shell-completion requests is
    recorded in the history once it ends (:func:`record_history`).
    """
    if "_TIUP_COMPLETE" in os.environ:  # a completion request of `tiup completion`'s script
        from tiup.cli.main import main as full_main

        full_main()
    d = scan(sys.argv[1:])
    text = fast_answer(d)
    if text is not None:
        try:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            sys.exit(1)
        sys.exit(0)
    if d.word in RESERVED_WORDS and ("--help" in d.raw_rest or "-h" in d.raw_rest):
        _run(d)  # a command's help: not recorded (TiUP shows it before it records)
    import time

    started = time.time_ns()
    try:
        _run(d)
    except SystemExit as exc:
        record_history(started, exc.code)
        raise
