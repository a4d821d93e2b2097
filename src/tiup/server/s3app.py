"""A stateless mirror server over a bucket: ``tiup mirror serve --store s3://BUCKET/PREFIX``.

Every instance keeps nothing of its own: files are streamed from the bucket, upload
sessions are staged in the bucket (``.upload/<sid>/<tarball>``), and publishes commit
with the lock-free protocol of :mod:`tiup.repository.s3_storage` (a lost race is run
again on the new state). So any number of instances behind a load balancer serve one
mirror, and a publish whose tarball went to one instance completes on another.

Routes: ``GET``/``HEAD`` of a mirror file (a plain file name; single ``Range`` requests
are passed to the bucket; ``timestamp.json``, ``snapshot.json`` and ``root.json`` are
``no-cache``, versioned manifests and tarballs immutable); the publish API of
:mod:`tiup.server.api` (``/api/v1/tarball/{sid}``, ``/api/v1/component/{sid}/{name}``
and ``/api/v1/rotate``, :func:`~tiup.server.api.rotate_root`) with their status codes;
the web page and ``/metrics`` of :class:`~tiup.server.app.ObservedApp`, fed by this
instance's monitor process, which reads the bucket again whenever its ``timestamp.json``,
``snapshot.json`` or ``root.json`` changes (:mod:`tiup.server.monitor`). Not here: the
upload quotas other than ``--max-upload-size``. Stale sessions of uploads never followed
by a manifest are removed by ``tiup mirror prune --orphans``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from tiup.errors import (
    FetchError,
    MultipartError,
    NotFoundError,
    TiupError,
)
from tiup.server.api import (
    _bad_body,
    _error_result,
    component_request,
    publish_refused,
    read_body,
    receive_tarball,
    rotate_root,
    tarball_request,
)
from tiup.server.app import ObservedApp
from tiup.server.config import ServerConfig
from tiup.server.responses import json_error, read_only, send_json

log = logging.getLogger("tiup.server")

#: where upload sessions are staged, under the mirror's prefix
UPLOAD_DIR = ".upload"
_MUTABLE = frozenset({"timestamp.json", "snapshot.json", "root.json"})
_CHUNK = 1 << 20


class S3MirrorApp(ObservedApp):
    """The RSGI app of one worker (see the module docstring)."""

    def __init__(self, config: ServerConfig):
        from tiup.repository.keyring import KeyRing, load_keyring
        from tiup.repository.s3_storage import S3Storage

        super().__init__(config)
        self.storage = S3Storage(config.mirror)
        self.keyring = load_keyring([Path(config.key_dir)]) if config.key_dir else KeyRing()
        self.publishing = config.key_dir is not None

    async def _sessions_usage(self) -> tuple[int, int, int | None] | None:
        return await asyncio.to_thread(self._sessions) if self.publishing else None

    def _sessions(self) -> tuple[int, int, None] | None:
        """(upload sessions, staged bytes, no limit) of the bucket: shared by every
        instance; no staging limit is enforced on a bucket. None (no such gauges in the
        scrape) when the bucket cannot be listed."""
        try:
            staged = self.storage.list(f"{UPLOAD_DIR}/")
        except TiupError as exc:
            log.warning("metrics: cannot list the upload sessions: %s", exc.message)
            return None
        sids = {e.name.split("/")[1] for e in staged if e.name.count("/") >= 2}
        return len(sids), sum(e.size for e in staged), None

    # ------------------------------------------------------------------ files
    async def _file(self, method: str, path: str, headers: Any, proto: Any
                    ) -> tuple[int, int]:
        if method not in ("GET", "HEAD"):
            return read_only(proto, method, path)
        name = path.lstrip("/")
        if not name or "/" in name or name.startswith(".") or name == "lock":
            return send_json(proto, *json_error(404, "NOT FOUND", f"{path} not found"))
        kwargs: dict[str, Any] = {}
        rng = headers.get("range")
        if rng and method == "GET":
            kwargs["Range"] = rng
        op = "head_object" if method == "HEAD" else "get_object"
        try:
            resp = await asyncio.to_thread(self.storage._call, op, "read", name,
                                           Key=self.storage.key(name), **kwargs)
        except NotFoundError:
            return send_json(proto, *json_error(404, "NOT FOUND", f"{path} not found"))
        except FetchError as exc:
            if exc.reason == "InvalidRange":
                return send_json(proto, *json_error(416, "RANGE NOT SATISFIABLE",
                                                    exc.message))
            raise
        out = [("content-type", "application/json" if name.endswith(".json")
                else "application/octet-stream"),
               ("content-length", str(resp.get("ContentLength", 0))),
               ("etag", str(resp.get("ETag", ""))), ("accept-ranges", "bytes")]
        if name in _MUTABLE:
            out.append(("cache-control", "no-cache"))
        elif name.endswith((".json", ".tar.gz")) and not name.startswith("tiup-"):
            out.append(("cache-control", "public, max-age=31536000, immutable"))
        status = 200
        if "ContentRange" in resp:
            status = 206
            out.append(("content-range", str(resp["ContentRange"])))
        if method == "HEAD":
            proto.response_empty(status, out)
            return status, 0
        body = resp["Body"]
        sent = 0
        try:
            transport = proto.response_stream(status, out)
            while True:
                block = await asyncio.to_thread(body.read, _CHUNK)
                if not block:
                    break
                await transport.send_bytes(block)
                sent += len(block)
        finally:
            body.close()
        return status, sent

    # -------------------------------------------------------------------- api
    async def _publish_api(self, path: str, scope: Any, proto: Any) -> tuple[int, object]:
        parts = path.split("/")
        if len(parts) == 5 and parts[:4] == ["", "api", "v1", "tarball"]:
            return await self._tarball(parts[4], scope.headers, proto)
        if len(parts) == 6 and parts[:4] == ["", "api", "v1", "component"]:
            return await self._component(parts[4], parts[5], scope.query_string,
                                         scope.headers, proto)
        if path == "/api/v1/rotate":
            return await self._rotate(scope.headers, proto)
        return json_error(404, "NOT FOUND", f"no API route {path} on a bucket-backed server")

    async def _rotate(self, headers: Any, proto: Any) -> tuple[int, object]:
        from tiup.clock import now
        from tiup.repository.writer import LocalWriter
        from tiup.trust import MAX_ROOT_SIZE

        body = await read_body(proto, headers, MAX_ROOT_SIZE)
        if body is None:
            return json_error(413, "TOO LARGE", f"a root manifest is at most {MAX_ROOT_SIZE} "
                              "bytes")
        writer = LocalWriter(self.storage, self.keyring, clock=now)
        return await asyncio.to_thread(rotate_root, body, writer.run_store)

    async def _tarball(self, sid: str, headers: Any, proto: Any) -> tuple[int, object]:
        limit = self.config.max_upload
        error, boundary, _size = tarball_request(sid, headers, limit)
        if error is not None:
            return error
        fd, tmp = tempfile.mkstemp(prefix="tiup-upload-")
        try:
            with os.fdopen(fd, "wb") as fh:
                written = [0]

                def write(data: bytes) -> None:
                    written[0] += len(data)
                    if written[0] > limit:
                        raise MultipartError(f"the tarball is larger than the server's limit "
                                             f"of {limit} bytes")
                    fh.write(data)

                name = await receive_tarball(boundary, write, proto)
            await asyncio.to_thread(self._stage, sid, name, Path(tmp))
        except MultipartError as exc:
            return json_error(400, "INVALID TARBALL", f"the tarball content is not valid: {exc}")
        except TiupError as exc:
            return _error_result(exc)
        finally:
            Path(tmp).unlink(missing_ok=True)
        log.info("session %s: staged %s in %s", sid, name, self.storage.location)
        return 200, None

    def _stage(self, sid: str, name: str, path: Path) -> None:
        """Put the session's tarball in the bucket (replacing an earlier one of the session)."""
        from tiup.hashing import FileInfo

        for entry in self.storage.list(f"{UPLOAD_DIR}/{sid}/"):
            self.storage.delete(entry.name)
        info = FileInfo.of_file(path)
        with open(path, "rb") as body:
            self.storage._put(f"{UPLOAD_DIR}/{sid}/{name}", body, sha256=info.sha256)

    async def _component(self, sid: str, name: str, query: str, headers: Any, proto: Any
                         ) -> tuple[int, object]:
        from tiup.repository.store import IndexFlags

        error, cid, flags, body = await component_request(sid, name, query, headers, proto)
        if error is not None:
            return error
        return await asyncio.to_thread(self._publish, sid, cid, body, IndexFlags(**flags))

    def _publish(self, sid: str, cid: str, body: bytes, flags: Any) -> tuple[int, object]:
        from tiup import trust
        from tiup.clock import now
        from tiup.manifest.envelope import parse_envelope
        from tiup.manifest.models import Component
        from tiup.repository.writer import LocalWriter

        what = f"component manifest of {cid}"
        try:
            env = parse_envelope(body, what)
            trust.check_type(env, "component")
            Component.from_dict(env.signed, what).expires_at()
        except Exception as exc:
            return _bad_body(exc, what)
        if env.signed.get("id") != cid:
            return json_error(400, "INVALID MANIFEST", f"the URL names component {cid} but "
                              f"the manifest's id is {env.signed.get('id')!r}")
        staged = self.storage.list(f"{UPLOAD_DIR}/{sid}/")
        work = Path(tempfile.mkdtemp(prefix="tiup-publish-"))
        try:
            tarball: Path | None = None
            tarball_name: str | None = None
            if staged:
                tarball_name = staged[0].name.rsplit("/", 1)[-1]
                tarball = work / tarball_name
                with self.storage._stream(staged[0].name, None) as chunks, \
                        open(tarball, "wb") as fh:
                    for block in chunks:
                        fh.write(block)
            writer = LocalWriter(self.storage, self.keyring, clock=now)
            comp = writer.run_store(lambda store: store.publish_component(
                env, tarball, tarball_name=tarball_name, flags=flags))
        except TiupError as exc:
            return publish_refused(exc, uploaded=bool(staged))
        finally:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        for entry in staged:
            try:
                self.storage.delete(entry.name)
            except TiupError:
                log.warning("could not remove the staged upload %s", entry.name)
        log.info("published %s manifest version %d%s", cid, comp.version,
                 f" with {tarball_name}" if tarball_name else "")
        return 200, None


def create_s3_app() -> S3MirrorApp:
    """Granian factory of a worker serving a bucket (config from :data:`CONFIG_ENV`)."""
    config = ServerConfig.from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    return S3MirrorApp(config)
