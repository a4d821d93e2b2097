"""Keys on PKCS#11 tokens, end to end with SoftHSM2 (a real PKCS#11 module): the guide's
custom-repository flow with the owner key on a token, root keys on tokens (init, rotate,
multi-party rotate with one token per holder), and the errors a user meets.

Each result passes ``tiup mirror verify`` and a fresh client installs and runs the
component from it. Token contents are inspected with opensc's ``pkcs11-tool``.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from publishkit import ENV, make_tarball
from softhsm import PIN, SoftHSM, Token, require
from tiup.client.resolve import current_platform
from tiup.manifest.canonical import encode_canonical
from tiup.manifest.models import public_key_id


@pytest.fixture(scope="session")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHSM]:
    """This worker's SoftHSM2 token directory (its configuration is read once a process)."""
    require()
    soft = SoftHSM(tmp_path_factory.mktemp("softhsm"))
    saved = {k: os.environ.get(k) for k in ("SOFTHSM2_CONF", "TIUP_PKCS11_MODULE")}
    os.environ.update({k: v for k, v in soft.env().items() if k in saved})
    yield soft
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _ok(tiup, *args: str, **kw) -> str:
    r = tiup(*args, env={**ENV, **kw.pop("env", {})}, **kw)
    assert r.returncode == 0, (args, r.output)
    return r.output


def _tarball(tmp_path: Path, version: str = "v0.0.1", say: str = "hello") -> Path:
    os_name, arch = current_platform().split("/")
    return make_tarball(tmp_path / "pkg" / f"hello-{version}-{os_name}-{arch}.tar.gz",
                        body=f"#!/bin/sh\necho {say}\n".encode())


def _keyid(output: str) -> str:
    return next(line.split()[-1] for line in output.splitlines() if line.startswith("KeyID: "))


def _fresh_client_runs(tiup, mirror: Path, tmp_path: Path, name: str, expect: str) -> None:
    client = {"TIUP_HOME": str(tmp_path / f"client-{name}")}
    _ok(tiup, "mirror", "set", str(mirror), env=client)
    r = tiup("hello", env={**ENV, **client}, subprocess=True)
    assert r.returncode == 0 and r.stdout == expect, r.output


def _root(mirror: Path, name: str = "root.json") -> dict:
    return json.loads((mirror / name).read_text())


# --------------------------------------------------------------- owner key on a token


