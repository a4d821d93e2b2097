"""Operator mistakes that must not cost data (issue 9), typed as a new user would.

Real mirrors, real keys and signatures, the real `tiup` command in a subprocess:

* cloning into a mirror that is not an earlier clone (or into a directory of other files);
* a clone selection that matches nothing;
* `tiup mirror rotate` that changes nothing, a broken $EDITOR;
* a multi-party rotate / transfer-owner whose commit keys are missing (checked first);
* write commands without their operand;
* publishing to (or cloning from) a mirror whose metadata expired.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from publishkit import ENV, NOW, assert_valid, make_tarball
from serverkit import PLAT, PLAT_ARGS, Setup, make_setup, start_server
from tiup.keys import generate, save_private_key
from tiup.manifest.timefmt import format_time

UP_LAYOUT = {"tidb": ("v8.5.0", "v8.5.1"), "tiup": ("v1.16.1",)}
UP_PLATFORMS = ("linux/amd64", "darwin/arm64")


def tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (relative name → bytes): to prove nothing was written.
    The execution history (``$TIUP_HOME/history``) records every run, as in TiUP: not a
    change of state."""
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and p.relative_to(path).parts[0] != "history"}


def no_traceback(r) -> None:  # type: ignore[no-untyped-def]
    assert "Traceback" not in r.output, r.output


