"""The mirror server as an RSGI application (built and run by granian in
:mod:`tiup.server.run`).

Static files: ``GET``/``HEAD`` only, single ``Range`` requests answered with
206, ``ETag``/``Last-Modified``/conditional requests, caching headers per
file kind. The publish API lives under ``/api/v1/`` and accepts ``POST`` only.
Every response error is JSON ``{"status": ..., "message": ...}``.

The web page (:mod:`tiup.server.ui`) answers ``/ui/...``, and ``/`` for requests whose
``Accept`` names ``text/html`` (browsers); every other request for ``/`` gets the same
404 JSON as before. ``GET /metrics`` is the Prometheus text format
(:mod:`tiup.server.metrics`) unless the mirror holds a file named ``metrics``, which is
then served as a file: no mirror file and no API route is ever shadowed.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiup.server.accesslog import AccessLog
from tiup.server.config import ServerConfig
from tiup.server.metrics import METRICS_DIR, WorkerMetrics, route_class
from tiup.server.responses import ApiHandler, Response, json_error, read_only, send_json
from tiup.server.static import (
    ByteRange,
    FileInfo,
    StaticFiles,
    if_range_matches,
    not_modified,
    parse_range,
)
from tiup.server.ui.routes import WebUI, is_ui_path, wants_html
from tiup.server.ui.view import StateView

if TYPE_CHECKING:
    from tiup.server.sessions import SessionStore
    from tiup.server.upstream import Upstream
    from tiup.settings import Settings

log = logging.getLogger("tiup.server")


class ObservedApp:
    """What every mirror server's worker has, whatever stores the mirror: the access log,
    the web page and ``/metrics``, both fed by the monitor process through the state
    directory (:mod:`tiup.server.monitor`), and the counting of each answered request."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.access = AccessLog()
        state = config.state_dir
        self.view = StateView(state)
        self.web = WebUI(self.view)
        self.metrics = WorkerMetrics(str(Path(state, METRICS_DIR)) if state else None)

    def __rsgi_init__(self, loop: Any) -> None:
        self.access.start(loop, on_tick=self.metrics.flush)

    def __rsgi_del__(self, loop: Any) -> None:
        self.access.stop()
        self.metrics.flush()

    # the store's part, in each app
    #: whether ``/api/`` takes publishes (else 404)
    publishing = False

    async def _file(self, method: str, path: str, headers: Any, proto: Response
                    ) -> tuple[int, int]:
        """Answer a request for a mirror file: (status, bytes sent)."""
        raise NotImplementedError

    async def _publish_api(self, path: str, scope: Any, proto: Any) -> tuple[int, object]:
        """Run a POST to the publish API: (status, JSON body)."""
        raise NotImplementedError

    def _metrics_route(self, path: str) -> bool:
        """``/metrics`` is the scrape unless the mirror has a file of that name."""
        return True

    async def _sessions_usage(self) -> tuple[int, int, int | None] | None:
        """(upload sessions, staged bytes, staging limit or None), None without the API."""
        return None

    async def __call__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return
        started = time.perf_counter()
        method, path = scope.method, scope.path
        route = "other"
        try:
            if path.startswith("/api/"):
                route = "api"
                status, sent = await self._api(method, path, scope, proto)
            elif self.is_page(method, path, scope.headers):
                route = "ui"
                status, sent = await self._ui(method, path, scope, proto)
            elif path == "/metrics" and method in ("GET", "HEAD") and \
                    self._metrics_route(path):
                route = "metrics"
                status, sent = self._metrics(method, proto, await self._sessions_usage())
            else:
                route = route_class(path)
                status, sent = await self._file(method, path, scope.headers, proto)
        except Exception:
            # A bug, not the client's fault: the traceback goes to the log, the client gets
            # one JSON line (if no response was started; granian ignores a second one).
            log.exception("internal error on %s %s", method, path)
            status, sent = internal_error(proto)
        self.answered(scope, route, status, sent, started)

    async def _api(self, method: str, path: str, scope: Any, proto: Any) -> tuple[int, int]:
        if method != "POST":
            return send_json(proto, *json_error(405, "METHOD NOT ALLOWED",
                                                "the API accepts POST only"),
                             extra=[("allow", "POST")])
        if not self.publishing:
            return send_json(proto, *json_error(404, "NOT FOUND",
                                                "publishing is not enabled on this server"))
        try:
            status, body = await self._publish_api(path, scope, proto)
        except Exception:
            log.exception("internal error on %s %s", method, path)
            status, body = json_error(500, "INTERNAL ERROR", "an internal error happened")
        self._count_api(path, status, body)
        return send_json(proto, status, body)

    @staticmethod
    def is_page(method: str, path: str, headers: Any) -> bool:
        """``/ui/...``, or ``/`` asked for by a browser (tiup and curl get the files)."""
        return is_ui_path(path) or (path == "/" and method in ("GET", "HEAD") and
                                    wants_html(headers.get("accept")))

    def answered(self, scope: Any, route: str, status: int, sent: int,
                 started: float) -> None:
        """Count and log one answered request."""
        elapsed = time.perf_counter() - started
        self.metrics.request(route, status, sent, elapsed)
        self.access.line(scope.client, scope.method, scope.path, status, sent,
                         elapsed * 1000)

    async def _ui(self, method: str, path: str, scope: Any, proto: Response
                  ) -> tuple[int, int]:
        if method not in ("GET", "HEAD"):
            return read_only(proto, method, path)
        return await self.web(method, path, scope.query_string, scope.headers, proto)

    def _metrics(self, method: str, proto: Response,
                 sessions: tuple[int, int, int | None] | None) -> tuple[int, int]:
        """Answer a scrape; ``sessions`` is (upload sessions, staged bytes, staging limit
        or None) when the publish API is on."""
        from tiup.clock import now
        from tiup.server.metrics import exposition, families

        body, content_type = exposition(families(self.metrics.merged(), self.view.status(),
                                                 sessions, now()))
        headers = [("content-type", content_type), ("cache-control", "no-store")]
        if method == "HEAD":
            proto.response_empty(200, [*headers, ("content-length", str(len(body)))])
            return 200, 0
        proto.response_bytes(200, headers, body)
        return 200, len(body)

    def _count_api(self, path: str, status: int, body: object) -> None:
        """Publishes and uploads by outcome; the reason is the API's status code."""
        outcome = "accepted" if status == 200 else "refused"
        reason = "ok"
        if status != 200:
            code = body.get("status") if isinstance(body, dict) else None
            reason = (code if isinstance(code, str) else str(status)).lower().replace(" ", "_")
        if path.startswith("/api/v1/tarball/"):
            self.metrics.event("tiup_uploads_total", outcome, reason)
        elif path.startswith("/api/v1/component/"):
            self.metrics.event("tiup_publishes_total", "component", outcome, reason)
        elif path == "/api/v1/rotate":
            self.metrics.event("tiup_publishes_total", "root", outcome, reason)


