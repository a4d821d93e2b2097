"""A clone from a local directory into a bucket uploads each tarball straight from the
source's file after verifying it there (no spool copy). Bytes that change after the
verification are never stored, nor adopted by a later run: the PUT is signed with the
manifest's sha256, tiup refuses to send other bytes, and the server (a real Ceph RGW)
refuses a body that changes while it is sent. Also: the client's connections are tuned
(TCP_QUICKACK after each request, large send blocks)."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path
from typing import Any

import pytest

from clonekit import build_upstream, copy_upstream
from s3kit import Bucket
from tiup.errors import IntegrityError
from tiup.hashing import FileInfo
from tiup.repository.clone import flow
from tiup.repository.s3_storage import NOT_VERIFIED, SEND_BLOCK, S3Storage


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("upstream")
    build_upstream(base / "mirror", base / "owner.json")
    return base / "mirror", base / "owner.json"


def flip(path: Path) -> bytes:
    """Rewrite ``path`` in place (same length, other bytes); returns the old bytes."""
    old = path.read_bytes()
    with open(path, "r+b") as fh:
        fh.write(bytes(b ^ 0xFF for b in old[:64]))
    return old


def test_a_source_file_changed_after_verification_is_not_uploaded(
        tiup, bucket: Bucket, template: tuple[Path, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    mirror, _key = copy_upstream(template, tmp_path / "up")
    args = ("mirror", "clone", bucket.url, "--full", "-o", "linux", "-a", "amd64",
            "--source", str(mirror), "--key-dir", str(tmp_path / "keys"))
    victim = sorted(p.name for p in mirror.glob("*.tar.gz"))[0]
    saved: dict[str, bytes] = {}

    def rewrite(name: str, path: Path) -> None:
        # between the length/sha512 check of this file and its upload from the same file
        if name == victim:
            saved[name] = flip(path)

    monkeypatch.setattr(flow, "verified_hook", rewrite)
    r = tiup(*args)
    assert r.returncode == 1, r.output
    assert "Failed to fetch 1 files" in r.stdout, r.output
    assert f"/{victim}: its bytes do not have the sha256 of the signed manifest" in r.stdout
    assert saved, "the hook never ran"
    stored = {k.split("/")[-1] for k in bucket.objects()}
    assert victim not in stored  # nothing under its name: nothing for a later run to adopt
    assert len([n for n in stored if n.endswith(".tar.gz")]) == 9

    # the source is fixed: the next run uploads the right bytes and completes
    monkeypatch.setattr(flow, "verified_hook", None)
    (mirror / victim).write_bytes(saved[victim])
    r = tiup(*args)
    assert r.returncode == 0, r.output
    assert bucket.get(victim) == saved[victim]
    r = tiup("mirror", "verify", bucket.url)
    assert r.returncode == 0 and ": 0 errors" in r.stdout, r.output


def test_tiup_refuses_to_send_bytes_that_are_not_the_verified_ones(
        bucket: Bucket, tmp_path: Path) -> None:
    storage = S3Storage(bucket.url)
    good = b"verified bytes\n" * 1000
    info = FileInfo.of_bytes(good)
    path = tmp_path / "x-v1.0.0-linux-amd64.tar.gz"
    path.write_bytes(good)
    flip(path)
    with open(path, "rb") as body, pytest.raises(IntegrityError) as caught:
        storage.upload_body(path.name, body, info)
    assert caught.value.code == NOT_VERIFIED
    assert "not the verified ones" in caught.value.message and caught.value.hint
    assert not [k for k in bucket.objects() if k.endswith(path.name)]


def test_the_server_refuses_a_body_that_changes_while_it_is_sent(
        bucket: Bucket, tmp_path: Path) -> None:
    storage = S3Storage(bucket.url)
    good = b"verified bytes\n" * 1000
    info = FileInfo.of_bytes(good)
    path = tmp_path / "x-v1.0.0-linux-amd64.tar.gz"
    path.write_bytes(good)
    changed: list[str] = []

    def after_signing(request: Any, **_: Any) -> None:
        # registered after tiup's own check: the signed sha256 is the verified one, and
        # then the file changes before its bytes are read for sending
        signed = request.headers["X-Amz-Content-SHA256"]
        assert (signed.decode() if isinstance(signed, bytes) else signed) == info.sha256
        flip(path)
        changed.append(request.url)

    storage.client.meta.events.register("before-send.s3.PutObject", after_signing)
    with open(path, "rb") as body, pytest.raises(IntegrityError) as caught:
        storage.upload_body(path.name, body, info)
    assert changed
    assert caught.value.code == NOT_VERIFIED
    assert "the server refused the upload" in caught.value.message
    assert not [k for k in bucket.objects() if k.endswith(path.name)]

    # the right bytes then go up, and an identical upload is kept (adopted), not refused
    storage.client.meta.events.unregister("before-send.s3.PutObject", after_signing)
    path.write_bytes(good)
    for _ in range(2):
        with open(path, "rb") as body:
            storage.upload_body(path.name, body, info)
    assert bucket.get(path.name) == good
    head = bucket.rgw.client().head_object(Bucket=bucket.name,
                                           Key=f"{bucket.prefix}/{path.name}")
    assert head["Metadata"]["sha256"] == hashlib.sha256(good).hexdigest()


def test_connections_ack_at_once_and_send_large_blocks(bucket: Bucket) -> None:
    storage = S3Storage(bucket.url)
    storage.put_new("a.json", b"{}")
    assert storage.read("a.json") == b"{}"
    session = storage.client._endpoint.http_session
    pool = session._manager.connection_from_url(bucket.rgw.endpoint)
    conn = pool.ConnectionCls(host="127.0.0.1", port=1)
    assert getattr(conn, "_tiup_tuned", False)
    assert conn.blocksize == SEND_BLOCK
    if not hasattr(socket, "TCP_QUICKACK"):
        pytest.skip("TCP_QUICKACK is Linux-only")
