"""Helpers of the HTTP transport: the slow-retrieval rule and proxy choice of an
:class:`~tiup.settings.HttpSettings`, response details, body framing checks and the
copy-free ``readinto`` of a body.

The copy-free body path reads urllib3 internals, all through :func:`raw_response` and
:func:`connection_socket` (listed in :data:`URLLIB3_INTERNALS`). urllib3 is pinned to
its minor version for them (``pyproject.toml``, ``docs/adr/0002-http-client-urllib3.md``)
and ``tests/test_transport_urllib3.py`` fails, naming the attribute, if one changes.
Without them the transport stays correct, only slower (``read1`` and a copy per chunk).
"""

from __future__ import annotations

import email.utils
import errno
import http.client
import io
import re
import select
import socket
import ssl
import time
import urllib.request
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError
from urllib3.response import BaseHTTPResponse

from tiup.errors import SizeLimitError, TransientError
from tiup.settings import HttpSettings
from tiup.transport.speed import SpeedRule

NETWORK_ERRORS = (HTTPError, OSError, http.client.HTTPException)

#: What the copy-free body path reads beyond urllib3's public API (and http.client's
#: attributes of the response it wraps: ``fp``, ``chunked``, ``length``, ``readinto``).
URLLIB3_INTERNALS = ("urllib3.response.HTTPResponse._fp",
                     "urllib3.response.HTTPResponse.connection.sock")


def raw_response(resp: BaseHTTPResponse) -> http.client.HTTPResponse | None:
    """The http.client response under urllib3's (its private ``_fp``), or None."""
    fp = getattr(resp, "_fp", None)
    return fp if isinstance(fp, http.client.HTTPResponse) else None


def connection_socket(resp: BaseHTTPResponse) -> object:
    """The socket of the connection ``resp`` is read from (None once released)."""
    return getattr(resp.connection, "sock", None)


def speed_rule(http: HttpSettings) -> SpeedRule:
    """The slow-retrieval rule (:mod:`tiup.transport.speed`) of ``http``."""
    return SpeedRule(limit=http.speed_limit, window=http.speed_time, base=http.deadline)


def proxy_for(url: str, http: HttpSettings) -> str | None:
    """The proxy URL to use for ``url`` under ``http``'s proxy settings, or None."""
    if http.inner_proxy:
        return http.inner_proxy
    proxies = http.proxy_map
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    if proxies.get("no") and urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]
            host, proxies):
        return None
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy:
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def finish_response(resp: BaseHTTPResponse, *, drain: bool = False) -> None:
    """Give the connection back to the pool if its body was read, else close it."""
    try:
        if drain and (resp.length_remaining or 0) <= 64 * 1024:
            resp.drain_conn()
        if not (isinstance(resp, urllib3.HTTPResponse) and resp.isclosed()):
            resp.close()  # unread body (maybe endless): the connection cannot be reused
        resp.release_conn()
    except NETWORK_ERRORS:
        pass


