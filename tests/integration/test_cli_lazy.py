"""The CLI loads lazily: start-up paths import no command module and nothing heavy.

``tiup --version`` and the root help run without click (:mod:`tiup.cli.entry`,
:mod:`tiup.cli.fasthelp`); ``tiup mirror --help`` lists every subcommand from
:mod:`tiup.cli.registry` without importing one; a command imports its own
module only. The registry's short helps, and the click-free root help, are
checked against what click renders from the loaded commands.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import click
import pytest

from tiup.cli import fasthelp
from tiup.cli.group import LazyGroup, stand_in
from tiup.cli.registry import MIRROR_COMMANDS, RESERVED_WORDS, ROOT_COMMANDS

#: Never imported to print the version or a help page.
HEAVY = ("cryptography", "urllib3", "rich", "semver", "tiup.trust", "tiup.client",
         "tiup.repository", "tiup.server", "tiup.transport", "tiup.reader", "tiup.keys",
         "boto3", "botocore")


#: Runs ``tiup`` and writes the names of the modules loaded at exit to $TIUP_PROBE_OUT
#: (``-X importtime`` misses modules loaded by ``importlib.import_module``).
PROBE = """
import atexit, os, sys
out = os.environ["TIUP_PROBE_OUT"]
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
from tiup.cli.entry import main
main()
"""


def run(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """``tiup ARGS`` in a subprocess: the result and the modules it had loaded at exit."""
    fd, out = tempfile.mkstemp(prefix="tiup-modules-")
    os.close(fd)
    try:
        env = {**os.environ, "COLUMNS": "80", "TIUP_PROBE_OUT": out}
        proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True,
                              text=True, env=env, timeout=60)
        names = set(Path(out).read_text().split())
    finally:
        os.unlink(out)
    return proc, names


def under(names: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes))


@pytest.mark.parametrize("args", [("--version",), ("-v",), ("--offline", "--version"),
                                  ("--help",), ("-h",), (), ("help",),
                                  ("--verbose", "--help")])
def test_version_and_root_help_load_neither_click_nor_commands(args: tuple[str, ...]) -> None:
    proc, names = run(*args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert under(names, ("click", "tiup.cli.main", "tiup.cli.commands", *HEAVY)) == []
    if "--version" in args or "-v" in args:
        assert proc.stdout.startswith("0.") and "compatible with TiUP" in proc.stdout
    else:
        assert proc.stdout.startswith("Usage: tiup [OPTIONS] [COMMAND] [ARGS]...")
        for name in ROOT_COMMANDS:
            assert f"\n  {name} " in proc.stdout


def test_mirror_help_lists_every_subcommand_without_importing_one() -> None:
    proc, names = run("mirror", "--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert under(names, ("tiup.cli.commands",)) == ["tiup.cli.commands",
                                                    "tiup.cli.commands.mirror"]
    assert under(names, HEAVY) == []
    for name in MIRROR_COMMANDS:
        assert f"\n  {name} " in proc.stdout


@pytest.mark.parametrize(("args", "module"), [
    (("mirror", "sign", "--help"), "mirror_sign"),
    (("mirror", "serve", "--help"), "serve"),
    (("env", "TIUP_HOME"), "info"),
    (("status",), "info"),
])
def test_a_command_imports_its_own_module_only(args: tuple[str, ...], module: str) -> None:
    proc, names = run(*args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = under(names, ("tiup.cli.commands",))
    expected = {"tiup.cli.commands", f"tiup.cli.commands.{module}"}
    if args[0] == "mirror":
        expected.add("tiup.cli.commands.mirror")
    assert set(loaded) == expected
    assert under(names, ("cryptography", "urllib3", "rich", "semver", "tiup.trust")) == []


def _root() -> click.Context:
    from tiup.cli.main import cli

    return cli.make_context("tiup", [], resilient_parsing=True)


def _groups() -> list[tuple[LazyGroup, click.Context]]:
    from tiup.cli.commands.mirror import mirror
    from tiup.cli.main import cli

    root = _root()
    assert isinstance(cli, LazyGroup) and isinstance(mirror, LazyGroup)
    return [(cli, root), (mirror, click.Context(mirror, info_name="mirror", parent=root))]


def test_the_registry_names_every_command_with_its_short_help() -> None:
    for group, ctx in _groups():
        for name, entry in group.table.items():
            real = group.get_command(ctx, name)
            assert real is not None and real.name == name
            assert bool(real.short_help) != entry[2], f"{name}: `cut` says the wrong source"
            for limit in range(5, 140):
                assert stand_in(name, entry).get_short_help_str(limit) == \
                    real.get_short_help_str(limit), f"{name} at {limit}"


#: Prints "module:attribute" of every click command defined under tiup.cli.commands
#: (a subcommand of a group defined in the same module is reached through its group).
SCAN = """
import importlib, pkgutil, click
import tiup.cli.commands as package
for info in pkgutil.iter_modules(package.__path__):
    module = importlib.import_module(package.__name__ + "." + info.name)
    grouped = {id(c) for g in vars(module).values() if isinstance(g, click.Group)
               for c in g.commands.values()}
    for attr, value in vars(module).items():
        callback = getattr(value, "callback", None)
        if isinstance(value, click.Command) and callback is not None \\
                and callback.__module__ == module.__name__ and id(value) not in grouped:
            print(module.__name__ + ":" + attr)
"""


def test_every_command_module_is_in_the_registry() -> None:
    """A click command defined under tiup.cli.commands and missing from the tables would
    never be reachable (tiup-server has its own entry point). Scanned in a subprocess:
    importing every command module here would change what other tests see (for example
    the subclasses of TiupError)."""
    proc = subprocess.run([sys.executable, "-c", SCAN], capture_output=True, text=True,
                          check=True, timeout=60)
    found = set(proc.stdout.split())
    assert found, "no command found: the scan is broken"
    targets = {e[0] for e in (*ROOT_COMMANDS.values(), *MIRROR_COMMANDS.values())}
    targets.add("tiup.cli.commands.serve:serve_standalone")
    assert found - targets == set()
    assert set(ROOT_COMMANDS) <= RESERVED_WORDS


@pytest.mark.parametrize("columns", [1, 20, 50, 52, 60, 79, 80, 81, 99, 100, 101, 102, 120, 250])
def test_the_fast_root_help_is_clicks(columns: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from tiup.cli.main import cli

    monkeypatch.setenv("COLUMNS", str(columns))
    assert fasthelp.root_help() == cli.get_help(_root())


def test_the_fast_root_help_of_the_command(tiup, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from tiup.cli.main import cli

    r = tiup("--help", env={"COLUMNS": "80"}, subprocess=True)
    assert r.returncode == 0
    monkeypatch.setenv("COLUMNS", "80")
    assert r.stdout == cli.get_help(_root()) + "\n"


def test_boto3_only_for_s3_addresses(tmp_path: Path) -> None:
    """The S3 client (≈0.3 s to import) is loaded only when an s3:// mirror is used."""
    proc, names = run("mirror", "verify", str(tmp_path / "no-such-mirror"))
    assert proc.returncode == 2, proc.stderr
    assert under(names, ("boto3", "botocore", "tiup.repository.s3_storage")) == []
    # a hostile address is refused by the names rule set before boto3 is even loaded
    proc, names = run("mirror", "verify", "s3://Not_A_Bucket/x")
    assert proc.returncode != 0 and "invalid bucket name" in proc.stderr
    assert under(names, ("boto3", "botocore")) == []
