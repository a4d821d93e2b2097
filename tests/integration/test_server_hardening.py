"""Hostile requests against the real server (issue 9: D9, D10, Content-Length, bad JSON).

Every request goes over a socket to ``tiup mirror serve`` on 127.0.0.1; the peer address
of a request is chosen with the source address (127.0.0.1, .2, .3: all loopback), so the
per-client quotas are tried with real distinct clients.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from publishkit import assert_valid, make_tarball
from serverkit import ServerProc, Setup, build, make_setup, start_server
from tiup import errors
from tiup.server.api import _error_result
from tiup.server.sessions import (
    Quota,
    SessionStore,
    StagingFull,
    TooManySessions,
    client_key,
)

Reply = tuple[int, dict[str, str], bytes]


def exchange(srv: ServerProc, method: str, path: str, headers: dict[str, str] | None = None,
             body: bytes = b"", *, source: str = "127.0.0.1", raw_headers: bytes = b"",
             send_body: bool = True) -> Reply:
    """One HTTP/1.1 request written byte for byte (no client-side checks), from ``source``."""
    port = int(srv.url.rsplit(":", 1)[1])
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    for key, value in (headers or {}).items():
        head += f"{key}: {value}\r\n"
    data = head.encode("latin-1") + raw_headers + b"\r\n" + (body if send_body else b"")
    with socket.create_connection(("127.0.0.1", port), timeout=30,
                                  source_address=(source, 0)) as sock:
        sock.sendall(data)
        resp = http.client.HTTPResponse(sock, method=method)
        resp.begin()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


def json_reply(reply: Reply) -> tuple[int, str, str]:
    status, headers, body = reply
    assert headers["content-type"].startswith("application/json"), reply
    doc = json.loads(body)
    assert set(doc) == {"status", "message"} and "Traceback" not in doc["message"], doc
    return status, doc["status"], doc["message"]


# ---------------------------------------------------------------- static files (D10, length)
BIG = 1 << 20


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Setup, ServerProc]]:
    base = tmp_path_factory.mktemp("hardening")
    setup = make_setup(base / "data")
    (setup.mirror / "blob-v1.0.0-linux-amd64.tar.gz").write_bytes(os.urandom(BIG))
    data_dir = base / "component-data"
    srv = start_server(setup.mirror, "--key-dir", str(setup.keys), workdir=base,
                       env={"TIUP_COMPONENT_DATA_DIR": str(data_dir)})
    yield setup, srv
    assert srv.stop() == 0
    assert "Traceback" not in srv.log()


HUGE = "9" * 4300  # past Python's int-string conversion limit

#: (Range header, expected): (first, last) → 206 with those bytes; 200 → the header is
#: ignored (whole file); 416 → unsatisfiable. ``S`` in a header is the file's size.
RANGES: list[tuple[str, tuple[int, int] | int]] = [
    ("bytes=0-9", (0, 9)),
    ("bytes=10-", (10, -1)),
    ("bytes=-10", (-10, -1)),
    ("bytes=0-0", (0, 0)),
    ("BYTES=0-9", (0, 9)),                      # range units are case-insensitive
    (f"bytes=0-{HUGE}", (0, -1)),               # last past the end: up to the end
    (f"bytes=-{HUGE}", (0, -1)),                # suffix longer than the file: all of it
    ("bytes=" + "0" * 5000 + "5-9", (5, 9)),    # leading zeros are still numbers
    (f"bytes={HUGE}-", 416),                    # the D10 request
    (f"bytes={HUGE}-{HUGE}9", 416),
    ("bytes=S-", 416),
    ("bytes=S-S", 416),
    ("bytes=-0", 416),
    ("bytes=-" + "0" * 5000, 416),
    ("bytes=5-2", 200),                         # last < first: invalid, ignored
    (f"bytes={HUGE}9-{HUGE}", 200),
    ("bytes=-5-10", 200),
    ("bytes=--1", 200),
    ("bytes=-", 200),
    ("bytes=", 200),
    ("bytes", 200),
    ("bytes=0-1,3-4", 200),                     # several ranges: ignored
    ("bytes=0-1,", 200),
    ("bytes=0-1;x", 200),
    ("items=0-9", 200),
    ("bytes 0-9", 200),
    ("bytes=0x10-", 200),
    ("bytes=1e3-", 200),
    ("bytes=+5-", 200),
    ("bytes=1_0-", 200),
    ("bytes=" + "-" * 5000, 200),
    ("bytes=\u0661-\u0662", 200),               # Arabic-Indic digits: int() takes them
    ("bytes=\xff-\xfe", 200),
    ("bytes=\t0-9\t", (0, 9)),
]


@pytest.mark.parametrize("name", ["1.index.json", "blob-v1.0.0-linux-amd64.tar.gz"],
                         ids=["memory", "sendfile"])
@pytest.mark.parametrize(("header", "expected"), RANGES, ids=[str(i) for i in range(len(RANGES))])
def test_hostile_range_headers(files, name: str, header: str,
                               expected: tuple[int, int] | int) -> None:
    setup, srv = files
    content = (setup.mirror / name).read_bytes()
    size = len(content)
    value = header.replace("S", str(size)) if "S-" in header else header
    reply = exchange(srv, "GET", f"/{name}", raw_headers=b"Range: " + value.encode("utf-8")
                     + b"\r\n")
    status, headers, body = reply
    if expected == 416:
        assert json_reply(reply)[:2] == (416, "RANGE NOT SATISFIABLE"), header[:40]
        assert headers["content-range"] == f"bytes */{size}"
    elif expected == 200:
        assert (status, body) == (200, content), header[:40]
        assert "content-range" not in headers
        assert headers["content-length"] == str(size)
    else:
        assert isinstance(expected, tuple)
        first, last = (i % size for i in expected)
        assert status == 206, header[:40]
        assert body == content[first:last + 1]
        assert headers["content-range"] == f"bytes {first}-{last}/{size}"
        assert headers["content-length"] == str(last - first + 1)


@pytest.mark.parametrize("since", ["Mon, 01 Jan 99999999999999999999 00:00:00 GMT",
                                   "Mon, 01 Jan 1970 00:00:00 +99999999999999999999999",
                                   "x" * 5000, "Mon, 01 Jan 0001 00:00:00 GMT"])
def test_hostile_if_modified_since_is_ignored(files, since: str) -> None:
    setup, srv = files
    status, _h, body = exchange(srv, "GET", "/timestamp.json", {"If-Modified-Since": since})
    assert (status, body) == (200, (setup.mirror / "timestamp.json").read_bytes())


def test_content_length_on_every_file_response(files) -> None:
    """Files of 256 KiB and more were sent chunked, without a length (no totals, no ETA)."""
    setup, srv = files
    name = "/blob-v1.0.0-linux-amd64.tar.gz"
    content = (setup.mirror / name[1:]).read_bytes()
    status, headers, body = exchange(srv, "GET", name)
    assert status == 200 and body == content
    assert headers["content-length"] == str(BIG) and "transfer-encoding" not in headers
    status, headers, body = exchange(srv, "GET", name, {"Range": "bytes=1000-524287"})
    assert status == 206 and body == content[1000:524288]
    assert headers["content-length"] == str(524288 - 1000) and "transfer-encoding" not in headers
    for rng, length in ((None, BIG), ("bytes=-100", 100)):
        status, headers, body = exchange(srv, "HEAD", name, {"Range": rng} if rng else {})
        assert status in (200, 206) and body == b"" and headers["content-length"] == str(length)
    small = (setup.mirror / "root.json").read_bytes()
    status, headers, body = exchange(srv, "GET", "/root.json")
    assert (status, body) == (200, small) and headers["content-length"] == str(len(small))


# ------------------------------------------------------------------ hostile JSON bodies
DEEP = 1000


def _bodies(valid: bytes) -> list[tuple[str, bytes]]:
    """Bad bodies of every kind, built around a ``valid`` manifest of the route."""
    doc = json.loads(valid)
    signed = doc["signed"]
    sigs = doc["signatures"]

    def env(signed_part: object, signatures: object = sigs) -> bytes:
        return json.dumps({"signatures": signatures, "signed": signed_part}).encode()

    def with_field(key: str, raw: str) -> bytes:
        text = json.dumps({k: v for k, v in signed.items() if k != key})
        return ('{"signatures":' + json.dumps(sigs) + ',"signed":{"' + key + '":' + raw + ","
                + text[1:] + "}").encode()

    return [
        ("empty", b""),
        ("not json", b"not json"),
        ("truncated", valid[:-1]),
        ("trailing data", valid + b"x"),
        ("list", b"[]"),
        ("string", b'"a string"'),
        ("null", b"null"),
        ("number", b"123"),
        ("deep list", b"[" * DEEP + b"]" * DEEP),
        ("deep signed", b'{"signatures":[],"signed":' + b"[" * DEEP + b"]" * DEEP + b"}"),
        ("deep member", with_field("x", '{"a":' * DEEP + "1" + "}" * DEEP)),
        ("deep signatures", b'{"signed":{},"signatures":' + b"[" * DEEP + b"]" * DEEP + b"}"),
        ("signed a list", env([])),
        ("signed a string", env("x")),
        ("signed null", env(None)),
        ("signed empty", env({})),
        ("signatures an object", env(signed, {})),
        ("signatures a string", env(signed, "x")),
        ("signatures null", env(signed, None)),
        ("signature a number", env(signed, [1])),
        ("signature fields wrong", env(signed, [{"keyid": 1, "sig": 2}])),
        ("huge int version", with_field("version", "9" * 5000)),
        ("huge float version", with_field("version", "1e400")),
        ("version a string", with_field("version", '"2"')),
        ("version a float", with_field("version", "2.5")),
        ("version null", with_field("version", "null")),
        ("NaN", with_field("version", "NaN")),
        ("expires a number", with_field("expires", "1")),
        ("expires garbage", with_field("expires", '"' + "9" * 5000 + '"')),
        ("_type wrong", with_field("_type", '"timestamp"')),
        ("_type a list", with_field("_type", "[]")),
        ("duplicate member", with_field("version", "1,\"version\":2")),
        ("invalid utf-8", b"\xff\xfe" + valid),
        ("invalid utf-8 in a string", with_field("x", '"a@@"').replace(b"@@", b"\xff")),
        ("lone surrogate", with_field("_type", '"\\ud800"')),
        ("NUL in a string", with_field("_type", '"root\\u0000"')),
        ("expires not a time", with_field("expires", '"2026-13-45T99:99:99Z"')),
    ]


def _component_rows(setup: Setup, tmp: Path) -> list[tuple[str, bytes]]:
    tb = make_tarball(tmp / "j.tar.gz")
    valid, _name = build(setup, "v7.0.0", tb)
    signed = json.loads(valid)["signed"]
    sigs = json.loads(valid)["signatures"]

    def shaped(**change: object) -> bytes:
        return json.dumps({"signatures": sigs, "signed": {**signed, **change}}).encode()

    plat = next(iter(signed["platforms"]))
    ver = next(iter(signed["platforms"][plat]))
    item = signed["platforms"][plat][ver]
    return [*_bodies(valid),
            ("platforms a list", shaped(platforms=[])),
            ("platforms a string", shaped(platforms="x")),
            ("versions a list", shaped(platforms={plat: []})),
            ("item a string", shaped(platforms={plat: {ver: "x"}})),
            ("item length huge", shaped(platforms={plat: {ver: {**item, "length": 10**400}}})),
            ("item length negative", shaped(platforms={plat: {ver: {**item, "length": -1}}})),
            ("item hashes a list", shaped(platforms={plat: {ver: {**item, "hashes": []}}})),
            ("platform with a slash too many", shaped(platforms={"a/b/c": {}})),
            ("version with ..", shaped(platforms={plat: {"../x": item}})),
            ("owner not an id", shaped(id="hello", owner=["x"]))]


def test_hostile_component_bodies_are_400(files, tmp_path: Path) -> None:
    setup, srv = files
    before = {p.name: p.read_bytes() for p in setup.mirror.iterdir() if p.is_file()}
    failures = []
    for label, body in _component_rows(setup, tmp_path):
        reply = exchange(srv, "POST", "/api/v1/component/hostile-1/hello",
                         {"Content-Type": "text/json", "Content-Length": str(len(body))}, body)
        got = json_reply(reply)
        if got[:2] != (400, "INVALID MANIFEST"):
            failures.append((label, got))
    assert failures == [], "\n".join(map(str, failures))
    assert {p.name: p.read_bytes() for p in setup.mirror.iterdir() if p.is_file()} == before


def test_hostile_rotate_bodies_are_400(files) -> None:
    setup, srv = files
    before = (setup.mirror / "root.json").read_bytes()
    failures = []
    root = json.loads(before)
    rows = [*_bodies(before),
        ("roles a list", json.dumps({**root, "signed": {**root["signed"], "roles": []}})),
        ("key not a key", json.dumps({**root, "signed": {
            **root["signed"], "roles": {r: {**v, "keys": {"x": "y"}}
                                        for r, v in root["signed"]["roles"].items()}}})),
        ("threshold huge", json.dumps({**root, "signed": {
            **root["signed"], "roles": {r: {**v, "threshold": 10**400}
                                        for r, v in root["signed"]["roles"].items()}}})),
    ]
    for label, body in rows:
        data = body.encode() if isinstance(body, str) else body
        got = json_reply(exchange(srv, "POST", "/api/v1/rotate",
                                  {"Content-Length": str(len(data))}, data))
        if got[:2] != (400, "INVALID MANIFEST"):
            failures.append((label, got))
    assert failures == [], "\n".join(map(str, failures))
    assert (setup.mirror / "root.json").read_bytes() == before
    assert not (setup.mirror / "2.root.json").exists()


def test_parser_raises_only_its_own_errors(files) -> None:
    """Bad bodies are refused by the manifest parser itself (ManifestError), not by the API's
    last-resort catch, which logs 'unexpected <exception>' (deep nesting: RecursionError)."""
    _setup, srv = files
    log = srv.log()
    unexpected = [line for line in log.splitlines() if "unexpected" in line]
    assert unexpected == []


# ----------------------------------------------------------------------- quotas (D9)
UPLOAD_LIMIT = 64 * 1024
FILLER = 40 * 1024


@pytest.fixture
def quota_server(tmp_path: Path) -> Iterator[tuple[Setup, ServerProc, Path]]:
    setup = make_setup(tmp_path / "data")
    data_dir = tmp_path / "component-data"
    srv = start_server(setup.mirror, "--key-dir", str(setup.keys),
                       "--max-upload-size", str(UPLOAD_LIMIT),
                       "--max-staged-size", str(160 * 1024),
                       "--max-client-staged-size", str(100 * 1024),
                       "--max-sessions", "5", "--max-client-sessions", "3",
                       "--session-ttl", "600", "--workers", "2", workdir=tmp_path,
                       env={"TIUP_COMPONENT_DATA_DIR": str(data_dir)})
    yield setup, srv, data_dir / "packages"
    assert srv.stop() == 0
    assert_valid(setup.mirror)


def send_upload(srv: ServerProc, sid: str, data: bytes, name: str = "x.tar.gz", *,
                source: str = "127.0.0.1", send_body: bool = True,
                declared: int | None = None) -> Reply:
    boundary, head, tail = _parts(name)
    body = head + data + tail
    return exchange(srv, "POST", f"/api/v1/tarball/{sid}",
                    {"Content-Type": f"multipart/form-data; boundary={boundary}",
                     "Content-Length": str(declared if declared is not None else len(body))},
                    body, source=source, send_body=send_body)


def _parts(name: str) -> tuple[str, bytes, bytes]:
    """(boundary, head, tail) of a one-file form, as Go's and our client send it."""
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{name}\"\r\n\r\n").encode()
    return boundary, head, f"\r\n--{boundary}--\r\n".encode()


