"""The HTTP(S) transport: urllib3 with pooling, timeouts, retries, resume, caps and proxies.

Behaviour (``behavior.md`` §12.5, ``format.md`` §11/§12.8):

- URL = ``<address without trailing "/">/<resource without leading "/">``, HTTP/1.1,
  ``User-Agent: tiup/<version> (python)``, ``Accept-Encoding: identity`` (the bytes
  hashed are the bytes on the wire; a ``.tar.gz`` is never "decoded" by accident).
- Every setting comes from an :class:`~tiup.settings.HttpSettings` passed in (the
  built-in defaults when none is; :func:`tiup.transport.open_fetcher` passes the
  environment's, see :mod:`tiup.settings` for the variables).
- Timeouts: connect 10 s, read 60 s without a byte (``TIUP_HTTP_CONNECT_TIMEOUT``,
  ``TIUP_HTTP_READ_TIMEOUT``; 0 = none).
- Up to 5 attempts (``TIUP_HTTP_RETRIES``) on connection errors, timeouts, truncated
  bodies, 408/425/429/500/502/503/504; backoff 0.5 s × 2ⁿ capped at 8 s with ±20 %
  jitter, or ``Retry-After`` up to 60 s (the one :class:`~tiup.transport.retry.RetryPolicy`;
  ``download`` resumes through the one engine, :mod:`tiup.transport.resume`).
  404 → :class:`NotFoundError`; other 4xx and TLS verification failures are not retried.
- A connection closed before the first body byte (cut inside or right after the
  headers, which http.client may parse as a complete response), a body shorter than
  its ``Content-Length`` and an empty body without ``Content-Length`` or chunked
  encoding are transient: retried (a whole fetch), or :class:`TransientError` from a
  stream whose body already started.
- Every read is capped: a ``Content-Length`` over the cap fails before the body is
  read, a body (chunked, endless) fails as soon as it passes the cap.
- Slow retrieval (:mod:`tiup.transport.speed`): a file (``fetch``, ``stream`` or
  ``download``, retries included) is aborted when fewer than ``TIUP_HTTP_SPEED_LIMIT``
  bytes/s (default 1024) arrive over ``TIUP_HTTP_SPEED_TIME`` seconds (default 30), or
  when it takes longer than ``TIUP_HTTP_DEADLINE`` (default 120) + expected length /
  ``TIUP_HTTP_SPEED_LIMIT`` seconds; 0 turns a rule off. Not retried.
- ``timestamp.json`` and ``tiup-*`` are requested with ``Cache-Control: no-cache``.
- Proxies from ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``/``NO_PROXY`` (either case);
  ``TIUP_INNER_HTTP_PROXY`` overrides them for every scheme. CA bundle: argument, else
  ``TIUP_CA_BUNDLE``, else ``SSL_CERT_FILE``, else the system store.

Every urllib3, ssl and socket exception is translated into :mod:`tiup.errors` here
(:meth:`HTTPFetcher._translate`): the message says which URL, why in plain words
(connection refused, timed out, name not resolved, TLS certificate not trusted...) and
carries a hint; no urllib3 object reprs.
"""

from __future__ import annotations

import io
import os
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from urllib.parse import urlsplit, urlunsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    LocationValueError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProxyError,
    ReadTimeoutError,
    ResponseError,
    SSLError,
)
from urllib3.response import BaseHTTPResponse

from tiup import __version__
from tiup.errors import FetchError, NotFoundError, SizeLimitError, TransientError
from tiup.settings import HttpSettings
from tiup.transport.base import FORBIDDEN, Fetcher
from tiup.transport.chunks import Chunks
from tiup.transport.httputil import (
    NETWORK_ERRORS,
    Framing,
    cert_detail,
    connection_socket,
    content_range,
    finish_response,
    gathering_read,
    int_header,
    is_cert_error,
    plain_reason,
    proxy_for,
    raw_response,
    retry_after_seconds,
    scrub,
    speed_rule,
    too_large,
    validator_of,
)
from tiup.transport.retry import RetryPolicy
from tiup.transport.speed import Clock, Guard, SpeedRule

BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
RETRY_AFTER_CAP = 60.0
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
CHUNK = 256 * 1024
POOL_SIZE = 16
USER_AGENT = f"tiup/{__version__} (python)"

