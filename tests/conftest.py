"""Shared fixtures: a clean TIUP_HOME per test, the ``tiup`` command runner, the TiUP
fixture data.

Layout: ``unit/`` (pure, in-process: no servers, no subprocesses), ``integration/`` (the
CLI end to end over real files, real servers and nginx, subprocesses, kill -9) and
``support/`` (builders, the repository simulator, servers, fault injection), which is put
on ``sys.path`` here so that tests (and ``bench/``) import its modules by name.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))

import keypool
import s3kit
from clirun import Result, run_in_process, run_subprocess
from fixturedata import FIXTURES
from tiup import settings

keypool.install()

__all__ = ["Result"]


@pytest.fixture
def fixture_mirror() -> Path:
    """The real signed TiUP test mirror from ../shared/fixtures (skips where it is absent)."""
    if not FIXTURES.is_dir():
        pytest.skip(f"TiUP fixture data not found at {FIXTURES} (only in the project workspace)")
    return FIXTURES


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An upstream mirror built once per module (``clonekit.build_upstream``): (mirror,
    owner key). Tests take a private copy (``clonekit.copy_upstream``); a module may
    define its own ``template``."""
    from clonekit import build_upstream

    base = tmp_path_factory.mktemp("upstream")
    build_upstream(base / "mirror", base / "owner.json")
    return base / "mirror", base / "owner.json"


@pytest.fixture(autouse=True)
def _lent_keys() -> Iterator[None]:
    """Keys that ``tiup.keys.generate`` hands out during a test go back to the pool after
    it (``support/keypool.py``): unique within the test, reused by later ones."""
    keypool.POOL.begin_test()
    yield
    keypool.POOL.end_test()


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


#: ``tiup(*args, env=..., cwd=..., input=..., timeout=..., subprocess=False)``
Tiup = Callable[..., Result]


@pytest.fixture
def tiup(clean_home: Path, tmp_path: Path) -> Tiup:
    """Run the ``tiup`` command: ``tiup("mirror", "verify", ...)``.

    In this process by default (``support/clirun.py``: same entry point, exit codes and
    output as ``python -m tiup``); ``subprocess=True`` runs a real ``python -m tiup``, for
    what only a process shows: start-up, signals, and running a component. ``env`` is
    added to this test's environment; ``timeout`` bounds a subprocess only.
    """

    def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            input: str | None = None, timeout: float = 120,
            subprocess: bool = False) -> Result:
        full_env = {**os.environ, **(env or {})}
        where = cwd or tmp_path
        if subprocess:
            return run_subprocess(args, env=full_env, cwd=where, input=input, timeout=timeout)
        return run_in_process(args, env=full_env, cwd=where, input=input)

    return run


@pytest.fixture(scope="session")
def rgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[s3kit.RGW]:
    """The real S3 server (Ceph RGW from ../shared/s3), one for the whole run
    (``support/s3kit.py``); skips, saying why, where ../shared is absent."""
    yield from s3kit.shared_rgw(tmp_path_factory)


@pytest.fixture
def bucket(rgw: s3kit.RGW, monkeypatch: pytest.MonkeyPatch) -> s3kit.Bucket:
    """A new bucket on :func:`rgw`, and this test's environment pointed at the server
    (the standard AWS variables; ``tiup`` and boto3 read them)."""
    for key, value in rgw.env.items():
        monkeypatch.setenv(key, value)
    settings.reset_current()
    return s3kit.Bucket(rgw, s3kit.new_bucket(rgw))