def int_header(resp: BaseHTTPResponse, name: str) -> int | None:
    try:
        value = int(resp.headers.get(name, ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def content_range(value: str | None) -> tuple[int, int | None] | None:
    """``(start, total)`` from ``bytes start-end/total`` (total None for ``*``)."""
    if not value or not value.startswith("bytes "):
        return None
    span, _, total = value[6:].partition("/")
    first, _, _last = span.partition("-")
    try:
        return int(first), (None if total.strip() == "*" else int(total))
    except ValueError:
        return None


def validator_of(resp: BaseHTTPResponse) -> str | None:
    """A strong ETag, else Last-Modified: what ``If-Range`` may carry."""
    etag = resp.headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return str(etag)
    modified = resp.headers.get("Last-Modified")
    return str(modified) if modified else None


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend(x for x in (e.__cause__, e.__context__, *e.args)
                    if isinstance(x, BaseException))
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)


def is_cert_error(exc: BaseException) -> bool:
    for e in exception_chain(exc):
        if isinstance(e, ssl.SSLCertVerificationError):
            return True
        text = str(e)
        if "CERTIFICATE_VERIFY_FAILED" in text or "doesn't match" in text:
            return True
    return False


def cert_detail(exc: BaseException) -> str:
    for e in exception_chain(exc):
        if isinstance(e, ssl.SSLCertVerificationError):
            return str(e.verify_message or e.reason or e)
    return reason_text(exc)


def reason_text(exc: BaseException) -> str:
    """The exception text without urllib3's ``<object at 0x...>:`` prefixes."""
    return scrub(str(exc))


_REPR = re.compile(r"<[^<>]*(?: object at 0x[0-9a-fA-F]+|urllib3|Connection)[^<>]*>:?\s*")
_CONN = re.compile(r"\b\w*HTTPS?Connection(?:Pool)?\([^()]*\):?\s*")
_MAX_RETRIES = re.compile(r"Max retries exceeded with url: \S+ \(Caused by \w+\((.*)\)\)$")
_SSL_WHERE = re.compile(r"\s*\(_ssl\.c:\d+\)")
_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by the server",
    errno.ECONNABORTED: "connection aborted",
    errno.EPIPE: "connection closed by the server",
    errno.ETIMEDOUT: "timed out",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.EADDRNOTAVAIL: "address not available",
}


def scrub(text: str) -> str:
    """``text`` without urllib3's object reprs (``HTTPConnection(host=...)``,
    ``<urllib3.connection... object at 0x...>``, ``Max retries exceeded``, ``_ssl.c``)."""
    m = _MAX_RETRIES.search(text)
    if m:
        text = m.group(1)
    text = _CONN.sub("", _REPR.sub("", text))
    return _SSL_WHERE.sub("", text).strip(" :'\"") or "network error"


def _tls_words(exc: ssl.SSLError) -> str:
    reason = str(exc.reason or "").upper()
    if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
                  "HTTP_REQUEST"):
        return "the server does not speak TLS at this address (an http:// URL?)"
    if reason:
        return f"TLS handshake failed ({reason.replace('_', ' ').lower()})"
    return f"TLS handshake failed ({scrub(str(exc))})"


