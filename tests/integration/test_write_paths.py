"""D1: no write outside its name. Every write path (API publish, local store, merge, clone)
stores a version item's tarball only under ``/<c>-<v>-<os>-<arch>.tar.gz``: an owner can
never make an upload land on ``root.json``, another manifest, ``lock``, ``keys/``, a
dotfile or another component's tarball. Each attack runs for real: a real server, real
uploads, manifests signed by a real owner key (the attacker's own, which the mirror trusts
for her own components only)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import builders
from builders import make_root
from publishkit import ENV, NOW, assert_valid, make_tarball
from reposim import RepoSim
from serverkit import PLAT, ServerProc, Setup, jerr, make_setup, post_manifest, start_server, upload
from tiup.errors import InvalidNameError, RepositoryError, TarballError
from tiup.hashing import FileInfo
from tiup.keys import PrivateKey, generate, save_private_key
from tiup.manifest.models import Component, VersionItem
from tiup.manifest.timefmt import format_time
from tiup.repository.admin import grant
from tiup.repository.keyring import load_keyring
from tiup.repository.store import Store, sign


def files_of(mirror: Path) -> dict[str, bytes]:
    """Every file of a mirror (keys outside it), by relative path."""
    return {str(p.relative_to(mirror)): p.read_bytes()
            for p in sorted(mirror.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Setup, ServerProc,
                                                                      PrivateKey, Path]]:
    """jdoe owns hello and tidb-ctl; alice is a second owner with her own key."""
    base = tmp_path_factory.mktemp("d1")
    setup = make_setup(base / "data", ("hello", "tidb-ctl"))
    alice = generate()
    with Store(setup.mirror, now=NOW, keyring=load_keyring([setup.keys])) as store:
        grant(store, "alice", "Alice", [alice.keyinfo()])
        store.commit()
    srv = start_server(setup.mirror, "--key-dir", str(setup.keys), workdir=base)
    yield setup, srv, alice, base
    assert srv.stop() == 0


def evil_manifest(comp: str, version: str, url: str, payload: Path, signer: PrivateKey,
                  plat: str = PLAT) -> bytes:
    """A new component ``comp`` whose one version item names ``url``, hashes matching
    ``payload`` exactly, signed by ``signer``."""
    info = FileInfo.of_file(payload)
    item = VersionItem(url=url, entry="hello", sha256=info.sha256, sha512=info.sha512,
                       length=info.length, released=format_time(NOW))
    comp_m = Component(expires=format_time(NOW.replace(year=2030)), version=1, id=comp,
                       platforms={plat: {version: item}})
    return sign(comp_m, [signer])


def alice_root(tmp: Path, alice: PrivateKey) -> Path:
    """A root manifest self-signed by alice: what she would like clients to pin."""
    root = make_root(root_keys=(alice,), threshold=1, index_key=alice, snapshot_key=alice,
                     timestamp_key=alice, expires=format_time(NOW.replace(year=2035)))
    path = tmp / "evil-root.json"
    path.write_bytes(builders.sign(root, alice))
    return path


TARGETS = [
    ("/root.json", "root"),
    ("/1.root.json", "root"),
    ("/snapshot.json", "other"),
    ("/timestamp.json", "other"),
    ("/2.index.json", "other"),
    ("/1.hello.json", "other"),
    ("/lock", "other"),
    ("/.tiup-mirror.toml", "other"),
    ("/.x.tar.gz", "other"),
    ("/keys/x.json", "other"),
    ("/evil-v1.0.0-linux-amd64.tar.gz/../root.json", "other"),
    ("HELLO", "jdoe"),  # jdoe's hello tarball, by its exact name
]


@pytest.mark.parametrize(("url", "payload"), TARGETS)
def test_api_upload_cannot_land_outside_its_name(world, tmp_path: Path, url: str,
                                                 payload: str) -> None:
    setup, srv, alice, _base = world
    hello_name = f"hello-v0.0.1-{PLAT.replace('/', '-')}.tar.gz"
    if url == "HELLO":
        url = "/" + hello_name
    if payload == "root":
        body = alice_root(tmp_path, alice)
    else:
        body = make_tarball(tmp_path / "evil.tar.gz", body=b"#!/bin/sh\necho pwned\n")
    before = files_of(setup.mirror)
    sid = hashlib.sha256(url.encode()).hexdigest()[:16]
    name = url.rsplit("/", 1)[-1]
    status_up, _h, _b = upload(srv, sid, body, name)
    manifest = evil_manifest("evil", "v1.0.0", url, body, alice)
    status, code, msg = jerr(post_manifest(srv, sid, manifest, name="evil"))
    # refused with a client error (400 or, when the upload itself was refused, 404/400)
    assert status in (400, 404) and code in ("INVALID MANIFEST", "INVALID TARBALL",
                                             "SESSION NOT FOUND"), (status_up, code, msg)
    assert "\n" not in msg and "Traceback" not in msg
    assert files_of(setup.mirror) == before, "the mirror changed"
    assert_valid(setup.mirror)


def test_api_refuses_a_version_that_collides_with_another_component(world, tmp_path: Path
                                                                    ) -> None:
    """alice's `tidb` version `ctl-v0.0.1` would be named like jdoe's `tidb-ctl` v0.0.1."""
    setup, srv, alice, _base = world
    plat = PLAT.replace("/", "-")
    before = files_of(setup.mirror)
    for version, sid in (("ctl-v0.0.1", "collide1"), ("ctl-v0.0.2", "squat1")):
        name = f"tidb-{version}-{plat}.tar.gz"
        body = make_tarball(tmp_path / name, body=b"#!/bin/sh\necho pwned\n")
        assert upload(srv, sid, body, name)[0] == 200
        manifest = evil_manifest("tidb", version, "/" + name, body, alice)
        status, code, msg = jerr(post_manifest(srv, sid, manifest, name="tidb"))
        assert (status, code) == (400, "INVALID MANIFEST"), msg
        assert "tidb-ctl" in msg
    assert files_of(setup.mirror) == before
    assert_valid(setup.mirror)


def test_fresh_client_still_trusts_the_real_root(world, tiup, tmp_path: Path) -> None:
    """After every attack above, `tiup mirror set http://server` pins the mirror's own root."""
    setup, srv, alice, _base = world
    body = alice_root(tmp_path, alice)
    # the upload is refused by its name already; the manifest then names a missing tarball
    assert jerr(upload(srv, "rootattack", body, "root.json"))[:2] == (400, "INVALID TARBALL")
    assert upload(srv, "rootattack2", body, "evil-v1.0.0-linux-amd64.tar.gz")[0] == 200
    manifest = evil_manifest("evil", "v1.0.0", "/root.json", body, alice)
    for sid in ("rootattack", "rootattack2"):
        assert jerr(post_manifest(srv, sid, manifest, name="evil"))[0] in (400, 404)
    r = tiup("mirror", "set", srv.url, env=ENV)
    assert r.returncode == 0, r.output
    home_root = json.loads((tmp_path / "tiup-home" / "bin" / "root.json").read_bytes())
    assert home_root == json.loads((setup.mirror / "root.json").read_bytes())
    r = tiup("list", env=ENV)
    assert r.returncode == 0 and "hello" in r.stdout, r.output


