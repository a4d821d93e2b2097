"""The urllib3 internals the fast HTTP body path reads are still there (the pin's guard).

``tiup.transport.http`` reads a body straight from the ``http.client`` response that
urllib3 wraps (``urllib3.response.HTTPResponse._fp``) and polls the connection's socket
(``HTTPResponse.connection.sock``) so that bytes go from the socket into the caller's
buffer without a copy (``tiup.transport.httputil.raw_response``, ``connection_socket``,
``gathering_read``). Should an upgrade rename or drop one of them, the fetcher would
quietly fall back to the slow path, or misread a body; so urllib3 is pinned to its minor
version in ``pyproject.toml`` (``docs/adr/0002-http-client-urllib3.md``) and these tests
fail, naming the attribute, before the pin may move.
"""

from __future__ import annotations

import http.client
import io
import re
import socket
import ssl
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
import urllib3

from servers import StaticServer, make_tls
from tiup.transport.http import HTTPFetcher
from tiup.transport.httputil import URLLIB3_INTERNALS, connection_socket, raw_response

ROOT = Path(__file__).resolve().parents[2]
SIZE = 300_000
PIN_HINT = ("tiup.transport.httputil reads it for the copy-free body path: adapt "
            "raw_response/connection_socket/gathering_read before moving the urllib3 pin")


def _numbers(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(".")[:2])


def test_installed_urllib3_is_the_pinned_minor_version() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    pin = re.search(r'"urllib3>=([0-9.]+),<([0-9.]+)"', text)
    assert pin, "pyproject.toml must pin urllib3 to one minor version: urllib3>=2.X,<2.Y"
    low, high = _numbers(pin.group(1)), _numbers(pin.group(2))
    assert high == (low[0], low[1] + 1), f"the pin {pin.group(0)} spans more than one minor"
    installed = _numbers(version("urllib3"))
    assert low <= installed < high, (
        f"urllib3 {version('urllib3')} is installed but pyproject.toml pins {pin.group(0)}")


@pytest.fixture(params=["http", "https"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "file.bin").write_bytes(bytes(range(256)) * (SIZE // 256) + b"x" * (SIZE % 256))
    if request.param == "http":
        with StaticServer(site) as srv:
            yield srv.url, None
        return
    files = make_tls(tmp_path / "tls")
    with StaticServer(site, tls=files.server_context()) as srv:
        yield srv.url, str(files.ca)


def _attribute(obj: object, name: str, where: str) -> object:
    assert hasattr(obj, name), f"{where} is gone ({PIN_HINT})"
    return getattr(obj, name)


def test_urllib3_internals_are_there(served: tuple[str, str | None]) -> None:
    url, ca = served
    assert URLLIB3_INTERNALS == ("urllib3.response.HTTPResponse._fp",
                                 "urllib3.response.HTTPResponse.connection.sock")
    pool = urllib3.PoolManager(ca_certs=ca, retries=False)
    resp = pool.request("GET", f"{url}/file.bin", preload_content=False, decode_content=False)
    try:
        fp = _attribute(resp, "_fp", "urllib3.response.HTTPResponse._fp")
        assert isinstance(fp, http.client.HTTPResponse), (
            f"urllib3.response.HTTPResponse._fp is a {type(fp).__name__}, no longer the "
            f"http.client.HTTPResponse ({PIN_HINT})")
        assert raw_response(resp) is fp
        buffered = _attribute(fp, "fp", "http.client.HTTPResponse.fp")
        assert isinstance(buffered, io.BufferedReader), (
            f"http.client.HTTPResponse.fp is a {type(buffered).__name__}, not a "
            f"BufferedReader ({PIN_HINT})")
        for name in ("peek", "read1", "readinto1"):
            _attribute(buffered, name, f"http.client.HTTPResponse.fp.{name}")
        assert _attribute(fp, "chunked", "http.client.HTTPResponse.chunked") is False
        assert _attribute(fp, "length", "http.client.HTTPResponse.length") == SIZE
        assert callable(_attribute(fp, "readinto", "http.client.HTTPResponse.readinto"))
        conn = _attribute(resp, "connection", "urllib3.response.HTTPResponse.connection")
        sock = _attribute(conn, "sock", "urllib3.response.HTTPResponse.connection.sock")
        assert isinstance(sock, socket.socket), (
            f"urllib3.response.HTTPResponse.connection.sock is a {type(sock).__name__}, "
            f"not a socket ({PIN_HINT})")
        assert connection_socket(resp) is sock
        if ca is not None:
            assert isinstance(sock, ssl.SSLSocket) and callable(sock.pending), (
                f"the TLS connection's socket has no pending() ({PIN_HINT})")
        _attribute(resp, "read1", "urllib3.response.HTTPResponse.read1 (urllib3 >= 2.2)")
        assert len(resp.read()) == SIZE
    finally:
        resp.release_conn()
        pool.clear()


def test_fetcher_takes_the_copy_free_path(served: tuple[str, str | None]) -> None:
    """A plain response is read through the direct ``readinto``, not the fallback."""
    url, ca = served
    expected = bytes(range(256)) * (SIZE // 256) + b"x" * (SIZE % 256)
    with HTTPFetcher(url, ca_bundle=ca, sleep=lambda _s: None) as f, \
            f.stream_range("file.bin", SIZE) as body:
        assert body._reader is not None, (
            "HTTPFetcher fell back to the slow body path: the urllib3 internals of "
            f"{URLLIB3_INTERNALS} no longer hold ({PIN_HINT})")
        got = bytearray()
        buf = memoryview(bytearray(64 * 1024))
        while n := body.readinto(buf):
            got += buf[:n]
    assert bytes(got) == expected
