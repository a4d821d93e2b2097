"""The temporary signing server of ``rotate`` and ``transfer-owner`` (``behavior.md`` §9).

The initiator serves the manifest to sign at ``/rotate/<id>`` (plain HTTP,
TiUP's path form): ``GET`` answers ``{"signatures": null, "signed": ...}``;
key holders run ``tiup mirror sign <url> -k KEY``, which signs the canonical
form of ``signed`` and ``POST``s ``{"signatures": [...], "signed": ...}``
back. Only the signatures of the POST are used, each checked against the
server's own copy: a key that is not expected → 406 ``the key is not
valid``; a signature that does not verify → 406 ``the signature is not
valid``; duplicates are ignored.

Collection is complete when every group's threshold is met (for a rotate:
the old root's and the new root's; for a transfer: the current and the new
owner's), or, with ``all_keys``, when every expected key has signed
(``behavior.md`` §12.13). Both sides can print the sha256 of the canonical
payload so the holders can compare it out of band.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tiup.errors import TiupError
from tiup.ids import base62
from tiup.keys import public_key
from tiup.manifest.canonical import decode_json_strict, encode_canonical
from tiup.manifest.envelope import Signature
from tiup.manifest.models import KeyInfo

MAX_BODY = 1 << 20


def payload_digest(signed: Any) -> str:
    """sha256 (hex) of the canonical payload that is signed."""
    return hashlib.sha256(encode_canonical(signed)).hexdigest()


@dataclass(frozen=True)
class KeyGroup:
    """Keys whose ``threshold`` must sign (e.g. the old root role)."""

    name: str
    keys: Mapping[str, KeyInfo]
    threshold: int


class SigningSession:
    """The signatures collected for one manifest; thread-safe."""

    def __init__(self, signed: Any, groups: list[KeyGroup], *, all_keys: bool = False):
        self.signed = signed
        self.payload = encode_canonical(signed)
        self.digest = hashlib.sha256(self.payload).hexdigest()
        self.groups = groups
        self.all_keys = all_keys
        self.expected: dict[str, KeyInfo] = {}
        for group in groups:
            self.expected.update(group.keys)
        self.signatures: dict[str, Signature] = {}
        self.cond = threading.Condition()

    def offer(self, signatures: object) -> tuple[int, object]:
        """Take the valid signatures of a POST body; (status, JSON body)."""
        if not isinstance(signatures, list):
            return 400, {"status": "INVALID REQUEST", "message": "no signatures in the body"}
        new: list[Signature] = []
        for item in signatures:
            if not isinstance(item, dict) or not isinstance(item.get("keyid"), str) \
                    or not isinstance(item.get("sig"), str):
                return 400, {"status": "INVALID REQUEST", "message": "malformed signature"}
            info = self.expected.get(item["keyid"])
            if info is None:
                return 406, {"status": "NOT ACCEPTABLE", "message": "the key is not valid"}
            try:
                import base64

                raw = base64.b64decode(item["sig"], validate=True)
                ok = public_key(info).verify(self.payload, raw)
            except (TiupError, ValueError):
                ok = False
            if not ok:
                return 406, {"status": "NOT ACCEPTABLE", "message": "the signature is not valid"}
            new.append(Signature(item["keyid"], item["sig"]))
        with self.cond:
            for sig in new:
                self.signatures.setdefault(sig.keyid, sig)
            self.cond.notify_all()
        return 200, None

    def complete(self) -> bool:
        with self.cond:
            have = set(self.signatures)
        if self.all_keys:
            return set(self.expected) <= have
        return all(len(have & set(g.keys)) >= g.threshold for g in self.groups)

    def wait_change(self, seen: int, timeout: float) -> int:
        """Block until more than ``seen`` signatures are in (or ``timeout``); the count."""
        with self.cond:
            self.cond.wait_for(lambda: len(self.signatures) > seen, timeout)
            return len(self.signatures)

    def collected(self) -> list[Signature]:
        with self.cond:
            return [self.signatures[k] for k in sorted(self.signatures)]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.split("?")[0] != self.server.uri:
            self._send(404, {"status": "NOT FOUND", "message": "no such signing session"})
            return
        self._send(200, {"signatures": None, "signed": self.server.session.signed})

    def do_POST(self) -> None:
        if self.path.split("?")[0] != self.server.uri:
            self._send(404, {"status": "NOT FOUND", "message": "no such signing session"})
            return
        try:
            size = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            size = -1
        if not 0 <= size <= MAX_BODY:
            self._send(413, {"status": "TOO LARGE", "message": "body too large"})
            return
        try:
            body = decode_json_strict(self.rfile.read(size))
        except (TiupError, ValueError):
            self._send(400, {"status": "INVALID REQUEST", "message": "the body is not JSON"})
            return
        sigs = body.get("signatures") if isinstance(body, dict) else None
        self._send(*self.server.session.offer(sigs))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], session: SigningSession, uri: str):
        self.session = session
        self.uri = uri
        super().__init__(addr, _Handler)


class SigningServer:
    """Serve ``session`` on ``host:port`` until :meth:`stop`.

    Raises (constructor):
        TiupError: the address cannot be bound.
    """

    def __init__(self, session: SigningSession, host: str, port: int):
        self.session = session
        self.uri = f"/rotate/{base62(int(time.time() * 1000))}"
        try:
            self._httpd = _Server((host, port), session, self.uri)
        except OSError as exc:
            raise TiupError(f"cannot start the signing server on {host}:{port}: "
                            f"{exc.strerror or exc}",
                            hint="choose another --addr") from exc
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._httpd.shutdown()
            self._httpd.server_close()
