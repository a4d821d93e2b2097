"""The tiup-server publish API (``behavior.md`` §8.3, §12.10), POST only.

| route | body | success |
|---|---|---|
| ``/api/v1/tarball/{sid}`` | ``multipart/form-data``, field ``file`` | 200 ``null`` |
| ``/api/v1/component/{sid}/{name}`` | signed component manifest | 200 ``null`` |

(the component route takes the query ``yanked=&standalone=&hidden=&owner=``)
| ``/api/v1/rotate`` | signed root manifest | 200 ``null`` |

Authorisation is the manifest's signatures: the store checks the owner's
threshold (and, with ``owner=``, the new owner's too). Every write goes
through :class:`~tiup.repository.store.Store`, the crash-safe transaction the
local commands use, run in a thread so the event loop keeps serving files.
Errors are JSON ``{"status": CODE, "message": text}`` with TiUP's status
codes: 400 ``INVALID TARBALL``/``INVALID MANIFEST``/``INVALID REQUEST``, 403
``FORBIDDEN``, 404 ``SESSION NOT FOUND``, 409 ``MANIFEST CONFLICT``, 413
``TOO LARGE``, 500 ``INTERNAL ERROR`` only for faults of the server.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from tiup.errors import (
    ConflictError,
    InvalidNameError,
    ManifestError,
    MissingKeyError,
    MissingTarballError,
    RollbackError,
    SignatureError,
    TarballError,
    TiupError,
    VerificationError,
)
from tiup.server.app import ApiHandler, ServerConfig, json_error
from tiup.server.multipart import FormFileReader, MultipartError, boundary_of
from tiup.server.sessions import FILE_NAME, SID, Session, SessionStore, UploadTooLarge

log = logging.getLogger("tiup.server")

#: Largest manifest body accepted (a component with 20,000 versions is ~8 MB).
MAX_MANIFEST = 64 << 20
#: Slack for multipart headers on top of --max-upload-size.
FORM_OVERHEAD = 64 * 1024
ROLE_NAMES = frozenset({"root", "index", "snapshot", "timestamp"})
Result = tuple[int, object]


def _content_length(headers: Any) -> int | None:
    raw = headers.get("content-length")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


async def _read_body(proto: Any, headers: Any, cap: int) -> bytes | None:
    """The whole (small) body, or None when it is larger than ``cap``."""
    size = _content_length(headers)
    if size is not None and size > cap:
        return None
    data = bytearray()
    async for chunk in proto:
        data += chunk
        if len(data) > cap:
            return None
    return bytes(data)


def _flag(value: str) -> bool | None:
    low = value.lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    return None


class PublishAPI:
    """The API of one worker process (state shared with other workers lives on disk)."""

    def __init__(self, config: ServerConfig):
        from tiup.repository.keyring import load_keyring

        self.config = config
        self.mirror = Path(config.mirror)
        assert config.key_dir is not None and config.upload_dir is not None
        self.keyring = load_keyring([Path(config.key_dir)])
        self.sessions = SessionStore(config.upload_dir, config.session_ttl)

    async def __call__(self, method: str, path: str, query: str, headers: Any, proto: Any
                       ) -> Result:
        parts = path.split("/")  # "", "api", "v1", ...
        if len(parts) == 5 and parts[:4] == ["", "api", "v1", "tarball"]:
            return await self.tarball(parts[4], headers, proto)
        if len(parts) == 6 and parts[:4] == ["", "api", "v1", "component"]:
            return await self.component(parts[4], parts[5], query, headers, proto)
        if path == "/api/v1/rotate":
            return await self.rotate(headers, proto)
        return json_error(404, "NOT FOUND", f"no API route {path}")

    # ----------------------------------------------------------- tarball
    async def tarball(self, sid: str, headers: Any, proto: Any) -> Result:
        if not SID.fullmatch(sid):
            return json_error(400, "INVALID REQUEST",
                              f"invalid session id {sid!r}: use 1-64 of A-Z a-z 0-9 -")
        limit = self.config.max_upload
        size = _content_length(headers)
        if size is not None and size > limit + FORM_OVERHEAD:
            return json_error(413, "TOO LARGE", f"the upload of {size} bytes is larger than "
                              f"the server's limit of {limit} bytes")
        try:
            boundary = boundary_of(headers.get("content-type"))
        except MultipartError as exc:
            return json_error(400, "INVALID TARBALL", f"the tarball content is not valid: {exc}")
        upload = self.sessions.begin(sid, limit)
        reader = FormFileReader(boundary, "file", upload.write)
        try:
            async for chunk in proto:
                reader.feed(chunk)
            reader.finish()
            if not reader.found:
                raise MultipartError("the form has no field named 'file'")
            name = (reader.filename or "").rsplit("/", 1)[-1]
            if not FILE_NAME.fullmatch(name):
                raise MultipartError(f"unsafe or missing file name {reader.filename!r}")
            session = await asyncio.to_thread(upload.finish, name)
        except UploadTooLarge:
            upload.abort()
            return json_error(413, "TOO LARGE", f"the tarball is larger than the server's "
                              f"limit of {limit} bytes")
        except MultipartError as exc:
            upload.abort()
            return json_error(400, "INVALID TARBALL", f"the tarball content is not valid: {exc}")
        except BaseException:
            upload.abort()
            raise
        log.info("session %s: received %s (%d bytes, sha256 %s)", sid, session.filename,
                 session.length, session.sha256)
        return 200, None

    # --------------------------------------------------------- component
    async def component(self, sid: str, name: str, query: str, headers: Any, proto: Any
                        ) -> Result:
        from tiup.manifest.names import component_id
        from tiup.repository.store import IndexFlags

        if not SID.fullmatch(sid):
            return json_error(400, "INVALID REQUEST",
                              f"invalid session id {sid!r}: use 1-64 of A-Z a-z 0-9 -")
        if name in ROLE_NAMES:
            return json_error(403, "FORBIDDEN", f"{name} is a role, not a component")
        try:
            cid = component_id(name)
        except TiupError as exc:
            return json_error(400, "INVALID REQUEST", exc.message)
        flags: dict[str, Any] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key in ("yanked", "standalone", "hidden"):
                flag = _flag(value)
                if flag is None:
                    return json_error(400, "INVALID REQUEST",
                                      f"query {key}={value!r}: use true or false")
                flags[key] = flag
            elif key == "owner":
                flags["owner"] = value
        body = await _read_body(proto, headers, MAX_MANIFEST)
        if body is None:
            return json_error(413, "TOO LARGE", f"a manifest is at most {MAX_MANIFEST} bytes")
        session = self.sessions.get(sid)
        try:
            return await asyncio.to_thread(self._publish, cid, body, session,
                                           IndexFlags(**flags))
        finally:
            if session is not None:
                self.sessions.delete(sid)

    def _publish(self, cid: str, body: bytes, session: Session | None, flags: Any) -> Result:
        from tiup.clock import now
        from tiup.manifest.envelope import parse_envelope
        from tiup.repository.store import Store

        try:
            env = parse_envelope(body, f"component manifest of {cid}")
        except TiupError as exc:
            return json_error(400, "INVALID MANIFEST", exc.message)
        if not isinstance(env.signed, dict) or env.signed.get("id") != cid:
            got = env.signed.get("id") if isinstance(env.signed, dict) else None
            return json_error(400, "INVALID MANIFEST",
                              f"the URL names component {cid} but the manifest's id is {got!r}")
        try:
            with Store(self.mirror, now=now(), keyring=self.keyring) as store:
                tarball = session.path if session else None
                comp = store.publish_component(
                    env, tarball, tarball_name=session.filename if session else None,
                    flags=flags)
                store.commit()
        except TarballError as exc:
            if session is None and isinstance(exc, MissingTarballError):
                return json_error(404, "SESSION NOT FOUND",
                                  f"{exc.message}; no tarball was uploaded in this session "
                                  "(or it expired): upload it first")
            return json_error(400, "INVALID TARBALL", exc.message)
        except TiupError as exc:
            return _error_result(exc)
        log.info("published %s manifest version %d%s", cid, comp.version,
                 f" with {session.filename}" if session else "")
        return 200, None

    # ------------------------------------------------------------ rotate
    async def rotate(self, headers: Any, proto: Any) -> Result:
        from tiup.client.trust import MAX_ROOT_SIZE

        body = await _read_body(proto, headers, MAX_ROOT_SIZE)
        if body is None:
            return json_error(413, "TOO LARGE", f"a root manifest is at most {MAX_ROOT_SIZE} "
                              "bytes")
        return await asyncio.to_thread(self._rotate, body)

    def _rotate(self, body: bytes) -> Result:
        from tiup.client import trust
        from tiup.clock import now
        from tiup.manifest.envelope import envelope_bytes
        from tiup.manifest.models import Root
        from tiup.repository.store import Store

        try:
            env, root = trust.load(body, "root.json", Root)
        except TiupError as exc:
            return json_error(400, "INVALID MANIFEST", f"not a valid root manifest: "
                              f"{exc.message}")
        data = envelope_bytes(env.signatures, env.signed)
        try:
            with Store(self.mirror, now=now(), keyring=self.keyring) as store:
                current = store.state.root.version
                if root.version != current + 1:
                    return json_error(409, "MANIFEST CONFLICT",
                                      f"the new root has version {root.version}, expected "
                                      f"{current + 1}: fetch the latest root and try again")
                store.set_root(root, data)
                store.commit()
        except TiupError as exc:
            return _error_result(exc)
        log.info("rotated root to version %d", root.version)
        return 200, None


def _error_result(exc: TiupError) -> Result:
    """Status and JSON body for an error of the store."""
    if isinstance(exc, ConflictError):
        return json_error(409, "MANIFEST CONFLICT", exc.message)
    if isinstance(exc, SignatureError):
        return json_error(403, "FORBIDDEN", exc.message)
    if isinstance(exc, TarballError):
        return json_error(400, "INVALID TARBALL", exc.message)
    if isinstance(exc, RollbackError | ManifestError | VerificationError | InvalidNameError):
        return json_error(400, "INVALID MANIFEST", exc.message)
    if isinstance(exc, MissingKeyError):
        log.error("cannot sign: %s", exc.message)
        return json_error(500, "INTERNAL ERROR", f"the server cannot sign: {exc.message}")
    log.error("publish failed: %s", exc.message)
    return json_error(500, "INTERNAL ERROR", exc.message)


def make_api(config: ServerConfig) -> ApiHandler:
    """The API handler of one worker (the config must name a key dir and an upload dir)."""
    return PublishAPI(config)