def test_guide_flow_with_the_owner_key_on_a_token(tiup, hsm: SoftHSM, tmp_path: Path,
                                                  clean_home: Path) -> None:
    token = hsm.token("owner")
    uri = token.uri("tiup-owner")
    out = _ok(tiup, "mirror", "genkey", "--pkcs11", uri, "--save", cwd=tmp_path)
    keyid = _keyid(out)
    assert "not extractable" in out
    # -p shows the same key; --save wrote the public key file as for a file key, and the
    # key id is computed from it exactly as for a file key
    shown = _ok(tiup, "mirror", "genkey", "--pkcs11", uri, "-p")
    assert _keyid(shown) == keyid
    pub_file = tmp_path / f"{keyid[:16]}-public.json"
    info = json.loads(pub_file.read_text())
    assert public_key_id(info["keytype"], info["scheme"], info["keyval"]["public"]) == keyid
    assert json.loads(shown.split("KeyContent: ", 1)[1]) == info
    assert not (clean_home / "keys").exists()  # nothing private written to disk

    # the private key object on the token: sensitive, never extractable (pkcs11-tool)
    listing = token.tool("--list-objects", "--type", "privkey")
    assert "tiup-owner" in listing
    access = next(line for line in listing.splitlines() if "Access:" in line)
    assert "never extractable" in access and "sensitive" in access, listing
    assert "extractable" not in access.replace("never extractable", ""), listing

    mirror = tmp_path / "mirror"
    _ok(tiup, "mirror", "init", str(mirror), "--key-dir", str(tmp_path / "mirror-keys"))
    _ok(tiup, "mirror", "set", str(mirror))
    out = _ok(tiup, "mirror", "grant", "alice", "-k", uri, "--key-dir",
              str(tmp_path / "mirror-keys"))
    assert keyid in out
    index = json.loads((mirror / "2.index.json").read_text())
    assert list(index["signed"]["owners"]["alice"]["keys"]) == [keyid]

    tarball = _tarball(tmp_path)
    _ok(tiup, "mirror", "publish", "hello", "v0.0.1", str(tarball), "hello", "-k", uri,
        "--key-dir", str(tmp_path / "mirror-keys"))
    manifest = json.loads((mirror / "1.hello.json").read_text())
    (sig,) = manifest["signatures"]
    assert sig["keyid"] == keyid
    # RSA-PSS/SHA-256 over the canonical bytes, with the largest salt (222 bytes), as Go
    # TiUP signs: verify with that exact salt length
    public = serialization.load_pem_public_key(info["keyval"]["public"].encode())
    public.verify(base64.b64decode(sig["sig"]), encode_canonical(manifest["signed"]),
                  padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=222),
                  hashes.SHA256())

    _ok(tiup, "mirror", "modify", "hello", "--desc", "signed on a token", "-k", uri,
        "--key-dir", str(tmp_path / "mirror-keys"))
    _ok(tiup, "mirror", "renew", "hello", "--days", "100", "-k", uri,
        "--key-dir", str(tmp_path / "mirror-keys"))
    latest = json.loads(sorted(mirror.glob("*.hello.json"))[-1].read_text())
    assert latest["signed"]["version"] == 3 and latest["signed"]["description"] == \
        "signed on a token"
    assert [s["keyid"] for s in latest["signatures"]] == [keyid]
    # transfer-owner: both owners' keys on their own tokens
    bob = hsm.token("bob")
    bob_id = _keyid(_ok(tiup, "mirror", "genkey", "--pkcs11", bob.uri("tiup-owner")))
    _ok(tiup, "mirror", "grant", "bob", "-k", bob.uri("tiup-owner"), "--key-dir",
        str(tmp_path / "mirror-keys"))
    _ok(tiup, "mirror", "transfer-owner", "hello", "bob", "-k", uri, "-k",
        bob.uri("tiup-owner"), "--key-dir", str(tmp_path / "mirror-keys"))
    latest = json.loads(sorted(mirror.glob("*.hello.json"))[-1].read_text())
    assert sorted(s["keyid"] for s in latest["signatures"]) == sorted([keyid, bob_id])
    out = _ok(tiup, "mirror", "verify", str(mirror))
    assert "0 errors" in out
    _fresh_client_runs(tiup, mirror, tmp_path, "owner", "hello\n")

    # the same key through pin-value= (tests only): one warning, the PIN in no output
    # and masked in `tiup history`
    pin_uri = token.uri("tiup-owner", pin=False, extra=f"pin-value={PIN}")
    r = tiup("mirror", "modify", "hello", "--desc", "again", "-k", pin_uri, "-k",
             bob.uri("tiup-owner"), "--key-dir",
             str(tmp_path / "mirror-keys"), env=ENV)
    assert r.returncode == 0, r.output
    assert r.stderr.count("pin-value=") == 1 and "use pin-source=FILE" in r.stderr
    assert PIN not in r.output
    history = "".join(p.read_text() for p in (clean_home / "history").iterdir())
    assert "pin-value=******" in history and f"pin-value={PIN}" not in history
    assert PIN not in history


def test_merge_into_a_mirror_whose_owner_key_is_on_a_token(tiup, hsm: SoftHSM,
                                                           tmp_path: Path) -> None:
    token = hsm.token("merge")
    uri = token.uri()
    _ok(tiup, "mirror", "genkey", "--pkcs11", uri)
    base, keys = tmp_path / "base", tmp_path / "base-keys"
    _ok(tiup, "mirror", "init", str(base), "--key-dir", str(keys))
    _ok(tiup, "mirror", "set", str(base))
    _ok(tiup, "mirror", "grant", "pingcap", "-k", uri, "--key-dir", str(keys))
    # the other mirror: file keys, component hello owned by pingcap there too
    other = tmp_path / "other"
    _ok(tiup, "mirror", "init", str(other))
    _ok(tiup, "mirror", "genkey", "-n", "other")
    home_key = str(Path(os.environ["TIUP_HOME"]) / "keys" / "other.json")
    _ok(tiup, "mirror", "--repo", str(other), "grant", "pingcap", "-k", home_key)
    _ok(tiup, "mirror", "--repo", str(other), "publish", "hello", "v0.0.2",
        str(_tarball(tmp_path, "v0.0.2", "merged")), "hello", "-k", home_key)
    _ok(tiup, "mirror", "merge", str(other), "-k", uri, "--key-dir", str(keys))
    manifest = json.loads(sorted(base.glob("*.hello.json"))[-1].read_text())
    owner = _keyid(_ok(tiup, "mirror", "genkey", "--pkcs11", uri, "-p"))
    assert [s["keyid"] for s in manifest["signatures"]] == [owner]
    assert "0 errors" in _ok(tiup, "mirror", "verify", str(base))
    _fresh_client_runs(tiup, base, tmp_path, "merge", "merged\n")


