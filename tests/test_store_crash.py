"""Crash safety for real: publishers killed with SIGKILL at random moments, and racing."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from publishkit import ENV, NOW, assert_valid, make_tarball
from tiup.keys import generate, save_private_key
from tiup.repository.admin import grant
from tiup.repository.init import init_mirror
from tiup.repository.keyring import load_keyring
from tiup.repository.store import Store

KILLS = 25


@pytest.fixture
def mirror(tmp_path: Path, clean_home: Path) -> Path:
    save_private_key(clean_home / "keys" / "private.json", key := generate())
    m = tmp_path / "m"
    init_mirror(m, NOW)
    with Store(m, now=NOW, keyring=load_keyring([m / "keys"])) as store:
        grant(store, "jdoe", "jdoe", [key.keyinfo()])
        store.commit()
    return m


def _publish_cmd(m: Path, version: str, tarball: Path) -> list[str]:
    return [sys.executable, "-m", "tiup", "mirror", "--repo", str(m), "publish", "hello",
            version, str(tarball), "hello", "--os", "linux", "--arch", "amd64"]


def _hello_version(m: Path) -> tuple[int, list[str]]:
    snap = json.loads((m / "snapshot.json").read_text())["signed"]
    meta = snap["meta"].get("/hello.json")
    if meta is None:
        return 0, []
    doc = json.loads((m / f"{meta['version']}.hello.json").read_text())["signed"]
    return meta["version"], sorted(doc["platforms"]["linux/amd64"])


def test_sigkill_at_random_moments_leaves_old_or_new_state(mirror: Path, tmp_path: Path) -> None:
    env = {**os.environ, **ENV}
    tb = make_tarball(tmp_path / "t.tar.gz", body=os.urandom(200_000))
    start = time.monotonic()
    subprocess.run(_publish_cmd(mirror, "v0.0.1", tb), env=env, check=True,
                   capture_output=True, timeout=60)
    duration = time.monotonic() - start
    rng = random.Random(20260101)
    outcomes = {"old": 0, "new": 0}
    for i in range(KILLS):
        before_version, before_list = _hello_version(mirror)
        version = f"v0.1.{i}"
        proc = subprocess.Popen(_publish_cmd(mirror, version, tb), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.1) * duration)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert_valid(mirror)
        after_version, after_list = _hello_version(mirror)
        if after_version == before_version:
            assert after_list == before_list
            outcomes["old"] += 1
        else:
            assert after_version == before_version + 1
            assert after_list == sorted([*before_list, version])
            outcomes["new"] += 1
    # Leftovers of killed writers are removed by the next writer, under the lock.
    subprocess.run(_publish_cmd(mirror, "v9.0.0", tb), env=env, check=True,
                   capture_output=True, timeout=60)
    assert not list(mirror.glob(".tmp-*"))
    assert_valid(mirror)
    print(f"outcomes after {KILLS} kills: {outcomes}")
    assert outcomes["old"] + outcomes["new"] == KILLS


def test_two_publishers_racing_both_land(mirror: Path, tmp_path: Path) -> None:
    env = {**os.environ, **ENV}
    tb = make_tarball(tmp_path / "t.tar.gz")
    subprocess.run(_publish_cmd(mirror, "v0.0.1", tb), env=env, check=True,
                   capture_output=True, timeout=60)
    for round_ in range(3):
        versions = [f"v1.{round_}.0", f"v2.{round_}.0"]
        procs = [subprocess.Popen(_publish_cmd(mirror, v, tb), env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for v in versions]
        results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
        landed = _hello_version(mirror)[1]
        for (code, err), version in zip(results, versions, strict=True):
            if code == 0:
                assert version in landed
            else:
                assert "locked by another writer" in err or "conflict" in err, err
        assert all(code == 0 for code, _ in results), results
    assert_valid(mirror)


def test_leftovers_are_removed_under_the_lock(mirror: Path) -> None:
    junk = mirror / ".tmp-abc123-snapshot.json"
    junk.write_text("half written")
    with Store(mirror, now=NOW, keyring=load_keyring([mirror / "keys"])) as store:
        assert store.removed_leftovers == [junk.name]
        store.commit()
    assert not junk.exists()
    assert_valid(mirror)
