"""Transport hardening (issue 9): non-regular files in a local mirror (D7), slow retrieval
(D8), and error text without library internals.

Everything runs against real parts: real FIFOs, devices and sockets in a real mirror
directory, a real HTTP server on 127.0.0.1 that trickles bytes, a real refused port, a
real listening socket that never answers, and a real TLS server. Timing is never
asserted tightly: the thresholds are small, the assertions are about the outcome (the
error names the file and the speed) and a bound far below the unbounded case.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from servers import Fault, StaticServer, make_tls
from tiup.errors import FetchError, NotFoundError, UsageError
from tiup.settings import Settings
from tiup.transport.http import HTTPFetcher
from tiup.transport.httputil import speed_rule
from tiup.transport.local import LocalFetcher
from tiup.transport.speed import SpeedRule

#: what an error must never show a user
INTERNALS = ("HTTPConnection", "HTTPSConnection", "urllib3", "Max retries", "object at 0x",
             "Caused by", "_ssl.c", "Errno", "Traceback")


def bounded(fn: Callable[[], object], seconds: float = 60) -> BaseException | None:
    """Run ``fn`` in a thread; the exception it raised (None if none). A call still
    blocked after ``seconds`` fails the test instead of hanging the suite."""
    box: list[BaseException | None] = [None]

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # handed to the test
            box[0] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"still blocked after {seconds} s"
    return box[0]


def clean(exc: BaseException) -> str:
    """The whole text a user sees for ``exc``; asserts it shows no library internals."""
    text = f"{exc} {getattr(exc, 'hint', '') or ''} {getattr(exc, 'reason', '')}"
    for bad in INTERNALS:
        assert bad not in text, text
    return text


# -- D7: only regular files in a local mirror -------------------------------------------


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _directory(path: Path) -> None:
    path.mkdir()


def _socket(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    cwd = os.getcwd()
    os.chdir(path.parent)  # a relative name: AF_UNIX paths are limited to ~107 bytes
    try:
        sock.bind(path.name)
    finally:
        os.chdir(cwd)
    sock.close()


NON_REGULAR = [("fifo", _fifo, "FIFO"), ("symlink to /dev/zero", _dev_zero, "character device"),
               ("directory", _directory, "directory"), ("unix socket", _socket, None)]

READS: list[tuple[str, Callable[[LocalFetcher, Path], object]]] = [
    ("fetch", lambda f, _d: f.fetch("timestamp.json", 1024)),
    ("fetch uncapped", lambda f, _d: f.fetch("timestamp.json", None)),
    ("stream", lambda f, _d: list(f.stream("timestamp.json", None).__enter__())),
    ("download", lambda f, d: f.download("timestamp.json", d / "out", expected_length=None)),
]


@pytest.mark.parametrize("kind,make,words", NON_REGULAR, ids=[n for n, _m, _w in NON_REGULAR])
@pytest.mark.parametrize("how,read", READS, ids=[n for n, _r in READS])
def test_local_mirror_refuses_non_regular_files(tmp_path: Path, kind: str,
                                                make: Callable[[Path], None],
                                                words: str | None, how: str,
                                                read: Callable[[LocalFetcher, Path], object]
                                                ) -> None:
    mirror = tmp_path / "m"
    mirror.mkdir()
    make(mirror / "timestamp.json")
    f = LocalFetcher(str(mirror))
    exc = bounded(lambda: read(f, tmp_path))
    assert isinstance(exc, FetchError) and not isinstance(exc, NotFoundError), (kind, exc)
    text = clean(exc)
    assert str(mirror / "timestamp.json") in text
    if words is not None:
        assert words in text and "not a regular file" in text
    assert not (tmp_path / "out").exists()


def test_local_mirror_symlink_to_regular_file_is_fine(tmp_path: Path) -> None:
    mirror = tmp_path / "m"
    mirror.mkdir()
    (mirror / "real-timestamp").write_bytes(b'{"signed": {}}')
    (mirror / "timestamp.json").symlink_to("real-timestamp")
    f = LocalFetcher(str(mirror))
    assert f.fetch("timestamp.json", 1024) == b'{"signed": {}}'
    with f.stream("timestamp.json", None) as chunks:
        assert b"".join(chunks) == b'{"signed": {}}'


def test_client_with_a_fifo_timestamp_fails_at_once(tiup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from reposim import SIM_NOW_TEXT, RepoSim

    sim = RepoSim(tmp_path / "mirror")
    sim.publish("hello", "v1.0.0")
    r = tiup("mirror", "set", str(sim.path), env={"TIUP_TEST_NOW": SIM_NOW_TEXT})
    assert r.returncode == 0, r.output
    (sim.path / "timestamp.json").unlink()
    os.mkfifo(sim.path / "timestamp.json")
    r = tiup("list", env={"TIUP_TEST_NOW": SIM_NOW_TEXT}, timeout=60)
    assert r.returncode == 1, r.output
    assert "timestamp.json" in r.stderr and "FIFO" in r.stderr, r.stderr
    assert "Traceback" not in r.output


# -- D8: slow retrieval -------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


#: (what, rule, [(seconds later, bytes arriving)], raises?)
GUARD_CASES = [
    ("steady above the limit", SpeedRule(100, 1, 0), [(0.5, 60)] * 10, None),
    ("trickle below the limit", SpeedRule(100, 1, 0), [(0.5, 1)] * 3, "too slow"),
    ("burst then silence", SpeedRule(100, 2, 0), [(0.1, 1000), (5, 1)], None),
    ("silence after a fresh window", SpeedRule(100, 2, 0),
     [(0.1, 1000), (2, 1), (2.5, 1)], "too slow"),
    ("speed check off", SpeedRule(0, 0, 0), [(10, 1)] * 10, None),
    ("deadline: 1 s + 200 B at 100 B/s", SpeedRule(100, 3600, 1), [(0.5, 30)] * 7,
     "deadline"),
    ("deadline met", SpeedRule(100, 3600, 1), [(0.5, 40)] * 5, None),
]


@pytest.mark.parametrize("what,rule,steps,raises", GUARD_CASES,
                         ids=[c[0] for c in GUARD_CASES])
def test_speed_guard_rules(what: str, rule: SpeedRule, steps: list[tuple[float, int]],
                           raises: str | None) -> None:
    clock = FakeClock()
    guard = rule.guard("http://m/x.tar.gz", 200, clock)
    try:
        for later, n in steps:
            clock.now += later
            guard.feed(n)
    except FetchError as exc:
        assert raises is not None and raises in str(exc), (what, exc)
        assert "http://m/x.tar.gz" in str(exc) and "B/s" in str(exc)
        assert exc.hint and "TIUP_HTTP_" in exc.hint
        assert exc.reason.startswith("too slow")
    else:
        assert raises is None, what


def test_deliberate_waits_leave_the_window_but_not_the_deadline() -> None:
    clock = FakeClock()
    guard = SpeedRule(100, 1, 0).guard("http://m/x", None, clock)
    clock.now += 45  # a Retry-After: 45 the server asked for
    guard.waited(45)
    clock.now += 0.5
    guard.feed(60)
    clock.now += 0.6
    guard.feed(60)  # 120 bytes in 1.1 s of transfer: fast enough
    timed = SpeedRule(100, 1, 1).guard("http://m/x", 100, clock)  # deadline 2 s
    clock.now += 5
    timed.waited(5)
    with pytest.raises(FetchError, match=r"deadline of 2\.0 s"):
        timed.check()
    fresh = SpeedRule(100, 1, 1).guard("http://m/x", 100, clock)
    with pytest.raises(FetchError, match="deadline"):
        fresh.check(ahead=3)  # a wait that would end past the deadline is not started


def test_deadline_scales_with_length() -> None:
    rule = SpeedRule(limit=1024, window=30, base=120)
    assert rule.deadline(None) is None
    assert rule.deadline(0) == 120
    assert rule.deadline(1024 * 1000) == 1120
    assert SpeedRule(1024, 30, 0).deadline(10) is None  # base 0: no deadline


def test_speed_settings_from_env() -> None:
    assert speed_rule(Settings.from_env({}).http) == SpeedRule(1024, 30, 120)
    assert HTTPFetcher("http://127.0.0.1:1").speed == SpeedRule(1024, 30, 120)
    env = {"TIUP_HTTP_SPEED_LIMIT": "100", "TIUP_HTTP_SPEED_TIME": "1.5",
           "TIUP_HTTP_DEADLINE": "0"}
    http = Settings.from_env(env).http
    assert speed_rule(http) == SpeedRule(100, 1.5, 0)
    assert HTTPFetcher("http://127.0.0.1:1", settings=http).speed == SpeedRule(100, 1.5, 0)
    for bad in ("fast", "inf", "nan"):
        with pytest.raises(UsageError, match="TIUP_HTTP_SPEED_LIMIT"):
            Settings.from_env({**env, "TIUP_HTTP_SPEED_LIMIT": bad})


#: one byte every 0.5 s: 400 bytes would take 200 s without a rule
TRICKLE = 0.5
SIZE = 400


@pytest.fixture
def trickler(tmp_path: Path) -> Iterator[StaticServer]:
    root = tmp_path / "site"
    root.mkdir()
    (root / "slow.tar.gz").write_bytes(os.urandom(SIZE))
    with StaticServer(root) as srv:
        srv.add_fault("/slow.tar.gz", Fault(trickle=TRICKLE, times=-1))
        yield srv


def _fetcher(url: str, rule: SpeedRule, **kw: object) -> HTTPFetcher:
    kw.setdefault("read_timeout", 30)
    return HTTPFetcher(url, speed=rule, connect_timeout=10, sleep=lambda _s: None,
                       **kw)  # type: ignore[arg-type]


def _read_all(how: str, f: HTTPFetcher, tmp: Path) -> None:
    if how == "fetch":
        f.fetch("slow.tar.gz", SIZE)
    elif how == "stream":
        with f.stream("slow.tar.gz", SIZE) as chunks:
            for _block in chunks:
                pass
    elif how == "stream readinto":
        with f.stream_range("slow.tar.gz", SIZE) as body:
            buf = memoryview(bytearray(4096))
            while body.readinto(buf):
                pass
    else:
        f.download("slow.tar.gz", tmp / "slow.tar.gz", expected_length=SIZE)


HOWS = ["fetch", "stream", "stream readinto", "download"]


@pytest.mark.parametrize("how", HOWS)
def test_trickling_server_is_cut_off_by_the_minimum_speed(trickler: StaticServer,
                                                          tmp_path: Path, how: str) -> None:
    f = _fetcher(trickler.url, SpeedRule(limit=100, window=0.5, base=0))
    started = time.monotonic()
    exc = bounded(lambda: _read_all(how, f, tmp_path), 150)
    elapsed = time.monotonic() - started
    assert isinstance(exc, FetchError), exc
    text = clean(exc)
    assert f"{trickler.url}/slow.tar.gz" in text and "too slow" in text and "B/s" in text
    assert "minimum 100 B/s" in text
    assert elapsed < SIZE * TRICKLE / 2, elapsed  # far below the 200 s of the trickle
    assert not (tmp_path / "slow.tar.gz").exists()
    # not retried: a retry would only start the trickle again
    assert len(trickler.requests("/slow.tar.gz")) == 1


@pytest.mark.parametrize("how", HOWS)
def test_trickling_server_hits_the_per_file_deadline(trickler: StaticServer, tmp_path: Path,
                                                     how: str) -> None:
    # speed window of an hour: only the deadline (0.5 s + 400 B / 400 B/s = 1.5 s) applies
    f = _fetcher(trickler.url, SpeedRule(limit=400, window=3600, base=0.5))
    started = time.monotonic()
    exc = bounded(lambda: _read_all(how, f, tmp_path), 150)
    elapsed = time.monotonic() - started
    assert isinstance(exc, FetchError), exc
    text = clean(exc)
    assert f"{trickler.url}/slow.tar.gz" in text and "deadline of 1.5 s" in text
    assert "B/s" in text
    assert elapsed < SIZE * TRICKLE / 2, elapsed


def test_resumed_download_that_stalls_again_and_again_is_cut_off(tmp_path: Path) -> None:
    """Each attempt brings a few bytes and then stalls until the read timeout: every
    attempt makes progress, so the retry budget alone never ends it (1000 attempts);
    the speed rule, measured across attempts, does."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "big.tar.gz").write_bytes(os.urandom(10_000))
    with StaticServer(root) as srv:
        srv.add_fault("/big.tar.gz", Fault(stall_after=10, times=-1))
        f = _fetcher(srv.url, SpeedRule(limit=1000, window=1, base=0), read_timeout=0.2)
        exc = bounded(lambda: f.download("big.tar.gz", tmp_path / "out",
                                         expected_length=10_000), 150)
        attempts = len(srv.requests("/big.tar.gz"))
    assert isinstance(exc, FetchError), exc
    assert "too slow" in clean(exc)
    assert attempts < 100, attempts  # a handful of windows, not 1000 attempts
    assert (tmp_path / "out.part").exists()  # kept for a later resume


