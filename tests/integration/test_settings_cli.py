"""tiup.settings seen from a process: start-up imports, and a bad variable reported by the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ENV = {"TIUP_MIRRORS": "", "TIUP_TEST_NOW": "2030-01-01T00:00:00Z"}


def test_importing_settings_is_light() -> None:
    """settings.py imports only the standard library and tiup.errors (CLI start-up)."""
    code = ("import sys; before = set(sys.modules); import tiup.settings; "
            "print(sorted(m for m in set(sys.modules) - before if m.startswith('tiup')"
            " or m.split('.')[0] in ('urllib', 'http', 'json', 'ssl', 'socket', 'email')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "['tiup', 'tiup.errors', 'tiup.settings']"


def test_cli_reports_a_bad_variable_in_one_line_with_exit_2(tiup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = tiup("--version", env={**ENV, "TIUP_HTTP_RETRIES": "lots"}, subprocess=True)
    assert r.returncode == 0, r.output  # read only when a command needs it
    r = tiup("list", env={**ENV, "TIUP_MIRRORS": "http://127.0.0.1:9",
                          "TIUP_HTTP_RETRIES": "lots"})
    assert r.returncode == 2, r.output
    assert "Traceback" not in r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert errors == ["Error: TIUP_HTTP_RETRIES='lots' is not an integer"], r.stderr
