"""Serve a mirror with the real server process; install from it, publish into it remotely
(HTTP and HTTPS), modify/renew/transfer remotely, conflicts retried."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from publishkit import ENV, assert_valid, make_tarball
from serverkit import PLAT_ARGS, Setup, make_setup, start_server
from servers import make_tls
from tiup.keys import generate, save_private_key


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return make_setup(tmp_path / "data")


def _homes(tmp_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    client = {**ENV, "TIUP_HOME": str(tmp_path / "client-home")}
    publisher = {**ENV, "TIUP_HOME": str(tmp_path / "publisher-home")}
    return client, publisher


def _flow(tiup, setup: Setup, tmp_path: Path, url: str, extra_env: dict[str, str]) -> None:
    client, publisher = _homes(tmp_path)
    client.update(extra_env)
    publisher.update(extra_env)
    r = tiup("mirror", "set", url, env=client)
    assert r.returncode == 0, r.output
    r = tiup("hello", env=client, subprocess=True)
    assert r.returncode == 0 and r.stdout == "hello one\n", r.output
    tb = make_tarball(tmp_path / "h2.tar.gz", body=b"#!/bin/sh\necho hello two\n")
    r = tiup("mirror", "--repo", url, "publish", "hello", "v0.0.2", str(tb), "hello",
             "-k", str(setup.owner_key), *PLAT_ARGS, env=publisher)
    assert r.returncode == 0, r.output
    assert f"Published hello v0.0.2 ({PLAT_ARGS[1]}/{PLAT_ARGS[3]}) to {url}" in r.stdout
    assert (setup.mirror / f"hello-v0.0.2-{PLAT_ARGS[1]}-{PLAT_ARGS[3]}.tar.gz"
            ).read_bytes() == tb.read_bytes()
    r = tiup("update", "hello", env=client)
    assert r.returncode == 0, r.output
    r = tiup("hello", env=client, subprocess=True)
    assert r.returncode == 0 and r.stdout == "hello two\n", r.output
    assert_valid(setup.mirror)


def test_install_and_publish_over_http(tiup, setup: Setup, tmp_path: Path) -> None:
    srv = start_server(setup.mirror, "--key-dir", str(setup.keys), workdir=tmp_path)
    try:
        _flow(tiup, setup, tmp_path, srv.url, {})
        # a new component from another owner's key is refused: nobody granted it
        stranger = tmp_path / "stranger.json"
        save_private_key(stranger, generate())
        tb = make_tarball(tmp_path / "x.tar.gz", entry="x")
        r = tiup("mirror", "--repo", srv.url, "publish", "x", "v1.0.0", str(tb), "x",
                 "-k", str(stranger), *PLAT_ARGS, env=_homes(tmp_path)[1])
        assert r.returncode == 1 and "no owner of mirror" in r.stderr, r.output
    finally:
        assert srv.stop() == 0
    log = srv.log()
    assert "POST /api/v1/tarball/" in log and "GET /timestamp.json 200" in log
    assert "Serving" in log


def test_install_and_publish_over_https(tiup, setup: Setup, tmp_path: Path) -> None:
    tls = make_tls(tmp_path / "tls")
    srv = start_server(setup.mirror, "--key-dir", str(setup.keys), workdir=tmp_path,
                       tls=(tls.ca, tls.cert, tls.key))
    try:
        assert srv.url.startswith("https://")
        # without the CA the client refuses the server
        r = tiup("mirror", "set", srv.url, env={**ENV, "TIUP_HOME": str(tmp_path / "h0")})
        assert r.returncode == 1 and "certificate" in r.stderr.lower(), r.output
        _flow(tiup, setup, tmp_path, srv.url, {"TIUP_CA_BUNDLE": str(tls.ca)})
    finally:
        assert srv.stop() == 0


def test_modify_renew_and_transfer_remotely(tiup, setup: Setup, tmp_path: Path) -> None:
    from publishkit import NOW
    from tiup.repository.admin import grant
    from tiup.repository.keyring import load_keyring
    from tiup.repository.store import Store

    bob = generate()
    bob_key = tmp_path / "bob.json"
    save_private_key(bob_key, bob)
    with Store(setup.mirror, now=NOW, keyring=load_keyring([setup.keys])) as store:
        grant(store, "bob", "Bob", [bob.keyinfo()])
        store.commit()
    _client, publisher = _homes(tmp_path)
    srv = start_server(setup.mirror, "--key-dir", str(setup.keys), workdir=tmp_path)
    repo = ("mirror", "--repo", srv.url)
    try:
        r = tiup(*repo, "modify", "hello", "--desc", "Say hello", "--hide",
                 "-k", str(setup.owner_key), env=publisher)
        assert r.returncode == 0, r.output
        snap = json.loads((setup.mirror / "snapshot.json").read_text())["signed"]
        index_v = snap["meta"]["/index.json"]["version"]
        index = json.loads((setup.mirror / f"{index_v}.index.json").read_text())["signed"]
        assert index["components"]["hello"]["hidden"] is True
        comp = json.loads((setup.mirror / "2.hello.json").read_text())["signed"]
        assert comp["description"] == "Say hello"
        r = tiup(*repo, "modify", "hello:v0.0.1", "--yank", "-k", str(setup.owner_key),
                 env=publisher)
        assert r.returncode == 0, r.output
        comp = json.loads((setup.mirror / "3.hello.json").read_text())["signed"]
        assert all(v["v0.0.1"]["yanked"] for v in comp["platforms"].values())
        r = tiup(*repo, "renew", "hello", "--days", "30", "-k", str(setup.owner_key),
                 env=publisher)
        assert r.returncode == 0 and "Renewed hello: version 4" in r.stderr, r.output
        # bob alone cannot modify jdoe's component: 403 from the server
        r = tiup(*repo, "modify", "hello", "--desc", "mine", "-k", str(bob_key), "--key-dir",
                 str(tmp_path / "none"), env=publisher)
        assert r.returncode == 1, r.output
        # transfer needs both owners' signatures; sent with owner=bob
        r = tiup(*repo, "transfer-owner", "hello", "bob", "-k", str(setup.owner_key),
                 "-k", str(bob_key), env=publisher)
        assert r.returncode == 0, r.output
        snap = json.loads((setup.mirror / "snapshot.json").read_text())["signed"]
        index_v = snap["meta"]["/index.json"]["version"]
        index = json.loads((setup.mirror / f"{index_v}.index.json").read_text())["signed"]
        assert index["components"]["hello"]["owner"] == "bob"
        r = tiup(*repo, "renew", "--index", env=publisher)
        assert r.returncode == 2 and "--index" in r.stderr
    finally:
        assert srv.stop() == 0
    assert_valid(setup.mirror)


def test_publish_retries_on_conflict(tiup, setup: Setup, tmp_path: Path) -> None:
    """A concurrent publish lands between our read and our POST: 409, rebuilt, retried."""
    import subprocess
    import sys

    srv = start_server(setup.mirror, "--key-dir", str(setup.keys), workdir=tmp_path)
    _client, publisher = _homes(tmp_path)
    env = {**os.environ, **publisher, "TIUP_PUBLISH_BACKOFF": "0.01"}
    try:
        procs = []
        for i in range(4):
            tb = make_tarball(tmp_path / f"c{i}.tar.gz", body=f"echo {i}\n".encode())
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "tiup", "mirror", "--repo", srv.url, "publish", "hello",
                 f"v0.1.{i}", str(tb), "hello", "-k", str(setup.owner_key), *PLAT_ARGS],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        outs = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
    finally:
        assert srv.stop() == 0
    snap = json.loads((setup.mirror / "snapshot.json").read_text())["signed"]
    version = snap["meta"]["/hello.json"]["version"]
    comp = json.loads((setup.mirror / f"{version}.hello.json").read_text())["signed"]
    plat = f"{PLAT_ARGS[1]}/{PLAT_ARGS[3]}"
    assert {f"v0.1.{i}" for i in range(4)} <= set(comp["platforms"][plat])
    assert_valid(setup.mirror)
