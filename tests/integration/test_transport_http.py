"""HTTPFetcher against real servers on 127.0.0.1: caps, retries, resume, timeouts, proxies, TLS."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from faultproxy import FlakyProxy
from servers import Fault, ForwardProxy, StaticServer, make_tls
from tiup import __version__, settings
from tiup.errors import FetchError, NotFoundError, SizeLimitError, UsageError
from tiup.settings import HttpSettings, Settings
from tiup.transport import Chunks, Fetcher, TransientError, open_fetcher
from tiup.transport.http import HTTPFetcher

BIG = 3 * 1024 * 1024 + 12345


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    (root / "timestamp.json").write_bytes(b'{"signed": "ts"}')
    (root / "1.index.json").write_bytes(b'{"signed": "index"}' * 10)
    (root / "tiup-linux-amd64.tar.gz").write_bytes(b"bootstrap")
    (root / "big.tar.gz").write_bytes(os.urandom(BIG))
    (root / "sub").mkdir()
    (root / "sub" / "x.json").write_bytes(b"in a sub-path mirror")
    return root


@pytest.fixture
def server(site: Path):  # type: ignore[no-untyped-def]
    with StaticServer(site) as srv:
        yield srv


class Sleeps(list[float]):
    """An injected sleep: records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def env_http() -> HttpSettings:
    """The HTTP settings of this test's environment (as ``open_fetcher`` reads them)."""
    return Settings.from_env(os.environ).http


def fetcher(url: str, **kw: object) -> HTTPFetcher:
    kw.setdefault("sleep", Sleeps())
    kw.setdefault("connect_timeout", 5)
    kw.setdefault("read_timeout", 5)
    return HTTPFetcher(url, **kw)  # type: ignore[arg-type]


# -- plain fetches ---------------------------------------------------------------------


def test_fetch_ok_headers_and_url_join(server: StaticServer, site: Path) -> None:
    with fetcher(server.url + "/") as f:
        assert f.fetch("/1.index.json", 1000) == (site / "1.index.json").read_bytes()
    with fetcher(server.url + "/sub/") as f:
        assert f.fetch("x.json", None) == b"in a sub-path mirror"
    first, second = server.log
    assert (first.method, first.path, first.status) == ("GET", "/1.index.json", 200)
    assert second.path == "/sub/x.json"
    assert first.version == "HTTP/1.1"
    assert first.headers["User-Agent"] == f"tiup/{__version__} (python)"
    assert first.headers["Accept-Encoding"] == "identity"
    assert "Cache-Control" not in first.headers


def test_open_fetcher_picks_http(server: StaticServer) -> None:
    f = open_fetcher(server.url)
    assert isinstance(f, HTTPFetcher)
    assert f.fetch("timestamp.json", 1024) == b'{"signed": "ts"}'
    assert f.list_files() is None and f.local_path() is None


def test_no_cache_for_timestamp_and_bootstrap(server: StaticServer) -> None:
    with fetcher(server.url) as f:
        f.fetch("timestamp.json", 1024)
        f.fetch("tiup-linux-amd64.tar.gz", None)
        f.fetch("1.index.json", None)
    cc = [e.headers.get("Cache-Control") for e in server.log]
    assert cc == ["no-cache", "no-cache", None]


def test_404_is_not_found_and_not_retried(server: StaticServer) -> None:
    with fetcher(server.url) as f, pytest.raises(NotFoundError) as err:
        f.fetch("7.root.json", 1024)
    assert f"{server.url}/7.root.json" in str(err.value)
    assert len(server.log) == 1
    with fetcher(server.url) as f:
        assert f.exists("1.index.json") and not f.exists("nope.json")
    assert [e.method for e in server.log[1:]] == ["HEAD", "HEAD"]


def test_exists_raises_on_other_errors(server: StaticServer) -> None:
    server.add_fault("/1.index.json", Fault(status=403))
    with fetcher(server.url) as f, pytest.raises(FetchError, match="403"):
        f.exists("1.index.json")


# -- caps ------------------------------------------------------------------------------


def test_cap_from_content_length(server: StaticServer) -> None:
    with fetcher(server.url) as f, pytest.raises(SizeLimitError) as err:
        f.fetch("1.index.json", 100)
    msg = str(err.value)
    assert f"{server.url}/1.index.json" in msg and "190" in msg and "100" in msg
    assert len(server.log) == 1  # not retried