def test_verify_over_http_with_trickling_timestamp(tiup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from reposim import SIM_NOW_TEXT, RepoSim

    sim = RepoSim(tmp_path / "mirror")
    with StaticServer(sim.path) as srv:
        srv.add_fault("/timestamp.json", Fault(trickle=TRICKLE, times=-1))
        started = time.monotonic()
        r = tiup("mirror", "verify", srv.url, "--skip-tarballs", timeout=300,
                 env={"TIUP_TEST_NOW": SIM_NOW_TEXT, "TIUP_HTTP_SPEED_LIMIT": "100",
                      "TIUP_HTTP_SPEED_TIME": "1"})
        elapsed = time.monotonic() - started
    assert r.returncode == 1, r.output
    line = next(x for x in r.stdout.splitlines() if x.startswith("ERROR") and
                "timestamp.json" in x)
    assert "too slow" in line and "B/s" in line
    assert elapsed < 200, elapsed  # the timestamp (~800 B) alone would take 400 s
    assert "Traceback" not in r.output


# -- errors without library internals --------------------------------------------------


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


def test_refused_port_error_is_plain() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(FetchError) as err:
        _fetcher(url, SpeedRule(), retries=2).fetch("timestamp.json", 1024)
    text = clean(err.value)
    assert f"{url}/timestamp.json" in text and "connection refused" in text
    assert err.value.hint and "running" in err.value.hint
    assert err.value.reason == "connection refused (2 attempts)"


def test_timeout_error_is_plain() -> None:
    quiet = socket.socket()  # listens (the kernel completes connections), never answers
    quiet.bind(("127.0.0.1", 0))
    quiet.listen(8)
    url = f"http://127.0.0.1:{quiet.getsockname()[1]}"
    try:
        f = HTTPFetcher(url, retries=1, read_timeout=0.3, speed=SpeedRule())
        with pytest.raises(FetchError) as err:
            f.fetch("timestamp.json", 1024)
    finally:
        quiet.close()
    text = clean(err.value)
    assert f"{url}/timestamp.json" in text and "no data received for 0.3 s" in text
    assert err.value.hint and "TIUP_HTTP_READ_TIMEOUT" in err.value.hint


def test_untrusted_tls_error_is_plain(tmp_path: Path) -> None:
    files = make_tls(tmp_path / "tls")
    (tmp_path / "site").mkdir()
    with StaticServer(tmp_path / "site", tls=files.server_context()) as srv, \
            pytest.raises(FetchError) as err:
        HTTPFetcher(srv.url, retries=3, speed=SpeedRule()).fetch("timestamp.json", 1024)
    text = clean(err.value)
    assert f"{srv.url}/timestamp.json" in text and "not trusted" in text
    assert err.value.hint and "TIUP_CA_BUNDLE" in err.value.hint
    assert err.value.reason == "TLS certificate not trusted"


def test_tls_to_a_plain_http_server_error_is_plain(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    with StaticServer(tmp_path / "site") as srv:
        url = srv.url.replace("http://", "https://")
        with pytest.raises(FetchError) as err:
            HTTPFetcher(url, retries=1, speed=SpeedRule()).fetch("timestamp.json", 1024)
    text = clean(err.value)
    assert f"{url}/timestamp.json" in text and "TLS" in text


def test_cli_error_for_a_dead_mirror_is_one_plain_line(tiup) -> None:  # type: ignore[no-untyped-def]
    url = f"http://127.0.0.1:{_free_port()}"
    r = tiup("mirror", "set", url, env={"TIUP_HTTP_RETRIES": "1"})
    assert r.returncode == 1, r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, r.stderr
    assert "connection refused" in errors[0] and url in errors[0]
    for bad in INTERNALS:
        assert bad not in r.output, r.output
