"""Air-gap bundles (issue 15): upstream → clone → full bundle → import into an empty
directory → clients install; two new upstream versions → re-clone → export ``--since`` the
inside's ``timestamp.json`` → only those files → import → clients update. Then the
refusals, each leaving the target byte for byte as it was, hostile tars, and parts."""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from clonekit import copy_upstream, publish_version
from publishkit import ENV, assert_valid

CLONE = ("--full", "-o", "linux", "-a", "amd64")
PAYLOAD = 1024 * 1024  # uncompressible bytes per new tarball: the size check is meaningful


SIGNING_SIDE = ("keys", ".tiup-clone", ".tiup-mirror.toml")


def tree(directory: Path, skip: tuple[str, ...] = SIGNING_SIDE) -> dict[str, bytes]:
    """Every file under ``directory`` (relative name → bytes), except ``lock`` and what only
    the signing side has: its keys, its clone work directory, its re-signing lifetimes."""
    out = {}
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if path.is_dir() or rel == "lock" or rel.split("/")[0] in skip:
            continue
        out[rel] = path.read_bytes()
    return out


def members(bundle: Path) -> list[str]:
    with tarfile.open(bundle) as tar:
        return tar.getnames()


def fingerprint(mirror: Path) -> str:
    return hashlib.sha256((mirror / "root.json").read_bytes()).hexdigest()


def _clone(tiup, upstream: Path, target: Path) -> None:
    r = tiup("mirror", "clone", str(target), *CLONE, "--source", str(upstream), env=ENV)
    assert r.returncode == 0, r.output


def test_the_whole_loop(tiup, template: tuple[Path, Path], tmp_path: Path) -> None:
    upstream, key = copy_upstream(template, tmp_path / "up")
    outside, inside = tmp_path / "outside", tmp_path / "inside"
    _clone(tiup, upstream, outside)

    # a full bundle; a first import pins trust by the root's fingerprint (fail closed)
    full = tmp_path / "full.tar"
    r = tiup("mirror", "export", str(outside), str(full), env=ENV)
    assert r.returncode == 0, r.output
    assert fingerprint(outside) in r.output
    r = tiup("mirror", "import", str(full), "--repo", str(inside), env=ENV)
    assert r.returncode != 0 and "Traceback" not in r.output
    assert "nothing pins the trust" in r.output and fingerprint(outside) in r.output
    assert not inside.exists()
    r = tiup("mirror", "import", str(full), "--repo", str(inside),
             "--fingerprint", fingerprint(outside), env=ENV)
    assert r.returncode == 0, r.output
    assert tree(inside) == tree(outside)
    assert not (inside / "keys").exists()
    assert_valid(inside)

    # a client inside installs from the imported mirror
    assert tiup("mirror", "set", str(inside), env=ENV).returncode == 0
    r = tiup("install", "tidb:v8.5.1", env=ENV)
    assert r.returncode == 0, r.output

    # upstream publishes two new versions; the connected side re-clones (same keys)
    new = [publish_version(upstream, key, "tidb", "v8.5.3", "linux/amd64",
                           payload=hashlib.shake_256(b"a").digest(PAYLOAD)),
           publish_version(upstream, key, "tikv", "v8.5.3", "linux/amd64",
                           payload=hashlib.shake_256(b"b").digest(PAYLOAD))]
    _clone(tiup, upstream, outside)
    changed = {n for n, data in tree(outside).items() if tree(inside).get(n) != data}
    assert set(new) <= changed

    # the inside's timestamp.json is carried out; the bundle holds exactly what changed
    ts = tmp_path / "carried" / "timestamp.json"
    ts.parent.mkdir()
    shutil.copy(inside / "timestamp.json", ts)
    update = tmp_path / "update.tar"
    r = tiup("mirror", "export", str(outside), str(update), "--since", str(ts), "--dry-run",
             env=ENV)
    assert r.returncode == 0, r.output
    assert "2 tarballs" in r.output and not update.exists()
    r = tiup("mirror", "export", str(outside), str(update), "--since", str(ts), env=ENV)
    assert r.returncode == 0, r.output
    names = members(update)
    assert names[0] == "bundle.json"
    assert set(names[1:]) == changed, (sorted(names), sorted(changed))
    assert sorted(n for n in names if n.endswith(".tar.gz")) == sorted(new)
    payload = sum((outside / n).stat().st_size for n in changed)
    assert payload <= update.stat().st_size <= payload * 1.05

    r = tiup("mirror", "import", str(update), "--repo", str(inside), env=ENV)
    assert r.returncode == 0, r.output
    assert "2 components changed (tidb, tikv), 2 new versions, 2 tarballs" in r.output
    assert tree(inside) == tree(outside)
    for side in (inside, outside):
        r = tiup("mirror", "verify", str(side), env=ENV)
        assert r.returncode == 0, r.output
    # the same bundle again: nothing to do, nothing touched
    before = tree(inside)
    r = tiup("mirror", "import", str(update), "--repo", str(inside), env=ENV)
    assert r.returncode == 0 and "nothing to do" in r.output, r.output
    assert tree(inside) == before

    # clients inside just update and run the new version
    r = tiup("update", "tidb", env=ENV)
    assert r.returncode == 0, r.output
    r = tiup("tidb:v8.5.3", env=ENV, subprocess=True)
    assert r.returncode == 0 and r.stdout.strip() == "tidb v8.5.3", r.output