def test_the_owner_can_still_publish_her_own_component(world, tmp_path: Path) -> None:
    """The rule refuses only names outside the component: a proper version goes through."""
    setup, srv, alice, _base = world
    name = f"alicecomp-v1.0.0-{PLAT.replace('/', '-')}.tar.gz"
    body = make_tarball(tmp_path / name)
    assert upload(srv, "good1", body, name)[0] == 200
    manifest = evil_manifest("alicecomp", "v1.0.0", "/" + name, body, alice)
    status, _h, resp = post_manifest(srv, "good1", manifest, name="alicecomp")
    assert status == 200, resp
    assert (setup.mirror / name).read_bytes() == body.read_bytes()
    assert_valid(setup.mirror)


# ----------------------------------------------------------------- the store itself


def _local(tmp_path: Path) -> tuple[Path, Path, PrivateKey]:
    from tiup.repository.init import init_mirror

    mirror, keys = tmp_path / "m", tmp_path / "k"
    init_mirror(mirror, NOW, key_dir=keys)
    owner = generate()
    save_private_key(tmp_path / "owner.json", owner)
    with Store(mirror, now=NOW, keyring=load_keyring([keys])) as store:
        grant(store, "jdoe", "J", [owner.keyinfo()])
        store.commit()
    return mirror, keys, owner


@pytest.mark.parametrize("name", ["root.json", "1.root.json", "lock", "keys/a.tar.gz",
                                  ".hidden.tar.gz", "../x.tar.gz", "snapshot.json", "a\0.tar.gz"])
