"""The HTTP side of the web page: which requests get HTML, and how it is cached.

Who gets HTML (nothing a client of the mirror asks for changes):

- ``/ui/``, ``/ui/component/<id>``, ``/ui/assets/<name>``: new paths, under a
  directory no mirror file can be in (the server serves top-level files only), so
  every client gets the page there;
- ``/`` only when the request's ``Accept`` names ``text/html`` (what browsers send);
  ``tiup``, Go TiUP, curl and any other client (no ``Accept``, ``*/*``,
  ``application/json``) keep getting the same 404 JSON as before. The HTML answer
  carries ``Vary: Accept`` so a cache in front never hands it to them.
- ``/metrics``, mirror files and ``/api/`` never reach this module.

Pages are rendered from the catalog the monitor verified (:mod:`.view`) and kept per
(page, its arguments, the state's files, the minute): the index is rendered once per
``timestamp.json`` version the monitor verified (and once a minute, for "days left"),
then served from memory. Each answer has an ``ETag`` (304 on a match), ``Cache-Control:
no-cache`` and a strict ``Content-Security-Policy`` (only this server's one style sheet
and one script).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any
from urllib.parse import parse_qsl

from tiup.clock import now
from tiup.server.responses import Response
from tiup.server.ui import render
from tiup.server.ui.assets import ASSETS
from tiup.server.ui.view import StateView, Status

HTML = "text/html; charset=utf-8"
CSP = ("default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
#: Seconds a page request waits for the monitor's first catalog after start-up.
FIRST_WAIT = 15.0
_CACHE_MAX = 256
_COMPONENT = "/ui/component/"


def wants_html(accept: str | None) -> bool:
    """True if an ``Accept`` header asks for ``text/html`` (with a non-zero quality).

    ``*/*`` and ``text/*`` do not count: clients that send them have always had JSON.
    """
    if not accept or "text/html" not in accept.lower():
        return False
    for part in accept.lower().split(","):
        media, _, params = part.partition(";")
        if media.strip() != "text/html":
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        return q > 0
    return False


def is_ui_path(path: str) -> bool:
    return path == "/ui" or path.startswith("/ui/")


class WebUI:
    """Answers ``/`` (for browsers) and ``/ui/...`` of one worker."""

    def __init__(self, view: StateView):
        self.view = view
        self._cache: dict[tuple[object, ...], tuple[str, bytes]] = {}

    async def __call__(self, method: str, path: str, query: str, headers: Any,
                       proto: Response) -> tuple[int, int]:
        started = time.perf_counter()
        if path.startswith("/ui/assets/"):
            return self._asset(method, path[len("/ui/assets/"):], proto)
        status = await self._status()
        moment = now()
        params = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
        q = params.get("q", "")[: render.MAX_QUERY]
        code = 200
        if path in ("/", "/ui", "/ui/"):
            key: tuple[object, ...] = ("index", q)
            build: Any = lambda: render.index_page(status, moment, q)  # noqa: E731
        elif path.startswith(_COMPONENT) and status.summary is not None and \
                (row := status.summary.by_id.get(path[len(_COMPONENT):])) is not None:
            page = params.get("page", "1")
            number = int(page) if page.isdigit() and len(page) < 7 else 1
            summary = status.summary
            key = ("component", row.id, number, q)

            def build() -> str:
                rows = self.view.versions(summary, row.id)
                return render.component_page(status, row, rows, moment, number, q)
        elif status.summary is None and not status.error and \
                (path.startswith(_COMPONENT) or path in ("/", "/ui", "/ui/")):
            code, key = 503, ("wait",)
            build = lambda: render.message_page(  # noqa: E731
                status, "Not ready", "The mirror's state is still being read; reload in a "
                "moment.")
        else:
            code, key = 404, ("missing", path[:200])
            build = lambda: render.message_page(  # noqa: E731
                status, "Not found", "There is no such page or component on this mirror.")
        full_key = (*key, status.stamp, int(moment.timestamp()) // 60)
        cached = self._cache.get(full_key)
        if cached is None:
            body = build().encode("utf-8")
            cached = (f'"{hashlib.sha256(body).hexdigest()[:24]}"', body)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[full_key] = cached
        etag, body = cached
        out = [("content-type", HTML), ("cache-control", "no-cache"), ("etag", etag),
               ("content-security-policy", CSP), ("x-content-type-options", "nosniff"),
               ("referrer-policy", "same-origin"),
               ("server-timing", f"app;dur={(time.perf_counter() - started) * 1000:.2f}")]
        if path == "/":
            out.append(("vary", "Accept"))
        if code == 503:
            out.append(("retry-after", "2"))
        if code == 200 and etag in (headers.get("if-none-match") or ""):
            proto.response_empty(304, out)
            return 304, 0
        if method == "HEAD":
            proto.response_empty(code, [*out, ("content-length", str(len(body)))])
            return code, 0
        proto.response_bytes(code, out, body)
        return code, len(body)

    async def _status(self) -> Status:
        """The state now; right after start-up, wait (without blocking the worker) for the
        monitor's first catalog."""
        status = self.view.status()
        if status.summary is not None or status.error or self.view.base is None:
            return status
        deadline = time.monotonic() + FIRST_WAIT
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            status = self.view.status()
            if status.summary is not None or status.error:
                break
        return status

    def _asset(self, method: str, name: str, proto: Response) -> tuple[int, int]:
        asset = ASSETS.get(name)
        if asset is None:
            body = b"not found\n"
            proto.response_bytes(404, [("content-type", "text/plain; charset=utf-8")], body)
            return 404, len(body)
        out = [("content-type", asset.content_type),
               ("cache-control", "public, max-age=31536000, immutable"),
               ("x-content-type-options", "nosniff")]
        if method == "HEAD":
            proto.response_empty(200, [*out, ("content-length", str(len(asset.body)))])
            return 200, 0
        proto.response_bytes(200, out, asset.body)
        return 200, len(asset.body)
