"""A clone from a local directory into a bucket uploads each tarball straight from the
source's file, verifying the bytes as they are sent (no spool copy, one read). Bytes that
are not the signed ones are never stored, nor adopted by a later run: the PUT is signed
with the manifest's sha256 (botocore does not hash the file again), and the server (a
real Ceph RGW) refuses a body without that sha256; tiup checks the sha512 of what it
sent. Also: the client's connections are tuned (TCP_QUICKACK after each request, large
send blocks)."""

from __future__ import annotations

import hashlib
import io
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from clonekit import (
    component_tarballs,
    copy_upstream,
    publish_version,
    tarball_bytes,
    tarball_name,
    watch_ahead,
)
from publishkit import NOW
from s3kit import Bucket
from tiup.errors import IntegrityError
from tiup.hashing import FileInfo
from tiup.keys import load_private_key
from tiup.manifest.models import Component, VersionItem
from tiup.manifest.timefmt import format_time
from tiup.repository import s3_storage
from tiup.repository.clone import flow
from tiup.repository.keyring import load_keyring
from tiup.repository.s3_storage import NOT_VERIFIED, SEND_BLOCK, S3Storage, SentBody
from tiup.repository.store import Store, sign


def flip(path: Path) -> bytes:
    """Rewrite ``path`` in place (same length, other bytes); returns the old bytes."""
    old = path.read_bytes()
    with open(path, "r+b") as fh:
        fh.write(bytes(b ^ 0xFF for b in old[:64]))
    return old


def tarball_file(tmp_path: Path, *, flipped: bool = False) -> tuple[bytes, FileInfo, Path]:
    """Bytes, their length and hashes (what a manifest vouches for), and a tarball file
    holding them, or (``flipped``) holding them after another process rewrote it."""
    good = b"verified bytes\n" * 1000
    path = tmp_path / "x-v1.0.0-linux-amd64.tar.gz"
    path.write_bytes(good)
    if flipped:
        flip(path)
    return good, FileInfo.of_bytes(good), path


