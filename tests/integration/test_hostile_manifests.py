"""D2 and D4: names and shapes that come from a mirror are validated where a manifest is
parsed, by the one rule set of ``tiup.manifest.names``. A validly signed manifest with a
component id ``../bin/root``, a NUL byte, an unsafe version, platform, url or entry, or JSON
nested a thousand levels deep is refused with one clear line: no traceback, no file written
outside its place, nothing cached."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from reposim import SIM_NOW_TEXT, RepoSim
from tiup.client.resolve import current_platform
from tiup.manifest.models import ComponentItem, VersionItem

ENV = {"TIUP_TEST_NOW": SIM_NOW_TEXT}
DEEP = 1000


def _index_entry(comp_id: str) -> Callable[[RepoSim], None]:
    def act(sim: RepoSim) -> None:
        assert sim.index is not None
        sim.index.components[comp_id] = ComponentItem(owner="alice", url=f"/{comp_id}.json")
        sim.write_index(bump=True)
        sim.commit()
    return act


def _index_url(url: str) -> Callable[[RepoSim], None]:
    def act(sim: RepoSim) -> None:
        assert sim.index is not None
        sim.index.components["hello"].url = url
        sim.write_index(bump=True)
        sim.commit()
    return act


def _item(**change: str) -> Callable[[RepoSim], None]:
    def act(sim: RepoSim) -> None:
        comp = sim.components["hello"]
        plat = current_platform()
        versions = comp.platforms[plat]
        ver = change.pop("version", None)
        item: VersionItem = versions["v1.0.0"]
        for key, value in change.items():
            setattr(item, key, value)
        if ver is not None:
            versions[ver] = versions.pop("v1.0.0")
        if "plat" in change:
            comp.platforms[change["plat"]] = comp.platforms.pop(plat)
        comp.version += 1
        sim.write_component("hello")
        sim.commit()
    return act


def _platform(key: str) -> Callable[[RepoSim], None]:
    def act(sim: RepoSim) -> None:
        comp = sim.components["hello"]
        comp.platforms[key] = comp.platforms.pop(current_platform())
        comp.version += 1
        sim.write_component("hello")
        sim.commit()
    return act


def _deep_index(sim: RepoSim) -> None:
    assert sim.index is not None
    sim.index.version += 1
    sim.write(f"{sim.index.version}.index.json",
              b'{"signatures":[],"signed":{"x":' + b"[" * DEEP + b"]" * DEEP + b"}}")
    sim.commit()


def _deep_component(sim: RepoSim) -> None:
    comp = sim.components["hello"]
    comp.version += 1
    sim.write(f"{comp.version}.hello.json",
              b'{"signatures":[],"signed":' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}")
    sim.commit()


def _deep_unknown_signed(sim: RepoSim) -> None:
    """Nested 200 levels: the parser copes, the model refuses (it keeps unknown members)."""
    assert sim.index is not None
    nested: object = 1
    for _ in range(200):
        nested = [nested]
    sim.index.unrecognized["x"] = nested
    sim.write_index(bump=True)
    sim.commit()


ATTACKS = {
    "index id ../bin/root": (_index_entry("../bin/root"), "invalid component name"),
    "index id with NUL": (_index_entry("a\0b"), "invalid component name"),
    "index id a/b": (_index_entry("a/b"), "invalid component name"),
    "index url elsewhere": (_index_url("/../../x.json"), "url"),
    "version ../../x": (_item(version="../../x"), "invalid version"),
    "version with NUL": (_item(version="v1\0"), "invalid version"),
    "platform linux/../x": (_platform("linux/../x"), "invalid"),
    "platform without arch": (_platform("linux"), "invalid platform"),
    "item url ../..": (_item(url="/../../etc/passwd"), "invalid url"),
    "item url absolute": (_item(url="/etc/passwd/x.tar.gz"), "invalid url"),
    "entry ../../bin/sh": (_item(entry="../../bin/sh"), "invalid entry"),
    "deep index": (_deep_index, "nested too deeply"),
    "deep component": (_deep_component, "nested too deeply"),
    "deep unknown member": (_deep_unknown_signed, "nested more than"),
}


def tree(home: Path) -> dict[str, bytes]:
    """The files of ``home``, without the execution history (every run is recorded)."""
    return {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*"))
            if p.is_file() and p.relative_to(home).parts[0] != "history"}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_client_commands_refuse_hostile_manifests(tiup, tmp_path: Path, name: str) -> None:
    act, words = ATTACKS[name]
    sim = RepoSim(tmp_path / "mirror")
    sim.publish("hello", "v1.0.0")
    home = tmp_path / "tiup-home"
    assert tiup("mirror", "set", str(sim.path), env=ENV).returncode == 0
    victim = home / "bin" / "root.json"
    trusted = victim.read_bytes()
    act(sim)
    before = tree(home)
    for args in (("list",), ("list", "hello"), ("install", "hello"), ("hello",)):
        r = tiup(*args, env=ENV)
        assert "Traceback" not in r.output and words in r.stderr, (args, r.stderr)
        if args == ("list",) and r.returncode == 0:
            # as Go TiUP: the whole list skips a component whose manifest fails, and says so
            assert r.stderr.startswith("Warn:") and "hello" not in r.stdout, r.output
            continue
        assert r.returncode == 1, (args, r.output)
        assert r.stderr.count("Error") == 1, r.stderr
    assert victim.read_bytes() == trusted
    assert not (home / "components" / "hello").exists()
    after = tree(home)
    # only verified copies of the mirror's own files may have been cached meanwhile
    mirror_files = {p.read_bytes() for p in sim.path.glob("*.json")}
    for path, data in after.items():
        if before.get(path) != data:
            assert path.startswith("manifests/"), path
            if path == "manifests/.verified.json":  # digests of verified copies only
                digests = {hashlib.sha256(m).hexdigest() for m in mirror_files}
                assert set(json.loads(data)["files"].values()) <= digests, path
                continue
            assert data in mirror_files, path
    assert not any("bin/root" in p for p in after if p.startswith("manifests"))


@pytest.mark.parametrize("name", ["deep index", "index id ../bin/root", "item url ../.."])
def test_verify_reports_hostile_manifests(tiup, tmp_path: Path, name: str) -> None:
    act, words = ATTACKS[name]
    sim = RepoSim(tmp_path / "mirror")
    sim.publish("hello", "v1.0.0")
    act(sim)
    r = tiup("mirror", "verify", str(sim.path), "--root", str(sim.path / "1.root.json"),
             env=ENV)
    assert r.returncode in (1, 2), r.output
    assert "Traceback" not in r.output and words in r.output, r.output


def test_mirror_set_refuses_a_deeply_nested_root(tiup, tmp_path: Path) -> None:
    mirror = tmp_path / "m"
    mirror.mkdir()
    (mirror / "root.json").write_bytes(b'{"signed":' + b"[" * DEEP + b"]" * DEEP + b"}")
    r = tiup("mirror", "set", str(mirror), env=ENV)
    assert r.returncode == 1 and "nested too deeply" in r.stderr, r.output
    assert "Traceback" not in r.output
    assert not os.path.exists(tmp_path / "tiup-home" / "bin" / "root.json")