def staged(uploads: Path) -> list[str]:
    return sorted(os.listdir(uploads)) if uploads.exists() else []


def age_everything(uploads: Path, seconds: float = 601) -> None:
    """What the TTL sees after ``seconds`` idle (the server's clock is the real one)."""
    aged = time.time() - seconds
    for name in os.listdir(uploads):
        os.utime(uploads / name, (aged, aged))


def test_staged_bytes_quota_507_then_a_publish_frees_it(quota_server, tmp_path: Path) -> None:
    setup, srv, uploads = quota_server
    tb = make_tarball(tmp_path / "big.tar.gz", body=os.urandom(FILLER))
    manifest, name = build(setup, "v2.0.0", tb)
    assert send_upload(srv, "p1", tb.read_bytes(), name)[0] == 200
    assert send_upload(srv, "p2", os.urandom(FILLER))[0] == 200
    # a third 40 KiB upload from 127.0.0.1 passes its 100 KiB per-client quota
    status, code, msg = json_reply(send_upload(srv, "p3", os.urandom(FILLER)))
    assert (status, code) == (507, "INSUFFICIENT STORAGE") and "127.0.0.1" in msg, msg
    # refused on the declared length alone: the body is never sent, the answer comes anyway
    status, code, msg = json_reply(send_upload(srv, "p4", os.urandom(FILLER), send_body=False))
    assert (status, code) == (507, "INSUFFICIENT STORAGE"), msg
    # another client still has room, until the server's 160 KiB are used
    assert send_upload(srv, "q1", os.urandom(FILLER), source="127.0.0.2")[0] == 200
    status, code, msg = json_reply(send_upload(srv, "r1", os.urandom(FILLER),
                                               source="127.0.0.3"))
    assert (status, code) == (507, "INSUFFICIENT STORAGE") and "server" in msg, msg
    # a chunked upload (no length declared) is stopped while streaming
    boundary, head, tail = _parts("x.tar.gz")
    body = head + os.urandom(FILLER) + tail
    port = int(srv.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30,
                                      source_address=("127.0.0.3", 0))
    conn.request("POST", "/api/v1/tarball/r2", body=iter([body[i:i + 4096]
                                                          for i in range(0, len(body), 4096)]),
                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                 encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 507 and json.loads(resp.read())["status"] == "INSUFFICIENT STORAGE"
    conn.close()
    assert not [n for n in staged(uploads) if n.startswith(("r1", "r2", "p3", "p4", ".part"))]
    # publishing consumes session p1: 127.0.0.1 may upload again
    status, _h, body = exchange(srv, "POST", "/api/v1/component/p1/hello",
                                {"Content-Type": "text/json",
                                 "Content-Length": str(len(manifest))}, manifest)
    assert (status, body) == (200, b"null")
    assert (setup.mirror / name).read_bytes() == tb.read_bytes()
    assert send_upload(srv, "p5", os.urandom(FILLER))[0] == 200
    # a failed publish consumes its session too
    status, code, _msg = json_reply(exchange(srv, "POST", "/api/v1/component/p2/hello",
                                             {"Content-Length": "2"}, b"{}"))
    assert (status, code) == (400, "INVALID MANIFEST")
    assert "p2.tarball" not in staged(uploads)
    # what is never followed by a manifest expires; then nothing is left
    age_everything(uploads)
    assert send_upload(srv, "r3", os.urandom(FILLER), source="127.0.0.3")[0] == 200
    assert [n for n in staged(uploads) if not n.startswith("r3")] == []
    age_everything(uploads)
    assert json_reply(exchange(srv, "POST", "/api/v1/component/none/hello",
                               {"Content-Length": "2"}, b"{}"))[0] == 400
    assert staged(uploads) == []
    assert "Traceback" not in srv.log()


def test_session_count_quota_429_then_expiry_frees_it(quota_server) -> None:
    _setup, srv, uploads = quota_server
    for i in range(3):
        assert send_upload(srv, f"a{i}", b"tiny")[0] == 200
    status, code, msg = json_reply(send_upload(srv, "a3", b"tiny"))
    assert (status, code) == (429, "TOO MANY SESSIONS") and "127.0.0.1" in msg, msg
    for i in range(2):
        assert send_upload(srv, f"b{i}", b"tiny", source="127.0.0.2")[0] == 200
    status, code, msg = json_reply(send_upload(srv, "c0", b"tiny", source="127.0.0.3"))
    assert (status, code) == (429, "TOO MANY SESSIONS") and "server" in msg, msg
    assert len([n for n in staged(uploads) if n.endswith(".tarball")]) == 5
    age_everything(uploads)
    assert send_upload(srv, "c1", b"tiny", source="127.0.0.3")[0] == 200
    assert staged(uploads) == ["c1.json", "c1.tarball"]
    age_everything(uploads)
    assert json_reply(exchange(srv, "POST", "/api/v1/component/none/hello",
                               {"Content-Length": "2"}, b"{}"))[0] == 400
    assert staged(uploads) == []
    assert "Traceback" not in srv.log()


def test_aborted_uploads_give_their_reservation_back(quota_server) -> None:
    _setup, srv, uploads = quota_server
    # a client that declares 60 KiB and hangs up after 1 KiB
    boundary, head, _tail = _parts("x.tar.gz")
    port = int(srv.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall((f"POST /api/v1/tarball/gone HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      f"multipart/form-data; boundary={boundary}\r\nContent-Length: 61440\r\n"
                      "\r\n").encode() + head + b"x" * 1024)
        wait_for(lambda: any(n.startswith(".part-gone") for n in staged(uploads)))
    wait_for(lambda: staged(uploads) == [])
    # refused uploads (bad form, too large) keep nothing either
    assert json_reply(exchange(srv, "POST", "/api/v1/tarball/bad",
                               {"Content-Type": "multipart/form-data; boundary=zz",
                                "Content-Length": "3"}, b"abc"))[0] == 400
    assert json_reply(send_upload(srv, "big", os.urandom(UPLOAD_LIMIT + 1)))[0] == 413
    assert staged(uploads) == []
    # so the whole quota is free again for this client
    for i in range(2):
        assert send_upload(srv, f"f{i}", os.urandom(FILLER))[0] == 200
    assert "Traceback" not in srv.log()


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll an observable condition (not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_upload_dir_fault_is_500_json_without_traceback(quota_server) -> None:
    """A server fault (the upload directory replaced by a file) is logged, and the client
    gets one JSON line."""
    _setup, srv, uploads = quota_server
    assert send_upload(srv, "ok", b"tiny")[0] == 200
    for name in os.listdir(uploads):
        os.unlink(uploads / name)
    uploads.rmdir()
    uploads.write_bytes(b"not a directory")
    try:
        status, code, msg = json_reply(send_upload(srv, "fault", b"tiny"))
        assert (status, code, msg) == (500, "INTERNAL ERROR", "an internal error happened")
        wait_for(lambda: "internal error on POST /api/v1/tarball/fault" in srv.log())
    finally:
        uploads.unlink()
        uploads.mkdir()
    assert send_upload(srv, "again", b"tiny")[0] == 200
    assert srv.log().count("Traceback") == 1


# ------------------------------------------------------------------------- pure parts
def test_quota_accounting_is_shared_and_expires_with_the_clock(tmp_path: Path) -> None:
    now = [time.time()]
    quota = Quota(max_staged=100, max_client_staged=60, max_sessions=3, max_client_sessions=2)
    one = SessionStore(tmp_path, ttl=60, clock=lambda: now[0], quota=quota)
    two = SessionStore(tmp_path, ttl=60, clock=lambda: now[0], quota=quota)  # another worker
    a = one.begin("a", limit=50, client="c1", declared=50)
    with pytest.raises(StagingFull, match="per client"):
        two.begin("b", limit=50, client="c1", declared=20)
    b = two.begin("b", limit=50, client="c2", declared=50)
    with pytest.raises(StagingFull, match="server"):
        one.begin("c", limit=50, client="c3", declared=1)
    b.abort()  # the reservation goes back
    c = one.begin("c", limit=50, client="c3", declared=10)
    c.write(b"0123456789")
    c.finish("c.tar.gz")
    few = SessionStore(tmp_path, 60, lambda: now[0], Quota(max_sessions=2))  # a and c
    with pytest.raises(TooManySessions, match="server holds 2"):
        few.begin("d", 5, "c4")
    a.write(b"x" * 10)  # below its reservation: no new check
    # an undeclared upload grows its reservation while streaming, within the quotas
    d = two.begin("d", limit=1000, client="c2")
    d.write(b"y" * 30)  # 8 MiB ahead does not fit, 30 bytes do
    with pytest.raises(StagingFull, match="server cannot stage 50"):
        d.write(b"y" * 20)
    d.abort()
    # idle past the TTL: everything is removed by the next scan, and the quota is free
    now[0] += 61
    e = two.begin("e", limit=50, client="c1", declared=50)
    e.abort()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(("peer", "key"), [
    ("127.0.0.1:5000", "127.0.0.1"),
    ("[2001:db8::1]:5000", "2001:db8::/64"),
    ("2001:db8::1:5000", "2001:db8::/64"),
    ("[2001:db8::ffff:1]:1", "2001:db8::/64"),
    ("[::ffff:10.0.0.1]:1", "10.0.0.1"),
    ("", ""),
    ("unix-socket", "unix-socket"),
])
def test_client_key(peer: str, key: str) -> None:
    assert client_key(peer) == key


@pytest.mark.parametrize(("exc", "status"), [
    (errors.ConflictError("x"), 409),
    (errors.SignatureError("x"), 403),
    (errors.TarballError("x"), 400),
    (errors.MissingTarballError("x"), 400),
    (errors.InvalidNameError("x"), 400),
    (errors.ManifestError("x"), 400),
    (errors.CanonicalFormError("x"), 400),
    (errors.RollbackError("x"), 400),
    (errors.ExpiredError("x"), 400),
    (errors.IntegrityError("x"), 400),
    (errors.KeyFormatError("x"), 400),
    (errors.UnsupportedKeyError("x"), 400),
    (errors.UsageError("x"), 400),
    (errors.MissingKeyError("x"), 500),
    (errors.RepositoryError("x"), 500),
    (errors.FetchError("x"), 500),
    (errors.InstallError("x"), 500),
    (errors.TiupError("x"), 500),
])
def test_store_errors_map_to_statuses(exc: errors.TiupError, status: int) -> None:
    got, body = _error_result(exc)
    assert got == status and isinstance(body, dict) and set(body) == {"status", "message"}


def test_every_tiup_error_has_a_status() -> None:
    """A new error class (say, the url rule's) gets a deliberate status, never a crash."""
    def subclasses(cls: type[errors.TiupError]) -> Iterator[type[errors.TiupError]]:
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for cls in subclasses(errors.TiupError):
        exc = cls("c", "v", "why") if cls is errors.DamagedInstallError else cls("x")
        status, _body = _error_result(exc)
        assert status in (400, 403, 409, 500), cls
        if issubclass(cls, errors.InvalidNameError | errors.TarballError):
            assert status == 400, cls