# ---------------------------------------------------------------------- roots on tokens


def test_init_with_root_keys_on_two_tokens_then_rotate(tiup, hsm: SoftHSM,
                                                       tmp_path: Path) -> None:
    t1, t2, t3 = hsm.token("root"), hsm.token("root"), hsm.token("root")
    ids = [_keyid(_ok(tiup, "mirror", "genkey", "--pkcs11", t.uri("root"))) for t in (t1, t2, t3)]
    mirror, keys = tmp_path / "mirror", tmp_path / "keys"
    out = _ok(tiup, "mirror", "init", str(mirror), "--key-dir", str(keys),
              "--root-key", t1.uri("root"), "--root-key", t2.uri("root"))
    assert "threshold 2 of 2" in out
    root = _root(mirror)
    assert root["signed"]["roles"]["root"]["threshold"] == 2
    assert sorted(root["signed"]["roles"]["root"]["keys"]) == sorted(ids[:2])
    assert sorted(s["keyid"] for s in root["signatures"]) == sorted(ids[:2])
    assert not list(keys.glob("*-root.json"))  # no root key on disk
    assert "0 errors" in _ok(tiup, "mirror", "verify", str(mirror))
    # `tiup mirror sign FILE -k URI` adds the token's signature to a manifest file
    copy = tmp_path / "root-copy.json"
    copy.write_bytes((mirror / "root.json").read_bytes())
    _ok(tiup, "mirror", "sign", str(copy), "-k", t3.uri("root"))
    signed = json.loads(copy.read_text())
    (added,) = [s for s in signed["signatures"] if s["keyid"] == ids[2]]
    t3_public = _ok(tiup, "mirror", "genkey", "--pkcs11", t3.uri("root"), "-p")
    pem = json.loads(t3_public.split("KeyContent: ", 1)[1])["keyval"]["public"]
    serialization.load_pem_public_key(pem.encode()).verify(
        base64.b64decode(added["sig"]), encode_canonical(signed["signed"]),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
        hashes.SHA256())
    r = tiup("mirror", "sign", str(copy), "-k", t3.uri("root"), env=ENV)
    assert r.returncode == 1 and "already been signed" in r.stderr, r.output

    # publish with a file owner key, then rotate: add the third token, threshold 2 of 3,
    # signed by the two token holders
    _ok(tiup, "mirror", "genkey")
    _ok(tiup, "mirror", "--repo", str(mirror), "grant", "alice", "--key-dir", str(keys))
    _ok(tiup, "mirror", "--repo", str(mirror), "publish", "hello", "v0.0.1",
        str(_tarball(tmp_path)), "hello", "--key-dir", str(keys))
    client = {"TIUP_HOME": str(tmp_path / "client-early")}
    _ok(tiup, "mirror", "set", str(mirror), env=client)  # trusts root 1
    _ok(tiup, "mirror", "--repo", str(mirror), "rotate", "--key-dir", str(keys),
        "-k", t1.uri("root"), "-k", t2.uri("root"), "--add-key", t3.uri("root"),
        "--threshold", "2")
    root = _root(mirror, "2.root.json")
    assert root["signed"]["roles"]["root"]["threshold"] == 2
    assert sorted(root["signed"]["roles"]["root"]["keys"]) == sorted(ids)
    assert "0 errors" in _ok(tiup, "mirror", "verify", str(mirror))
    # then rotate again with two of the three tokens only (threshold 2 of 3)
    _ok(tiup, "mirror", "--repo", str(mirror), "rotate", "--key-dir", str(keys),
        "-k", t2.uri("root"), "-k", t3.uri("root"), "--remove-key", ids[0])
    root = _root(mirror, "3.root.json")
    assert sorted(root["signed"]["roles"]["root"]["keys"]) == sorted(ids[1:])
    assert "0 errors" in _ok(tiup, "mirror", "verify", str(mirror))
    # the client that trusted root 1 follows the chain; a fresh client installs
    r = tiup("hello", env={**ENV, **client}, subprocess=True)
    assert r.returncode == 0 and r.stdout == "hello\n", r.output
    _fresh_client_runs(tiup, mirror, tmp_path, "roots", "hello\n")