def test_cap_with_lying_content_length(server: StaticServer) -> None:
    server.add_fault("/timestamp.json", Fault(content_length=10**12))
    # CPU time, not wall time: what is bounded is the work, and a busy machine stretches
    # wall time (the injected sleep means no waiting either way)
    t0 = time.process_time()
    with fetcher(server.url) as f, pytest.raises(SizeLimitError, match="1000000000000"):
        f.fetch("timestamp.json", 1024)
    assert time.process_time() - t0 < 2


def test_cap_endless_chunked_is_quick_and_bounded(server: StaticServer) -> None:
    server.add_fault("/timestamp.json", Fault(endless_chunked=True, times=-1))
    cap = 1024 * 1024
    tracemalloc.start()
    t0 = time.process_time()  # the work (ours and the server thread's), not wall time
    try:
        with fetcher(server.url) as f, pytest.raises(SizeLimitError) as err:
            f.fetch("timestamp.json", cap)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.process_time() - t0 < 5
    assert peak < 8 * cap, f"peak memory {peak}"
    assert f"more than {cap} bytes" in str(err.value)
    # the stream API stops the same way
    with fetcher(server.url) as f, pytest.raises(SizeLimitError), \
            f.stream("timestamp.json", 300_000) as chunks:
        for _ in chunks:
            pass


# -- retries ---------------------------------------------------------------------------


def test_503_retry_after_then_success(server: StaticServer) -> None:
    server.add_fault("/1.index.json", Fault(status=503, retry_after="7", times=2))
    sleeps = Sleeps()
    with fetcher(server.url, sleep=sleeps) as f:
        assert f.fetch("1.index.json", None).startswith(b'{"signed"')
    assert [e.status for e in server.log] == [503, 503, 200]
    assert sleeps == [7.0, 7.0]


def test_retry_after_capped_at_60(server: StaticServer) -> None:
    server.add_fault("/1.index.json", Fault(status=429, retry_after="3600"))
    sleeps = Sleeps()
    with fetcher(server.url, sleep=sleeps) as f:
        f.fetch("1.index.json", None)
    assert sleeps == [60.0]


def test_backoff_doubles_with_jitter_and_budget_ends(server: StaticServer) -> None:
    server.add_fault("/1.index.json", Fault(status=500, times=-1))
    sleeps = Sleeps()
    with fetcher(server.url, sleep=sleeps) as f, pytest.raises(FetchError) as err:
        f.fetch("1.index.json", None)
    assert not isinstance(err.value, TransientError)
    assert "gave up after 5 attempts" in str(err.value) and "HTTP 500" in str(err.value)
    assert len(server.log) == 5
    for delay, nominal in zip(sleeps, [0.5, 1, 2, 4], strict=True):
        assert 0.8 * nominal <= delay <= 1.2 * nominal
    f2 = fetcher(server.url)
    assert [round(f2.retry_delay(n) / min(0.5 * 2 ** (n - 1), 8), 1) <= 1.2
            for n in range(1, 9)] == [True] * 8
    assert 6.4 <= f2.retry_delay(8) <= 9.6  # capped at 8 s ± 20 %


@pytest.mark.parametrize("status", [403, 401, 400, 410])
def test_other_4xx_not_retried(server: StaticServer, status: int) -> None:
    server.add_fault("/1.index.json", Fault(status=status, times=-1))
    with fetcher(server.url) as f, pytest.raises(FetchError) as err:
        f.fetch("1.index.json", None)
    assert not isinstance(err.value, NotFoundError)
    assert f"HTTP {status}" in str(err.value)
    assert len(server.log) == 1


