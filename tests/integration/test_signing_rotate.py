"""Multi-party signing: rotate and transfer-owner collect signatures over HTTP from key holders
running `tiup mirror sign <url> -k KEY`; the interactive $EDITOR rotate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from publishkit import ENV, NOW, assert_valid
from serverkit import Setup, make_setup, start_server
from tiup.keys import generate, save_private_key


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return make_setup(tmp_path / "data")


def _root_keys(setup: Setup) -> list[Path]:
    return sorted(p for p in setup.keys.iterdir() if p.name.endswith("-root.json"))


def _start(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """Start the initiator; return it and the signing URL it prints."""
    proc = subprocess.Popen([sys.executable, "-m", "tiup", *args], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("Waiting all key holders to sign "):
        proc.kill()
        raise AssertionError(line + proc.communicate()[1])
    return proc, line.split()[-1]


def _sign(url: str, key: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tiup", "mirror", "sign", url, "-k", str(key)],
                            env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_rotate_over_http_with_three_key_holders(tiup, setup: Setup, tmp_path: Path) -> None:
    srv = start_server(setup.mirror, "--key-dir", str(setup.keys), workdir=tmp_path)
    admin = {**ENV, "TIUP_HOME": str(tmp_path / "admin-home")}
    client = {**ENV, "TIUP_HOME": str(tmp_path / "client-home")}
    try:
        assert tiup("mirror", "set", srv.url, env=client).returncode == 0
        assert tiup("hello", env=client, subprocess=True).returncode == 0
        first_root = (setup.mirror / "root.json").read_bytes()
        new_key = tmp_path / "new-root.json"
        save_private_key(new_key, generate())
        proc, url = _start(["mirror", "--repo", srv.url, "rotate", "--addr", "127.0.0.1:0",
                            "--add-key", str(new_key), "--threshold", "3", "--days", "4000",
                            "--sign-timeout", "120"], admin)
        assert url.startswith("http://127.0.0.1:") and "/rotate/" in url
        # a key that is not a root key is refused (406)
        stranger = tmp_path / "stranger.json"
        save_private_key(stranger, generate())
        bad = _sign(url, stranger, admin)
        _out, err = bad.communicate(timeout=60)
        assert bad.returncode == 1 and "the key is not valid" in err and "code 406" in err
        signers = [_sign(url, key, admin) for key in _root_keys(setup)]
        results = [p.communicate(timeout=60) for p in signers]
        assert all(p.returncode == 0 for p in signers), results
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        digest = next(line.split()[-1] for line in err.splitlines() if "payload sha256" in line)
        assert all(f"payload sha256: {digest}" in e for _o, e in results)
        assert err.count(" signed (") == 3 and "Rotated root to version 2" in err
        # the client that trusted root 1 follows the chain through the server
        r = tiup("list", env=client)
        assert r.returncode == 0 and "hello" in r.stdout, r.output
        cached = json.loads((tmp_path / "client-home" / "manifests" / "root.json").read_text())
        assert cached["signed"]["version"] == 2
    finally:
        assert srv.stop() == 0
    new_root = json.loads((setup.mirror / "2.root.json").read_text())
    assert len(new_root["signatures"]) == 3
    assert len(new_root["signed"]["roles"]["root"]["keys"]) == 4
    assert (setup.mirror / "root.json").read_bytes() == (setup.mirror / "2.root.json").read_bytes()
    assert_valid(setup.mirror)
    from tiup.repository.audit import audit_mirror
    from tiup.transport.local import LocalFetcher

    with LocalFetcher(str(setup.mirror)) as f:
        report = audit_mirror(f, NOW, trusted_root=first_root)
    assert report.ok and report.root_version == 2


def test_transfer_owner_collects_both_owners(tiup, setup: Setup, tmp_path: Path) -> None:
    from tiup.repository.admin import grant
    from tiup.repository.keyring import load_keyring
    from tiup.repository.store import Store

    bob = generate()
    bob_key = tmp_path / "bob.json"
    save_private_key(bob_key, bob)
    with Store(setup.mirror, now=NOW, keyring=load_keyring([setup.keys])) as store:
        grant(store, "bob", "Bob", [bob.keyinfo()])
        store.commit()
    env = {**ENV, "TIUP_HOME": str(tmp_path / "home")}
    proc, url = _start(["mirror", "--repo", str(setup.mirror), "transfer-owner", "hello", "bob",
                        "--addr", "127.0.0.1:0", "--key-dir", str(setup.keys)], env)
    a = _sign(url, setup.owner_key, env)
    assert a.communicate(timeout=60) and a.returncode == 0
    b = _sign(url, bob_key, env)
    assert b.communicate(timeout=60) and b.returncode == 0
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Transferred hello to bob" in err
    index_v = json.loads((setup.mirror / "snapshot.json").read_text())["signed"]["meta"][
        "/index.json"]["version"]
    index = json.loads((setup.mirror / f"{index_v}.index.json").read_text())["signed"]
    assert index["components"]["hello"]["owner"] == "bob"
    assert_valid(setup.mirror)


def test_rotate_times_out_cleanly(tiup, setup: Setup, tmp_path: Path) -> None:
    r = tiup("mirror", "--repo", str(setup.mirror), "rotate", "--addr", "127.0.0.1:0",
             "--days", "4000", "--sign-timeout", "0.3", "--key-dir", str(setup.keys),
             env={**ENV})
    assert r.returncode == 1 and "before timeout" in r.stderr, r.output
    assert not (setup.mirror / "2.root.json").exists()


def test_rotate_in_editor(tiup, setup: Setup, tmp_path: Path) -> None:
    editor = tmp_path / "editor.py"
    seen = tmp_path / "seen.json"
    editor.write_text(
        "import json, sys, shutil\n"
        "p = sys.argv[1]\n"
        f"shutil.copy(p, {str(seen)!r})\n"
        "doc = json.load(open(p))\n"
        "doc['roles']['root']['threshold'] = 2\n"
        "json.dump(doc, open(p, 'w'), indent=4)\n")
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    env = {**ENV, "EDITOR": f"{sys.executable} {editor}", "TMPDIR": str(tmpdir)}
    r = tiup("mirror", "--repo", str(setup.mirror), "rotate", "--edit", "--key-dir",
             str(setup.keys), env=env)
    assert r.returncode == 0, r.output
    proposed = json.loads(seen.read_text())
    assert proposed["version"] == 2 and proposed["_type"] == "root"
    assert proposed["expires"] >= json.loads((setup.mirror / "1.root.json").read_text())[
        "signed"]["expires"]
    root = json.loads((setup.mirror / "2.root.json").read_text())["signed"]
    assert root["roles"]["root"]["threshold"] == 2
    assert list(tmpdir.iterdir()) == []  # the temp file is deleted
    # an editor that breaks the version is refused
    editor.write_text("import json, sys\np = sys.argv[1]\ndoc = json.load(open(p))\n"
                      "doc['version'] = 7\njson.dump(doc, open(p, 'w'))\n")
    r = tiup("mirror", "--repo", str(setup.mirror), "rotate", "--edit", "--key-dir",
             str(setup.keys), env=env)
    assert r.returncode == 1 and "must be 3" in r.stderr, r.output
    assert_valid(setup.mirror)