def test_rotate_moves_file_root_keys_onto_tokens(tiup, hsm: SoftHSM, tmp_path: Path) -> None:
    t1, t2 = hsm.token("mv"), hsm.token("mv")
    for t in (t1, t2):
        _ok(tiup, "mirror", "genkey", "--pkcs11", t.uri("root"))
    mirror = tmp_path / "mirror"
    _ok(tiup, "mirror", "init", str(mirror))
    old_ids = list(_root(mirror)["signed"]["roles"]["root"]["keys"])
    args = ["mirror", "--repo", str(mirror), "rotate", "--add-key", t1.uri("root"),
            "--add-key", t2.uri("root"), "--threshold", "2"]
    for kid in old_ids:
        args += ["--remove-key", kid]
    _ok(tiup, *args)
    root = _root(mirror, "2.root.json")
    assert not set(old_ids) & set(root["signed"]["roles"]["root"]["keys"])
    assert len(root["signed"]["roles"]["root"]["keys"]) == 2
    # the old root key files are useless now: delete them, rotate with the tokens alone
    for f in (mirror / "keys").glob("*-root.json"):
        f.unlink()
    _ok(tiup, "mirror", "--repo", str(mirror), "rotate", "-k", t1.uri("root"),
        "-k", t2.uri("root"), "--days", "4000")
    assert _root(mirror)["signed"]["version"] == 3
    assert "0 errors" in _ok(tiup, "mirror", "verify", str(mirror))


def test_init_root_threshold_with_more_or_fewer_keys(tiup, hsm: SoftHSM, tmp_path: Path) -> None:
    tokens = [hsm.token("th") for _ in range(3)]
    for t in tokens:
        _ok(tiup, "mirror", "genkey", "--pkcs11", t.uri("root"))
    uris = [a for t in tokens for a in ("--root-key", t.uri("root"))]
    r = tiup("mirror", "init", str(tmp_path / "bad"), *uris, "--root-threshold", "4", env=ENV)
    assert r.returncode == 2 and "threshold of 4 cannot be met by 3" in r.stderr, r.output
    assert not (tmp_path / "bad" / "root.json").exists()
    r = tiup("mirror", "init", str(tmp_path / "dup"), *uris[:2], *uris[:2], env=ENV)
    assert r.returncode == 2 and "the same root key is given twice" in r.stderr, r.output
    mirror = tmp_path / "m3"
    _ok(tiup, "mirror", "init", str(mirror), *uris, "--root-threshold", "2")
    role = _root(mirror)["signed"]["roles"]["root"]
    assert role["threshold"] == 2 and len(role["keys"]) == 3
    assert "0 errors" in _ok(tiup, "mirror", "verify", str(mirror))
    # one token key alone: threshold 1
    one = tmp_path / "m1"
    _ok(tiup, "mirror", "init", str(one), "--root-key", tokens[0].uri("root"))
    assert _root(one)["signed"]["roles"]["root"]["threshold"] == 1


