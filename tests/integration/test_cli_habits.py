"""The commands and habits a Go TiUP user reaches for, compared with TiUP's output shapes:
``history``, ``link``/``unlink``, ``completion``, ``help <command> <subcommand>``, the root
flags in ``--help``, one log line per download and a summary line, informational messages
on stdout, and the ``TIUP_MIRRORS`` notice."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from reposim import SIM_NOW_TEXT, RepoSim, script
from tiup.cli.registry import ROOT_COMMANDS

ENV = {"TIUP_TEST_NOW": SIM_NOW_TEXT}
#: Go TiUP's ``tui.PrintTable`` header of ``tiup history``
HISTORY_HEAD = re.compile(r"^Date {17}Command +Code\n-{4} {17}-{7} +-{4}\n")


@pytest.fixture
def sim(tmp_path: Path) -> RepoSim:
    s = RepoSim(tmp_path / "mirror")
    s.publish("hello", "v0.0.1", files={"hello": script("exit 3")})
    return s


@pytest.fixture
def installed(tiup, sim: RepoSim) -> RepoSim:  # type: ignore[no-untyped-def]
    assert tiup("mirror", "set", str(sim.path), env=ENV).returncode == 0
    r = tiup("install", "hello", env=ENV)
    assert r.returncode == 0, r.output
    return sim


def history_rows(home: Path) -> list[dict[str, object]]:
    return [json.loads(line) for f in sorted((home / "history").iterdir())
            for line in f.read_text().splitlines()]


# --- tiup history -------------------------------------------------------------------

def test_history_records_every_run_as_go_does(tiup, clean_home: Path) -> None:  # type: ignore[no-untyped-def]
    assert tiup("env", "TIUP_HOME").returncode == 0
    assert tiup("uninstall", "nope:v1").returncode == 1
    assert tiup("env", "--password", "hunter2").returncode == 2  # a usage error, recorded
    assert tiup("--version").returncode == 0  # not recorded (TiUP neither)
    assert tiup("mirror", "--help").returncode == 0  # help pages are not recorded
    rows = history_rows(clean_home)
    assert [(r["command"], r["exit_code"]) for r in rows] == [
        ("tiup env TIUP_HOME", 0), ("tiup uninstall nope:v1", 1),
        ("tiup env --password ******", 2)]
    assert all(list(r) == ["time", "command", "exit_code"] for r in rows)
    assert (clean_home / "history" / "tiup-history-0").is_file()

    r = tiup("history")
    assert r.returncode == 0, r.output
    assert HISTORY_HEAD.match(r.stdout), r.stdout
    lines = r.stdout.splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d  tiup env TIUP_HOME {10}0", lines[2])
    assert lines[-1] == f"history log save path: {clean_home / 'history'}"
    assert len(lines) == 2 + 3 + 1  # the running `tiup history` is recorded after it

    r = tiup("history", "2", "--format", "json")
    assert [json.loads(x)["command"] for x in r.stdout.splitlines()] == [
        "tiup env --password ******", "tiup history"]
    assert r.stdout.splitlines()[1] == json.dumps(history_rows(clean_home)[3],
                                                  separators=(",", ":"))
    assert len(tiup("history", "--limit", "1", "--format", "json").stdout.splitlines()) == 1
    assert len(tiup("history", "1", "--all", "--format", "json").stdout.splitlines()) == 6
    r = tiup("history", "abc")
    assert r.returncode == 2 and "Error: abc: numeric argument required" in r.stderr


def test_history_shows_what_go_tiup_recorded(tiup, clean_home: Path) -> None:  # type: ignore[no-untyped-def]
    folder = clean_home / "history"
    folder.mkdir(parents=True)
    (folder / "tiup-history-0").write_text(
        '{"time":"2024-05-06T07:08:09.123456789+08:00","command":"/root/.tiup/bin/tiup '
        'playground v8.1.0","exit_code":0}\n')
    r = tiup("history", "1")
    assert r.stdout.splitlines()[2] == "2024-05-06T07:08:09  /root/.tiup/bin/tiup " \
        "playground v8.1.0  0"


def test_history_cleanup_asks_then_removes_old_records(tiup, clean_home: Path) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        tiup("env", "TIUP_HOME")
    r = tiup("history", "cleanup", "--all", input="n\n")
    assert r.returncode == 1
    assert re.fullmatch(r"History logs before \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d will be "
                        r"deleted!\nDo you want to continue\? \[y/N\]:\(default=N\) ", r.stdout)
    assert "Error: Operation aborted by user (with answer 'n')" in r.stderr
    assert len(history_rows(clean_home)) == 4
    r = tiup("history", "cleanup", "--retain-days", "1", "-y", env=ENV)  # the clock: 2030
    assert r.returncode == 0 and "Deleted 4 history record(s)." in r.stdout
    assert [x["command"] for x in history_rows(clean_home)] == [
        "tiup history cleanup --retain-days 1 -y"]
    assert tiup("history", "cleanup", "--retain-days", "-1").returncode == 2


def test_history_records_a_component_run_with_its_exit_code(tiup, installed: RepoSim,  # type: ignore[no-untyped-def]
                                                            clean_home: Path) -> None:
    r = tiup("hello", "-p", "secret", env=ENV, subprocess=True)  # the fast path
    assert r.returncode == 3, r.output
    assert history_rows(clean_home)[-1]["command"] == "tiup hello -p ******"
    assert history_rows(clean_home)[-1]["exit_code"] == 3


# --- tiup link / unlink -------------------------------------------------------------

def test_link_and_unlink_as_go_does(tiup, installed: RepoSim, clean_home: Path) -> None:  # type: ignore[no-untyped-def]
    binary = clean_home / "components" / "hello" / "v0.0.1" / "hello"
    target = clean_home / "bin" / "hello"
    target.write_text("an older hello")
    r = tiup("link", "hello")
    assert r.returncode == 0, r.output
    assert r.stdout == "package hello provides these executables: hello\n"
    assert target.is_symlink() and Path(os.readlink(target)) == binary
    assert not (clean_home / "bin" / "hello.old").exists()  # the backup is gone

    r = tiup("unlink", "hello", input="no\n")
    assert r.returncode == 1 and target.is_symlink()
    assert r.stdout == f"{target} will be removed.\n Do you want to continue? [y/N]:(default=N) "
    assert "Operation aborted by user (with answer 'no')" in r.stderr
    assert tiup("uninstall", "hello", "--all").returncode == 0
    r = tiup("unlink", "hello", input="y\n")  # still possible after an uninstall
    assert r.returncode == 0, r.output
    assert not os.path.lexists(target)


def test_unlink_removes_only_links_into_the_component(tiup, installed: RepoSim,  # type: ignore[no-untyped-def]
                                                      clean_home: Path) -> None:
    target = clean_home / "bin" / "hello"
    target.write_text("mine")
    r = tiup("unlink", "hello", "-y")
    assert r.returncode == 1 and "no link to component `hello`" in r.stderr
    assert target.read_text() == "mine"  # TiUP would have removed it
    r = tiup("link", "nope")
    assert r.returncode == 1 and "use `tiup install nope` to install component" in r.stderr
    assert tiup("link").returncode == 0  # no argument: the help, as TiUP


def test_link_never_replaces_tiups_own_files(tiup, sim: RepoSim, clean_home: Path) -> None:  # type: ignore[no-untyped-def]
    sim.publish("evil", "v1.0.0", files={"root.json": script("exit 0")}, entry="root.json")
    assert tiup("mirror", "set", str(sim.path), env=ENV).returncode == 0
    assert tiup("install", "evil", env=ENV).returncode == 0
    anchor = (clean_home / "bin" / "root.json").read_bytes()
    r = tiup("link", "evil")
    assert r.returncode == 1 and "refusing to link root.json" in r.stderr
    assert (clean_home / "bin" / "root.json").read_bytes() == anchor


# --- tiup completion ----------------------------------------------------------------

def complete(tiup, line: str) -> list[str]:  # type: ignore[no-untyped-def]
    """What bash gets for ``line`` (the last word is being completed)."""
    words = line.split(" ")
    r = tiup(env={"_TIUP_COMPLETE": "bash_complete", "COMP_WORDS": line,
                  "COMP_CWORD": str(len(words) - 1)})
    assert r.returncode == 0, r.output
    return [item for item in r.stdout.splitlines() if item]


@pytest.mark.parametrize(("shell", "marks"), [
    ("bash", ("_TIUP_COMPLETE=bash_complete", "complete -o nosort -F _tiup_completion tiup")),
    ("zsh", ("#compdef tiup", "_TIUP_COMPLETE=zsh_complete")),
    ("fish", ("complete --no-files --command tiup", "_TIUP_COMPLETE=fish_complete")),
])
def test_completion_scripts(tiup, shell: str, marks: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    r = tiup("completion", shell)
    assert r.returncode == 0
    for mark in marks:
        assert mark in r.stdout


def test_completion_of_commands_options_and_components(tiup, installed: RepoSim) -> None:  # type: ignore[no-untyped-def]
    assert complete(tiup, "tiup ") == [f"plain,{n}" for n in ROOT_COMMANDS] + ["plain,hello"]
    assert complete(tiup, "tiup he") == ["plain,help", "plain,hello"]
    assert complete(tiup, "tiup mirror cl") == ["plain,clone"]
    assert complete(tiup, "tiup mirror clone --fu") == ["plain,--full"]
    assert complete(tiup, "tiup --bi") == ["plain,--binary", "plain,--binpath"]
    assert complete(tiup, "tiup --binary h") == ["plain,hello"]
    assert complete(tiup, "tiup --offline li") == ["plain,list", "plain,link"]
    assert complete(tiup, "tiup history cl") == ["plain,cleanup"]
    assert complete(tiup, "tiup history cleanup --re") == ["plain,--retain-days"]
    assert complete(tiup, "tiup help mirror cl") == ["plain,clone"]
    assert complete(tiup, "tiup hello x") == ["file,x"]  # a component's arguments: files
    assert complete(tiup, "tiup mirror nope x") == []  # no error, nothing to offer


def test_completing_a_command_name_imports_no_command_module(tmp_path: Path) -> None:
    probe = ("import atexit, os, sys\n"
             "atexit.register(lambda: open(os.environ['OUT'], 'w').write("
             "'\\n'.join(sorted(sys.modules))))\n"
             "from tiup.cli.entry import main\nmain()\n")
    out = tmp_path / "modules"
    env = {**os.environ, "OUT": str(out), "_TIUP_COMPLETE": "bash_complete",
           "COMP_WORDS": "tiup mirror ", "COMP_CWORD": "2", "TIUP_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=env, timeout=60, cwd=tempfile.gettempdir())
    assert proc.returncode == 0 and "plain,clone" in proc.stdout.split("\n"), proc.stderr
    loaded = [m for m in out.read_text().split() if m.startswith("tiup.cli.commands.")]
    assert loaded == ["tiup.cli.commands.mirror"]


# --- tiup help, tiup --help ---------------------------------------------------------

def test_help_of_a_subcommand(tiup) -> None:  # type: ignore[no-untyped-def]
    r = tiup("help", "mirror", "clone")
    assert r.returncode == 0, r.output
    assert r.stdout == tiup("mirror", "clone", "--help").stdout
    assert r.stdout.startswith("Usage: tiup mirror clone [OPTIONS] TARGET-DIR")
    assert tiup("help", "history", "cleanup").stdout.startswith(
        "Usage: tiup history cleanup [OPTIONS]")
    assert tiup("help", "mirror").stdout == tiup("mirror", "--help").stdout
    r = tiup("help", "mirror", "nope")
    assert r.returncode == 2 and "unknown help topic `mirror nope`" in r.stderr
    assert tiup("help", "nope").stdout.startswith("Usage: tiup [OPTIONS]")  # as TiUP


@pytest.mark.parametrize("columns", ["60", "80", "100"])
def test_root_help_shows_the_driver_flags_and_whole_summaries(tiup, columns: str) -> None:  # type: ignore[no-untyped-def]
    r = tiup("--help", env={"COLUMNS": columns})
    assert r.returncode == 0
    options = r.stdout.split("\nOptions:\n")[1].split("\nCommands:\n")[0]
    for flag in ("--binary <component>[:version]", "--binpath PATH", "-T, --tag TAG",
                 "--offline", "-v, --version"):
        assert f"\n  {flag} " in "\n" + options, flag
    commands = r.stdout.split("\nCommands:\n")[1]
    shown: dict[str, str] = {}
    for line in commands.splitlines():
        name, _, text = line.strip().partition(" ")
        if line.startswith("  ") and not line.startswith("   "):
            shown[name] = text.strip()
        else:
            shown[list(shown)[-1]] += " " + line.strip()
    # TiUP's `Short` texts, whole (wrapped, never cut with "...")
    assert shown == {name: entry[1] for name, entry in ROOT_COMMANDS.items()}
    assert shown["install"] == "Install a specific version of a component"
    assert shown["list"] == "List the available TiDB components or versions"


# --- output on a pipe ---------------------------------------------------------------

DOWNLOAD = re.compile(r"download (\S+) (\d+(?:\.\d\d)? (?:B|KiB|MiB)) / "
                      r"(\d+(?:\.\d\d)? (?:B|KiB|MiB))")


def test_one_line_per_download_and_a_summary(tiup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim = RepoSim(tmp_path / "mirror")
    sim.publish("hello", "v0.0.1", files={"hello": script(), "blob": os.urandom(3 << 20)})
    sim.publish("tiny", "v1.0.0", files={"hello": script()})
    assert tiup("mirror", "set", str(sim.path), env=ENV).returncode == 0
    r = tiup("install", "hello", "tiny", env=ENV)
    assert r.returncode == 0, r.output
    lines = r.stderr.splitlines()
    assert len(lines) == 2, r.stderr
    big = DOWNLOAD.fullmatch(lines[0])
    assert big is not None, lines[0]
    assert big.group(1) == f"{sim.path}/hello-v0.0.1-{_plat()}.tar.gz"
    assert big.group(2) == big.group(3) and big.group(3).endswith(" MiB")  # Go: 3.00 MiB
    assert DOWNLOAD.fullmatch(lines[1]) and lines[1].endswith(" B")
    assert re.fullmatch(r"Installed: hello:v0\.0\.1, tiny:v1\.0\.0 \(2 downloads, "
                        r"3\.\d\d MiB\)\n", r.stdout), r.stdout
    r = tiup("install", "hello", "nope", env=ENV)
    assert r.returncode == 1
    assert r.stdout.splitlines()[-1] == \
        "Already installed: hello:v0.0.1; Failed: nope (0 downloads, 0 B)"
    assert "download" not in r.stderr


def _plat() -> str:
    from tiup.client.resolve import current_platform

    return current_platform().replace("/", "-")


def test_informational_messages_on_stdout_warnings_on_stderr(tiup, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                             clean_home: Path) -> None:
    m = tmp_path / "m"
    r = tiup("mirror", "init", str(m))
    assert r.returncode == 0
    # TiUP's log.Infof lines, in its order, on stdout
    assert r.stdout.splitlines() == [
        f'Target path "{m}" does not exist, creating new directory...',
        f'Initializing empty new repository at "{m}", private keys will be stored in '
        f'"{m / "keys"}"...',
        f'New repository initialized at "{m}", private keys are stored in "{m / "keys"}".',
        f"Use `tiup mirror set {m}` command to set and use the new repository."]
    assert r.stderr.startswith("Warning: the private keys in")
    r = tiup("mirror", "genkey")
    assert r.stdout == f"Private key has been written to {clean_home / 'keys' / 'private.json'}\n"
    assert r.stderr == ""
    r = tiup("mirror", "genkey")
    assert r.stdout == "" and r.stderr.startswith("Warning: private key already exists")
    r = tiup("mirror", "--repo", str(m), "grant", "jdoe")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("No --name is given, using jdoe as default\n"
                               "Granted new owner jdoe(jdoe) with public key ")


# --- TIUP_MIRRORS -------------------------------------------------------------------

def test_tiup_mirrors_notice_once_per_run(tiup, installed: RepoSim, tmp_path: Path,  # type: ignore[no-untyped-def]
                                          clean_home: Path) -> None:
    other = RepoSim(tmp_path / "other")
    other.publish("hello", "v0.0.2", files={"hello": script("exit 0")})
    before = (clean_home / "tiup.toml").read_bytes()
    r = tiup("hello:v0.0.2", env={**ENV, "TIUP_MIRRORS": str(other.path)}, subprocess=True)
    assert r.returncode == 0, r.output
    notices = [x for x in r.stderr.splitlines() if "TIUP_MIRRORS" in x]
    assert notices == [
        f"Warning: both the mirror of tiup.toml ({installed.path}) and TIUP_MIRRORS "
        f"({other.path}) are set: using TIUP_MIRRORS for this run only; tiup.toml is not "
        f"changed (run `tiup mirror set {other.path}` to make it the default)"]
    assert (clean_home / "tiup.toml").read_bytes() == before
    r = tiup("mirror", "show", env={"TIUP_MIRRORS": str(other.path)})
    assert r.stdout == f"{other.path}\n" and r.stderr.count("Warning:") == 1
    # the same mirror (another spelling of it), or no tiup.toml: nothing to say
    r = tiup("mirror", "show", env={"TIUP_MIRRORS": f"{installed.path}/"})
    assert r.stderr == ""
    (clean_home / "tiup.toml").unlink()
    assert tiup("mirror", "show", env={"TIUP_MIRRORS": str(other.path)}).stderr == ""


def test_tiup_mirrors_notice_on_the_offline_list_fast_path(  # type: ignore[no-untyped-def]
        tiup, installed: RepoSim, tmp_path: Path) -> None:
    """``tiup --offline list`` is answered before click loads; it still warns once."""
    other = RepoSim(tmp_path / "other")
    other.publish("hello", "v0.0.2", files={"hello": script("exit 0")})
    assert tiup("list", env={**ENV, "TIUP_MIRRORS": str(other.path)}).returncode == 0
    r = tiup("--offline", "list", env={**ENV, "TIUP_MIRRORS": str(other.path)},
             subprocess=True)
    assert r.returncode == 0, r.output
    assert [x for x in r.stderr.splitlines() if "TIUP_MIRRORS" in x] == [
        f"Warning: both the mirror of tiup.toml ({installed.path}) and TIUP_MIRRORS "
        f"({other.path}) are set: using TIUP_MIRRORS for this run only; tiup.toml is not "
        f"changed (run `tiup mirror set {other.path}` to make it the default)"]
    assert "hello" in r.stdout
    # without the variable the fast path answers, and says nothing on stderr
    r = tiup("--offline", "list", env=ENV, subprocess=True)
    assert r.returncode == 0 and r.stderr == "" and "hello" in r.stdout
