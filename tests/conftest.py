"""Shared fixtures: a clean TIUP_HOME per test, a CLI runner, the TiUP fixture data."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tiup import settings

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures" / "tiup-testdata" / "manifests"

#: A reference time at which every manifest of the TiUP fixture mirror is valid
#: (its 1.root.json and manifests expire in 2031; root v6 expired 2026-07-26).
FIXTURE_NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def fixture_mirror() -> Path:
    """The real signed TiUP test mirror from ../shared/fixtures (skips where it is absent)."""
    if not FIXTURES.is_dir():
        pytest.skip(f"TiUP fixture data not found at {FIXTURES} (only in the project workspace)")
    return FIXTURES


@pytest.fixture(autouse=True)
def clean_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own empty TIUP_HOME and no mirror or proxy settings."""
    home = tmp_path / "tiup-home"
    monkeypatch.setenv("TIUP_HOME", str(home))
    for var in ("TIUP_MIRRORS", "TIUP_TEST_NOW", "TIUP_OFFLINE", "http_proxy", "https_proxy",
                "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    # the process-wide settings (tiup.settings.current) are read again from this
    # test's environment, and never leak into the next test
    settings.reset_current()
    yield home
    settings.reset_current()


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def tiup(clean_home: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run the real ``tiup`` command in a subprocess: ``tiup("mirror", "verify", ...)``."""

    def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            input: str | None = None, timeout: float = 120) -> Result:
        full_env = dict(os.environ)
        full_env.update(env or {})
        proc = subprocess.run(
            [sys.executable, "-m", "tiup", *args],
            capture_output=True, text=True, env=full_env, cwd=cwd or tmp_path,
            input=input, timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run
