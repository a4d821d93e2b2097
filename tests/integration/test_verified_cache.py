"""The verified-cache record: ``tiup --offline list`` from digests of manifests verified
earlier, never from bytes that were not (a changed file, or a record made under another
trust anchor, takes the full path, which checks signatures)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from reposim import SIM_NOW_TEXT, RepoSim

ENV = {"TIUP_TEST_NOW": SIM_NOW_TEXT}


def _imports_of(home: Path, *args: str) -> set[str]:
    code = ("import sys, runpy; sys.argv = ['tiup', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('tiup', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "sys.stderr.write(repr(sorted(sys.modules)))\n")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={**os.environ, **ENV, "TIUP_HOME": str(home)})
    return set(eval(proc.stderr.strip().splitlines()[-1]))


def _setup(tiup, tmp_path: Path) -> tuple[RepoSim, Path]:  # type: ignore[no-untyped-def]
    sim = RepoSim(tmp_path / "mirror")
    sim.publish("hello", "v1.0.0", description="say hello")
    sim.publish("other", "v2.0.0", description="another one")
    assert tiup("mirror", "set", str(sim.path), env=ENV).returncode == 0
    r = tiup("list", env=ENV)
    assert r.returncode == 0 and "say hello" in r.stdout, r.output
    return sim, tmp_path / "tiup-home"


def test_offline_list_from_the_record_matches_the_verified_list(tiup, tmp_path: Path) -> None:
    _sim, home = _setup(tiup, tmp_path)
    record = json.loads((home / "manifests" / ".verified.json").read_text())
    assert set(record["files"]) >= {"index.json", "hello.json", "other.json"}
    fast = tiup("--offline", "list", env=ENV, subprocess=True)
    assert fast.returncode == 0
    (home / "manifests" / ".verified.json").unlink()  # no record: the full, verifying path
    slow = tiup("--offline", "list", env=ENV, subprocess=True)
    assert slow.returncode == 0
    assert fast.stdout == slow.stdout and "say hello" in fast.stdout


def test_the_fast_path_loads_neither_click_nor_cryptography(tiup, tmp_path: Path) -> None:
    _sim, home = _setup(tiup, tmp_path)
    loaded = _imports_of(home, "--offline", "list")
    assert not {m for m in loaded if m.split(".")[0] in ("click", "cryptography", "urllib3")}
    (home / "manifests" / ".verified.json").unlink()
    assert "cryptography" in {m.split(".")[0] for m in _imports_of(home, "--offline", "list")}


def test_a_changed_cache_file_is_verified_again_and_refused(tiup, tmp_path: Path) -> None:
    _sim, home = _setup(tiup, tmp_path)
    cached = home / "manifests" / "hello.json"
    doc = json.loads(cached.read_bytes())
    doc["signed"]["description"] = "pwned"
    cached.write_text(json.dumps(doc))
    r = tiup("--offline", "list", env=ENV, subprocess=True)
    assert "pwned" not in r.stdout, r.output
    assert "other" in r.stdout  # the intact component is still listed


def test_a_record_from_another_anchor_is_ignored(tiup, tmp_path: Path) -> None:
    _sim, home = _setup(tiup, tmp_path)
    record_path = home / "manifests" / ".verified.json"
    record = json.loads(record_path.read_text())
    cached = home / "manifests" / "hello.json"
    doc = json.loads(cached.read_bytes())
    doc["signed"]["description"] = "pwned"
    forged = json.dumps(doc).encode()
    cached.write_bytes(forged)
    record["files"]["hello.json"] = hashlib.sha256(forged).hexdigest()
    record["anchor"] = "0" * 64  # a record made under some other root
    record_path.write_text(json.dumps(record))
    r = tiup("--offline", "list", env=ENV, subprocess=True)
    assert "pwned" not in r.stdout, r.output


def test_mirror_set_drops_the_record(tiup, tmp_path: Path) -> None:
    sim, home = _setup(tiup, tmp_path)
    assert (home / "manifests" / ".verified.json").exists()
    assert tiup("mirror", "set", str(sim.path), env=ENV).returncode == 0
    assert not (home / "manifests" / ".verified.json").exists()