def test_a_source_file_changed_after_verification_is_not_uploaded(
        tiup, bucket: Bucket, template: tuple[Path, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    mirror, _key = copy_upstream(template, tmp_path / "up")
    args = ("mirror", "clone", bucket.url, "--full", "-o", "linux", "-a", "amd64",
            "--source", str(mirror), "--key-dir", str(tmp_path / "keys"))
    victim = sorted(p.name for p in mirror.glob("*.tar.gz"))[0]
    saved: dict[str, bytes] = {}

    def rewrite(name: str, path: Path) -> None:
        # after the manifest was verified and the file opened, before its bytes are sent
        if name == victim:
            saved[name] = flip(path)

    monkeypatch.setattr(flow, "upload_hook", rewrite)
    r = tiup(*args)
    assert r.returncode == 1, r.output
    assert "Failed to fetch 1 files" in r.stdout, r.output
    assert f"/{victim}: its bytes do not have the sha256 of the signed manifest" in r.stdout
    assert saved, "the hook never ran"
    stored = {k.split("/")[-1] for k in bucket.objects()}
    assert victim not in stored  # nothing under its name: nothing for a later run to adopt
    assert len(component_tarballs(stored)) == 9

    # the source is fixed: the next run uploads the right bytes and completes
    monkeypatch.setattr(flow, "upload_hook", None)
    (mirror / victim).write_bytes(saved[victim])
    r = tiup(*args)
    assert r.returncode == 0, r.output
    assert bucket.get(victim) == saved[victim]
    r = tiup("mirror", "verify", bucket.url)
    assert r.returncode == 0 and ": 0 errors" in r.stdout, r.output


def test_bytes_that_are_not_the_verified_ones_are_refused_without_hashing_them_first(
        bucket: Bucket, tmp_path: Path) -> None:
    storage = S3Storage(bucket.url)
    good, info, path = tarball_file(tmp_path, flipped=True)
    reads: list[int] = []

    class Counting(io.FileIO):
        def read(self, size: int = -1) -> bytes:
            data = super().read(size)
            reads.append(len(data))
            return data

    with Counting(path, "rb") as fh, pytest.raises(IntegrityError) as caught:
        storage.upload_body(path.name, SentBody(fh, len(good), str(path)), info)
    assert caught.value.code == NOT_VERIFIED
    assert "the server refused the upload" in caught.value.message and caught.value.hint
    assert not [k for k in bucket.objects() if k.endswith(path.name)]
    # signed with the claimed sha256: botocore did not read the file to hash it, only
    # to send it (once per attempt; the refusal is not retried)
    assert sum(reads) == len(good), reads


def test_a_plain_file_body_is_hashed_to_sign_it_and_refused_before_it_is_sent(
        bucket: Bucket, tmp_path: Path) -> None:
    storage = S3Storage(bucket.url)
    # not a SentBody (a publish's staged tarball, a spooled one): botocore hashes the
    # body to sign it, and tiup's guard compares that with the claim before sending
    _good, info, path = tarball_file(tmp_path, flipped=True)
    with open(path, "rb") as body, pytest.raises(IntegrityError) as caught:
        storage.upload_body(path.name, body, info)
    assert caught.value.code == NOT_VERIFIED
    assert "not the verified ones" in caught.value.message and caught.value.hint
    assert "refusing to upload" in caught.value.message
    assert not [k for k in bucket.objects() if k.endswith(path.name)]


def test_the_server_refuses_a_body_that_changes_while_it_is_sent(
        bucket: Bucket, tmp_path: Path) -> None:
    storage = S3Storage(bucket.url)
    good, info, path = tarball_file(tmp_path)
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


def publish_with_wrong_sha512(mirror: Path, key_path: Path, comp: str, version: str) -> str:
    """A hostile upstream: one more version whose signed item has the tarball's true length
    and sha256 but another sha512 (the store refuses such an item unless told the tarball
    was verified, as it is here)."""
    name = tarball_name(comp, version, "linux/amd64")
    data = tarball_bytes(comp, version, "linux/amd64")
    (mirror / name).write_bytes(data)
    true = FileInfo.of_bytes(data)
    lie = FileInfo(true.length, true.sha256, hashlib.sha512(b"other bytes").hexdigest())
    key = load_private_key(key_path)
    with Store(mirror, now=NOW, keyring=load_keyring([mirror / "keys"], [key_path])) as store:
        current = store.component(comp)
        assert current is not None
        platforms = {p: dict(vs) for p, vs in current.platforms.items()}
        platforms["linux/amd64"][version] = VersionItem(
            url=f"/{name}", entry=comp, sha256=lie.sha256, sha512=lie.sha512,
            length=lie.length, released=format_time(NOW))
        store.verified[name] = lie
        store.publish_component(sign(Component(
            expires=current.expires, version=current.version + 1, id=comp,
            description=current.description, platforms=platforms, nightly=current.nightly),
            [key]))
        store.commit()
    return name


def test_bytes_with_the_signed_sha256_but_not_the_signed_sha512_are_not_kept(
        tiup, bucket: Bucket, template: tuple[Path, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    mirror, key = copy_upstream(template, tmp_path / "up")
    liar = publish_with_wrong_sha512(mirror, key, "pd", "v8.5.9")
    args = ("mirror", "clone", bucket.url, "--full", "-o", "linux", "-a", "amd64",
            "--source", str(mirror), "--key-dir", str(tmp_path / "keys"))
    _signed, used = watch_ahead(monkeypatch)
    r = tiup(*args)
    assert used == [False]  # the manifests signed during the uploads name it: not used
    # the server took the bytes (their sha256 is the signed one); tiup hashed what it
    # sent, found the sha512 wrong, and deleted the object: nothing names it, nothing
    # of it is left for a later run to adopt
    assert r.returncode == 1, r.output
    assert "Failed to fetch 1 files" in r.stdout, r.output
    assert f"/{liar}" in r.stdout and "sha512" in r.stdout, r.output
    assert "checked as it was sent" in r.stdout, r.output
    stored = {k.split("/")[-1] for k in bucket.objects()}
    assert liar not in stored
    assert len(component_tarballs(stored)) == 10
    verify = tiup("mirror", "verify", bucket.url)
    assert verify.returncode == 0 and ": 0 errors" in verify.stdout, verify.output
    # a re-run fails the same way (the source is still wrong) and adopts nothing
    r = tiup(*args)
    assert r.returncode == 1 and f"/{liar}" in r.stdout, r.output
    assert liar not in {k.split("/")[-1] for k in bucket.objects()}


def test_a_sent_body_is_hashed_once_per_attempt_and_never_sent_short(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096
    path = tmp_path / "f"
    path.write_bytes(data + b"tail that is not sent")
    with open(path, "rb", buffering=0) as fh:
        body = SentBody(fh, len(data), str(path))
        assert len(body) == len(data) and body.tell() == 0
        assert body.read(1000) == data[:1000]
        assert body.sent_sha512() is None  # not all sent yet
        assert body.seek(0) == 0  # a retry starts again, and so does the hash
        assert body.read() == data and body.read(10) == b""
        assert body.sent_sha512() == hashlib.sha512(data).hexdigest()
        assert body.seek(0, io.SEEK_END) == len(data)  # where it is: nothing changes
        with pytest.raises(OSError):
            body.seek(5)  # sent from its start only
    path.write_bytes(data[:5000])  # the file shrank under the upload
    with open(path, "rb", buffering=0) as fh:
        body = SentBody(fh, len(data), str(path))
        with pytest.raises(IntegrityError) as caught:
            body.read(1 << 20)
    assert caught.value.code == NOT_VERIFIED
    assert "ended after 5000 of its" in caught.value.message


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Multipart uploads above 6 MiB, in 5 MiB parts (the smallest RGW takes), instead of
    above 5 GiB in 16 MiB parts: the same code, on files a test can afford."""
    monkeypatch.setattr(s3_storage, "MULTIPART_THRESHOLD", 6 << 20)
    monkeypatch.setattr(s3_storage, "PART_SIZE", 5 << 20)


def multipart_uploads(bucket: Bucket) -> list[str]:
    listed = bucket.rgw.client().list_multipart_uploads(Bucket=bucket.name)
    return [u["Key"] for u in listed.get("Uploads", [])]


def test_a_large_file_goes_up_in_parts_checked_before_completion(
        bucket: Bucket, tmp_path: Path, small_parts: None) -> None:
    data = os.urandom((12 << 20) + 123)  # three parts
    path = tmp_path / "big-v1.0.0-linux-amd64.tar.gz"
    path.write_bytes(data)
    info = FileInfo.of_file(path)
    storage = S3Storage(bucket.url)
    storage.upload_file(path.name, path, info)
    assert bucket.get(path.name) == data
    head = bucket.rgw.client().head_object(Bucket=bucket.name, Key=storage.key(path.name))
    assert head["ETag"].strip('"').endswith("-3")  # completed from three parts
    assert head["Metadata"]["sha256"] == info.sha256
    storage.upload_file(path.name, path, info)  # the same bytes: kept
    assert not multipart_uploads(bucket)


def test_a_large_file_changed_after_verification_is_never_completed(
        bucket: Bucket, tmp_path: Path, small_parts: None) -> None:
    data = os.urandom((12 << 20) + 123)
    path = tmp_path / "big-v1.0.0-linux-amd64.tar.gz"
    path.write_bytes(data)
    info = FileInfo.of_file(path)
    with open(path, "r+b") as fh:  # another process rewrites the last part, same length
        fh.seek(11 << 20)
        fh.write(b"\0" * 4096)
    storage = S3Storage(bucket.url)
    with pytest.raises(IntegrityError) as caught:
        storage.upload_file(path.name, path, info)
    assert caught.value.code == NOT_VERIFIED and "refusing to complete" in caught.value.message
    assert not [k for k in bucket.objects() if k.endswith(path.name)]
    assert not multipart_uploads(bucket)  # aborted: no parts left behind


def test_a_clone_uploads_a_large_tarball_in_verified_parts(
        tiup, bucket: Bucket, template: tuple[Path, Path], tmp_path: Path,
        small_parts: None) -> None:
    mirror, key = copy_upstream(template, tmp_path / "up")
    big = publish_version(mirror, key, "tikv", "v9.9.0", "linux/amd64",
                          payload=os.urandom(11 << 20))
    r = tiup("mirror", "clone", bucket.url, "--full", "-o", "linux", "-a", "amd64",
             "--source", str(mirror), "--key-dir", str(tmp_path / "keys"))
    assert r.returncode == 0, r.output
    assert bucket.get(big) == (mirror / big).read_bytes()
    head = bucket.rgw.client().head_object(Bucket=bucket.name, Key=f"{bucket.prefix}/{big}")
    assert "-" in head["ETag"]  # a multipart upload
    verify = tiup("mirror", "verify", bucket.url)
    assert verify.returncode == 0 and ": 0 errors" in verify.stdout, verify.output
