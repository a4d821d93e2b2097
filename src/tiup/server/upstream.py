"""``--upstream URL``: fetch static files missing from the mirror from another mirror.

Only ``GET``/``HEAD`` of names the mirror could serve itself are proxied
(never ``keys/``, the API, or anything with a ``/``); the write path never
reads the upstream (``behavior.md`` §12.10). Bodies are streamed through,
never held in memory.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("tiup.server")

UPSTREAM_TIMEOUT = 30.0
_CHUNK = 256 * 1024
_PASS_HEADERS = ("content-type", "etag", "last-modified", "cache-control")


class Upstream:
    """A pooled urllib3 client of one upstream mirror (created per worker process)."""

    def __init__(self, base: str, ca_bundle: str | None = None):
        """``ca_bundle``: the PEM file to verify an https upstream with (None: the
        system store); the worker passes the process's ``TIUP_CA_BUNDLE``."""
        import urllib3

        self.base = base.rstrip("/")
        self.pool = urllib3.PoolManager(
            maxsize=16, retries=False, ca_certs=ca_bundle,
            timeout=urllib3.Timeout(connect=10.0, read=UPSTREAM_TIMEOUT))

    async def send(self, method: str, name: str, proto: Any) -> tuple[int, int] | None:
        """Relay ``name`` from the upstream; None if it does not have it (or fails)."""
        try:
            resp = await asyncio.to_thread(
                self.pool.request, method, f"{self.base}/{name}", preload_content=False,
                decode_content=False, headers={"Accept-Encoding": "identity"})
        except Exception:
            return None
        if resp.status != 200:
            resp.drain_conn()
            resp.release_conn()
            return None
        headers = [(k, resp.headers[k]) for k in _PASS_HEADERS if k in resp.headers]
        length = resp.headers.get("content-length")
        if method == "HEAD":
            resp.release_conn()
            proto.response_empty(200, [*headers, *([("content-length", length)] if length
                                                   else [])])
            return 200, 0
        if length:
            headers.append(("content-length", length))
        transport = proto.response_stream(200, headers)
        sent = 0
        try:
            while True:
                block = await asyncio.to_thread(resp.read, _CHUNK)
                if not block:
                    break
                sent += len(block)
                await transport.send_bytes(block)
        except Exception as exc:  # the client sees a truncated body and retries
            log.warning("upstream %s/%s broke after %d bytes: %s", self.base, name, sent, exc)
        finally:
            resp.release_conn()
        return 200, sent
