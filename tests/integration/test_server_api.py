"""The publish API and the static side of the real server against bad input: each request gets
the right status and JSON error, and the mirror still verifies afterwards."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

from publishkit import NOW, assert_valid, make_tarball
from serverkit import (
    ServerProc,
    Setup,
    build,
    jerr,
    make_setup,
    post_manifest,
    raw,
    start_server,
    upload,
)
from tiup.keys import PrivateKey, generate
from tiup.repository.admin import grant
from tiup.repository.keyring import load_keyring
from tiup.repository.store import Store, sign
from tiup.transport.publish_api import multipart_parts

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Setup, ServerProc, Path]]:
    base = tmp_path_factory.mktemp("api")
    setup = make_setup(base / "data")
    bob = generate()
    with Store(setup.mirror, now=NOW, keyring=load_keyring([setup.keys])) as store:
        grant(store, "bob", "Bob", [bob.keyinfo()])
        store.commit()
    setup.tarballs["bob"] = Path(base / "bob.key")
    setup.tarballs["bob"].write_text(json.dumps(bob.keyinfo().to_dict()))
    data_dir = base / "component-data"
    srv = start_server(setup.mirror, "--key-dir", str(setup.keys), "--max-upload-size",
                       f"{LIMIT}", "--session-ttl", "600", workdir=base,
                       env={"TIUP_COMPONENT_DATA_DIR": str(data_dir)})
    yield setup, srv, data_dir / "packages"
    assert srv.stop() == 0
    assert_valid(setup.mirror)


def _bob(setup: Setup) -> PrivateKey:
    from tiup.keys import load_private_key

    return load_private_key(setup.tarballs["bob"])


@pytest.mark.parametrize("path", [
    "/keys/", "/keys", "/lock", "/.tiup-mirror.toml", "/", "/../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd", "/..%2fkeys%2fx.json", "/a/../root.json", "/%2fetc%2fpasswd",
    "/api/../keys/", "/commits/", "/.tmp-x-timestamp.json",
])
def test_private_and_traversal_paths_are_404(env, path: str) -> None:
    setup, srv, _ = env
    for name in os.listdir(setup.keys):
        status, code, _msg = jerr(raw(srv, "GET", f"/keys/{name}"))
        assert (status, code) == (404, "NOT FOUND")
    status, code, _msg = jerr(raw(srv, "GET", path))
    if path.startswith("/api/"):  # the API answers GET with 405 (POST only)
        assert (status, code) == (405, "METHOD NOT ALLOWED"), path
    else:
        assert (status, code) == (404, "NOT FOUND"), path


@pytest.mark.parametrize("path", [
    "/api/v1/tarball/..%2f..%2fkeys", "/api/v1/tarball/a_b", "/api/v1/tarball/" + "a" * 65,
    "/api/v1/component/abc/..%2fkeys", "/api/v1/component/..%2f..%2fx/hello",
    "/api/v1/component/abc/%2e%2e",
])
def test_api_path_traversal_rejected(env, path: str) -> None:
    _setup, srv, _ = env
    status, code, _msg = jerr(raw(srv, "POST", path, b"{}"))
    assert status in (400, 404) and code in ("INVALID REQUEST", "NOT FOUND"), (path, code)


def test_methods(env) -> None:
    _setup, srv, _ = env
    status, headers, _body = raw(srv, "GET", "/api/v1/rotate")
    assert status == 405 and headers["allow"] == "POST"
    status, headers, _body = raw(srv, "PUT", "/timestamp.json", b"x")
    assert status == 405 and headers["allow"] == "GET, HEAD"


def test_static_headers_range_and_conditional(env) -> None:
    setup, srv, _ = env
    status, headers, body = raw(srv, "GET", "/timestamp.json")
    assert status == 200 and headers["cache-control"] == "no-cache"
    assert body == (setup.mirror / "timestamp.json").read_bytes()
    status, headers, body = raw(srv, "GET", "/1.index.json", headers={"Range": "bytes=10-19"})
    assert status == 206 and body == (setup.mirror / "1.index.json").read_bytes()[10:20]
    assert headers["content-range"].startswith("bytes 10-19/")
    assert "immutable" in headers["cache-control"]
    etag = headers["etag"]
    status, _h, body = raw(srv, "GET", "/1.index.json", headers={"If-None-Match": etag})
    assert status == 304 and body == b""
    status, headers, body = raw(srv, "HEAD", "/root.json")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0


def test_bad_publishes(env, tmp_path: Path) -> None:
    setup, srv, _ = env
    tb = make_tarball(tmp_path / "t.tar.gz", body=b"#!/bin/sh\necho bad\n")
    good, name = build(setup, "v9.0.0", tb)
    # malformed JSON
    assert jerr(post_manifest(srv, "s1", b"{not json"))[:2] == (400, "INVALID MANIFEST")
    assert jerr(post_manifest(srv, "s1", b'{"signatures":[],"signed":{"_type":"component"}}')
                )[:2] == (400, "INVALID MANIFEST")
    # the URL names another component / a role
    assert jerr(post_manifest(srv, "s1", good, name="other"))[:2] == (400, "INVALID MANIFEST")
    assert jerr(post_manifest(srv, "s1", good, name="root"))[:2] == (403, "FORBIDDEN")
    # bad query flag
    assert jerr(post_manifest(srv, "s1", good, query="?yanked=maybe"))[:2] == \
        (400, "INVALID REQUEST")
    # wrong owner: bob's key signs jdoe's component
    other, _ = build(setup, "v9.0.0", tb, signers=[_bob(setup)])
    assert upload(srv, "s2", tb, name)[0] == 200
    status, code, msg = jerr(post_manifest(srv, "s2", other))
    assert (status, code) == (403, "FORBIDDEN"), msg
    # bad signature (right key id, wrong bytes)
    doc = json.loads(good)
    doc["signatures"][0]["sig"] = base64.b64encode(b"\0" * 256).decode()
    assert upload(srv, "s3", tb, name)[0] == 200
    assert jerr(post_manifest(srv, "s3", json.dumps(doc).encode()))[:2] == (403, "FORBIDDEN")
    # wrong checksum / length (TiUP #1162)
    for field, value, word in (("sha256", "0" * 64, "sha256"), ("sha512", "0" * 128, "sha512"),
                               ("length", 5, "length")):
        bad, _ = build(setup, "v9.0.0", tb, **{field: value})
        assert upload(srv, f"s4{field}", tb, name)[0] == 200
        status, code, msg = jerr(post_manifest(srv, f"s4{field}", bad))
        assert (status, code) == (400, "INVALID TARBALL"), msg
        assert msg.startswith(word) and name in msg
    # tarball name that matches no version item
    assert upload(srv, "s5", tb, "hello-v9.9.9-linux-amd64.tar.gz")[0] == 200
    status, code, msg = jerr(post_manifest(srv, "s5", good))
    assert (status, code) == (400, "INVALID TARBALL") and "incorrect file name" in msg
    # no tarball uploaded in this session: the version's tarball is nowhere
    status, code, msg = jerr(post_manifest(srv, "never-uploaded", good))
    assert (status, code) == (404, "SESSION NOT FOUND"), msg
    # upload without the file field / not multipart
    assert jerr(raw(srv, "POST", "/api/v1/tarball/s6", b"x", {"Content-Type": "text/plain"})
                )[:2] == (400, "INVALID TARBALL")
    # stale version → conflict
    stale = json.loads(good)["signed"]
    stale["version"] = 1
    resigned = sign(_model(stale), [setup.owner])
    assert upload(srv, "s7", tb, name)[0] == 200
    assert jerr(post_manifest(srv, "s7", resigned))[:2] == (409, "MANIFEST CONFLICT")
    # nothing of the above changed the mirror, and the good manifest still works
    assert upload(srv, "s8", tb, name)[0] == 200
    status, _h, body = post_manifest(srv, "s8", good)
    assert (status, body) == (200, b"null")
    assert (setup.mirror / name).read_bytes() == tb.read_bytes()
    assert_valid(setup.mirror)


def _model(signed: dict[str, object]):  # type: ignore[no-untyped-def]
    from tiup.manifest.models import Component

    return Component.from_dict(signed)


def test_upload_limits(env, tmp_path: Path) -> None:
    _setup, srv, uploads = env
    big = tmp_path / "big.tar.gz"
    big.write_bytes(os.urandom(LIMIT + 10))
    status, code, msg = jerr(upload(srv, "big1", big, "big.tar.gz"))
    assert (status, code) == (413, "TOO LARGE"), msg
    # chunked (no Content-Length): the limit is enforced while streaming
    boundary, head, tail, _ = multipart_parts(big, "big.tar.gz")
    pool = urllib3.PoolManager()

    def chunks() -> Iterator[bytes]:
        yield head
        yield big.read_bytes()
        yield tail

    resp = pool.request("POST", f"{srv.url}/api/v1/tarball/big2", body=chunks(),
                        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                        chunked=True)
    assert resp.status == 413 and json.loads(resp.data)["status"] == "TOO LARGE"
    assert not [p for p in uploads.iterdir() if p.name.startswith(("big1", "big2", ".part"))]


def test_sessions_expire(env, tmp_path: Path) -> None:
    setup, srv, uploads = env
    tb = make_tarball(tmp_path / "e.tar.gz", body=b"#!/bin/sh\necho expired\n")
    good, name = build(setup, "v8.0.0", tb)
    assert upload(srv, "old-session", tb, name)[0] == 200
    aged = time.time() - 601
    for p in uploads.glob("old-session*"):
        os.utime(p, (aged, aged))
    status, code, msg = jerr(post_manifest(srv, "old-session", good))
    assert (status, code) == (404, "SESSION NOT FOUND"), msg
    assert not list(uploads.glob("old-session*"))


def test_rotate_api_errors(env) -> None:
    setup, srv, _ = env
    from tiup.repository.admin import next_root
    from tiup.repository.lifetimes import Lifetimes
    from tiup.repository.state import latest_root

    before = (setup.mirror / "root.json").read_bytes()
    assert jerr(raw(srv, "POST", "/api/v1/rotate", b"[1,2"))[:2] == (400, "INVALID MANIFEST")
    old = latest_root(setup.mirror)[0]
    new = next_root(old, NOW, Lifetimes().root)
    root_keys = load_keyring([setup.keys])
    signers = [k for kid, k in root_keys.keys.items() if kid in old.roles["root"].keys]
    status, code, msg = jerr(raw(srv, "POST", "/api/v1/rotate", sign(new, signers[:1])))
    assert (status, code) == (403, "FORBIDDEN"), msg
    stale = next_root(old, NOW, Lifetimes().root)
    stale.version = old.version
    assert jerr(raw(srv, "POST", "/api/v1/rotate", sign(stale, signers)))[:2] == \
        (409, "MANIFEST CONFLICT")
    assert (setup.mirror / "root.json").read_bytes() == before
    assert not (setup.mirror / f"{old.version + 1}.root.json").exists()