def test_retries_from_environment(server: StaticServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.add_fault("/1.index.json", Fault(status=502, times=-1))
    monkeypatch.setenv("TIUP_HTTP_RETRIES", "2")
    with HTTPFetcher(server.url, sleep=Sleeps(), settings=env_http()) as f, \
            pytest.raises(FetchError):
        f.fetch("1.index.json", None)
    assert len(server.log) == 2
    settings.reset_current()
    with open_fetcher(server.url) as f:  # the default: the process's settings
        assert f.retry.attempts == 2
    monkeypatch.setenv("TIUP_HTTP_RETRIES", "lots")
    settings.reset_current()
    with pytest.raises(UsageError, match="TIUP_HTTP_RETRIES='lots' is not an integer"):
        open_fetcher(server.url)


def test_timeouts_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIUP_HTTP_CONNECT_TIMEOUT", "3.5")
    monkeypatch.setenv("TIUP_HTTP_READ_TIMEOUT", "0")
    f = HTTPFetcher("http://127.0.0.1:9", settings=env_http())
    assert (f.connect_timeout, f.read_timeout) == (3.5, None)
    assert HTTPFetcher("http://127.0.0.1:9").connect_timeout == 10.0  # no settings: defaults
    monkeypatch.delenv("TIUP_HTTP_CONNECT_TIMEOUT")
    monkeypatch.delenv("TIUP_HTTP_READ_TIMEOUT")
    f = HTTPFetcher("http://127.0.0.1:9", settings=env_http())
    assert (f.connect_timeout, f.read_timeout, f.attempts) == (10.0, 60.0, 5)


def test_truncated_manifest_is_retried(server: StaticServer, site: Path) -> None:
    server.add_fault("/1.index.json", Fault(drop_after=50))
    with fetcher(server.url) as f:
        assert f.fetch("1.index.json", None) == (site / "1.index.json").read_bytes()
    assert [e.sent for e in server.log] == [50, 190]


def _header_block(server: StaticServer, path: str) -> bytes:
    """The status line and headers the server answers a GET of ``path`` with."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
    return data[:data.index(b"\r\n\r\n") + 4]


CUTS = {
    "in the status line": lambda h: 7,
    "after the status line": lambda h: h.index(b"\r\n") + 2,
    "inside Content-Length": lambda h: h.index(b"Content-Length: ") + 17,
    "before the blank line": lambda h: len(h) - 2,
    "right after the headers": lambda h: len(h),
}


@pytest.mark.parametrize("where", list(CUTS))
def test_cut_inside_the_headers_is_retried(server: StaticServer, site: Path,
                                           where: str) -> None:
    """http.client takes a header block cut short as complete (an empty, close-delimited
    body, or a body shorter than Content-Length): that must be retried, never returned."""
    data = (site / "1.index.json").read_bytes()
    cut = CUTS[where](_header_block(server, "/1.index.json"))
    with FlakyProxy(server.port, drop=0, cut_first=0, cuts=[cut]) as proxy, \
            fetcher(proxy.url, retries=3) as f:
        assert f.fetch("1.index.json", 10_000) == data
        assert (proxy.cut, proxy.connections) == (1, 2)
    big = (site / "big.tar.gz").read_bytes()
    cut = CUTS[where](_header_block(server, "/big.tar.gz"))
    with FlakyProxy(server.port, drop=0, cut_first=0, cuts=[cut]) as proxy, \
            fetcher(proxy.url, retries=3) as f, \
            f.stream_range("big.tar.gz", BIG) as body:
        buf = memoryview(bytearray(100_000))
        got = bytearray()
        while n := body.readinto(buf):
            got += buf[:n]
        assert bytes(got) == big
        assert (proxy.cut, proxy.connections) == (1, 2)


class _RawServer:
    """Answers every request with the same raw bytes, then closes the connection."""

    def __init__(self, answer: bytes):
        self.answer = answer
        self.requests = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                self.requests += 1
                conn.sendall(self.answer)

    def close(self) -> None:
        self.sock.close()


def test_empty_body_without_length_or_chunking_is_transient() -> None:
    srv = _RawServer(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
    try:
        with fetcher(srv.url, retries=3) as f, pytest.raises(FetchError) as err:
            f.fetch("timestamp.json", 1024)
        assert "connection closed before the body" in str(err.value)
        assert "gave up after 3 attempts" in str(err.value)
        assert srv.requests == 3
    finally:
        srv.close()


def test_close_delimited_body_is_accepted() -> None:
    srv = _RawServer(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"signed\": 1}")
    try:
        with fetcher(srv.url, retries=3) as f:
            assert f.fetch("timestamp.json", 1024) == b'{"signed": 1}'
            with f.stream_range("timestamp.json", 1024) as body:
                buf = memoryview(bytearray(4))
                got = bytearray()
                while n := body.readinto(buf):
                    got += buf[:n]
            assert bytes(got) == b'{"signed": 1}'
        assert srv.requests == 2
    finally:
        srv.close()


def test_short_body_is_transient_in_readinto(server: StaticServer) -> None:
    server.add_fault("/big.tar.gz", Fault(drop_after=300_000))
    with fetcher(server.url) as f, pytest.raises(TransientError), \
            f.stream_range("big.tar.gz", None) as body:
        buf = memoryview(bytearray(1 << 20))
        while body.readinto(buf):
            pass


def test_readinto_returns_what_has_arrived(server: StaticServer, site: Path) -> None:
    """A stalled server's bytes reach the caller (no wait for a full buffer)."""
    server.add_fault("/big.tar.gz", Fault(stall_after=5000))
    with fetcher(server.url, read_timeout=0.5) as f, \
            f.stream_range("big.tar.gz", None) as body:
        buf = memoryview(bytearray(1 << 20))
        got = 0
        with pytest.raises(TransientError):
            while n := body.readinto(buf):
                assert bytes(buf[:n]) == (site / "big.tar.gz").read_bytes()[got:got + n]
                got += n
        assert got == 5000


def test_readinto_bodies_leave_the_connection_reusable(server: StaticServer,
                                                       site: Path) -> None:
    data = (site / "big.tar.gz").read_bytes()
    with fetcher(server.url) as f:
        for offset in (0, 1000, BIG - 10):
            with f.stream_range("big.tar.gz", BIG, offset) as body:
                buf = memoryview(bytearray(256 * 1024))
                got = bytearray()
                while n := body.readinto(buf):
                    got += buf[:n]
            assert bytes(got) == data[offset:]
        assert f.fetch("timestamp.json", 1024) == b'{"signed": "ts"}'
    assert server.connections == 1


def test_connection_refused_is_retried_then_fails() -> None:
    with StaticServer(Path(".")) as srv:
        url = srv.url  # a port nobody listens on after the server stops
    sleeps = Sleeps()
    with fetcher(url, retries=3, sleep=sleeps) as f, pytest.raises(FetchError) as err:
        f.fetch("timestamp.json", 1024)
    assert "cannot connect" in str(err.value) and "gave up after 3 attempts" in str(err.value)
    assert len(sleeps) == 2
    assert err.value.__cause__ is not None


def test_stall_times_out_instead_of_hanging(server: StaticServer) -> None:
    server.add_fault("/big.tar.gz", Fault(stall_after=1000, times=-1))
    t0 = time.monotonic()
    with fetcher(server.url, read_timeout=0.3, retries=2) as f, \
            pytest.raises(FetchError) as err:
        f.fetch("big.tar.gz", None)
    elapsed = time.monotonic() - t0
    assert "no data received for 0.3 s" in str(err.value)
    assert "TIUP_HTTP_READ_TIMEOUT" in (err.value.hint or "")
    # both attempts waited their 0.3 s; the bound only has to tell 0.3 s from the 60 s
    # default (a busy machine adds latency, not tens of seconds)
    assert 0.6 <= elapsed < 20, elapsed
    assert len(server.log) == 2


# -- stream and ranges ------------------------------------------------------------------


def test_stream_range_206_and_ignored_range(server: StaticServer, site: Path) -> None:
    data = (site / "big.tar.gz").read_bytes()
    with fetcher(server.url) as f:
        with f.stream("big.tar.gz", None, offset=1000) as chunks:
            assert isinstance(chunks, Chunks)
            assert (chunks.start, chunks.size, chunks.restarted) == (1000, BIG, False)
            assert b"".join(chunks) == data[1000:]
        assert server.log[-1].status == 206 and server.log[-1].range == "bytes=1000-"
        server.ignore_range = True
        with f.stream("big.tar.gz", None, offset=1000) as chunks:
            assert isinstance(chunks, Chunks)
            assert chunks.start == 0 and chunks.restarted
            assert b"".join(chunks) == data
        assert server.log[-1].status == 200


def test_stream_with_stale_if_range_restarts(server: StaticServer, site: Path) -> None:
    with fetcher(server.url) as f:
        with f.stream_range("big.tar.gz", None, 10, if_range='"old-etag"') as chunks:
            assert chunks.start == 0
            assert chunks.validator and chunks.validator.startswith('"')
            etag = chunks.validator
        with f.stream_range("big.tar.gz", None, 10, if_range=etag) as chunks:
            assert chunks.start == 10
    assert server.log[-1].headers["If-Range"] == etag


def test_stream_body_drop_raises_transient(server: StaticServer) -> None:
    server.add_fault("/big.tar.gz", Fault(drop_after=300_000))
    with fetcher(server.url) as f, pytest.raises(TransientError) as err, \
            f.stream("big.tar.gz", None) as chunks:
        for _ in chunks:
            pass
    assert "connection broken" in str(err.value)


# -- resumable download -----------------------------------------------------------------


def test_download_resumes_after_drop(server: StaticServer, site: Path, tmp_path: Path) -> None:
    server.add_fault("/big.tar.gz", Fault(drop_after=1_000_000))
    dest = tmp_path / "out" / "big.tar.gz"
    seen: list[int] = []
    with fetcher(server.url) as f:
        f.download("big.tar.gz", dest, expected_length=BIG, progress=seen.append)
    assert sha(dest.read_bytes()) == sha((site / "big.tar.gz").read_bytes())
    first, second = server.log
    assert (first.status, first.sent, first.range) == (200, 1_000_000, None)
    assert (second.status, second.range) == (206, "bytes=1000000-")
    assert second.headers["If-Range"].startswith('"')
    assert second.sent == BIG - 1_000_000
    assert seen[0] == 0 and seen[-1] == BIG and seen == sorted(seen)
    assert not (tmp_path / "out" / "big.tar.gz.part").exists()
    assert not (tmp_path / "out" / "big.tar.gz.part.meta").exists()


def test_download_resumes_across_runs(server: StaticServer, site: Path, tmp_path: Path) -> None:
    server.add_fault("/big.tar.gz", Fault(drop_after=700_000))
    dest, part = tmp_path / "big.tar.gz", tmp_path / "staging" / "abc.part"
    with fetcher(server.url, retries=1) as f, pytest.raises(FetchError):
        f.download("big.tar.gz", dest, expected_length=BIG, part_path=part)
    assert part.stat().st_size == 700_000 and not dest.exists()
    meta = json.loads((tmp_path / "staging" / "abc.part.meta").read_text())
    assert meta["source"] == f"{server.url}/big.tar.gz" and meta["validator"]
    # a new process: a new fetcher, the same part file
    with fetcher(server.url, retries=1) as f:
        f.download("big.tar.gz", dest, expected_length=BIG, part_path=part)
    assert sha(dest.read_bytes()) == sha((site / "big.tar.gz").read_bytes())
    assert server.log[-1].range == "bytes=700000-" and server.log[-1].status == 206
    assert server.log[-1].headers["If-Range"] == meta["validator"]
    assert not part.exists()


def test_download_server_ignores_range(server: StaticServer, site: Path, tmp_path: Path) -> None:
    server.add_fault("/big.tar.gz", Fault(drop_after=500_000))
    server.ignore_range = True
    dest = tmp_path / "big.tar.gz"
    with fetcher(server.url) as f:
        f.download("big.tar.gz", dest, expected_length=BIG)
    assert sha(dest.read_bytes()) == sha((site / "big.tar.gz").read_bytes())
    assert [(e.status, e.range) for e in server.log] == [(200, None), (200, "bytes=500000-")]


def test_download_changed_file_restarts(server: StaticServer, site: Path, tmp_path: Path) -> None:
    server.add_fault("/big.tar.gz", Fault(drop_after=400_000))
    dest, part = tmp_path / "big.tar.gz", tmp_path / "big.part"
    with fetcher(server.url, retries=1) as f, pytest.raises(FetchError):
        f.download("big.tar.gz", dest, part_path=part)
    new = os.urandom(BIG)
    (site / "big.tar.gz").write_bytes(new)  # the mirror changed: new ETag
    with fetcher(server.url) as f:
        f.download("big.tar.gz", dest, part_path=part, expected_length=BIG)
    assert sha(dest.read_bytes()) == sha(new)
    last = server.log[-1]
    assert (last.range, last.status) == ("bytes=400000-", 200)


def test_download_416_restarts(server: StaticServer, site: Path, tmp_path: Path) -> None:
    dest, part = tmp_path / "t.json", tmp_path / "t.part"
    part.write_bytes(b"x" * 5000)  # longer than the file, from a source without validators
    part.with_name("t.part.meta").write_text(json.dumps(
        {"source": f"{server.url}/1.index.json", "validator": None}))
    with fetcher(server.url) as f:
        f.download("1.index.json", dest, part_path=part)
    assert dest.read_bytes() == (site / "1.index.json").read_bytes()
    assert [(e.status, e.range) for e in server.log] == [(416, "bytes=5000-"), (200, None)]


def test_download_part_from_other_source_is_discarded(server: StaticServer, site: Path,
                                                      tmp_path: Path) -> None:
    dest, part = tmp_path / "t.json", tmp_path / "t.part"
    part.write_bytes(b"garbage")
    part.with_name("t.part.meta").write_text(json.dumps(
        {"source": "http://elsewhere/1.index.json", "validator": '"v"'}))
    with fetcher(server.url) as f:
        f.download("1.index.json", dest, part_path=part)
    assert dest.read_bytes() == (site / "1.index.json").read_bytes()
    assert server.log[-1].range is None


def test_download_cap_is_expected_length(server: StaticServer, tmp_path: Path) -> None:
    dest = tmp_path / "big.tar.gz"
    with fetcher(server.url) as f, pytest.raises(SizeLimitError, match=str(BIG)):
        f.download("big.tar.gz", dest, expected_length=BIG - 1)
    server.add_fault("/big.tar.gz", Fault(endless_chunked=True))
    with fetcher(server.url) as f, pytest.raises(SizeLimitError):
        f.download("big.tar.gz", dest, expected_length=BIG)
    assert not dest.exists()
    assert not (tmp_path / "big.tar.gz.part").exists()


def test_download_complete_part_needs_no_request(server: StaticServer, site: Path,
                                                 tmp_path: Path) -> None:
    dest, part = tmp_path / "t.json", tmp_path / "t.part"
    data = (site / "1.index.json").read_bytes()
    part.write_bytes(data)
    part.with_name("t.part.meta").write_text(json.dumps(
        {"source": f"{server.url}/1.index.json", "validator": None}))
    with fetcher(server.url) as f:
        f.download("1.index.json", dest, part_path=part, expected_length=len(data))
    assert dest.read_bytes() == data and server.log == []


def test_download_resumes_after_stall(server: StaticServer, site: Path, tmp_path: Path) -> None:
    server.add_fault("/big.tar.gz", Fault(stall_after=600_000))
    dest = tmp_path / "big.tar.gz"
    with fetcher(server.url, read_timeout=0.3) as f:
        f.download("big.tar.gz", dest, expected_length=BIG)
    assert sha(dest.read_bytes()) == sha((site / "big.tar.gz").read_bytes())
    assert server.log[-1].range == "bytes=600000-"


def test_download_progress_earns_fresh_budget(server: StaticServer, site: Path,
                                              tmp_path: Path) -> None:
    for n in range(1, 5):  # four drops, each further than the last, with a budget of 2
        server.add_fault("/big.tar.gz", Fault(drop_after=200_000 * n if n == 1 else 200_000))
    dest = tmp_path / "big.tar.gz"
    with fetcher(server.url, retries=2) as f:
        f.download("big.tar.gz", dest, expected_length=BIG)
    assert sha(dest.read_bytes()) == sha((site / "big.tar.gz").read_bytes())
    assert len(server.log) == 5


class Wrapper(Fetcher):
    """A fetcher that only forwards fetch/stream (like a counting wrapper)."""

    def __init__(self, inner: Fetcher):
        self.inner, self.address = inner, inner.address

    def fetch(self, resource: str, max_size: int | None) -> bytes:
        return self.inner.fetch(resource, max_size)

    def stream(self, resource: str, max_size: int | None, offset: int = 0):  # type: ignore[no-untyped-def]
        return self.inner.stream(resource, max_size, offset)


def test_generic_download_through_a_wrapper(server: StaticServer, site: Path,
                                            tmp_path: Path) -> None:
    dest, part = tmp_path / "big.tar.gz", tmp_path / "big.part"
    data = (site / "big.tar.gz").read_bytes()
    part.write_bytes(data[:1234])
    part.with_name("big.part.meta").write_text(json.dumps(
        {"source": f"{server.url}/big.tar.gz", "validator": None}))
    Wrapper(fetcher(server.url)).download("big.tar.gz", dest, part_path=part,
                                          expected_length=BIG)
    assert sha(dest.read_bytes()) == sha(data)
    assert server.log[-1].range == "bytes=1234-" and server.log[-1].status == 206


def test_parallel_downloads_share_the_pool(server: StaticServer, site: Path,
                                           tmp_path: Path) -> None:
    data = (site / "big.tar.gz").read_bytes()
    errors: list[BaseException] = []
    with fetcher(server.url) as f:
        def work(i: int) -> None:
            try:
                for j in range(2):
                    f.download("big.tar.gz", tmp_path / f"d{i}-{j}", expected_length=BIG)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert all(sha((tmp_path / f"d{i}-{j}").read_bytes()) == sha(data)
               for i in range(8) for j in range(2))
    assert server.connections <= 8  # the second round reused pooled connections


# -- proxies ---------------------------------------------------------------------------


@pytest.fixture
def proxy():  # type: ignore[no-untyped-def]
    with ForwardProxy() as p:
        yield p


@pytest.mark.parametrize("var", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_proxy_from_environment(server: StaticServer, proxy: ForwardProxy, var: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv(var, proxy.url)
    with fetcher(server.url, settings=env_http()) as f:
        assert f.proxy == proxy.url
        assert f.fetch("timestamp.json", 1024) == b'{"signed": "ts"}'
    assert [(m, u) for m, u, _ in proxy.requests] == [("GET", f"{server.url}/timestamp.json")]
    assert len(server.log) == 1


def test_no_proxy_bypasses(server: StaticServer, proxy: ForwardProxy,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "example.com,127.0.0.1")
    with fetcher(server.url, settings=env_http()) as f:
        assert f.proxy is None
        f.fetch("timestamp.json", 1024)
    assert proxy.requests == [] and len(server.log) == 1


def test_inner_proxy_overrides(server: StaticServer, proxy: ForwardProxy,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # would fail if used
    monkeypatch.setenv("TIUP_INNER_HTTP_PROXY", proxy.url.removeprefix("http://"))
    with fetcher(server.url, settings=env_http()) as f:
        f.fetch("timestamp.json", 1024)
    assert len(proxy.requests) == 1


def test_dead_proxy_is_a_clear_error(server: StaticServer,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    with fetcher(server.url, retries=1, settings=env_http()) as f, \
            pytest.raises(FetchError) as err:
        f.fetch("timestamp.json", 1024)
    assert "proxy http://127.0.0.1:9" in str(err.value)


# -- TLS -------------------------------------------------------------------------------


@pytest.fixture
def tls_server(site: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    files = make_tls(tmp_path / "tls")
    with StaticServer(site, tls=files.server_context()) as srv:
        yield srv, files


def test_https_with_ca_bundle(tls_server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    srv, files = tls_server
    assert srv.url.startswith("https://127.0.0.1:")
    with fetcher(srv.url, ca_bundle=str(files.ca)) as f:
        assert f.fetch("timestamp.json", 1024) == b'{"signed": "ts"}'
    for var in ("TIUP_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.setenv(var, str(files.ca))
        with fetcher(srv.url, settings=env_http()) as f:
            assert f.fetch("timestamp.json", 1024) == b'{"signed": "ts"}'
        monkeypatch.delenv(var)
    assert len(srv.log) == 3


def test_https_readinto(tls_server, site: Path) -> None:  # type: ignore[no-untyped-def]
    srv, files = tls_server
    data = (site / "big.tar.gz").read_bytes()
    with fetcher(srv.url, ca_bundle=str(files.ca)) as f, \
            f.stream_range("big.tar.gz", BIG, 5) as body:
        buf = memoryview(bytearray(256 * 1024))
        got = bytearray()
        while n := body.readinto(buf):
            got += buf[:n]
    assert bytes(got) == data[5:]


def test_https_untrusted_fails_clearly_without_retry(tls_server,  # type: ignore[no-untyped-def]
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    srv, _files = tls_server
    monkeypatch.delenv("TIUP_CA_BUNDLE", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with fetcher(srv.url, settings=env_http()) as f, pytest.raises(FetchError) as err:
        f.fetch("timestamp.json", 1024)
    assert "TLS certificate verification failed" in str(err.value)
    assert srv.url in str(err.value)
    assert "TIUP_CA_BUNDLE" in (err.value.hint or "")
    assert srv.log == [] and srv.connections == 1


def test_missing_ca_bundle_file(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="does not exist"):
        HTTPFetcher("https://127.0.0.1:9", ca_bundle=str(tmp_path / "none.pem"))


def test_invalid_address() -> None:
    with pytest.raises(FetchError, match="invalid mirror URL"):
        HTTPFetcher("http://")
