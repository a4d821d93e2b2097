"""Pure pieces of the server side: multipart reader, sizes, sessions, signing sessions, retries."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from tiup.cli.commands.serve import parse_size
from tiup.errors import ConflictError, RepositoryError
from tiup.keys import generate
from tiup.manifest.canonical import encode_canonical
from tiup.repository.remote import publish_retry, with_retries
from tiup.server.multipart import FormFileReader, MultipartError, boundary_of
from tiup.server.sessions import SessionStore, UploadTooLarge
from tiup.server.signing import KeyGroup, SigningSession

BOUNDARY = "XyZ-123"


def _body(data: bytes, extra_field: bool = True) -> bytes:
    parts = b""
    if extra_field:
        parts += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n"
                  "hi\r\n").encode()
    parts += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
              f"filename=\"a-v1.0.0-linux-amd64.tar.gz\"\r\nContent-Type: "
              "application/octet-stream\r\n\r\n").encode()
    return parts + data + f"\r\n--{BOUNDARY}--\r\n".encode()


@pytest.mark.parametrize("chunk", [1, 7, 64, 4096, 1 << 20])
def test_multipart_reader_any_chunking(chunk: int) -> None:
    data = os.urandom(5000) + f"\r\n--{BOUNDARY}".encode()[:-1] + b"\r\n--" + os.urandom(100)
    body = _body(data)
    got = bytearray()
    reader = FormFileReader(BOUNDARY.encode(), "file", got.extend)
    for i in range(0, len(body), chunk):
        reader.feed(body[i:i + chunk])
    reader.finish()
    assert reader.found and reader.filename == "a-v1.0.0-linux-amd64.tar.gz"
    assert bytes(got) == data


def test_multipart_errors() -> None:
    assert boundary_of(f"multipart/form-data; boundary={BOUNDARY}") == BOUNDARY.encode()
    for ct in (None, "text/json", "multipart/form-data"):
        with pytest.raises(MultipartError):
            boundary_of(ct)
    reader = FormFileReader(BOUNDARY.encode(), "file", lambda b: None)
    reader.feed(_body(b"abc")[:-10])
    with pytest.raises(MultipartError, match="ended before"):
        reader.finish()
    reader = FormFileReader(BOUNDARY.encode(), "file", lambda b: None)
    reader.feed(_body(b"abc").replace(b'name="file"', b'name="other"'))
    reader.finish()
    assert not reader.found


def test_parse_size() -> None:
    assert parse_size("4GiB") == 4 << 30
    assert parse_size("512MiB") == 512 << 20
    assert parse_size("100MB") == 100_000_000
    assert parse_size("1G") == 1 << 30
    assert parse_size("1048576") == 1 << 20
    with pytest.raises(Exception, match="not a size"):
        parse_size("lots")


def test_sessions_on_disk_with_injected_clock(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = SessionStore(tmp_path / "up", ttl=600, clock=lambda: now[0])
    upload = store.begin("s-1", limit=10)
    upload.write(b"12345")
    with pytest.raises(UploadTooLarge):
        upload.write(b"123456")
    upload.abort()
    assert list((tmp_path / "up").iterdir()) == []
    upload = store.begin("s-1", limit=100)
    upload.write(b"hello")
    session = upload.finish("x.tar.gz")
    assert session.length == 5 and session.path.read_bytes() == b"hello"
    now[0] = session.path.stat().st_mtime + 10
    other_worker = SessionStore(tmp_path / "up", ttl=600, clock=lambda: now[0])
    assert other_worker.get("s-1") == session
    now[0] += 600  # get() claimed the session: it is idle for 600 s from then, not expired
    assert other_worker.get("s-1") == session
    now[0] += 601
    assert other_worker.get("s-1") is None
    assert list((tmp_path / "up").iterdir()) == []


def test_signing_session_thresholds() -> None:
    old = [generate() for _ in range(3)]
    new = [old[1], old[2], generate()]
    groups = [KeyGroup("old", {k.keyid: k.public.keyinfo() for k in old}, 2),
              KeyGroup("new", {k.keyid: k.public.keyinfo() for k in new}, 2)]
    signed = {"_type": "root", "version": 2}
    session = SigningSession(signed, groups)
    payload = encode_canonical(signed)

    def sig(key, data: bytes = payload) -> dict[str, str]:  # type: ignore[no-untyped-def]
        return key.signature(data).to_dict()  # type: ignore[no-any-return]

    stranger = generate()
    assert session.offer([sig(stranger)]) == (406, {"status": "NOT ACCEPTABLE",
                                                    "message": "the key is not valid"})
    assert session.offer([sig(old[0], b"other")])[1] == {"status": "NOT ACCEPTABLE",
                                                         "message": "the signature is not valid"}
    assert session.offer([{"keyid": old[0].keyid, "sig": base64.b64encode(b"x").decode()}]
                         )[0] == 406
    assert session.offer("nope")[0] == 400
    assert session.offer([sig(old[0])]) == (200, None)
    assert session.offer([sig(old[0])]) == (200, None)  # duplicate: ignored
    assert not session.complete()
    assert session.offer([sig(new[2])]) == (200, None)
    assert not session.complete()  # old 1/2, new 1/2
    assert session.offer([sig(old[1])]) == (200, None)
    assert session.complete() and len(session.collected()) == 3
    everyone = SigningSession(signed, groups, all_keys=True)
    for k in (old[0], old[1], new[2]):
        everyone.offer([sig(k)])
    assert not everyone.complete()
    everyone.offer([sig(old[2])])
    assert everyone.complete()


def test_with_retries_backoff_and_limits() -> None:
    waits: list[float] = []
    calls: list[int] = []

    def conflicting(n: int) -> str:
        calls.append(n)
        if n < 4:
            raise ConflictError("component manifest is too old")
        return "ok"

    policy = publish_retry(sleep=waits.append)
    assert with_retries(conflicting, policy) == "ok"
    assert calls == [1, 2, 3, 4]
    assert all(0.8 * w <= got <= 1.2 * w for w, got in zip([2.0, 4.0, 8.0], waits, strict=True))
    waits.clear()

    def always(n: int) -> str:
        raise ConflictError("component manifest is too old")

    with pytest.raises(ConflictError, match="max retry attempts of 10"):
        with_retries(always, publish_retry(sleep=waits.append))
    nominal = [2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0, 30.0]  # ±20 % jitter
    assert all(0.8 * w <= got <= 1.2 * w for w, got in zip(nominal, waits, strict=True))

    def refused(n: int) -> str:
        raise RepositoryError("INVALID TARBALL")

    waits.clear()
    with pytest.raises(RepositoryError):
        with_retries(refused, publish_retry(sleep=waits.append))
    assert waits == []