def test_store_stages_only_tarball_names(tmp_path: Path, name: str) -> None:
    mirror, keys, _owner = _local(tmp_path)
    src = make_tarball(tmp_path / "t.tar.gz")
    with Store(mirror, now=NOW, keyring=load_keyring([keys])) as store, \
            pytest.raises(TarballError, match="not a tarball file name"):
        store.stage_tarball(name, src)


def test_store_commit_refuses_an_unclaimed_tarball(tmp_path: Path) -> None:
    mirror, keys, _owner = _local(tmp_path)
    src = make_tarball(tmp_path / "t.tar.gz")
    before = files_of(mirror)
    with Store(mirror, now=NOW, keyring=load_keyring([keys])) as store:
        store.stage_tarball("stray-v1-linux-amd64.tar.gz", src)
        with pytest.raises(RepositoryError, match="no new or changed version"):
            store.commit()
    assert files_of(mirror) == before


@pytest.mark.parametrize("url", ["/root.json", "/hello-v1.0.0-linux-arm64.tar.gz",
                                 "/other-v1.0.0-linux-amd64.tar.gz", "/hello-v1.0.0.tar.gz"])
def test_store_refuses_a_non_canonical_item_url(tmp_path: Path, url: str) -> None:
    mirror, keys, owner = _local(tmp_path)
    payload = make_tarball(tmp_path / "t.tar.gz")
    manifest = evil_manifest("hello", "v1.0.0", url, payload, owner, plat="linux/amd64")
    before = files_of(mirror)
    with Store(mirror, now=NOW, keyring=load_keyring([keys])) as store, \
            pytest.raises(InvalidNameError,
                          match=re.escape("must be '/hello-v1.0.0-linux-amd64.tar.gz'")):
        store.publish_component(manifest, payload, tarball_name=url.rsplit("/", 1)[-1])
    assert files_of(mirror) == before


# ------------------------------------------------------------------ merge and clone


def hostile_source(path: Path) -> RepoSim:
    """A validly signed mirror whose owner names ``/root.json`` as a version's tarball."""
    sim = RepoSim(path)
    sim.publish("hello", "v1.0.0", plat="linux/amd64")
    root = sim.read("root.json")
    sim.publish("hello", "v1.0.1", plat="linux/amd64", declared=VersionItem(
        url="/root.json", entry="hello", sha256=hashlib.sha256(root).hexdigest(),
        sha512=hashlib.sha512(root).hexdigest(), length=len(root),
        released=format_time(sim.now)))
    return sim


def test_merge_skips_an_item_named_like_a_manifest(tiup, tmp_path: Path) -> None:
    from reposim import SIM_NOW_TEXT

    env = {**ENV, "TIUP_TEST_NOW": SIM_NOW_TEXT, "USER": "alice"}
    sim = hostile_source(tmp_path / "src")
    base = tmp_path / "base"
    assert tiup("mirror", "init", str(base), env=env).returncode == 0
    from builders import key

    key_file = tmp_path / "alice.json"
    save_private_key(key_file, key(20))
    r = tiup("mirror", "--repo", str(base), "grant", "alice", "-k", str(key_file), env=env)
    assert r.returncode == 0, r.output
    root_before = (base / "root.json").read_bytes()
    r = tiup("mirror", "--repo", str(base), "merge", str(sim.path), "-k", str(key_file),
             env=env)
    assert r.returncode == 0, r.output
    assert "incorrect file name /root.json" in r.output
    assert (base / "root.json").read_bytes() == root_before
    hello = json.loads(max(base.glob("*.hello.json")).read_bytes())["signed"]
    assert list(hello["platforms"]["linux/amd64"]) == ["v1.0.0"]


def test_clone_skips_an_item_named_like_a_manifest(tiup, tmp_path: Path) -> None:
    from reposim import SIM_NOW_TEXT

    env = {**ENV, "TIUP_TEST_NOW": SIM_NOW_TEXT}
    sim = hostile_source(tmp_path / "src")
    target = tmp_path / "clone"
    r = tiup("mirror", "clone", str(target), "--hello", "all", "--os", "linux", "--arch",
             "amd64", env={**env, "TIUP_MIRRORS": str(sim.path)})
    assert r.returncode == 1, r.output
    assert "hello v1.0.1 (linux/amd64): its url is not" in r.output
    assert "Traceback" not in r.output
    root = json.loads((target / "root.json").read_bytes())
    assert root != json.loads(sim.read("root.json"))  # the clone's own root, not the source's
    assert (target / "hello-v1.0.0-linux-amd64.tar.gz").is_file()
    assert_valid(target, sim.now)
