"""Crash safety for real: publishers killed with SIGKILL at each step of a write, and racing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import killpoints
from publishkit import ENV, NOW, assert_valid, audit, copy_mirror, make_tarball
from tiup.keys import generate, save_private_key
from tiup.repository.admin import grant
from tiup.repository.init import init_mirror
from tiup.repository.keyring import load_keyring
from tiup.repository.store import Store


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


def _kill_points(steps: list[str]) -> list[tuple[str, int, str]]:
    """Each traced step as (stop glob, n-th match, the step) for ``killpoints.start``; the
    kind alone picks it, so leftover names (random) and removals do not matter."""
    points, seen = [], Counter[str]()
    for step in steps:
        kind = step.split(" ", 1)[0]
        seen[kind] += 1
        points.append((kind if kind == "exit" else f"{kind} *", seen[kind], step))
    return points


def _same_step(a: str, b: str) -> bool:
    return re.sub(r"\.tmp-[0-9a-f]+-", ".tmp-", a) == re.sub(r"\.tmp-[0-9a-f]+-", ".tmp-", b)


def test_sigkill_at_every_step_leaves_old_or_new_state(mirror: Path, tmp_path: Path,
                                                       clean_home: Path) -> None:
    """A publisher killed before each of its file-system steps in turn (and once more when
    done, before it exits) leaves the old state or the new one, both valid, except in the
    one window between the renames of snapshot.json and timestamp.json, which the next
    writer completes; the next writer also removes the leftovers under the lock and
    publishes.

    The kills land exactly there however busy the machine (``killpoints``), each on its
    own copy of the mirror, so every step of the write transaction is covered.
    """
    env = {**os.environ, **ENV}
    tb = make_tarball(tmp_path / "t.tar.gz", body=os.urandom(200_000))
    subprocess.run(_publish_cmd(mirror, "v0.0.1", tb), env=env, check=True,
                   capture_output=True, timeout=60)
    version = "v0.1.0"
    traced = copy_mirror(mirror, tmp_path / "traced")
    steps = killpoints.trace(_publish_cmd(traced, version, tb)[3:], root=traced, env=env,
                             log=tmp_path / "steps")
    assert any(s.endswith("-> timestamp.json") for s in steps), steps  # the commit point
    assert steps[-1] == "exit", steps
    before = _hello_version(mirror)
    new = (before[0] + 1, sorted([*before[1], version]))
    outcomes: dict[str, list[str]] = {"old": [], "interrupted": [], "new": []}
    damaged: list[str] = []
    for i, (stop, nth, step) in enumerate(_kill_points(steps)):
        m = copy_mirror(mirror, tmp_path / f"m{i}")
        with killpoints.start(_publish_cmd(m, version, tb)[3:], root=m, stop=stop, nth=nth,
                              env=env, marker=tmp_path / f"stopped-{i}") as child:
            assert _same_step(child.wait_stopped(), step)
            child.kill()
        problems = audit(m)
        after = _hello_version(m)
        if problems:
            # Only one window may show: snapshot.json renamed, timestamp.json not yet
            # (two unversioned files cannot change in one step). verify says so, and the
            # next write completes the interrupted one.
            if not all("next write completes it" in p for p in problems):
                damaged.append(f"killed before `{step}`: {problems[0]}")
                continue
            assert after == new, (step, after)
            outcomes["interrupted"].append(step)
        else:
            assert after in (before, new), (step, after)
            outcomes["old" if after == before else "new"].append(step)
        # Leftovers of the killed writer are removed by the next writer, under the lock.
        r = subprocess.run(_publish_cmd(m, "v9.0.0", tb), env=env, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, (step, r.stderr)
        assert not list(m.glob(".tmp-*")), step
        assert_valid(m)
        assert version in _hello_version(m)[1] or after == before, step
    assert damaged == [], damaged
    # old up to the rename of snapshot.json (the kill lands before it); between it and the
    # rename of timestamp.json the write is interrupted and completed by the next one;
    # new after it
    snap = next(i for i, s in enumerate(steps) if s.endswith("-> snapshot.json"))
    commit = next(i for i, s in enumerate(steps) if s.endswith("-> timestamp.json"))
    assert outcomes == {"old": steps[:snap + 1], "interrupted": steps[snap + 1:commit + 1],
                        "new": steps[commit + 1:]}


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
