"""Client of the tiup-server publish API and of the temporary signing server.

A transport like the fetchers (bytes to and from a server, statuses translated into
:mod:`tiup.errors`); what is published, and when to try again (a
:class:`~tiup.transport.retry.RetryPolicy`), is the caller's business.

Requests (``behavior.md`` §8.4, §12.5 "publish"):

- ``POST /api/v1/tarball/<sid>``: ``multipart/form-data`` with the field
  ``file``; the body is generated from the file as it is sent (with a
  ``Content-Length``), never held in memory;
- ``POST /api/v1/component/<sid>/<id>?yanked=&standalone=&hidden=&owner=``:
  the signed manifest, ``Content-Type: text/json`` as TiUP sends it;
- ``POST /api/v1/rotate``: the signed root.

Every request has the ``--timeout`` (seconds; None = no limit) as its
connect and read timeout. Proxies and the CA bundle come from the
:class:`~tiup.settings.HttpSettings` passed in, as for downloads (the CLI passes the
environment's: ``TIUP_CA_BUNDLE``, ``HTTPS_PROXY``, ...).
Statuses become :mod:`tiup.errors` classes here: 409 →
:class:`~tiup.errors.ConflictError` (the caller rebuilds and retries), 403 →
:class:`~tiup.errors.SignatureError`, 400/404/413 →
:class:`~tiup.errors.RepositoryError`, connection failures and 502/503/504 →
:class:`~tiup.transport.retry.TransientError`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import urllib3
from urllib3.exceptions import HTTPError

from tiup import __version__
from tiup.errors import ConflictError, FetchError, RepositoryError, SignatureError, TransientError
from tiup.settings import HttpSettings
from tiup.transport.httputil import (
    NETWORK_ERRORS,
    cert_detail,
    is_cert_error,
    proxy_for,
    reason_text,
)

USER_AGENT = f"tiup/{__version__} (python)"
DEFAULT_TIMEOUT = 600.0
_CHUNK = 1024 * 1024


def _server_message(body: bytes) -> str:
    """The ``message`` of a JSON error body, else the body text (shortened)."""
    try:
        data = json.loads(body)
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            status = data.get("status")
            return f"{data['message']}" + (f" ({status})" if isinstance(status, str) else "")
    except (ValueError, RecursionError):
        pass
    text = body.decode("utf-8", "replace").strip()
    return text[:500] or "(empty response)"


def multipart_parts(path: Path, filename: str, field: str = "file"
                    ) -> tuple[str, bytes, bytes, int]:
    """(boundary, head, tail, total length) of a one-file ``multipart/form-data`` body."""
    boundary = "tiup-" + secrets.token_hex(16)
    safe = filename.replace('"', "").replace("\r", "").replace("\n", "")
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"{safe}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return boundary, head, tail, len(head) + path.stat().st_size + len(tail)


class APIClient:
    """Requests to one server (a mirror, or a signing server); thread-safe.

    ``settings`` gives the proxies and the CA bundle (default: the built-in defaults:
    no proxy, the system store).

    Raises (constructor):
        FetchError: the address is not an http(s) URL, or the CA bundle is missing.
    """

    def __init__(self, address: str, *, timeout: float | None = DEFAULT_TIMEOUT,
                 settings: HttpSettings | None = None):
        if not address.startswith(("http://", "https://")):
            raise FetchError(f"{address} is not an http:// or https:// address")
        self.base = address.rstrip("/")
        self.timeout = timeout if timeout else None
        kw: dict[str, Any] = {
            "retries": False,
            "timeout": urllib3.Timeout(connect=min(self.timeout or 10.0, 10.0),
                                       read=self.timeout),
        }
        http = settings if settings is not None else HttpSettings()
        ca = http.ca_bundle
        if ca:
            if not Path(ca).exists():
                raise FetchError(f"CA bundle {ca} does not exist", file=ca)
            kw["ca_cert_dir" if Path(ca).is_dir() else "ca_certs"] = ca
        proxy = proxy_for(self.base, http)
        self.pool: urllib3.PoolManager = (urllib3.ProxyManager(proxy, **kw) if proxy
                                          else urllib3.PoolManager(**kw))

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else \
            f"{self.base}/{path.lstrip('/')}"

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """Send one request; (status, body). Raises TransientError, FetchError (TLS, URL)."""
        url = self.url(path)
        hdrs = {"User-Agent": USER_AGENT, **(headers or {})}
        try:
            resp = self.pool.request(method, url, body=body, headers=hdrs,
                                     preload_content=True, redirect=False)
        except NETWORK_ERRORS as exc:
            if is_cert_error(exc):
                raise FetchError(f"TLS certificate verification failed for {url}: "
                                 f"{cert_detail(exc)}", file=url,
                                 hint="point TIUP_CA_BUNDLE at the server's CA") from exc
            text = reason_text(exc)
            if isinstance(exc, HTTPError) and "timed out" in text.lower():
                text = f"no answer within {self.timeout} s (raise --timeout)"
            raise TransientError(f"request to {url} failed: {text}", file=url) from exc
        return resp.status, resp.data

    # ------------------------------------------------------------ publish
    def upload_tarball(self, sid: str, path: Path, filename: str,
                       progress: Callable[[int], None] | None = None) -> None:
        """Stream ``path`` as the form file ``filename`` into session ``sid``.

        Raises:
            RepositoryError: the server refused it (400 / 413 ...).
            TransientError: connection failure or 5xx.
        """
        boundary, head, tail, total = multipart_parts(path, filename)

        def body() -> Iterator[bytes]:
            yield head
            sent = 0
            with open(path, "rb") as fh:
                while block := fh.read(_CHUNK):
                    sent += len(block)
                    if progress is not None:
                        progress(sent)
                    yield block
            yield tail

        status, data = self.request(
            "POST", f"api/v1/tarball/{sid}", body=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                     "Content-Length": str(total)})
        if status >= 300:
            self._raise(status, data, f"error on upload tarball {filename}")

    def post_component(self, sid: str, comp_id: str, manifest: bytes,
                       flags: dict[str, bool | str] | None = None) -> None:
        """POST a signed component manifest.

        Raises:
            ConflictError: 409, the manifest is not new enough (fetch again, rebuild).
            SignatureError: 403, the server refused the signatures.
            RepositoryError: 400/404/413 with the server's message.
            TransientError, FetchError: transport failures, 5xx.
        """
        query = {k: (str(v).lower() if isinstance(v, bool) else v)
                 for k, v in (flags or {}).items()}
        path = f"api/v1/component/{sid}/{comp_id}" + (f"?{urlencode(query)}" if query else "")
        status, data = self.request("POST", path, body=manifest,
                                    headers={"Content-Type": "text/json"})
        if status >= 300:
            self._raise(status, data, f"publishing {comp_id}")

    def post_rotate(self, root: bytes) -> None:
        """POST a signed root (``/api/v1/rotate``).

        Raises:
            ConflictError: 409, the root changed meanwhile.
            SignatureError: 403, not enough valid signatures.
            RepositoryError: 400, not a valid root.
        """
        status, data = self.request("POST", "api/v1/rotate", body=root,
                                    headers={"Content-Type": "text/json"})
        if status == 400:
            raise RepositoryError("The server rejected the manifest, please check if it's a "
                                  f"valid root manifest: {_server_message(data)}")
        if status >= 300:
            self._raise(status, data, "rotating the root")

    def _raise(self, status: int, data: bytes, what: str) -> None:
        msg = _server_message(data)
        url = self.base
        if status == 409:
            raise ConflictError(f"component manifest is too old, update it before publish "
                                f"({what}: {msg})", file=url)
        if status == 403:
            raise SignatureError(f"The server refused, make sure you have access to this "
                                 f"component ({what}: {msg})", file=url,
                                 hint="sign with the owner's key(s): -k FILE")
        if status in (502, 503, 504) or (status == 500 and not data):
            raise TransientError(f"{what} failed: server returned {status}: {msg}", file=url)
        if status == 413:
            raise RepositoryError(f"{what} failed: the server's size limit was exceeded: {msg}",
                                  file=url, hint="raise the server's --max-upload-size")
        if 400 <= status < 500:
            raise RepositoryError(f"{what} failed: the server rejected the request "
                                  f"(HTTP {status}): {msg}", file=url)
        raise RepositoryError(f"unknown error from server, response code: {status} response "
                              f"body: {msg}", file=url)

    # --------------------------------------------------------- signing server
    def get_json(self, path: str) -> Any:
        """GET a JSON document. Raises FetchError (with TiUP's message) for status ≥ 400."""
        status, data = self.request("GET", path)
        if status < 200 or status >= 400:
            raise FetchError(f"error requesting {self.url(path)}, response: "
                             f"{data.decode('utf-8', 'replace').strip()}, code {status}")
        try:
            return json.loads(data)
        except ValueError as exc:
            raise FetchError(f"{self.url(path)} did not answer JSON: {exc}") from exc
        except RecursionError as exc:
            raise FetchError(f"{self.url(path)} answered JSON nested too deeply") from exc

    def post_json(self, path: str, body: bytes) -> None:
        """POST a JSON body. Raises FetchError (with TiUP's message) for status ≥ 400."""
        status, data = self.request("POST", path, body=body,
                                    headers={"Content-Type": "application/json"})
        if status < 200 or status >= 400:
            raise FetchError(f"error requesting {self.url(path)}, response: "
                             f"{data.decode('utf-8', 'replace').strip()}, code {status}")

    def close(self) -> None:
        self.pool.clear()
