"""The in-process ``tiup`` runner (``support/clirun.py``) against a real ``python -m tiup``:
the same exit codes, stdout and stderr, and nothing left behind in this process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clirun import NeedsProcess
from tiup import settings

#: commands whose whole result must not depend on where they run
SAME = [
    ("--version",),
    (),
    ("--help",),
    ("help", "mirror"),
    ("mirror", "--help"),
    ("env", "TIUP_HOME"),
    ("mirror", "verify", "missing-dir"),                 # 2, one "Error:" line
    ("mirror", "--bogus"),                              # 2, click's usage error
    ("--binary",),                                      # 2, the driver's own scan
    ("list",),                                          # 1: the mirror cannot be reached
    ("--offline", "list"),
    ("install", "no/such"),                             # 2: a bad name
    ("mirror", "verify", ".", "--at", "someday"),       # 2
]


@pytest.mark.parametrize("args", SAME, ids=lambda a: " ".join(a) or "(none)")
def test_in_process_result_is_the_subprocess_result(tiup, args: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    env = {"TIUP_MIRRORS": "http://127.0.0.1:9", "TIUP_HTTP_RETRIES": "0"}
    inside = tiup(*args, env=env)
    child = tiup(*args, env=env, subprocess=True)
    assert (inside.returncode, inside.stdout, inside.stderr) == \
        (child.returncode, child.stdout, child.stderr)


def test_exit_codes_cover_ok_failure_and_usage(tiup) -> None:  # type: ignore[no-untyped-def]
    env = {"TIUP_MIRRORS": "http://127.0.0.1:9", "TIUP_HTTP_RETRIES": "0"}
    assert tiup("--version").returncode == 0
    failed = tiup("list", env=env)
    assert failed.returncode == 1
    assert [x for x in failed.stderr.splitlines() if x.startswith("Error: ")], failed.stderr
    usage = tiup("mirror", "verify", "missing-dir")
    assert usage.returncode == 2 and usage.stderr.startswith("Error: "), usage.stderr


def test_nothing_leaks_into_the_test_process(tiup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    before_env, before_cwd = dict(os.environ), os.getcwd()
    before_settings = settings.current()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = tiup("--offline", "--verbose", "list", cwd=elsewhere,
             env={"TIUP_TEST_NOW": "2031-01-01T00:00:00Z", "TIUP_HTTP_SPEED_LIMIT": "7"})
    assert r.returncode in (0, 1), r.output
    assert "TIUP_OFFLINE" not in os.environ  # the CLI sets it for its own run only
    assert dict(os.environ) == before_env and os.getcwd() == before_cwd
    assert settings.current() == before_settings and settings.current().http.speed_limit != 7
    from tiup.cli import output

    assert not output.verbose()


def test_a_component_run_asks_for_a_process(tiup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Running a component spawns a child writing to the real stdout: in process, the runner
    refuses it loudly (the test must pass subprocess=True) instead of losing the output."""
    from reposim import SIM_NOW_TEXT, RepoSim

    sim = RepoSim(tmp_path / "mirror")
    sim.publish("hello", "v1.0.0")
    env = {"TIUP_TEST_NOW": SIM_NOW_TEXT}
    assert tiup("mirror", "set", str(sim.path), env=env).returncode == 0
    assert tiup("install", "hello", env=env).returncode == 0
    with pytest.raises(NeedsProcess):
        tiup("hello", env=env)
    r = tiup("hello", env=env, subprocess=True)
    assert r.returncode == 0 and r.stdout == "hello v1.0.0\n", r.output