# ------------------------------------------------------------------ refusals
@dataclass
class World:
    """The connected side (``outside``, a clone of upstream) and an air-gapped mirror
    (``inside``) imported from ``full.tar``; then ``update.tar`` (one new version, --since
    the inside's timestamp) and ``update2.tar`` (one more, --since the state update.tar
    brings); ``other.tar``: a full bundle of another clone (other keys)."""

    base: Path
    outside: Path
    inside: Path
    full: Path
    update: Path
    update2: Path
    other: Path
    root_sha: str


@pytest.fixture(scope="module")
def world(template: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> World:
    import os

    from clirun import run_in_process

    # built once per worker: --dist worksteal may tear a module fixture down and set it up
    # again when a worker's tests interleave with other modules'
    base = tmp_path_factory.getbasetemp() / "bundle-world"
    done = World(base, base / "outside", base / "inside", base / "full.tar",
                 base / "update.tar", base / "update2.tar", base / "other.tar", "")
    if (base / "ready").exists():
        done.root_sha = (base / "ready").read_text()
        return done
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir()
    env = {**os.environ, **ENV, "TIUP_HOME": str(base / "home")}

    def tiup(*args: str) -> str:
        r = run_in_process(args, env=env, cwd=base, input=None)
        assert r.returncode == 0, r.output
        return r.output

    upstream, key = copy_upstream(template, base / "up")
    outside, inside = base / "outside", base / "inside"
    tiup("mirror", "clone", str(outside), *CLONE, "--source", str(upstream))
    tiup("mirror", "export", str(outside), str(base / "full.tar"))
    tiup("mirror", "import", str(base / "full.tar"), "--repo", str(inside), "--fingerprint",
         fingerprint(outside))
    bundles = []
    state = base / "state"
    shutil.copytree(inside, state)
    for i, version in enumerate(("v8.5.3", "v8.5.4")):
        publish_version(upstream, key, "pd", version, "linux/amd64",
                        payload=hashlib.shake_256(version.encode()).digest(PAYLOAD // 2))
        tiup("mirror", "clone", str(outside), *CLONE, "--source", str(upstream))
        bundle = base / ("update.tar" if i == 0 else "update2.tar")
        tiup("mirror", "export", str(outside), str(bundle), "--since",
             str(state / "timestamp.json"))
        tiup("mirror", "import", str(bundle), "--repo", str(state))
        bundles.append(bundle)
    other = base / "other"
    tiup("mirror", "clone", str(other), *CLONE, "--source", str(upstream))
    tiup("mirror", "export", str(other), str(base / "other.tar"))
    done.root_sha = fingerprint(outside)
    assert bundles == [done.update, done.update2]
    (base / "ready").write_text(done.root_sha)
    return done


def _import(bundle: Path | str, target: Path, **kw: object):  # type: ignore[no-untyped-def]
    from publishkit import NOW
    from tiup.repository.bundle.importer import import_bundle

    kw.setdefault("now", NOW)
    return import_bundle(str(bundle), target, **kw)  # type: ignore[arg-type]


def _refused(bundle: Path, target: Path, code: str, **kw: object) -> str:
    from tiup.errors import BundleError

    before = tree(target, skip=())
    with pytest.raises(BundleError) as info:
        _import(bundle, target, **kw)
    assert info.value.code == code, info.value.message
    assert tree(target, skip=()) == before
    assert not list(target.glob(".tmp-*"))
    return info.value.message


@pytest.fixture
def inside(world: World, tmp_path: Path) -> Path:
    return Path(shutil.copytree(world.inside, tmp_path / "inside"))


def test_refuses_a_bundle_for_another_mirror(world: World, inside: Path) -> None:
    msg = _refused(world.other, inside, "foreign")
    assert "another mirror" in msg


def test_refuses_a_replayed_old_bundle(world: World, inside: Path) -> None:
    _import(world.update, inside)
    msg = _refused(world.full, inside, "rollback")
    assert "old bundle" in msg
    # and the bundle it already holds is nothing to do
    assert _import(world.update, inside).up_to_date


def test_refuses_a_gap(world: World, inside: Path, tiup) -> None:
    msg = _refused(world.update2, inside, "gap")
    assert "gap" in msg
    r = tiup("mirror", "import", str(world.update2), "--repo", str(inside), env=ENV)
    assert r.returncode == 1 and "Traceback" not in r.output
    assert "--since timestamp.json" in r.output  # which bundle is needed
    _import(world.update, inside)
    _import(world.update2, inside)
    assert tree(inside) == tree(world.outside)


def _rewrite(bundle: Path, out: Path, change: dict[str, bytes] | None = None,
             extra: list[tarfile.TarInfo] | None = None, drop: str | None = None) -> Path:
    """A copy of ``bundle`` with members replaced, added or dropped (the index untouched)."""
    with tarfile.open(bundle) as src, tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as dst:
        for m in src.getmembers():
            if m.name == drop:
                continue
            data = src.extractfile(m).read()  # type: ignore[union-attr]
            data = (change or {}).get(m.name, data)
            m.size = len(data)
            dst.addfile(m, io.BytesIO(data))
        for info in extra or []:
            dst.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return out


def test_refuses_a_tampered_tarball(world: World, inside: Path, tmp_path: Path) -> None:
    with tarfile.open(world.update) as tar:
        name = next(n for n in tar.getnames() if n.endswith(".tar.gz"))
        data = bytearray(tar.extractfile(name).read())  # type: ignore[union-attr]
    data[len(data) // 2] ^= 1
    bad = _rewrite(world.update, tmp_path / "bad.tar", {name: bytes(data)})
    msg = _refused(bad, inside, "tampered")
    assert name in msg


def test_refuses_tampered_manifests_and_hostile_members(world: World, inside: Path,
                                                        tmp_path: Path) -> None:
    with tarfile.open(world.update) as tar:
        snap = tar.extractfile("snapshot.json").read()  # type: ignore[union-attr]
    forged = snap.replace(b'"version":0', b'"version":0 ')
    _refused(_rewrite(world.update, tmp_path / "a.tar", {"snapshot.json": forged}), inside,
             "tampered")
    link = tarfile.TarInfo("evil.tar.gz")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    _refused(_rewrite(world.update, tmp_path / "b.tar", extra=[link]), inside, "malformed")
    up = tarfile.TarInfo("../escape.tar.gz")
    up.size = 3
    _refused(_rewrite(world.update, tmp_path / "c.tar", extra=[up]), inside, "malformed")
    dev = tarfile.TarInfo("null.tar.gz")
    dev.type = tarfile.CHRTYPE
    _refused(_rewrite(world.update, tmp_path / "d.tar", extra=[dev]), inside, "malformed")
    truncated = _rewrite(world.update, tmp_path / "e.tar",
                         drop=next(n for n in members(world.update) if n.endswith(".tar.gz")))
    _refused(truncated, inside, "malformed")
    not_tar = tmp_path / "f.tar"
    not_tar.write_bytes(b"hello" * 300)
    _refused(not_tar, inside, "malformed")


def test_first_import_needs_a_trust_anchor(world: World, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    msg = _refused(world.full, empty, "untrusted")
    assert world.root_sha in msg
    _refused(world.full, empty, "untrusted", fingerprint="0" * 64)
    _refused(world.full, empty, "untrusted", trust_root=(world.base / "other" /
                                                         "root.json").read_bytes())
    _refused(world.update, empty, "gap", fingerprint=world.root_sha)
    (empty / "notes.txt").write_text("mine")
    _refused(world.full, empty, "not-empty", fingerprint=world.root_sha)
    (empty / "notes.txt").unlink()
    _import(world.full, empty, trust_root=(world.outside / "root.json").read_bytes())
    assert_valid(empty)


def test_parts_are_reassembled_and_each_checked(world: World, inside: Path, tiup,
                                                tmp_path: Path) -> None:
    bundle = tmp_path / "parts" / "full.tar"
    bundle.parent.mkdir()
    r = tiup("mirror", "export", str(world.outside), str(bundle), "--part-size", "256KiB",
             env=ENV, cwd=tmp_path)
    assert r.returncode == 0, r.output
    parts = sorted(p.name for p in bundle.parent.iterdir())
    assert parts[-1] == "full.tar.parts.json" and len(parts) >= 5, parts
    assert all((bundle.parent / p).stat().st_size == 256 * 1024 for p in parts[:-2])
    single = tmp_path / "single.tar"
    r = tiup("mirror", "export", str(world.outside), str(single), env=ENV)
    assert r.returncode == 0, r.output
    # the parts are byte slices of the one tar stream
    assert b"".join((bundle.parent / p).read_bytes() for p in parts[:-1]) == single.read_bytes()
    fresh = tmp_path / "fresh"
    _import(bundle, fresh, fingerprint=world.root_sha)
    assert tree(fresh) == tree(world.outside)
    # one damaged part: refused, named
    part = bundle.parent / parts[1]
    data = bytearray(part.read_bytes())
    data[100] ^= 1
    part.write_bytes(bytes(data))
    fresh2 = tmp_path / "fresh2"
    from tiup.errors import BundleError

    with pytest.raises(BundleError) as info:
        _import(str(bundle) + ".parts.json", fresh2, fingerprint=world.root_sha)
    assert info.value.code == "tampered" and parts[1] in info.value.message
    assert not fresh2.exists()


# ------------------------------------------------------------------ SIGKILL
def _kill_points(steps: list[str]) -> list[tuple[str, int, str]]:
    """Each traced step as (stop glob, n-th match of its kind, the step)."""
    from collections import Counter

    points, seen = [], Counter[str]()
    for step in steps:
        kind = step.split(" ", 1)[0]
        seen[kind] += 1
        points.append((kind if kind == "exit" else f"{kind} *", seen[kind], step))
    return points


def _kill_and_rerun(world: World, bundle: Path, make_target, args: tuple[str, ...],
                    tmp_path: Path, pick, expected: dict[str, bytes]
                    ) -> dict[str, int]:  # type: ignore[no-untyped-def]
    import os
    import re

    import killpoints
    from publishkit import audit

    env = {**os.environ, **ENV}
    traced = make_target(tmp_path / "traced")
    steps = killpoints.trace(["mirror", "import", str(bundle), "--repo", str(traced), *args],
                             root=traced, env=env, log=tmp_path / "steps")
    assert any(s.endswith("-> timestamp.json") for s in steps), steps
    outcomes = {"old": 0, "interrupted": 0, "new": 0, "not yet a mirror": 0}
    points = pick(_kill_points(steps))
    assert len(points) >= 5
    for i, (stop, nth, step) in enumerate(points):
        m = make_target(tmp_path / f"m{i}")
        before = tree(m) if (m / "root.json").exists() else None
        with killpoints.start(["mirror", "import", str(bundle), "--repo", str(m), *args],
                              root=m, stop=stop, nth=nth, env=env,
                              marker=tmp_path / f"stopped-{i}") as child:
            got = child.wait_stopped()
            assert re.sub(r"\.tmp-\S+", "", got) == re.sub(r"\.tmp-\S+", "", step)
            child.kill()
        if not (m / "root.json").exists():
            outcomes["not yet a mirror"] += 1  # a first import: root.json is written last
        else:
            problems = audit(m)
            if problems:  # only the window between the renames of snapshot and timestamp
                assert all("next write completes it" in p for p in problems), (step, problems)
                outcomes["interrupted"] += 1
            else:
                now = tree(m)
                # local_install.sh (not signed: written by tiup itself) follows the commit
                clean = {k: v for k, v in now.items() if not k.startswith(".tmp-")
                         and k != "local_install.sh"}
                clean["local_install.sh"] = expected["local_install.sh"]
                outcomes["old" if before is not None and now.get("timestamp.json") ==
                         before["timestamp.json"] else "new"] += 1
                assert clean == expected or now.get("timestamp.json") == (
                    before or {}).get("timestamp.json"), step
        # the same import again completes it
        _import(bundle, m, fingerprint=world.root_sha)
        assert not list(m.glob(".tmp-*")), step
        assert_valid(m)
        assert tree(m) == expected, step
    return outcomes


def test_sigkill_during_an_incremental_import(world: World, tmp_path: Path) -> None:
    """Killed before every file-system step of an import (and when done): the target is
    its old state, or the interrupted window the re-run completes, or the new state; the
    same import run again completes it and the mirror verifies."""
    state = tmp_path / "at-update"
    shutil.copytree(world.inside, state)
    _import(world.update, state)

    def target(where: Path) -> Path:
        return Path(shutil.copytree(state, where))

    outcomes = _kill_and_rerun(world, world.update2, target, (), tmp_path, lambda p: p,
                               tree(world.outside))
    assert sum(outcomes.values()) >= 10, outcomes
    assert outcomes["old"] and outcomes["new"] and outcomes["interrupted"], outcomes


def test_sigkill_during_a_first_import(world: World, tmp_path: Path) -> None:
    import random

    def target(where: Path) -> Path:
        where.mkdir(parents=True)
        return where

    def pick(points: list[tuple[str, int, str]]) -> list[tuple[str, int, str]]:
        # the commit's last renames (snapshot, timestamp, root.json), and random others
        renames = [p for p in points if p[0] == "rename *"]
        last = renames[-4:]
        others = [p for p in points if p not in last]
        return last + random.Random(15).sample(others, min(6, len(others)))

    outcomes = _kill_and_rerun(world, world.full, target,
                               ("--fingerprint", world.root_sha), tmp_path / "first", pick,
                               tree(world.inside))
    assert outcomes["not yet a mirror"] and outcomes["new"], outcomes


# ------------------------------------------------------------------ the forms of --since
def test_since_forms_and_the_export_history(world: World, tiup, tmp_path: Path) -> None:
    history = world.base / "home" / "export-history"
    import json

    inside = world.inside
    json_version = json.loads((inside / "timestamp.json").read_bytes())["signed"]["version"]
    listings = {}
    for name, since, hist in (("file", str(inside / "timestamp.json"), history),
                              ("number", str(json_version), history),
                              ("snapshot", str(inside / "snapshot.json"), tmp_path / "none")):
        out = tmp_path / f"{name}.tar"
        r = tiup("mirror", "export", str(world.outside), str(out), "--since", since,
                 "--history", str(hist), env=ENV)
        assert r.returncode == 0, r.output
        listings[name] = members(out)
    assert listings["file"] == listings["number"] == listings["snapshot"]
    fresh = Path(shutil.copytree(inside, tmp_path / "target"))
    _import(tmp_path / "number.tar", fresh)
    assert tree(fresh) == tree(world.outside)

    # no record of that state here: a clear refusal naming the way out
    r = tiup("mirror", "export", str(world.outside), str(tmp_path / "x.tar"), "--since",
             str(inside / "timestamp.json"), "--history", str(tmp_path / "none"), env=ENV)
    assert r.returncode == 1 and "Traceback" not in r.output
    assert "snapshot.json" in r.output and not (tmp_path / "x.tar").exists()
    # another mirror's timestamp
    r = tiup("mirror", "export", str(world.outside), str(tmp_path / "y.tar"), "--since",
             str(world.base / "other" / "timestamp.json"), env=ENV)
    assert r.returncode == 1 and "another mirror" in r.output, r.output
    # the target is up to date: nothing to export
    r = tiup("mirror", "export", str(world.outside), str(tmp_path / "z.tar"), "--since",
             str(world.outside / "timestamp.json"), env=ENV)
    assert r.returncode == 0 and "nothing to export" in r.output
    assert not (tmp_path / "z.tar").exists()


def test_a_bundle_streams_through_a_pipe(world: World, tmp_path: Path) -> None:
    """``export … -`` into ``import -``: no file in between."""
    import os
    import subprocess
    import sys

    env = {**os.environ, **ENV, "TIUP_HOME": str(tmp_path / "home")}
    target = Path(shutil.copytree(world.inside, tmp_path / "target"))
    exporter = subprocess.Popen(
        [sys.executable, "-m", "tiup", "mirror", "export", str(world.outside), "-", "--since",
         str(target / "snapshot.json")], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    importer = subprocess.run(
        [sys.executable, "-m", "tiup", "mirror", "import", "-", "--repo", str(target)],
        env=env, stdin=exporter.stdout, capture_output=True, text=True, timeout=120)
    assert exporter.stdout is not None
    exporter.stdout.close()
    assert exporter.wait(timeout=120) == 0
    assert importer.returncode == 0, importer.stderr
    assert tree(target) == tree(world.outside)


def test_large_tarballs_stream_in_bounded_memory(tmp_path: Path) -> None:
    """A 48 MiB tarball goes out and in through 1 MiB blocks: the peak of Python
    allocations stays a few MiB, and progress is reported up to the total."""
    import importlib.util
    import tracemalloc
    from datetime import UTC, datetime

    # bench/ is not put on sys.path: its scripts' names (e.g. hsm_signing) must never
    # shadow a library for the tests that run after this one in the same worker
    spec = importlib.util.spec_from_file_location(
        "bench_mirrorgen", Path(__file__).resolve().parents[2] / "bench" / "mirrorgen.py")
    assert spec is not None and spec.loader is not None
    mirrorgen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mirrorgen)
    build_mirror = mirrorgen.build_mirror

    from tiup.repository.bundle.export import plan_export, write_bundle

    mirror = tmp_path / "m"
    build_mirror(mirror, {"big": [48 * 1024 * 1024]}, now=datetime(2026, 1, 1, tzinfo=UTC))
    seen: list[tuple[int, int]] = []
    tracemalloc.start()
    try:
        write_bundle(plan_export(mirror), tmp_path / "b.tar")
        exported = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        _import(tmp_path / "b.tar", tmp_path / "in", fingerprint=fingerprint(mirror),
                progress=lambda done, total: seen.append((done, total)))
        imported = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert exported < 8 * 1024 * 1024 and imported < 8 * 1024 * 1024, (exported, imported)
    assert seen[-1] == (48 * 1024 * 1024, 48 * 1024 * 1024) and len(seen) >= 48
    assert [d for d, _t in seen] == sorted(d for d, _t in seen)
    assert_valid(tmp_path / "in")


def test_unreferenced_leftovers_are_replaced(world: World, inside: Path) -> None:
    """A versioned manifest no manifest of the target names (what a writer that died left)
    is replaced by the bundle's, as the store's own commit replaces it."""
    name = next(n for n in members(world.update) if n.endswith(".pd.json"))
    (inside / name).write_bytes(b"left over")
    _import(world.update, inside)
    assert_valid(inside)
    with tarfile.open(world.update) as tar:
        assert (inside / name).read_bytes() == tar.extractfile(name).read()  # type: ignore[union-attr]


def test_an_expired_bundle_lands_with_a_warning(world: World, inside: Path) -> None:
    """Expiry is the clients' check: authentic files still land, and the report says it."""
    from datetime import UTC, datetime

    report = _import(world.update, inside, now=datetime(2999, 1, 1, tzinfo=UTC))
    assert any("timestamp.json expired" in w for w in report.warnings), report.warnings
    assert not _import(world.update2, inside).warnings


def test_long_exports_and_imports_log_their_progress(world: World, tiup, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """On a pipe (as in CI or a log), export and import print a line per tenth of the
    tarball bytes; ``--no-progress`` silences them (threshold lowered to this world's
    size: the real one is 64 MiB)."""
    from tiup.cli import output

    monkeypatch.setattr(output, "LOG_PROGRESS_MIN", 1)
    bundle = tmp_path / "full.tar"
    r = tiup("mirror", "export", str(world.outside), str(bundle), env=ENV)
    assert r.returncode == 0, r.output
    exported = [x for x in r.stderr.splitlines() if x.startswith("exporting ")]
    assert exported and exported[-1].startswith("exporting 100% (")
    r = tiup("mirror", "import", str(bundle), "--repo", str(tmp_path / "in"),
             "--fingerprint", world.root_sha, env=ENV)
    assert r.returncode == 0, r.output
    imported = [x for x in r.stderr.splitlines() if x.startswith("importing tarballs ")]
    assert imported and imported[-1].startswith("importing tarballs 100% (")
    percents = [int(x.split()[2].rstrip("%")) for x in imported]
    assert percents == sorted(set(percents))
    r = tiup("--no-progress", "mirror", "export", str(world.outside), str(tmp_path / "q.tar"),
             env=ENV)
    assert r.returncode == 0 and "exporting " not in r.stderr, r.output