def plain_reason(exc: BaseException) -> str:
    """Why a network operation failed, in a few plain words, without library internals:
    ``connection refused``, ``timed out``, ``name not resolved``, ``TLS certificate not
    trusted (...)``..."""
    chain = list(exception_chain(exc))

    def first(kind: type[BaseException] | tuple[type[BaseException], ...]
              ) -> BaseException | None:
        return next((e for e in chain if isinstance(e, kind)), None)

    if first(http.client.RemoteDisconnected) is not None:
        return "the server closed the connection without answering"
    cert = first(ssl.SSLCertVerificationError)
    if isinstance(cert, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({cert.verify_message or cert.reason})"
    dns = first(socket.gaierror)
    if isinstance(dns, socket.gaierror):
        if dns.errno == socket.EAI_AGAIN:
            return "name not resolved (temporary DNS failure)"
        return "name not resolved"
    for kind, words in ((ConnectionRefusedError, "connection refused"),
                        (ConnectionResetError, "connection reset by the server"),
                        (BrokenPipeError, "connection closed by the server"),
                        (ConnectionAbortedError, "connection aborted")):
        if first(kind) is not None:
            return words
    if first(http.client.IncompleteRead) is not None:  # urllib3's is a subclass
        return "connection closed before the end of the body"
    if first(TimeoutError) is not None:
        return "timed out"
    tls = first(ssl.SSLError)
    if isinstance(tls, ssl.SSLError):
        return _tls_words(tls)
    for e in chain:
        if isinstance(e, OSError) and e.errno in _ERRNO_WORDS:
            return _ERRNO_WORDS[e.errno]
    for e in chain:
        if isinstance(e, OSError) and e.strerror:
            return str(e.strerror)[:1].lower() + str(e.strerror)[1:]
    return scrub(str(exc))


#: reads at least this large go from the socket straight into the caller's buffer
DIRECT_READ = 64 * 1024


def gathering_read(fp: http.client.HTTPResponse, buffered: io.BufferedReader,
                    sock: object) -> Callable[[memoryview], int]:
    """A ``readinto`` of the body that returns what has arrived (it never waits for a
    full buffer, so a stalled server still leaves its bytes with the caller), taking
    every byte already waiting in one call (TLS hands out 16 KiB records one at a
    time; one call per record would cost a Python round per 16 KiB)."""
    if fp.chunked:
        return fp.readinto  # rare for files: http.client decodes it (filling the buffer)
    fileno = getattr(sock, "fileno", None)
    pending = getattr(sock, "pending", None)
    poller = select.poll() if hasattr(select, "poll") else None
    if poller is not None and callable(fileno):
        try:
            poller.register(fileno(), select.POLLIN)
        except (OSError, ValueError, TypeError):
            poller = None
    else:
        poller = None

    def ready() -> bool:
        if callable(pending) and pending():
            return True
        return poller is not None and bool(poller.poll(0))

    drained = False

    def pull(view: memoryview) -> int:
        # BufferedReader.readinto1 copies what it holds and then may still block on the
        # socket (a stalled server would keep those bytes from us): take the bytes it
        # holds with read1 first (which never reads more when it holds any), then read
        # the socket straight into the caller's buffer.
        nonlocal drained
        if drained and len(view) > DIRECT_READ:
            return buffered.readinto1(view)
        data = buffered.read1(len(view))
        view[:len(data)] = data
        drained = len(data) < len(view)
        return len(data)

    def readinto(buf: memoryview) -> int:
        if fp.fp is None:  # the body ended: http.client let go of the connection
            return 0
        want = len(buf) if fp.length is None else min(len(buf), fp.length)
        n = pull(buf[:want]) if want else 0
        while 0 < n < want and ready():
            more = pull(buf[n:want])
            if not more:
                break
            n += more
        if fp.length is not None:
            fp.length -= n
        if not n or fp.length == 0:
            fp.close()  # as http.client does at the end: the connection can be reused
        return n

    return readinto


def too_large(url: str, max_size: int) -> SizeLimitError:
    return SizeLimitError(
        f"download from {url} failed: more than {max_size} bytes received "
        f"(maximum size {max_size})", file=url,
        hint="the mirror serves a file larger than its manifest allows",
        reason=f"more than {max_size} bytes")


class Framing:
    """How a response delimits its body, and the checks made when the body ends.

    A connection cut inside (or right after) the header block can look to http.client
    like a complete response: headers cut short (no ``Content-Length``, not chunked)
    and an empty body delimited by the close. So a body shorter than ``Content-Length``
    is transient, and so is an *empty* body without ``Content-Length`` or chunked
    encoding (no mirror file is empty); a non-empty close-delimited body is taken as
    it is (its hashes are checked by the caller).
    """

    def __init__(self, resp: BaseHTTPResponse):
        self.length = int_header(resp, "Content-Length")
        encoding = str(resp.headers.get("Transfer-Encoding", "")).lower()
        self.chunked = "chunked" in encoding
        self.received = 0

    def check_end(self, url: str) -> None:
        """The body ended: raise :class:`TransientError` if it cannot be complete."""
        if self.chunked:
            return
        if self.length is not None and self.received < self.length:
            raise TransientError(f"download from {url} failed: connection closed after "
                                 f"{self.received} of {self.length} bytes", file=url,
                                 reason=f"connection closed after {self.received} of "
                                        f"{self.length} bytes")
        if self.length is None and self.received == 0:
            raise TransientError(
                f"download from {url} failed: empty response without Content-Length or "
                "chunked encoding (connection cut in the headers?)", file=url,
                reason="empty response (connection cut in the headers?)")