CA_HINT = ("if the mirror uses a private CA, point TIUP_CA_BUNDLE (or SSL_CERT_FILE) "
           "at its PEM bundle")


class HTTPFetcher(Fetcher):
    """Reads a mirror served over HTTP(S). Thread-safe; one connection pool per fetcher.

    ``settings`` holds timeouts, attempts, the slow-retrieval rule, proxies and the CA
    bundle (default: the built-in defaults, never the environment); arguments not None
    override it. ``backoff_base``, ``sleep`` and ``clock`` exist so tests run fast
    without waiting; ``speed`` replaces the slow-retrieval rule.

    Raises (constructor):
        FetchError: the address is not a usable URL, the CA bundle or proxy is unusable.
    """

    def __init__(self, address: str, *, settings: HttpSettings | None = None,
                 ca_bundle: str | None = None,
                 connect_timeout: float | None = None, read_timeout: float | None = None,
                 retries: int | None = None, user_agent: str = USER_AGENT,
                 backoff_base: float = BACKOFF_BASE,
                 sleep: Callable[[float], None] = time.sleep, pool_size: int = POOL_SIZE,
                 speed: SpeedRule | None = None, clock: Clock = time.monotonic):
        self.address = address
        self.base_url = address.rstrip("/")
        try:
            parsed = urllib3.util.parse_url(self.base_url)
        except LocationValueError as exc:
            raise FetchError(f"invalid mirror URL {address}: {exc}", file=address) from exc
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise FetchError(f"invalid mirror URL {address}", file=address,
                             hint="use http://host[:port]/path or https://...")
        http = settings if settings is not None else HttpSettings()
        self.settings = http
        self.connect_timeout = (connect_timeout if connect_timeout is not None
                                else http.connect_timeout)
        self.read_timeout = read_timeout if read_timeout is not None else http.read_timeout
        self.retry: RetryPolicy = RetryPolicy(
            attempts=max(1, retries if retries is not None else http.attempts),
            base=backoff_base, cap=BACKOFF_CAP, jitter=0.2, retry_after_cap=RETRY_AFTER_CAP,
            sleep=sleep)
        self.user_agent = user_agent
        self.speed = speed if speed is not None else speed_rule(http)
        self.clock = clock
        self.ca_bundle = ca_bundle or http.ca_bundle
        self.proxy = proxy_for(self.base_url, http)
        self._pool = self._make_pool(pool_size)
        # Redirects are followed (as Go's client does); every other retry is ours.
        self._policy = urllib3.Retry(total=None, connect=0, read=0, status=0, other=0,
                                     redirect=10, raise_on_redirect=True,
                                     raise_on_status=False)

    def _make_pool(self, pool_size: int) -> urllib3.PoolManager:
        kw: dict[str, object] = {
            "num_pools": 4, "maxsize": max(8, pool_size), "block": False,
            "timeout": urllib3.Timeout(connect=self.connect_timeout, read=self.read_timeout),
            "retries": False,
        }
        if self.ca_bundle:
            if os.path.isdir(self.ca_bundle):
                kw["ca_cert_dir"] = self.ca_bundle
            elif os.path.isfile(self.ca_bundle):
                kw["ca_certs"] = self.ca_bundle
            else:
                raise FetchError(f"CA bundle {self.ca_bundle} does not exist",
                                 file=self.ca_bundle, hint=CA_HINT)
        if not self.proxy:
            return urllib3.PoolManager(**kw)  # type: ignore[arg-type]
        try:
            proxy = urllib3.util.parse_url(self.proxy)
            headers = (urllib3.make_headers(proxy_basic_auth=proxy.auth) if proxy.auth
                       else None)
            return urllib3.ProxyManager(self.proxy, proxy_headers=headers,
                                        **kw)  # type: ignore[arg-type]
        except (HTTPError, ValueError) as exc:
            raise FetchError(f"unusable proxy {_shown(self.proxy)} for {self.address}: "
                             f"{scrub(str(exc))}", file=self.address,
                             hint="proxies must be http:// or https:// URLs") from exc

    @property
    def attempts(self) -> int:
        """Attempts per request (``TIUP_HTTP_RETRIES``, default 5)."""
        return self.retry.attempts

    def __repr__(self) -> str:
        return f"HTTPFetcher({self.address!r}, proxy={self.proxy!r})"

    # -- public API ------------------------------------------------------------------

    def url(self, resource: str) -> str:
        """The URL of ``resource``."""
        return f"{self.base_url}/{resource.lstrip('/')}"

    def location(self, resource: str) -> str:
        return self.url(resource)

    def fetch(self, resource: str, max_size: int | None) -> bytes:
        """The whole content of ``resource`` (retried as a whole on transient failures).

        Raises:
            NotFoundError: HTTP 404.
            SizeLimitError: the body is larger than ``max_size``.
            FetchError: any other failure, after the retry budget when it is transient;
                too slow or past its deadline (``max_size`` scales it) at once.
        """
        guard = self.speed.guard(self.url(resource), max_size, self.clock)

        def once() -> bytes:
            with self._open(resource, max_size, 0, None, guard) as chunks:
                data = bytearray()
                for block in chunks:
                    data += block
                return bytes(data)

        return self.retry.run(once, guard=guard)

    def stream(self, resource: str, max_size: int | None,
               offset: int = 0) -> AbstractContextManager[Chunks]:
        """Chunks of ``resource`` from ``offset`` (``Range: bytes=offset-``).

        The response is retried until it starts; a body that breaks afterwards raises
        :class:`TransientError` (resume with ``offset``, or use :meth:`download`).
        Check ``chunks.start``: it is 0 if the server ignored the range. The speed rule
        holds from the first request to the end of the body (deadline scaled by
        ``max_size``).

        Raises:
            NotFoundError, SizeLimitError, FetchError: as for :meth:`fetch`.
        """
        return self.stream_range(resource, max_size, offset)

    def stream_range(self, resource: str, max_size: int | None, offset: int = 0, *,
                     if_range: str | None = None) -> AbstractContextManager[Chunks]:
        return self._stream(resource, max_size, offset, if_range)

    @contextmanager
    def _stream(self, resource: str, max_size: int | None, offset: int,
                if_range: str | None) -> Iterator[Chunks]:
        guard = self.speed.guard(self.url(resource), max_size, self.clock)
        cm = self.retry.run(lambda: self._enter(resource, max_size, offset, if_range, guard),
                            guard=guard)
        try:
            yield cm[1]
        finally:
            finish_response(cm[0])

    def exists(self, resource: str) -> bool:
        """True if a HEAD (or, where HEAD is refused, a GET) of ``resource`` succeeds.

        Raises:
            FetchError: any failure other than 404.
        """
        url = self.url(resource)

        def once() -> int:
            resp = self._request("HEAD", url, self._headers(resource), ok=(200, 405, 501))
            finish_response(resp)
            return resp.status

        try:
            status = self.retry.run(once)
        except NotFoundError:
            return False
        return status == 200 or super().exists(resource)

    def close(self) -> None:
        self._pool.clear()

    # -- retries ---------------------------------------------------------------------

    def retry_delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure."""
        return self.retry.delay(failures, retry_after)

    # -- one attempt -----------------------------------------------------------------

    def _headers(self, resource: str) -> dict[str, str]:
        headers = {"User-Agent": self.user_agent, "Accept-Encoding": "identity"}
        name = resource.lstrip("/")
        if name == "timestamp.json" or name.startswith("tiup-"):
            headers["Cache-Control"] = "no-cache"
        return headers

    @contextmanager
    def _open(self, resource: str, max_size: int | None, offset: int,
              if_range: str | None, guard: Guard) -> Iterator[Chunks]:
        resp, chunks = self._enter(resource, max_size, offset, if_range, guard)
        try:
            yield chunks
        finally:
            finish_response(resp)

    def _enter(self, resource: str, max_size: int | None, offset: int,
               if_range: str | None, guard: Guard) -> tuple[BaseHTTPResponse, Chunks]:
        """Send the GET and check status and size; one attempt, no retry."""
        url = self.url(resource)
        headers = self._headers(resource)
        ranged = dict(headers)
        if offset > 0:
            ranged["Range"] = f"bytes={offset}-"
            if if_range:
                ranged["If-Range"] = if_range
        resp = self._request("GET", url, ranged, ok=(200, 206, 416) if offset else (200,))
        start, size = 0, int_header(resp, "Content-Length")
        if resp.status == 206:
            crange = content_range(resp.headers.get("Content-Range"))
            if crange is not None and crange[0] == offset:
                start, size = offset, crange[1]
            else:  # a range we did not ask for: take the whole file instead
                resp = self._restart(resp, url, headers)
                size = int_header(resp, "Content-Length")
        elif resp.status == 416:  # the file is shorter than our part: it changed
            resp = self._restart(resp, url, headers)
            size = int_header(resp, "Content-Length")
        if max_size is not None and size is not None and size > max_size:
            finish_response(resp)
            raise SizeLimitError(
                f"download from {url} failed, resp size {size} exceeds maximum size {max_size}",
                file=url, hint="the mirror serves a file larger than its manifest allows",
                reason=f"{size} bytes, over the {max_size}-byte cap")
        framing = Framing(resp)
        if not framing.chunked and (framing.length is None or framing.length > 0):
            self._first_byte(resp, url)
        body = self._body(resp, url, max_size, start, framing, guard)
        return resp, Chunks(body, start=start, requested=offset, size=size,
                            validator=validator_of(resp),
                            reader=self._reader(resp, url, max_size, start, framing, guard))

    def _first_byte(self, resp: BaseHTTPResponse, url: str) -> None:
        """Wait for the body's first byte: a connection cut in or right after the headers
        shows here, while the request can still be retried as a whole."""
        buffered = getattr(raw_response(resp), "fp", None)
        if not isinstance(buffered, io.BufferedReader):
            return
        try:
            ready = buffered.peek(1)
        except NETWORK_ERRORS as exc:
            finish_response(resp)
            raise self._translate(exc, url) from exc
        if not ready:
            finish_response(resp)
            raise TransientError(f"download from {url} failed: connection closed before the "
                                 "body (cut in or right after the headers)", file=url,
                                 reason="connection closed before the body")

    def _restart(self, resp: BaseHTTPResponse, url: str,
                 headers: dict[str, str]) -> BaseHTTPResponse:
        finish_response(resp)
        return self._request("GET", url, headers, ok=(200,))

    def _request(self, method: str, url: str, headers: dict[str, str],
                 ok: tuple[int, ...]) -> BaseHTTPResponse:
        try:
            resp = self._pool.urlopen(method, url, headers=headers, preload_content=False,
                                      decode_content=False, retries=self._policy,
                                      redirect=True)
        except NETWORK_ERRORS as exc:
            raise self._translate(exc, url) from exc
        if resp.status in ok:
            return resp
        reason = f"HTTP {resp.status} {resp.reason or ''}".rstrip()
        retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
        finish_response(resp, drain=True)
        if resp.status == 404:
            raise NotFoundError(f"{url} not found ({reason})", file=url,
                                reason=f"not found ({reason})")
        if resp.status in RETRY_STATUSES:
            raise TransientError(f"download from {url} failed: {reason}", file=url,
                                 retry_after=retry_after, reason=reason)
        raise FetchError(f"download from {url} failed: {reason}", file=url,
                         hint="check the mirror address and the server's access rules",
                         reason=reason, code=FORBIDDEN if resp.status == 403 else None)

    def _body(self, resp: BaseHTTPResponse, url: str, max_size: int | None,
              start: int, framing: Framing, guard: Guard) -> Iterator[bytes]:
        total = start
        while True:
            try:
                block = resp.read1(CHUNK, decode_content=False)
            except NETWORK_ERRORS as exc:
                raise self._translate(exc, url) from exc
            if not block:
                framing.check_end(url)
                return
            total += len(block)
            framing.received += len(block)
            if max_size is not None and total > max_size:
                raise too_large(url, max_size)
            guard.feed(len(block))
            yield block

    def _reader(self, resp: BaseHTTPResponse, url: str, max_size: int | None, start: int,
                framing: Framing, guard: Guard) -> Callable[[memoryview], int] | None:
        """``readinto`` straight from the connection into the caller's buffer (no bytes
        object per chunk, no copy), with the checks of :meth:`_body`; None if the
        response is not a plain http.client one."""
        fp = raw_response(resp)
        if fp is None or not isinstance(fp.fp, io.BufferedReader) or resp.headers.get(
                "Content-Encoding", "identity").lower() not in ("", "identity"):
            return None
        raw_read = gathering_read(fp, fp.fp, connection_socket(resp))
        total = start

        def readinto(buf: memoryview) -> int:
            nonlocal total
            try:
                n = raw_read(buf)
            except NETWORK_ERRORS as exc:
                raise self._translate(exc, url) from exc
            if not n:
                framing.check_end(url)
                return 0
            total += n
            framing.received += n
            if max_size is not None and total > max_size:
                raise too_large(url, max_size)
            guard.feed(n)
            return n

        return readinto

    def _translate(self, exc: BaseException, url: str) -> FetchError:
        """The tiup error for a urllib3/ssl/socket exception (TransientError if retryable).

        The one boundary where third-party network errors become tiup errors: the
        message names the URL and says why in plain words (``reason``), with a hint;
        never a urllib3 object repr or "Max retries exceeded".
        """
        while isinstance(exc, MaxRetryError) and exc.reason is not None:
            exc = exc.reason
        host = urlsplit(url).netloc.rpartition("@")[2]
        why = plain_reason(exc)
        if isinstance(exc, ResponseError):  # too many redirects
            return FetchError(f"download from {url} failed: too many redirects", file=url,
                              hint="check the mirror address (the server redirects in a loop)",
                              reason="too many redirects")
        if isinstance(exc, LocationValueError):
            return FetchError(f"invalid URL {url}: {scrub(str(exc))}", file=url,
                              hint="check the mirror address", reason="invalid URL")
        if is_cert_error(exc):
            return FetchError(f"TLS certificate verification failed for {url}: the "
                              f"certificate of {host} is not trusted ({cert_detail(exc)})",
                              file=url, hint=CA_HINT, reason="TLS certificate not trusted")
        if isinstance(exc, ProxyError):
            return TransientError(f"cannot reach {url} through proxy {_shown(self.proxy)}: "
                                  f"{why}", file=url,
                                  hint="check HTTPS_PROXY / HTTP_PROXY / NO_PROXY",
                                  reason=f"proxy: {why}")
        if isinstance(exc, NameResolutionError):
            cause = exc.__cause__ or (exc.args[-1] if exc.args else None)
            name = urlsplit(url).hostname or host
            msg = f"cannot resolve host {name} of {url}: {why}"
            if isinstance(cause, socket.gaierror) and cause.errno == socket.EAI_AGAIN:
                return TransientError(msg, file=url, hint="check the DNS settings",
                                      reason=why)
            return FetchError(msg, file=url, hint="check the mirror address", reason=why)
        if isinstance(exc, NewConnectionError):
            return TransientError(f"cannot connect to {host} for {url}: {why}", file=url,
                                  hint="check that the mirror server is running and that "
                                       "the address and port are right", reason=why)
        if isinstance(exc, ConnectTimeoutError):
            return TransientError(
                f"connecting to {host} timed out after {self.connect_timeout} s ({url})",
                file=url, hint="raise TIUP_HTTP_CONNECT_TIMEOUT on slow networks",
                reason="connect timed out")
        if isinstance(exc, ReadTimeoutError | socket.timeout | TimeoutError):
            return TransientError(
                f"download from {url} failed: no data received for {self.read_timeout} s",
                file=url, hint="raise TIUP_HTTP_READ_TIMEOUT on slow networks",
                reason=f"no data for {self.read_timeout} s")
        if isinstance(exc, SSLError | ssl.SSLError):
            return TransientError(f"TLS error talking to {host} ({url}): {why}", file=url,
                                  hint="check that the address is the mirror's https:// URL",
                                  reason=why)
        if isinstance(exc, NETWORK_ERRORS):
            return TransientError(f"download from {url} failed: connection broken ({why})",
                                  file=url, reason=why)
        return FetchError(f"download from {url} failed: {why}", file=url, reason=why)


def _shown(proxy: str | None) -> str:
    """A proxy URL for messages, without its credentials."""
    if not proxy:
        return "(none)"
    parts = urlsplit(proxy)
    if "@" not in parts.netloc:
        return proxy
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
