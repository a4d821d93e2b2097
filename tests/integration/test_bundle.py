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

from clonekit import build_upstream, copy_upstream, publish_version
from publishkit import ENV, assert_valid

CLONE = ("--full", "-o", "linux", "-a", "amd64")
PAYLOAD = 1024 * 1024  # uncompressible bytes per new tarball: the size check is meaningful


def tree(directory: Path, skip: tuple[str, ...] = ("keys", ".tiup-clone", ".tiup-mirror.toml")) -> dict[str, bytes]:
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


@dataclass
class World:
    """The connected side (upstream and its clone ``outside``) and the air-gapped one
    (``inside``, imported from ``full.tar``), with ``update.tar`` exported ``--since``
    the inside's timestamp after upstream published two new versions."""

    base: Path
    upstream: Path
    key: Path
    outside: Path
    inside: Path
    full: Path
    update: Path
    new_tarballs: list[str]
    inside_before: dict[str, bytes]


def _clone(tiup, upstream: Path, target: Path) -> None:
    r = tiup("mirror", "clone", str(target), *CLONE, "--source", str(upstream), env=ENV)
    assert r.returncode == 0, r.output


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("upstream")
    build_upstream(base / "mirror", base / "owner.json")
    return base / "mirror", base / "owner.json"


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