def latest(mirror: Path, name: str) -> dict:  # type: ignore[type-arg]
    """The current ``signed`` of a manifest, as the snapshot names it (or root.json)."""
    if name == "root":
        path = mirror / "root.json"
    else:
        meta = json.loads((mirror / "snapshot.json").read_text())["signed"]["meta"]
        path = mirror / f"{meta[f'/{name}.json']['version']}.{name}.json"
    signed: dict = json.loads(path.read_text())["signed"]  # type: ignore[type-arg]
    return signed


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A source mirror owned by `pingcap`: tidb v8.5.0, v8.5.1 and tiup v1.16.1 on
    linux/amd64 and darwin/arm64."""
    from tiup.hashing import FileInfo
    from tiup.manifest.names import ComponentId, VersionStr
    from tiup.repository.admin import grant
    from tiup.repository.init import init_mirror
    from tiup.repository.keyring import load_keyring
    from tiup.repository.publish import plan_publish
    from tiup.repository.store import IndexFlags, Store, sign

    base = tmp_path_factory.mktemp("upstream")
    mirror = base / "mirror"
    init_mirror(mirror, NOW, key_dir=base / "keys")
    owner = generate()
    ring = load_keyring([base / "keys"])
    with Store(mirror, now=NOW, keyring=ring) as store:
        grant(store, "pingcap", "PingCAP", [owner.keyinfo()])
        store.commit()
    for comp, versions in UP_LAYOUT.items():
        for ver in versions:
            for plat in UP_PLATFORMS:
                tb = make_tarball(base / "tb" / f"{comp}-{ver}-{plat.replace('/', '-')}.tar.gz",
                                  entry=comp, body=f"#!/bin/sh\necho {comp} {ver}\n".encode())
                with Store(mirror, now=NOW, keyring=ring) as store:
                    plan = plan_publish(store, ComponentId(comp), VersionStr(ver), plat, comp,
                                        FileInfo.of_file(tb), desc="", overwrite=False, now=NOW)
                    assert plan.manifest is not None
                    store.publish_component(sign(plan.manifest, [owner]), tb,
                                            tarball_name=plan.tarball_name,
                                            flags=IndexFlags(owner="pingcap"))
                    store.commit()
    return mirror


@pytest.fixture
def own_mirror(tiup, tmp_path: Path) -> Path:
    """A mirror made by `tiup mirror init` with its own component `hello`, as in the guide."""
    mirror = tmp_path / "m"
    for args in (("mirror", "init", str(mirror)), ("mirror", "genkey"),
                 ("mirror", "--repo", str(mirror), "grant", "jdoe")):
        r = tiup(*args, env=ENV)
        assert r.returncode == 0, r.output
    tb = make_tarball(tmp_path / "hello.tar.gz")
    r = tiup("mirror", "--repo", str(mirror), "publish", "hello", "v0.0.1", str(tb), "hello",
             *PLAT_ARGS, env=ENV)
    assert r.returncode == 0, r.output
    return mirror


# ------------------------------------------------------------------- clone target
def test_clone_into_another_mirror_is_refused_then_force_replaces_it(
        tiup, upstream: Path, own_mirror: Path) -> None:
    before = tree(own_mirror)
    clone = ("mirror", "clone", str(own_mirror), "v8.5.1", "--os", "linux",
             "--source", str(upstream))
    r = tiup(*clone, env=ENV)
    assert r.returncode == 1, r.output
    no_traceback(r)
    assert f"refusing to clone into {own_mirror}" in r.stderr and "owners: jdoe" in r.stderr
    assert "--force" in r.stderr and "tiup mirror merge" in r.stderr
    assert tree(own_mirror) == before  # byte for byte, not even a lock file touched
    r = tiup(*clone, "--force", env=ENV)
    assert r.returncode == 0, r.output
    assert "replaced by a new clone with new keys" in r.stderr
    assert (own_mirror / "root.json").read_bytes() != before["root.json"]
    index = latest(own_mirror, "index")
    assert set(index["components"]) == {"tidb", "tiup"} and set(index["owners"]) == {"pingcap"}
    assert_valid(own_mirror)


def test_clone_into_a_directory_of_other_files(tiup, upstream: Path, tmp_path: Path) -> None:
    target = tmp_path / "data"
    target.mkdir()
    (target / "notes.txt").write_text("mine\n")
    clone = ("mirror", "clone", str(target), "--tidb", "v8.5.1", "--source", str(upstream))
    r = tiup(*clone, env=ENV)
    assert r.returncode == 1 and "is not empty (1 entry, e.g. notes.txt)" in r.stderr, r.output
    no_traceback(r)
    assert tree(target) == {"notes.txt": b"mine\n"}
    r = tiup(*clone, "--force", env=ENV)
    assert r.returncode == 0, r.output
    assert (target / "notes.txt").read_text() == "mine\n"  # never deleted
    assert_valid(target)
    # an empty directory, or one with only a fresh file system's lost+found, needs no --force
    fresh = tmp_path / "fresh"
    (fresh / "lost+found").mkdir(parents=True)
    assert tiup("mirror", "clone", str(fresh), "--tidb", "v8.5.0", "--source", str(upstream),
                env=ENV).returncode == 0


def test_reclone_of_the_same_source_stays_incremental(tiup, upstream: Path,
                                                      tmp_path: Path) -> None:
    target = tmp_path / "clone"
    args = ("mirror", "clone", str(target), "--tidb", "v8.5.0", "--source", str(upstream))
    assert tiup(*args, env=ENV).returncode == 0
    root = (target / "root.json").read_bytes()
    r = tiup("mirror", "clone", str(target), "--tidb", "v8.5.0,v8.5.1", "--source",
             str(upstream), env=ENV)
    assert r.returncode == 0, r.output
    assert "2 files downloaded" in r.stdout and "2 already present" in r.stdout
    assert (target / "root.json").read_bytes() == root
    assert set(latest(target, "tidb")["platforms"]["linux/amd64"]) == {"v8.5.0", "v8.5.1"}
    assert_valid(target)
    # keys moved out of the published directory (as the clone advises): refused, not re-keyed
    moved = tmp_path / "clone-keys"
    shutil.move(target / "keys", moved)
    before = tree(target)
    r = tiup(*args, env=ENV)
    assert r.returncode == 1 and "--key-dir" in r.stderr, r.output
    assert tree(target) == before
    r = tiup(*args, "--key-dir", str(moved), env=ENV)
    assert r.returncode == 0, r.output
    assert (target / "root.json").read_bytes() == root and not (target / "keys").exists()


# ---------------------------------------------------------------- clone selection
NOTHING = [
    (["v9.9.9", "--os", "linux"], "version v9.9.9 not found in any component for linux/amd64",
     "v8.5.1, v8.5.0"),
    (["v9.9.9", "--os", "windows"], "nothing to clone for windows/amd64, windows/arm64",
     "darwin/arm64, linux/amd64"),
    (["--tidb", "v9.9.9"], "version v9.9.9 of tidb not found", "tidb has v8.5.1, v8.5.0"),
    (["--tidb", "all", "--arch", "riscv64"], "nothing to clone for linux/riscv64",
     "darwin/arm64, linux/amd64"),
    (["--tidb", "all", "--os", "darwin", "--arch", "amd64"], "nothing to clone for darwin/amd64",
     "darwin/arm64"),
    (["--prefix", "v9", "--os", "linux"], "no version starting with v9 in any component",
     "v8.5.1"),
]


@pytest.mark.parametrize(("args", "what", "exists"), NOTHING, ids=[" ".join(c[0]) for c in NOTHING])
def test_clone_selection_matching_nothing_fails_and_writes_nothing(
        tiup, upstream: Path, tmp_path: Path, args: list[str], what: str, exists: str) -> None:
    target = tmp_path / "new"
    r = tiup("mirror", "clone", str(target), *args, "--source", str(upstream), env=ENV)
    assert r.returncode == 1, r.output
    no_traceback(r)
    assert what in r.stderr and exists in r.stderr, r.stderr
    assert not target.exists()


def test_clone_selection_matching_nothing_leaves_an_existing_clone(
        tiup, upstream: Path, tmp_path: Path) -> None:
    target = tmp_path / "clone"
    assert tiup("mirror", "clone", str(target), "v8.5.0", "--os", "linux", "--source",
                str(upstream), env=ENV).returncode == 0
    before = tree(target)
    r = tiup("mirror", "clone", str(target), "v9.9.9", "--os", "linux", "--source",
             str(upstream), env=ENV)
    assert r.returncode == 1 and "v9.9.9" in r.stderr, r.output
    assert tree(target) == before


# -------------------------------------------------------------------------- rotate
@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return make_setup(tmp_path / "data")


def _editor(tmp_path: Path, name: str, body: str) -> str:
    script = tmp_path / name
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return str(script)


def test_rotate_that_changes_nothing_publishes_nothing(tiup, setup: Setup,
                                                       tmp_path: Path) -> None:
    repo = ("mirror", "--repo", str(setup.mirror), "rotate", "--key-dir", str(setup.keys))
    before = tree(setup.mirror)
    quit_ = _editor(tmp_path, "quit.sh", "exit 0\n")
    touch = _editor(tmp_path, "touch.sh", 'cat "$1" > "$1.new" && mv "$1.new" "$1"\n')
    cases = [([], {}),                                # no flag, not a terminal
             (["--edit"], {"EDITOR": quit_}),         # editor quit without saving
             (["--edit"], {"EDITOR": touch}),         # saved without a change
             (["--days", "30"], {})]                  # expiry never shrinks: no change
    for args, env in cases:
        r = tiup(*repo, *args, env={**ENV, **env})
        assert r.returncode == 0, r.output
        assert "No change to root.json version 1" in r.stderr, r.output
        assert "nothing was published" in r.stderr
        assert tree(setup.mirror) == before, args
    # an edit that changes something is published
    edit = _editor(tmp_path, "edit.sh",
                   'sed -i \'s/"threshold": 3/"threshold": 2/\' "$1"\n')
    r = tiup(*repo, "--edit", env={**ENV, "EDITOR": edit})
    assert r.returncode == 0, r.output
    assert latest(setup.mirror, "root")["roles"]["root"]["threshold"] == 2
    assert_valid(setup.mirror)


@pytest.mark.parametrize("editor", ['vi "', "  "])
def test_rotate_with_a_broken_editor_variable_is_a_usage_error(tiup, setup: Setup,
                                                               editor: str) -> None:
    before = tree(setup.mirror)
    r = tiup("mirror", "--repo", str(setup.mirror), "rotate", "--edit", "--key-dir",
             str(setup.keys), env={**ENV, "EDITOR": editor, "VISUAL": ""})
    assert r.returncode == 2, r.output
    no_traceback(r)
    assert "$EDITOR" in r.stderr and len(r.stderr.strip().splitlines()) == 2  # error + hint
    assert tree(setup.mirror) == before


def _keys_without(setup: Setup, tmp_path: Path, role: str) -> Path:
    keys = tmp_path / f"keys-without-{role}"
    shutil.copytree(setup.keys, keys)
    for p in keys.glob(f"*-{role}.json"):
        p.unlink()
    return keys


@pytest.mark.parametrize("role", ["snapshot", "timestamp"])
def test_multi_party_rotate_checks_the_commit_keys_before_collecting(
        tiup, setup: Setup, tmp_path: Path, role: str) -> None:
    keys = _keys_without(setup, tmp_path, role)
    before = tree(setup.mirror)
    r = tiup("mirror", "--repo", str(setup.mirror), "rotate", "--addr", "127.0.0.1:0",
             "--days", "4000", "--sign-timeout", "600", "--key-dir", str(keys), env=ENV,
             timeout=60)
    assert r.returncode == 1, r.output
    assert "Waiting all key holders" not in r.stdout  # no signing server was started
    assert "before asking the key holders to sign" in r.stderr
    assert f"of role {role}" in r.stderr and f"searched {setup.mirror / 'keys'}, {keys}" in r.stderr
    assert tree(setup.mirror) == before


def test_multi_party_transfer_owner_checks_the_commit_keys_first(
        tiup, setup: Setup, tmp_path: Path) -> None:
    from tiup.repository.admin import grant
    from tiup.repository.keyring import load_keyring
    from tiup.repository.store import Store

    with Store(setup.mirror, now=NOW, keyring=load_keyring([setup.keys])) as store:
        grant(store, "bob", "Bob", [generate().keyinfo()])
        store.commit()
    keys = _keys_without(setup, tmp_path, "index")
    r = tiup("mirror", "--repo", str(setup.mirror), "transfer-owner", "hello", "bob", "--addr",
             "127.0.0.1:0", "--key-dir", str(keys), env=ENV, timeout=60)
    assert r.returncode == 1, r.output
    assert "Waiting all key holders" not in r.stdout
    assert "before asking the owners to sign" in r.stderr and "of role index" in r.stderr


def test_rotate_that_changes_the_index_key_re_signs_the_index(tiup, setup: Setup,
                                                              tmp_path: Path) -> None:
    new = generate()
    info = json.dumps({new.keyid: new.public.keyinfo().to_dict()})
    script = tmp_path / "set_index_key.py"
    script.write_text("import json, sys\np = sys.argv[1]\ndoc = json.load(open(p))\n"
                      f"doc['roles']['index']['keys'] = json.loads({info!r})\n"
                      "json.dump(doc, open(p, 'w'), indent=4)\n")
    import sys

    env = {**ENV, "EDITOR": f"{sys.executable} {script}"}
    repo = ("mirror", "--repo", str(setup.mirror), "rotate", "--edit", "--key-dir",
            str(setup.keys))
    before = tree(setup.mirror)
    r = tiup(*repo, env=env)  # the new index key is nowhere: refused before signing
    assert r.returncode == 1 and "of role index" in r.stderr, r.output
    assert tree(setup.mirror) == before
    save_private_key(setup.keys / "new-index.json", new)
    index_version = latest(setup.mirror, "index")["version"]
    r = tiup(*repo, env=env)
    assert r.returncode == 0, r.output
    assert latest(setup.mirror, "index")["version"] == index_version + 1
    assert_valid(setup.mirror)
    client = {**ENV, "TIUP_HOME": str(tmp_path / "client")}
    assert tiup("mirror", "set", str(setup.mirror), env=client).returncode == 0
    r = tiup("list", env=client)
    assert r.returncode == 0 and "hello" in r.stdout, r.output


# --------------------------------------------------------------- bare write commands
BARE = ["init", "grant", "publish", "modify", "renew", "transfer-owner", "sign", "merge",
        "clone"]


@pytest.mark.parametrize("command", BARE)
def test_write_command_without_its_operand_is_a_usage_error(
        tiup, setup: Setup, tmp_path: Path, clean_home: Path, command: str) -> None:
    assert tiup("mirror", "set", str(setup.mirror), env=ENV).returncode == 0
    shutil.copytree(setup.keys, clean_home / "keys")  # every key at hand: only the operand lacks
    work = tmp_path / "cwd"
    work.mkdir()
    before = (tree(setup.mirror), tree(clean_home), tree(work))
    r = tiup("mirror", command, env=ENV, cwd=work)
    assert r.returncode == 2, r.output
    no_traceback(r)
    assert r.stderr.startswith(f"Usage: tiup mirror {command} "), r.stderr
    assert "Error: Missing argument" in r.stderr
    assert (tree(setup.mirror), tree(clean_home), tree(work)) == before


def test_renew_with_the_mirror_named_still_re_signs_it(tiup, setup: Setup) -> None:
    """The one bare form that writes: the mirror given with --repo is the operand."""
    stamp = json.loads((setup.mirror / "timestamp.json").read_text())["signed"]["version"]
    r = tiup("mirror", "--repo", str(setup.mirror), "renew", "--key-dir", str(setup.keys),
             env=ENV)
    assert r.returncode == 0, r.output
    assert json.loads((setup.mirror / "timestamp.json").read_text())["signed"]["version"] \
        == stamp + 1


# ---------------------------------------------------------------------------- expiry
def test_publish_to_an_expired_mirror_names_it_and_the_fix(tiup, setup: Setup,
                                                           tmp_path: Path) -> None:
    srv = start_server(setup.mirror, "--key-dir", str(setup.keys), workdir=tmp_path)
    later = {"TIUP_TEST_NOW": format_time(NOW + timedelta(days=400))}
    try:
        assert tiup("mirror", "set", srv.url, env=ENV).returncode == 0
        tb = make_tarball(tmp_path / "hello2.tar.gz", body=b"#!/bin/sh\necho two\n")
        publish = ("mirror", "publish", "hello", "v0.0.2", str(tb), "hello", *PLAT_ARGS,
                   "-k", str(setup.owner_key))
        r = tiup(*publish, env=later)
        assert r.returncode == 1, r.output
        no_traceback(r)
        assert "timestamp.json expired at" in r.stderr and srv.url in r.stderr
        assert "tiup mirror --repo <mirror-dir> renew" in r.stderr
        r = tiup("mirror", "clone", str(tmp_path / "c"), "--hello", "v0.0.1", "--source",
                 srv.url, env=later)
        assert r.returncode == 1 and "tiup mirror --repo <mirror-dir> renew" in r.stderr
        assert not (tmp_path / "c").exists()
        # the fix the hint names, on the mirror's directory, makes the publish work again
        r = tiup("mirror", "--repo", str(setup.mirror), "renew", "--key-dir", str(setup.keys),
                 env=later)
        assert r.returncode == 0, r.output
        r = tiup(*publish, env=later)
        assert r.returncode == 0, r.output
        assert "v0.0.2" in latest(setup.mirror, "hello")["platforms"][PLAT]
    finally:
        assert srv.stop() == 0


def test_bare_prune_asks_before_deleting(tiup, setup: Setup) -> None:
    """prune's DIR is optional (the configured mirror, as `tiup mirror merge` uses it), so
    without a terminal a bare prune refuses (usage error) instead of deleting."""
    r = tiup("mirror", "--repo", str(setup.mirror), "modify", "hello:v0.0.1", "--yank", "-k",
             str(setup.owner_key), "--key-dir", str(setup.keys), env=ENV)
    assert r.returncode == 0, r.output
    assert tiup("mirror", "set", str(setup.mirror), env=ENV).returncode == 0
    before = tree(setup.mirror)
    r = tiup("mirror", "prune", env=ENV)
    assert r.returncode == 2 and "--yes" in r.stderr, r.output
    assert tree(setup.mirror) == before
