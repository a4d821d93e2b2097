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
``FORBIDDEN``, 404 ``SESSION NOT FOUND``, 408 ``UPLOAD EXPIRED``, 409 ``MANIFEST
CONFLICT``, 413 ``TOO LARGE``, 429 ``TOO MANY SESSIONS`` and 507 ``INSUFFICIENT
STORAGE`` (upload quotas, :mod:`tiup.server.sessions`), 500 ``INTERNAL ERROR`` only
for faults of the server. A body is checked by the pure parser before anything
else; every way it can be wrong is a 400 (see :func:`_bad_body`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from tiup.errors import (
    ConflictError,
    InvalidNameError,
    ManifestError,
    MissingKeyError,
    MissingTarballError,
    MultipartError,
    QuotaError,
    SignatureError,
    TarballError,
    TiupError,
    TiupKeyError,
    UploadExpired,
    UploadTooLarge,
    UsageError,
    VerificationError,
)
from tiup.manifest.names import is_tarball_file
from tiup.server.config import ServerConfig
from tiup.server.multipart import FormFileReader, boundary_of
from tiup.server.responses import ApiHandler, json_error
from tiup.server.sessions import SID, Quota, Session, SessionStore, client_key
from tiup.settings import Settings

if TYPE_CHECKING:
    from tiup.repository.store import Store

log = logging.getLogger("tiup.server")

#: Largest manifest body accepted (a component with 20,000 versions is ~8 MB).
MAX_MANIFEST = 64 << 20
#: Slack for multipart headers on top of --max-upload-size.
FORM_OVERHEAD = 64 * 1024
ROLE_NAMES = frozenset({"root", "index", "snapshot", "timestamp"})
Result = tuple[int, object]


def _content_length(headers: Any) -> int | None:
    """The declared body length, or None (absent, chunked, or not plain ASCII digits).

    ``int()`` alone would take ``+5``, `` 5``, ``5_000`` and other scripts' digits; a
    number longer than 19 digits is no file size (and the HTTP server refuses it anyway).
    """
    raw = headers.get("content-length")
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        return None
    return int(raw)


async def read_body(proto: Any, headers: Any, cap: int) -> bytes | None:
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


def tarball_request(sid: str, headers: Any, limit: int
                    ) -> tuple[Result | None, bytes, int | None]:
    """The checks of ``POST /api/v1/tarball/<sid>`` made before its body is read (shared
    by the directory and the bucket servers): ``(error, multipart boundary, declared
    length)``; ``error`` is the response to send when anything is invalid."""
    if not SID.fullmatch(sid):
        return json_error(400, "INVALID REQUEST",
                          f"invalid session id {sid!r}: use 1-64 of A-Z a-z 0-9 -"), b"", None
    size = _content_length(headers)
    if size is not None and size > limit + FORM_OVERHEAD:
        return json_error(413, "TOO LARGE", f"the upload of {size} bytes is larger than "
                          f"the server's limit of {limit} bytes"), b"", None
    try:
        boundary = boundary_of(headers.get("content-type"))
    except MultipartError as exc:
        return json_error(400, "INVALID TARBALL",
                          f"the tarball content is not valid: {exc}"), b"", None
    return None, boundary, size


async def receive_tarball(boundary: bytes, write: Callable[[bytes], None], proto: Any) -> str:
    """Feed the request body through the multipart reader, the ``file`` field's bytes to
    ``write``; returns the file name, checked as a tarball's (shared by the directory and
    the bucket servers).

    Raises:
        MultipartError: a malformed form, no ``file`` field, or an unsafe file name.
    """
    reader = FormFileReader(boundary, "file", write)
    async for chunk in proto:
        reader.feed(chunk)
    reader.finish()
    if not reader.found:
        raise MultipartError("the form has no field named 'file'")
    name = (reader.filename or "").rsplit("/", 1)[-1]
    if not is_tarball_file(name):
        raise MultipartError(f"unsafe or missing file name {reader.filename!r}: "
                             "a tarball is named <component>-<version>-<os>-<arch>.tar.gz")
    return name


async def component_request(sid: str, name: str, query: str, headers: Any, proto: Any
                            ) -> tuple[Result | None, str, dict[str, Any], bytes]:
    """The checked parts of ``POST /api/v1/component/<sid>/<name>?<flags>`` (shared by the
    directory and the bucket servers): ``(error, component id, index flags, manifest
    body)``; ``error`` is the response to send when anything is invalid."""
    from tiup.manifest.names import component_id

    if not SID.fullmatch(sid):
        return json_error(400, "INVALID REQUEST",
                          f"invalid session id {sid!r}: use 1-64 of A-Z a-z 0-9 -"), "", {}, b""
    if name in ROLE_NAMES:
        return json_error(403, "FORBIDDEN", f"{name} is a role, not a component"), "", {}, b""
    try:
        cid = component_id(name)
    except TiupError as exc:
        return json_error(400, "INVALID REQUEST", exc.message), "", {}, b""
    flags: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in ("yanked", "standalone", "hidden"):
            flag = _flag(value)
            if flag is None:
                return json_error(400, "INVALID REQUEST",
                                  f"query {key}={value!r}: use true or false"), "", {}, b""
            flags[key] = flag
        elif key == "owner":
            flags["owner"] = value
    body = await read_body(proto, headers, MAX_MANIFEST)
    if body is None:
        return json_error(413, "TOO LARGE",
                          f"a manifest is at most {MAX_MANIFEST} bytes"), "", {}, b""
    return None, cid, flags, body


def _flag(value: str) -> bool | None:
    low = value.lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    return None


class PublishAPI:
    """The API of one worker process (state shared with other workers lives on disk).

    ``settings`` gives the sync script run after each commit (default: the built-in
    defaults, none).
    """

    def __init__(self, config: ServerConfig, settings: Settings | None = None):
        from tiup.repository.keyring import load_keyring

        self.config = config
        self.settings = settings if settings is not None else Settings()
        self.mirror = Path(config.mirror)
        assert config.publishing and config.upload_dir is not None
        self.keyring = load_keyring(*config.key_sources())
        self.sessions = SessionStore(
            config.upload_dir, config.session_ttl,
            quota=Quota(max_staged=config.max_staged, max_client_staged=config.max_client_staged,
                        max_sessions=config.max_sessions,
                        max_client_sessions=config.max_client_sessions))

    async def __call__(self, method: str, path: str, query: str, headers: Any, client: str,
                       proto: Any) -> Result:
        parts = path.split("/")  # "", "api", "v1", ...
        if len(parts) == 5 and parts[:4] == ["", "api", "v1", "tarball"]:
            return await self.tarball(parts[4], headers, client_key(client), proto)
        if len(parts) == 6 and parts[:4] == ["", "api", "v1", "component"]:
            return await self.component(parts[4], parts[5], query, headers, proto)
        if path == "/api/v1/rotate":
            return await self.rotate(headers, proto)
        return json_error(404, "NOT FOUND", f"no API route {path}")

    # ----------------------------------------------------------- tarball
    async def tarball(self, sid: str, headers: Any, client: str, proto: Any) -> Result:
        """Receive a session's tarball; quotas are checked before the body is read.

        413 over ``max_upload``; 429 ``TOO MANY SESSIONS`` / 507 ``INSUFFICIENT STORAGE``
        over a :class:`~tiup.server.sessions.Quota` (also when the disk fills up).
        """
        limit = self.config.max_upload
        error, boundary, size = tarball_request(sid, headers, limit)
        if error is not None:
            return error
        try:
            upload = self.sessions.begin(sid, limit, client,
                                         declared=None if size is None else min(size, limit))
        except QuotaError as exc:
            log.warning("session %s from %s refused: %s", sid, client, exc.message)
            return json_error(exc.http_status, exc.http_code, exc.message)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                return _disk_full(exc)
            raise
        try:
            name = await receive_tarball(boundary, upload.write, proto)
            session = await asyncio.to_thread(upload.finish, name)
        except UploadTooLarge:
            upload.abort()
            return json_error(413, "TOO LARGE", f"the tarball is larger than the server's "
                              f"limit of {limit} bytes")
        except MultipartError as exc:
            upload.abort()
            return json_error(400, "INVALID TARBALL", f"the tarball content is not valid: {exc}")
        except QuotaError as exc:
            upload.abort()
            log.warning("session %s from %s refused: %s", sid, client, exc.message)
            return json_error(exc.http_status, exc.http_code, exc.message)
        except UploadExpired as exc:
            upload.abort()
            return json_error(408, "UPLOAD EXPIRED", str(exc))
        except OSError as exc:
            upload.abort()
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                return _disk_full(exc)
            raise
        except BaseException:
            upload.abort()
            raise
        log.info("session %s: received %s (%d bytes, sha256 %s)", sid, session.filename,
                 session.length, session.sha256)
        return 200, None

    # --------------------------------------------------------- component
    async def component(self, sid: str, name: str, query: str, headers: Any, proto: Any
                        ) -> Result:
        from tiup.repository.store import IndexFlags

        error, cid, flags, body = await component_request(sid, name, query, headers, proto)
        if error is not None:
            return error
        session = self.sessions.get(sid)
        try:
            return await asyncio.to_thread(self._publish, cid, body, session,
                                           IndexFlags(**flags))
        finally:
            if session is not None:
                self.sessions.delete(sid)

    def _publish(self, cid: str, body: bytes, session: Session | None, flags: Any) -> Result:
        from tiup import trust
        from tiup.clock import now
        from tiup.manifest.envelope import parse_envelope
        from tiup.manifest.models import Component
        from tiup.repository.store import Store

        what = f"component manifest of {cid}"
        try:  # pure checks of the body first: whatever goes wrong here is the body's fault
            env = parse_envelope(body, what)
            trust.check_type(env, "component")
            Component.from_dict(env.signed, what).expires_at()  # the model reads it lazily
        except Exception as exc:
            return _bad_body(exc, what)
        if env.signed.get("id") != cid:
            return json_error(400, "INVALID MANIFEST", f"the URL names component {cid} but "
                              f"the manifest's id is {env.signed.get('id')!r}")
        try:
            with Store(self.mirror, now=now(), keyring=self.keyring,
                       settings=self.settings) as store:
                tarball = session.path if session else None
                comp = store.publish_component(
                    env, tarball, tarball_name=session.filename if session else None,
                    flags=flags)
                store.commit()
        except TiupError as exc:
            return publish_refused(exc, uploaded=session is not None)
        log.info("published %s manifest version %d%s", cid, comp.version,
                 f" with {session.filename}" if session else "")
        return 200, None

    # ------------------------------------------------------------ rotate
    async def rotate(self, headers: Any, proto: Any) -> Result:
        from tiup.trust import MAX_ROOT_SIZE

        body = await read_body(proto, headers, MAX_ROOT_SIZE)
        if body is None:
            return json_error(413, "TOO LARGE", f"a root manifest is at most {MAX_ROOT_SIZE} "
                              "bytes")
        return await asyncio.to_thread(self._rotate, body)

    def _rotate(self, body: bytes) -> Result:
        from tiup.clock import now
        from tiup.repository.store import Store

        def in_store(stage: Callable[[Store], None]) -> None:
            with Store(self.mirror, now=now(), keyring=self.keyring,
                       settings=self.settings) as store:
                stage(store)
                store.commit()

        return rotate_root(body, in_store)


def rotate_root(body: bytes, run: Callable[[Callable[[Store], None]], None]) -> Result:
    """``POST /api/v1/rotate`` after its body was read: the body's pure checks, then
    ``run`` stages the new root in a store of the mirror and commits (a directory's store;
    a bucket's writer, which runs it again on a lost race). 409 unless the new root's
    version is the current one + 1."""
    from tiup import trust
    from tiup.manifest.envelope import envelope_bytes
    from tiup.manifest.models import Root

    try:  # pure checks of the body first: whatever goes wrong here is the body's fault
        env, root = trust.load(body, "root.json", Root)
        root.expires_at()  # the model reads it lazily
        data = envelope_bytes(env.signatures, env.signed)
    except Exception as exc:
        return _bad_body(exc, "root manifest")

    def stage(store: Store) -> None:
        current = store.state.root.version
        if root.version != current + 1:
            raise ConflictError(f"the new root has version {root.version}, expected "
                                f"{current + 1}: fetch the latest root and try again")
        store.set_root(root, data)

    try:
        run(stage)
    except TiupError as exc:
        return _error_result(exc)
    log.info("rotated root to version %d", root.version)
    return 200, None


def _bad_body(exc: Exception, what: str) -> Result:
    """400 for a body the pure parser refused.

    The parser raises a TiupError (``ManifestError``, ``SignatureError`` for a wrong
    ``_type``, ``InvalidNameError``) for every bad body it knows of. Anything else (too
    deep nesting, a number too long to convert, a shape a model trips on) is still the
    body's fault, so the client gets 400 too; the traceback goes to the log so the parser
    can learn the case.
    """
    if isinstance(exc, TiupError):
        return json_error(400, "INVALID MANIFEST", f"not a valid {what}: {exc.message}")
    log.warning("unexpected %s while parsing a %s", type(exc).__name__, what, exc_info=exc)
    return json_error(400, "INVALID MANIFEST", f"not a valid {what}: "
                      f"{type(exc).__name__} while parsing it")


def _disk_full(exc: OSError) -> Result:
    log.error("upload directory: %s", exc.strerror)
    return json_error(507, "INSUFFICIENT STORAGE", "the server has no room for this upload "
                      "right now; try again later")


def publish_refused(exc: TiupError, *, uploaded: bool) -> Result:
    """The answer to a component publish the store refused: 404 ``SESSION NOT FOUND`` when
    the manifest adds a version whose tarball no upload of the session brought (none was
    ``uploaded``), else :func:`_error_result`."""
    if not uploaded and isinstance(exc, MissingTarballError):
        return json_error(404, "SESSION NOT FOUND",
                          f"{exc.message}; no tarball was uploaded in this session (or it "
                          "expired): upload it first")
    return _error_result(exc)


def _error_result(exc: TiupError) -> Result:
    """Status and JSON body for an error of the store, by class (first match wins).

    - ConflictError → 409 ``MANIFEST CONFLICT``; SignatureError → 403 ``FORBIDDEN``;
    - TarballError (also MissingTarballError) → 400 ``INVALID TARBALL``;
    - MissingKeyError → 500: the server lacks a signing key (logged);
    - ManifestError, VerificationError (rollback, expiry, integrity), InvalidNameError,
      TiupKeyError (a bad key in a posted root), UsageError → 400 ``INVALID MANIFEST``:
      the request is at fault;
    - anything else (RepositoryError: the mirror is unreadable or damaged; FetchError,
      InstallError) → 500 ``INTERNAL ERROR`` (logged): the server is at fault.
    """
    if isinstance(exc, ConflictError):
        return json_error(409, "MANIFEST CONFLICT", exc.message)
    if isinstance(exc, SignatureError):
        return json_error(403, "FORBIDDEN", exc.message)
    if isinstance(exc, TarballError):
        return json_error(400, "INVALID TARBALL", exc.message)
    if isinstance(exc, MissingKeyError):
        log.error("cannot sign: %s", exc.message)
        return json_error(500, "INTERNAL ERROR", f"the server cannot sign: {exc.message}")
    if isinstance(exc, ManifestError | VerificationError | InvalidNameError | TiupKeyError
                  | UsageError):
        return json_error(400, "INVALID MANIFEST", exc.message)
    log.error("publish failed: %s", exc.message)
    return json_error(500, "INTERNAL ERROR", exc.message)


def make_api(config: ServerConfig, settings: Settings | None = None) -> ApiHandler:
    """The API handler of one worker (the config must name a key dir and an upload dir)."""
    return PublishAPI(config, settings)
