"""Real HTTP servers on 127.0.0.1 for tests: static (with scripted faults), forward proxy, TLS.

- :class:`StaticServer` serves a directory over HTTP/1.1 (keep-alive) with ``Range``/206/416,
  strong ``ETag`` (content hash), ``Last-Modified``, ``If-Range``, ``HEAD`` and 404, and keeps
  a request log (:class:`LogEntry`) so tests can count requests and bytes. Faults are
  scripted per path with :meth:`StaticServer.add_fault` (:class:`Fault`): drop the
  connection after N bytes, stall after N bytes until the server stops, answer a status
  (503 + ``Retry-After``) for the first K requests, an endless chunked body, a
  ``Content-Length`` larger than the file, ignore ``Range``, or trickle the body one
  byte at a time.
- :class:`ForwardProxy` is a tiny absolute-URI HTTP proxy that records what it forwarded.
- :func:`make_tls` writes a CA and a server certificate for ``127.0.0.1`` (IP SAN).

Usage::

    with StaticServer(tmp_path) as srv:
        srv.add_fault("/a.tar.gz", Fault(drop_after=1000))
        ...srv.url..., srv.log, srv.requests("/a.tar.gz")
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import re
import socket
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class Fault:
    """A scripted misbehaviour for one path, applied to its first ``times`` requests.

    ``times=-1`` applies it to every request. Exactly one kind should be set.
    """

    times: int = 1
    drop_after: int | None = None       # send N body bytes, then close the connection
    stall_after: int | None = None      # send N body bytes, then hang until the server stops
    status: int | None = None           # answer with this status (e.g. 503) and no file
    retry_after: str | None = None      # Retry-After header sent with ``status``
    endless_chunked: bool = False       # a chunked body that never ends
    content_length: int | None = None   # declare this Content-Length (the file follows)
    ignore_range: bool = False          # answer 200 with the whole file even to a Range
    etag: str | None = None             # send this ETag instead of the content hash
    trickle: float | None = None        # send the body one byte every N seconds (slow loris)


@dataclass
class LogEntry:
    """One request as the server saw it."""

    method: str
    path: str
    status: int
    sent: int                     # body bytes written
    range: str | None             # the Range header, if any
    headers: dict[str, str] = field(default_factory=dict)
    version: str = ""             # the request's HTTP version, e.g. HTTP/1.1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, owner: Any, handler: type[BaseHTTPRequestHandler],
                 tls: ssl.SSLContext | None):
        self.owner = owner
        self.tls = tls
        super().__init__(("127.0.0.1", 0), handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        self.owner.connections += 1
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                self.owner.tls_failures += 1
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up mid-body are part of the tests


class _Base:
    """Start/stop plumbing shared by the servers."""

    handler: type[BaseHTTPRequestHandler]

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.stopping = threading.Event()
        self.connections = 0
        self.tls_failures = 0
        self._lock = threading.Lock()
        self._httpd = _Server(self, self.handler, tls)
        self.port = self._httpd.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()   # wakes stalled handlers first
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _StaticHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        owner: StaticServer = self.server.owner
        path = urlsplit(self.path).path
        fault = owner._take_fault(path)
        rng = self.headers.get("Range")
        entry = LogEntry(self.command, path, 0, 0, rng, dict(self.headers.items()),
                         self.request_version)
        owner._begin(entry)
        try:
            self._respond(owner, path, fault, rng, head, entry)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        finally:
            owner._record(entry)

    def _simple(self, status: int, entry: LogEntry, headers: dict[str, str] | None = None,
                body: bytes = b"") -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        entry.status = status
        if self.command != "HEAD":
            self.wfile.write(body)
            entry.sent = len(body)

    def _respond(self, owner: StaticServer, path: str, fault: Fault | None, rng: str | None,
                 head: bool, entry: LogEntry) -> None:
        if fault and fault.status:
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._simple(fault.status, entry, extra, f"fault {fault.status}\n".encode())
            return
        file = owner.file(path)
        if file is None:
            self._simple(404, entry, {"Content-Type": "text/plain"}, b"not found\n")
            return
        if fault and fault.endless_chunked:
            self._endless(owner, entry)
            return
        data = file.read_bytes()
        etag = (fault.etag if fault and fault.etag else
                owner.etags.get(path) or f'"{hashlib.sha256(data).hexdigest()[:16]}"')
        modified = formatdate(file.stat().st_mtime, usegmt=True)
        headers = {"ETag": etag, "Last-Modified": modified, "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        status, body = 200, data
        if_range = self.headers.get("If-Range")
        use_range = (rng is not None and not owner.ignore_range
                     and not (fault and fault.ignore_range)
                     and (if_range is None or if_range in (etag, modified)))
        m = _RANGE.match(rng or "") if use_range else None
        if m and (m.group(1) or m.group(2)):
            first, last = m.group(1), m.group(2)
            if first:
                start, end = int(first), (int(last) if last else len(data) - 1)
            else:
                start, end = max(0, len(data) - int(last)), len(data) - 1
            end = min(end, len(data) - 1)
            if start >= len(data) or start > end:
                self._simple(416, entry, {"Content-Range": f"bytes */{len(data)}"})
                return
            status, body = 206, data[start:end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        declared = fault.content_length if fault and fault.content_length else len(body)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        entry.status = status
        if head:
            return
        if fault and fault.trickle is not None:
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                entry.sent += 1
                if owner.stopping.wait(fault.trickle):
                    break
            return
        limit = len(body)
        if fault and fault.drop_after is not None:
            limit = min(limit, fault.drop_after)
        if fault and fault.stall_after is not None:
            limit = min(limit, fault.stall_after)
        view = memoryview(body)[:limit]
        for i in range(0, len(view), 64 * 1024):
            self.wfile.write(view[i:i + 64 * 1024])
            entry.sent += len(view[i:i + 64 * 1024])
        self.wfile.flush()
        if fault and fault.stall_after is not None:
            owner._record(entry)  # logged now: the log must not wait for a stalled request
            owner.stopping.wait()
        if limit < declared:  # a truncated body: hang up so the client sees it
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def _endless(self, owner: StaticServer, entry: LogEntry) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        entry.status = 200
        block = b"x" * 65536
        frame = b"%x\r\n%s\r\n" % (len(block), block)
        while not owner.stopping.is_set():
            self.wfile.write(frame)
            entry.sent += len(block)
        self.close_connection = True


class StaticServer(_Base):
    """A threaded static file server for ``root`` on 127.0.0.1 (random port).

    Attributes:
        url: ``http://127.0.0.1:<port>`` (``https`` with ``tls``).
        log: every request, in order (:class:`LogEntry`).
        ignore_range: answer every Range request with 200 (a server without ranges).
        etags: per-path ETag overrides (simulate a file that changed).
        connections: TCP connections accepted; tls_failures: TLS handshakes that failed.
    """

    handler = _StaticHandler

    def __init__(self, root: Path, *, tls: ssl.SSLContext | None = None):
        self.root = Path(root).resolve()
        self._log: list[tuple[int, LogEntry]] = []  # (arrival number, finished request)
        self._arrival: dict[int, int] = {}          # id(entry) -> arrival number, in flight
        self._arrivals = 0
        self._inflight = 0
        self._idle = threading.Condition()
        self.faults: dict[str, list[Fault]] = {}
        self.ignore_range = False
        self.etags: dict[str, str] = {}
        super().__init__(tls)

    def file(self, path: str) -> Path | None:
        """The served file for a URL path, or None (404)."""
        rel = unquote(path).lstrip("/")
        target = (self.root / rel).resolve()
        if not rel or not target.is_relative_to(self.root) or not target.is_file():
            return None
        return target

    def add_fault(self, path: str, fault: Fault) -> None:
        """Apply ``fault`` to the next ``fault.times`` requests of ``path`` (after earlier ones)."""
        with self._lock:
            self.faults.setdefault(path, []).append(fault)

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            queue = self.faults.get(path)
            if not queue:
                return None
            fault = queue[0]
            if fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    queue.pop(0)
            return fault

    def _begin(self, entry: LogEntry) -> None:
        with self._idle:
            self._inflight += 1
            self._arrivals += 1
            self._arrival[id(entry)] = self._arrivals

    def _record(self, entry: LogEntry) -> None:
        with self._idle:
            arrival = self._arrival.pop(id(entry), None)
            if arrival is not None:
                self._log.append((arrival, entry))
                self._inflight -= 1
                self._idle.notify_all()

    @property
    def log(self) -> list[LogEntry]:
        """Every finished request in the order the requests arrived, not the order their
        threads finished (waits up to 5 s for requests still being served, since a client
        can have its answer before the server thread logged it)."""
        with self._idle:
            self._idle.wait_for(lambda: self._inflight == 0, timeout=5)
            return [entry for _, entry in sorted(self._log, key=lambda pair: pair[0])]

    def requests(self, path: str | None = None) -> list[LogEntry]:
        """The log entries, optionally only those for ``path``."""
        return [e for e in self.log if path is None or e.path == path]


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    HOP: ClassVar[set[str]] = {"connection", "keep-alive", "proxy-authorization",
                               "proxy-connection", "te", "trailers", "transfer-encoding",
                               "upgrade"}

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        owner: ForwardProxy = self.server.owner
        with owner._lock:
            owner.requests.append((self.command, self.path, dict(self.headers.items())))
        target = urlsplit(self.path)
        if target.scheme != "http" or not target.hostname:
            self.send_error(400, "absolute http:// URI required")
            return
        upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=10)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in self.HOP}
            upstream.request(self.command, target.path + (f"?{target.query}" if target.query
                                                          else ""), headers=headers)
            resp = upstream.getresponse()
            body = resp.read()
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in self.HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Via", "1.1 tiup-test-proxy")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        finally:
            upstream.close()

    do_HEAD = do_GET


class ForwardProxy(_Base):
    """A forward HTTP proxy on 127.0.0.1 for absolute-URI requests.

    Attributes:
        url: ``http://127.0.0.1:<port>``.
        requests: ``(method, absolute URL, headers)`` of every request it proxied.
    """

    handler = _ProxyHandler

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        super().__init__(None)


@dataclass
class TLSFiles:
    """PEM files written by :func:`make_tls`."""

    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """An SSL context serving the certificate."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def make_tls(directory: Path) -> TLSFiles:
    """Write a test CA and a server certificate for 127.0.0.1/localhost into ``directory``.

    Validity is fixed (2000-2099) so the test does not depend on today's date.
    """
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    begin, end = datetime(2000, 1, 1, tzinfo=UTC), datetime(2099, 12, 31, tzinfo=UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tiup test CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(begin).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(begin).not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TLSFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return files