def _start(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "tiup", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("Waiting all key holders to sign "):
        proc.kill()
        raise AssertionError(line + proc.communicate()[1])
    return proc, line.split()[-1]


def test_multi_party_rotate_each_holder_on_their_own_token(tiup, hsm: SoftHSM,
                                                           tmp_path: Path) -> None:
    t1, t2, t3 = hsm.token("mp"), hsm.token("mp"), hsm.token("mp")
    for t in (t1, t2):
        _ok(tiup, "mirror", "genkey", "--pkcs11", t.uri("root"))
    new_id = _keyid(_ok(tiup, "mirror", "genkey", "--pkcs11", t3.uri("root"), "--save",
                        cwd=tmp_path))
    mirror, keys = tmp_path / "mirror", tmp_path / "keys"
    _ok(tiup, "mirror", "init", str(mirror), "--key-dir", str(keys),
        "--root-key", t1.uri("root"), "--root-key", t2.uri("root"))
    env = {**os.environ, **ENV, "TIUP_HOME": str(tmp_path / "admin-home")}
    proc, url = _start(["mirror", "--repo", str(mirror), "rotate", "--addr", "127.0.0.1:0",
                        "--key-dir", str(keys), "--add-key",
                        str(tmp_path / f"{new_id[:16]}-public.json"), "--threshold", "2",
                        "--sign-timeout", "120"], env)
    try:
        # each holder signs in their own process with their own token
        holders = [subprocess.run([sys.executable, "-m", "tiup", "mirror", "sign", url, "-k",
                                   t.uri("root")], env={**env, "TIUP_HOME": str(
                                       tmp_path / f"holder-{t.label}")},
                                  capture_output=True, text=True, timeout=120)
                   for t in (t1, t2)]
        assert all(h.returncode == 0 for h in holders), [h.stderr for h in holders]
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Rotated root to version 2" in err
    root = _root(mirror, "2.root.json")
    assert new_id in root["signed"]["roles"]["root"]["keys"]
    assert len(root["signatures"]) == 2
    assert "0 errors" in _ok(tiup, "mirror", "verify", str(mirror))


# ------------------------------------------------------------------------------ errors


def _fails(tiup, *args: str, env: dict[str, str] | None = None) -> str:
    r = tiup(*args, env={**ENV, **(env or {})})
    assert r.returncode != 0, r.output
    assert "Traceback" not in r.output
    assert PIN not in r.output and "4321" not in r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines[0].startswith("Error: ") and lines[1].startswith("Hint: "), r.stderr
    return lines[0] + "\n" + lines[1]


@pytest.fixture
def owner_mirror(tiup, hsm: SoftHSM, tmp_path: Path) -> tuple[Path, Token]:
    token = hsm.token("err")
    _ok(tiup, "mirror", "genkey", "--pkcs11", token.uri())
    mirror = tmp_path / "mirror"
    _ok(tiup, "mirror", "init", str(mirror))
    _ok(tiup, "mirror", "--repo", str(mirror), "grant", "alice", "-k", token.uri())
    _ok(tiup, "mirror", "--repo", str(mirror), "publish", "hello", "v0.0.1",
        str(_tarball(tmp_path)), "hello", "-k", token.uri())
    return mirror, token


def test_errors_a_user_meets(tiup, hsm: SoftHSM, tmp_path: Path,
                             owner_mirror: tuple[Path, Token]) -> None:
    mirror, token = owner_mirror
    modify = ("mirror", "--repo", str(mirror), "modify", "hello", "--desc", "x", "-k")
    # module not found
    err = _fails(tiup, *modify, token.uri(), env={"TIUP_PKCS11_MODULE": "/nowhere/p11.so"})
    assert "PKCS#11 module /nowhere/p11.so not found" in err and "TIUP_PKCS11_MODULE" in err
    # a file that is not a PKCS#11 module (a process of its own: one module a process)
    fake = tmp_path / "not-a-module.so"
    fake.write_text("not a shared object\n")
    r = tiup(*modify, token.uri(extra=f"module-path={fake}"), env=ENV, subprocess=True)
    assert r.returncode == 1 and "Traceback" not in r.output, r.output
    assert r.stderr.startswith(f"Error: cannot load PKCS#11 module {fake}: ") and \
        "Hint: check that it is a PKCS#11 module" in r.stderr, r.stderr
    # no module at all
    err = _fails(tiup, *modify, token.uri(), env={"TIUP_PKCS11_MODULE": ""})
    assert "no PKCS#11 module" in err and "module-path=" in err
    # token not present
    err = _fails(tiup, *modify, token.uri().replace(token.label, "no-such-token"))
    assert "token not present: no initialised token with token=no-such-token" in err
    assert token.label in err  # the tokens that are there
    # wrong PIN (SoftHSM2 does not report a retry counter: nothing is made up)
    wrong = tmp_path / "wrong-pin"
    wrong.write_text("0000\n")
    err = _fails(tiup, *modify, token.uri(pin=False, extra=f"pin-source={wrong}"))
    assert f"wrong PIN for token {token.label!r}" in err and "0000" not in err
    # a missing PIN file
    err = _fails(tiup, *modify, token.uri(pin=False, extra="pin-source=/nowhere/pin"))
    assert "cannot read the PIN file /nowhere/pin" in err
    # no PIN and no terminal to ask on
    err = _fails(tiup, *modify, token.uri(pin=False))
    assert "a PIN is needed" in err and "pin-source=FILE" in err
    # object not found
    err = _fails(tiup, *modify, token.uri("no-such-key"))
    assert "object not found: no private key pkcs11:token=" in err and "pkcs11-tool" in err
    # an uninitialised token (SoftHSM2 always offers one, in its last slot)
    import pkcs11

    lib = pkcs11.lib(os.environ["TIUP_PKCS11_MODULE"])
    free = [s.slot_id for s in lib.get_slots(token_present=True)
            if not s.get_token().flags & pkcs11.TokenFlag.TOKEN_INITIALIZED]
    err = _fails(tiup, *modify, f"pkcs11:slot-id={free[0]};object=tiup?pin-source={token.pin_file}")
    assert f"the token in slot {free[0]}" in err and "not initialised" in err
    # an invalid URI: one line, exit 2 is not needed, the pin value never echoed
    err = _fails(tiup, *modify, "pkcs11:token=a;token=b;object=c")
    assert "attribute 'token' is given twice" in err
    err = _fails(tiup, *modify, f"pkcs11:token=a;object=c;pin-value={PIN};bogus=1")
    assert "unknown path attribute 'bogus'" in err
    # object exists: genkey never replaces a key
    err = _fails(tiup, "mirror", "genkey", "--pkcs11", token.uri())
    assert "already exists on the token" in err
    # the mirror is untouched by all of this
    assert len(list(mirror.glob("*.hello.json"))) == 1


def test_mechanism_not_supported_by_the_token(tiup, hsm: SoftHSM, tmp_path: Path,
                                              owner_mirror: tuple[Path, Token]) -> None:
    """A module without RSA-PSS (SoftHSM2 behind ``pkcs11shim/faulty.c``) is refused with
    one line; with plain CKM_RSA_PKCS_PSS left, tiup hashes and signs with that."""
    mirror, token = owner_mirror
    uri = token.uri(extra=f"module-path={hsm.faulty_module()}")
    # a second module: in a process of its own
    r = tiup("mirror", "--repo", str(mirror), "modify", "hello", "--desc", "x", "-k", uri,
             env={**ENV, "TIUP_TEST_NO_PSS": "1"}, subprocess=True)
    assert r.returncode == 1 and "Traceback" not in r.output, r.output
    assert "does not support RSA-PSS" in r.stderr and "Hint: " in r.stderr
    assert len(list(mirror.glob("*.hello.json"))) == 1
    r = tiup("mirror", "--repo", str(mirror), "modify", "hello", "--desc", "raw pss", "-k", uri,
             env={**ENV, "TIUP_TEST_NO_PSS": "hashing"}, subprocess=True)
    assert r.returncode == 0, r.output
    assert "0 errors" in _ok(tiup, "mirror", "verify", str(mirror))


def test_a_token_listing_that_fails_now_and_then_is_tried_again(
        tiup, hsm: SoftHSM, owner_mirror: tuple[Path, Token]) -> None:
    """SoftHSM2 answers CKR_GENERAL_ERROR to C_GetTokenInfo now and then while another
    process logs in (a server's workers start together): a few such answers are tried
    again; a token that keeps failing is one line (``pkcs11shim/faulty.c`` fails the
    first N calls)."""
    from tiup.keys.pkcs11 import LIST_ATTEMPTS

    mirror, token = owner_mirror
    uri = token.uri(extra=f"module-path={hsm.faulty_module()}")
    modify = ("mirror", "--repo", str(mirror), "modify", "hello", "-k", uri)
    r = tiup(*modify, "--desc", "after two failures",
             env={**ENV, "TIUP_TEST_TOKENINFO_FAILS": "2"}, subprocess=True)
    assert r.returncode == 0, r.output
    assert len(list(mirror.glob("*.hello.json"))) == 2
    r = tiup(*modify, "--desc", "never", subprocess=True,
             env={**ENV, "TIUP_TEST_TOKENINFO_FAILS": str(LIST_ATTEMPTS * 100)})
    assert r.returncode == 1 and "Traceback" not in r.output, r.output
    assert "failed while listing the tokens" in r.stderr and "GeneralError" in r.stderr
    assert len(list(mirror.glob("*.hello.json"))) == 2


def test_wrong_pin_says_the_tries_left_then_locked(tiup, hsm: SoftHSM, tmp_path: Path,
                                                  owner_mirror: tuple[Path, Token]) -> None:
    """A token that keeps a retry counter (SoftHSM2 keeps none: ``pkcs11shim/faulty.c``
    adds one, three tries): each wrong PIN says what the token reports, then it is locked
    and even the right PIN is refused."""
    mirror, token = owner_mirror
    module = hsm.faulty_module()
    wrong = tmp_path / "wrong-pin"
    wrong.write_text("0000\n")
    env = {**ENV, "TIUP_TEST_PIN_STATE": str(tmp_path / "pin-state")}
    modify = ("mirror", "--repo", str(mirror), "modify", "hello", "--desc", "x", "-k")

    def run(uri: str) -> str:
        r = tiup(*modify, uri, env=env, subprocess=True)
        assert r.returncode == 1 and "Traceback" not in r.output, r.output
        assert "0000" not in r.output and PIN not in r.output
        return r.stderr.splitlines()[0]

    bad = token.uri(pin=False, extra=f"pin-source={wrong}&module-path={module}")
    assert run(bad).endswith("; few tries are left before the PIN locks")
    assert run(bad).endswith("; one try is left before the PIN locks")
    assert run(bad).endswith("; the PIN is now locked")
    line = run(token.uri(extra=f"module-path={module}"))
    assert line == f"Error: the PIN of token {token.label!r} is locked"
    assert len(list(mirror.glob("*.hello.json"))) == 1


#: Runs ``tiup`` and writes the names of the modules loaded at exit to $TIUP_PROBE_OUT.
PROBE = """
import atexit, os, sys
out = os.environ["TIUP_PROBE_OUT"]
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
from tiup.cli.entry import main
main()
"""


def test_the_binding_is_loaded_only_when_a_pkcs11_key_is_used(tiup, hsm: SoftHSM,
                                                              tmp_path: Path) -> None:
    token = hsm.token("lazy")
    _ok(tiup, "mirror", "genkey", "--pkcs11", token.uri())
    _ok(tiup, "mirror", "genkey")
    mirror = tmp_path / "mirror"
    _ok(tiup, "mirror", "init", str(mirror))
    _ok(tiup, "mirror", "--repo", str(mirror), "grant", "alice")
    _ok(tiup, "mirror", "--repo", str(mirror), "grant", "bob", "-k", token.uri())
    tarball = str(_tarball(tmp_path))

    def modules(*args: str) -> set[str]:
        out = tmp_path / "modules.txt"
        proc = subprocess.run([sys.executable, "-c", PROBE, "mirror", "--repo", str(mirror),
                               *args], env={**os.environ, **ENV, "TIUP_PROBE_OUT": str(out)},
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return set(out.read_text().split())

    by_file = modules("publish", "hello", "v0.0.1", tarball, "hello")
    assert "tiup.repository.keyring" in by_file
    assert not {n for n in by_file if n.split(".")[0] == "pkcs11" or "pkcs11" in n}
    by_token = modules("publish", "hi", "v0.0.1", tarball, "hello", "-k", token.uri())
    assert {"pkcs11", "tiup.keys.pkcs11"} <= by_token


def test_the_server_signs_snapshot_and_timestamp_on_a_token(tiup, hsm: SoftHSM,
                                                            tmp_path: Path) -> None:
    """``tiup mirror serve --key 'pkcs11:…'``: each worker process opens the token and signs
    what a remote publish changes; the result verifies and a fresh client installs it."""
    from publishkit import NOW
    from serverkit import start_server
    from tiup.keys import generate, save_private_key
    from tiup.keys.pkcs11 import token_key
    from tiup.manifest.models import Owner
    from tiup.repository.init import write_initial_mirror
    from tiup.repository.lifetimes import Lifetimes
    from tiup.repository.local_storage import LocalStorage

    token = hsm.token("srv")
    for role in ("snapshot", "timestamp"):
        _ok(tiup, "mirror", "genkey", "--pkcs11", token.uri(role))
    snap, ts = token_key(token.uri("snapshot")), token_key(token.uri("timestamp"))
    root, index, owner = generate(), generate(), generate()
    keys = tmp_path / "keys"
    keys.mkdir()
    for name, key in (("root", root), ("index", index)):
        save_private_key(keys / f"{key.keyid[:16]}-{name}.json", key)
    owner_file = tmp_path / "owner.json"
    save_private_key(owner_file, owner)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    storage = LocalStorage(mirror)
    storage.acquire(0)
    try:
        write_initial_mirror(storage, {"root": [root], "index": [index], "snapshot": [snap],
                                       "timestamp": [ts]}, Lifetimes(), NOW,
                             owners={"jdoe": Owner({owner.keyid: owner.public.keyinfo()},
                                                   "J. Doe", 1)})
    finally:
        storage.release()
    # without the token keys the server has no snapshot/timestamp key: it says so
    r = tiup("mirror", "serve", str(mirror), "--key-dir", str(keys), "--addr", "127.0.0.1:1",
             env=ENV)
    assert r.returncode == 1 and "of role snapshot" in r.stderr, r.output
    # a token key without a PIN source is refused before anything starts
    r = tiup("mirror", "serve", str(mirror), "--key-dir", str(keys), "--key",
             token.uri("snapshot", pin=False), "--addr", "127.0.0.1:1", env=ENV)
    assert r.returncode == 2 and "cannot ask for a PIN" in r.stderr, r.output
    srv = start_server(mirror, "--key-dir", str(keys), "--key", token.uri("snapshot"),
                       "--key", token.uri("timestamp"), "--workers", "2", workdir=tmp_path)
    try:
        _ok(tiup, "mirror", "--repo", srv.url, "publish", "hello", "v0.0.1",
            str(_tarball(tmp_path)), "hello", "-k", str(owner_file))
        client = {"TIUP_HOME": str(tmp_path / "client-srv")}
        _ok(tiup, "mirror", "set", srv.url, env=client)
        r = tiup("hello", env={**ENV, **client}, subprocess=True)
        assert r.returncode == 0 and r.stdout == "hello\n", r.output
    finally:
        assert srv.stop() == 0
    timestamp = json.loads((mirror / "timestamp.json").read_text())
    assert timestamp["signed"]["version"] >= 2
    assert [s["keyid"] for s in timestamp["signatures"]] == [ts.keyid]
    snapshot = json.loads((mirror / "snapshot.json").read_text())
    assert [s["keyid"] for s in snapshot["signatures"]] == [snap.keyid]
    assert "0 errors" in _ok(tiup, "mirror", "verify", str(mirror))


def test_clone_with_the_pingcap_owner_key_on_a_token(tiup, hsm: SoftHSM,
                                                     tmp_path: Path) -> None:
    """``tiup mirror clone -k 'pkcs11:…'``: the clone's owner key is the token's (not
    written to disk); a re-run reuses it, and publishing into the clone signs with it."""
    token = hsm.token("clone")
    owner_id = _keyid(_ok(tiup, "mirror", "genkey", "--pkcs11", token.uri()))
    source = tmp_path / "source"
    _ok(tiup, "mirror", "init", str(source))
    _ok(tiup, "mirror", "genkey")
    _ok(tiup, "mirror", "--repo", str(source), "grant", "jdoe")
    _ok(tiup, "mirror", "--repo", str(source), "publish", "hello", "v0.0.1",
        str(_tarball(tmp_path)), "hello")
    target = tmp_path / "clone"
    clone = ("mirror", "clone", str(target), "v0.0.1", "--source", str(source), "-k",
             token.uri())
    out = _ok(tiup, *clone)
    assert "the owner key of `pingcap` is the key given with -k" in out
    index = json.loads(sorted(target.glob("*.index.json"))[-1].read_text())
    assert list(index["signed"]["owners"]["pingcap"]["keys"]) == [owner_id]
    assert not list((target / "keys").glob("*-pingcap.json"))
    first_root = (target / "root.json").read_bytes()
    # a re-run reuses the clone's keys, the token's among them
    _ok(tiup, *clone)
    assert (target / "root.json").read_bytes() == first_root
    # without the token key the earlier clone is not recognised: refused, untouched
    r = tiup("mirror", "clone", str(target), "v0.0.1", "--source", str(source), env=ENV)
    assert r.returncode == 1 and "not an earlier clone" in r.stderr, r.output
    _ok(tiup, "mirror", "--repo", str(target), "publish", "hello", "v0.0.2",
        str(_tarball(tmp_path, "v0.0.2", "from the clone")), "hello", "-k", token.uri())
    manifest = json.loads(sorted(target.glob("*.hello.json"))[-1].read_text())
    assert [s["keyid"] for s in manifest["signatures"]] == [owner_id]
    assert "0 errors" in _ok(tiup, "mirror", "verify", str(target))
    _fresh_client_runs(tiup, target, tmp_path, "clone", "from the clone\n")


def test_the_pin_is_asked_on_the_terminal_and_never_echoed(tiup, hsm: SoftHSM,
                                                           owner_mirror: tuple[Path, Token],
                                                           tmp_path: Path) -> None:
    """No pin-source=: tiup asks on the controlling terminal (a pty here), echo off."""
    import fcntl
    import pty
    import termios

    mirror, token = owner_mirror
    master, slave = pty.openpty()

    def controlling_tty() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [sys.executable, "-m", "tiup", "mirror", "--repo", str(mirror), "modify", "hello",
         "--desc", "asked", "-k", token.uri(pin=False)],
        stdin=slave, stdout=slave, stderr=slave, env={**os.environ, **ENV},
        preexec_fn=controlling_tty, close_fds=True)
    os.close(slave)
    seen = b""
    try:
        while b"PIN of token" not in seen:
            chunk = os.read(master, 4096)  # blocks until tiup writes: no timing involved
            assert chunk, seen
            seen += chunk
        os.write(master, (PIN + "\n").encode())
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        assert proc.wait(timeout=120) == 0, seen.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = seen.decode(errors="replace")
    assert f"PIN of token '{token.label}': " in text
    assert PIN not in text  # not echoed, not printed
    manifest = json.loads(sorted(mirror.glob("*.hello.json"))[-1].read_text())
    assert manifest["signed"]["description"] == "asked"