class MirrorApp(ObservedApp):
    """Serves one mirror directory; ``api`` handles ``/api/v1/...`` when publishing is on.

    ``settings`` gives the CA bundle of an https ``--upstream`` (default: the system store).
    """

    def __init__(self, config: ServerConfig, api: ApiHandler | None = None, *,
                 settings: Settings | None = None):
        super().__init__(config)
        self.files = StaticFiles(config.mirror)
        self.api = api
        self.publishing = api is not None
        self.sessions: SessionStore | None = None
        if api is not None and config.upload_dir is not None:
            from tiup.server.sessions import SessionStore

            self.sessions = SessionStore(config.upload_dir, config.session_ttl)
        self.upstream: Upstream | None = None
        if config.upstream:
            from tiup.server.upstream import Upstream

            self.upstream = Upstream(config.upstream,
                                     settings.http.ca_bundle if settings is not None else None)

    def _metrics_route(self, path: str) -> bool:
        return self.files.lookup(path) is None

    async def _sessions_usage(self) -> tuple[int, int, int | None] | None:
        if self.sessions is None:
            return None
        count, staged = self.sessions.usage()
        return count, staged, self.config.max_staged

    async def _file(self, method: str, path: str, headers: Any, proto: Response
                    ) -> tuple[int, int]:
        status, sent = self._static(method, path, headers, proto)
        if status == 404 and self.upstream is not None:
            status, sent = await self._from_upstream(method, path, proto, (status, sent))
        return status, sent

    # ------------------------------------------------------------------ static
    def _static(self, method: str, path: str, headers: Any, proto: Response) -> tuple[int, int]:
        if method not in ("GET", "HEAD"):
            return read_only(proto, method, path)
        info = self.files.lookup(path)
        if info is None:
            if self.upstream is not None and self.files.servable_name(path):
                return 404, 0  # answered by _from_upstream
            return send_json(proto, *json_error(404, "NOT FOUND", f"{path} not found"))
        base = info.headers
        if not_modified(info, headers.get("if-none-match"), headers.get("if-modified-since")):
            proto.response_empty(304, base)
            return 304, 0
        wanted: ByteRange | bool | None = None
        range_header = headers.get("range")
        if range_header and if_range_matches(info, headers.get("if-range")):
            wanted = parse_range(range_header, info.size)
        if wanted is False:
            headers_416 = [*base, ("content-range", f"bytes */{info.size}")]
            return send_json(proto, *json_error(416, "RANGE NOT SATISFIABLE",
                                                f"{path} has {info.size} bytes"),
                             extra=headers_416[1:])
        if isinstance(wanted, ByteRange):
            return self._send_range(method, info, wanted, base, proto)
        if method == "HEAD":
            proto.response_empty(200, [*base, ("content-length", str(info.size))])
            return 200, 0
        if info.body is not None:
            proto.response_bytes(200, base, info.body)
        else:
            # Granian streams a file with chunked encoding unless told its length; with
            # Content-Length clients show totals and ETA, and the file is still sent by Rust.
            proto.response_file(200, [*base, ("content-length", str(info.size))], info.path)
        return 200, info.size

    def _send_range(self, method: str, info: FileInfo, rng: ByteRange,
                    base: list[tuple[str, str]], proto: Response) -> tuple[int, int]:
        headers = [*base, ("content-range", f"bytes {rng.start}-{rng.end}/{info.size}")]
        if method == "HEAD":
            proto.response_empty(206, [*headers, ("content-length", str(rng.length))])
            return 206, 0
        if info.body is not None:
            proto.response_bytes(206, headers, info.body[rng.start : rng.end + 1])
        else:
            proto.response_file_range(206, [*headers, ("content-length", str(rng.length))],
                                      info.path, rng.start, rng.end + 1)
        return 206, rng.length

    async def _from_upstream(self, method: str, path: str, proto: Response,
                             missing: tuple[int, int]) -> tuple[int, int]:
        assert self.upstream is not None
        name = self.files.servable_name(path)
        if name is not None and method in ("GET", "HEAD"):
            done = await self.upstream.send(method, name, proto)
            if done is not None:
                return done
            return send_json(proto, *json_error(404, "NOT FOUND",
                                                f"{path} not found here or upstream"))
        return missing

    # --------------------------------------------------------------------- api
    async def _publish_api(self, path: str, scope: Any, proto: Any) -> tuple[int, object]:
        assert self.api is not None
        return await self.api("POST", path, scope.query_string, scope.headers, scope.client,
                              proto)


def internal_error(proto: Response) -> tuple[int, int]:
    """A bug's one-line answer (unless a response had already started)."""
    try:
        return send_json(proto, *json_error(500, "INTERNAL ERROR",
                                            "an internal error happened"))
    except Exception:  # the response had already started
        return 500, 0
