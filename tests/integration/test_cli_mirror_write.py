"""The guide's custom-repository flow, and genkey / init / grant / package / sign."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from publishkit import ENV, assert_valid, make_tarball
from tiup.keys import load_key_file, load_private_key
from tiup.manifest.envelope import parse_envelope


def _hello(cwd: Path) -> None:
    script = cwd / "hello"
    script.write_text("#!/bin/sh\necho hello\n")
    script.chmod(0o755)


@pytest.mark.parametrize("select", ["--repo", "TIUP_MIRRORS"])
def test_guide_example_works_as_written(tiup, tmp_path: Path, select: str) -> None:
    m = tmp_path / "m"
    env = dict(ENV, USER="jdoe")

    def mirror_cmd(*args: str):  # type: ignore[no-untyped-def]
        if select == "--repo":
            return tiup("mirror", "--repo", str(m), *args, env=env)
        return tiup("mirror", *args, env=dict(env, TIUP_MIRRORS=str(m)))

    r = tiup("mirror", "genkey", env=env)
    assert r.returncode == 0, r.stderr
    assert "Private key has been written to" in r.stdout
    r = tiup("mirror", "init", str(m), env=env)
    assert r.returncode == 0, r.stderr
    assert f'New repository initialized at "{m}"' in r.stdout
    assert "move keys/ out of any directory you publish" in r.stderr
    assert tiup("mirror", "verify", str(m), env=env).returncode == 0
    r = mirror_cmd("grant", "jdoe")
    assert r.returncode == 0, r.stderr
    assert "Granted new owner jdoe(jdoe) with public key" in r.stdout
    assert tiup("mirror", "verify", str(m), env=env).returncode == 0
    _hello(tmp_path)
    r = tiup("package", "hello", "--entry", "hello", "--name", "hello", "--release", "v0.0.1",
             "--os", "linux", "--arch", "amd64", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[tar -czf package/hello-v0.0.1-linux-amd64.tar.gz hello]"
    tarball = tmp_path / "package" / "hello-v0.0.1-linux-amd64.tar.gz"
    with tarfile.open(tarball) as tar:
        member = tar.getmember("hello")
        assert member.isfile() and member.mode & 0o111
    r = mirror_cmd("publish", "hello", "v0.0.1", "package/hello-v0.0.1-linux-amd64.tar.gz",
                   "hello", "--os", "linux", "--arch", "amd64")
    assert r.returncode == 0, r.stderr
    assert "Creating component hello" in r.stdout
    r = tiup("mirror", "verify", str(m), env=env)
    assert r.returncode == 0, r.stdout
    assert (m / "hello-v0.0.1-linux-amd64.tar.gz").read_bytes() == tarball.read_bytes()
    assert json.loads((m / "1.hello.json").read_text())["signed"]["platforms"][
        "linux/amd64"]["v0.0.1"]["entry"] == "hello"
    assert_valid(m)


def test_mirror_help_lists_guide_descriptions(tiup) -> None:
    r = tiup("mirror", "--help")
    assert r.returncode == 0
    for line in ("init            Initialize an empty repository",
                 "sign            Add signatures to a manifest file",
                 "genkey          Generate a new key pair",
                 "publish         Publish a component",
                 "modify          Modify published component",
                 "renew           Renew the manifest of a published component.",
                 "grant           grant a new owner",
                 "rotate          Rotate root.json"):
        assert line in r.stdout
    assert r.stdout.index("init ") < r.stdout.index("sign ") < r.stdout.index("genkey ")


def test_genkey_never_overwrites_and_still_saves(tiup, clean_home: Path, tmp_path: Path) -> None:
    assert tiup("mirror", "genkey").returncode == 0
    key_file = clean_home / "keys" / "private.json"
    before = key_file.read_bytes()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert before.endswith(b"}\n") and b"PRIVATE KEY" in before
    r = tiup("mirror", "genkey", "--save")
    assert r.returncode == 0
    assert f"Warning: private key already exists ({key_file}), skipped" in r.stderr
    assert key_file.read_bytes() == before
    key = load_private_key(key_file)
    saved = tmp_path / f"{key.keyid[:16]}-public.json"
    assert load_key_file(saved).public == key.public.public_value()
    r = tiup("mirror", "genkey", "-p")
    assert r.stdout.startswith(f"KeyID: {key.keyid}\nKeyContent: \n")
    assert tiup("mirror", "genkey", "-n", "other").returncode == 0
    assert (clean_home / "keys" / "other.json").is_file()
    assert tiup("mirror", "genkey", "-n", "../x").returncode == 1


def test_init_refuses_non_empty_dir_and_honours_key_dir_and_days(tiup, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    r = tiup("mirror", "init", str(busy), env=ENV)
    assert r.returncode == 1
    assert f"the target path '{busy}' is not an empty directory" in r.stderr
    m, keys = tmp_path / "a" / "b" / "m", tmp_path / "keys"
    r = tiup("mirror", "init", str(m), "-k", str(keys), "--snapshot-days", "30", env=ENV)
    assert r.returncode == 0, r.stderr
    assert "move keys/" not in r.stderr
    assert not (m / "keys").exists()
    names = sorted(p.name.split("-", 1)[1] for p in keys.iterdir())
    assert names == ["index.json", "root.json", "root.json", "root.json", "snapshot.json",
                     "timestamp.json"]
    assert (m / "1.root.json").read_bytes() == (m / "root.json").read_bytes()
    root = json.loads((m / "root.json").read_text())["signed"]
    assert [root["roles"][r]["threshold"] for r in ("root", "index", "snapshot", "timestamp")] \
        == [3, 1, 1, 1]
    assert root["expires"] == "2035-12-30T00:00:00Z"  # 3650 days
    snap = json.loads((m / "snapshot.json").read_text())["signed"]
    assert snap["expires"] == "2026-01-31T00:00:00Z"
    ts = json.loads((m / "timestamp.json").read_text())["signed"]
    assert ts["expires"] == "2027-01-01T00:00:00Z"
    assert "snapshot_days = 30" in (m / ".tiup-mirror.toml").read_text()
    assert len((m / "timestamp.json").read_bytes()) <= 1024
    assert tiup("mirror", "verify", str(m), env=ENV).returncode == 0
    # later writes use the recorded lifetimes and find the keys with --key-dir
    r = tiup("mirror", "--repo", str(m), "renew", env={**ENV, "TIUP_TEST_NOW":
                                                        "2026-01-20T00:00:00Z"})
    assert r.returncode == 1 and "searched" in r.stderr
    r = tiup("mirror", "--repo", str(m), "renew", "--key-dir", str(keys),
             env={**ENV, "TIUP_TEST_NOW": "2026-01-20T00:00:00Z"})
    assert r.returncode == 0, r.stderr
    snap = json.loads((m / "snapshot.json").read_text())["signed"]
    assert snap["expires"] == "2026-02-19T00:00:00Z"


@pytest.fixture
def mirror(tiup, tmp_path: Path) -> Path:
    m = tmp_path / "m"
    assert tiup("mirror", "genkey", env=ENV).returncode == 0
    assert tiup("mirror", "init", str(m), env=ENV).returncode == 0
    return m


def test_grant_errors(tiup, mirror: Path, tmp_path: Path, clean_home: Path) -> None:
    repo = ("mirror", "--repo", str(mirror))
    assert tiup(*repo, "grant", "alice", "-n", "Alice", env=ENV).returncode == 0
    r = tiup(*repo, "grant", "alice", env=ENV)
    assert r.returncode == 1 and "owner alice exists" in r.stderr
    r = tiup(*repo, "grant", "bob", env=ENV)
    assert r.returncode == 1 and "exists (owned by alice)" in r.stderr
    assert tiup("mirror", "genkey", "-n", "bob", env=ENV).returncode == 0
    for bad in ("root", "snapshot", "../x", "a/b", ""):
        r = tiup(*repo, "grant", bad, "-k", str(clean_home / "keys" / "bob.json"), env=ENV)
        assert r.returncode == 1, bad
        assert "Traceback" not in r.stderr
    r = tiup(*repo, "grant", "index", "-k", str(clean_home / "keys" / "bob.json"), env=ENV)
    assert "shadows a role" in r.stderr
    r = tiup(*repo, "grant", "bob", "-k", str(clean_home / "keys" / "bob.json"),
             "--threshold", "2", env=ENV)
    assert r.returncode == 1 and "threshold 2" in r.stderr
    # a public key file is enough to grant
    bob = load_private_key(clean_home / "keys" / "bob.json")
    from tiup.keys import save_public_key

    save_public_key(tmp_path / "bob.pub.json", bob.public)
    r = tiup(*repo, "grant", "bob", "-k", str(tmp_path / "bob.pub.json"), env=ENV)
    assert r.returncode == 0, r.stderr
    assert bob.keyid in r.stdout
    assert_valid(mirror)


def test_grant_needs_local_mirror(tiup) -> None:
    r = tiup("mirror", "grant", "x", env={**ENV, "TIUP_MIRRORS": "https://example.invalid/"})
    assert r.returncode == 1
    assert "not a local directory" in r.stderr


def test_package_flags(tiup, tmp_path: Path) -> None:
    r = tiup("package", "hello")
    assert r.returncode == 1
    assert 'required flag(s) "name", "release" not set' in r.stderr
    assert tiup("package").returncode == 0  # help
    (tmp_path / "src" / "bin").mkdir(parents=True)
    (tmp_path / "src" / "bin" / "tool").write_text("x")
    r = tiup("package", "bin", "-C", "src", "--name", "tool", "--release", "v1.0.0",
             "--os", "darwin", "--arch", "arm64")
    assert r.returncode == 0, r.stderr
    with tarfile.open(tmp_path / "package" / "tool-v1.0.0-darwin-arm64.tar.gz") as tar:
        assert "bin/tool" in tar.getnames()
        assert all(m.uid == 0 and m.uname == "" for m in tar.getmembers())
    r = tiup("package", "missing", "--name", "x", "--release", "v1.0.0")
    assert r.returncode == 1 and "Packaging component failed" in r.stderr


def test_sign_adds_one_signature_canonically(tiup, mirror: Path, tmp_path: Path,
                                            clean_home: Path) -> None:
    manifest = tmp_path / "idx.json"
    manifest.write_bytes((mirror / "1.index.json").read_bytes() + b"\n")
    r = tiup("mirror", "sign", str(manifest))
    assert r.returncode == 0, r.stderr
    data = manifest.read_bytes()
    env = parse_envelope(data, "x")
    assert len(env.signatures) == 2 and not data.endswith(b"\n")
    key = load_private_key(clean_home / "keys" / "private.json")
    assert env.signatures[1].keyid == key.keyid
    assert key.public.verify(env.signed_raw, __import__("base64").b64decode(
        env.signatures[1].sig))
    r = tiup("mirror", "sign", str(manifest))
    assert r.returncode == 1
    assert "already been signed by specified key" in r.stderr
    assert manifest.read_bytes() == data
    assert os.stat(manifest).st_mode & 0o777 == 0o664
    r = tiup("mirror", "sign", str(tmp_path / "nope.json"))
    assert r.returncode == 1 and "open manifest file" in r.stderr
    make_tarball(tmp_path / "t.tar.gz")
    r = tiup("mirror", "sign", str(tmp_path / "t.tar.gz"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
