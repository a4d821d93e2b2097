"""The access log: one line per request on stderr, cheap enough for the hot path.

``logging`` costs about as much as serving a small file from memory, so each
worker formats lines itself (the timestamp is formatted once per second) and
writes them to fd 2 in batches: when 64 lines are waiting, when the oldest is
0.2 s old, on a 0.2 s timer when idle, and when the worker stops.

Line: ``<date> <time> <client> <method> <path> <status> <bytes> <ms>ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable

FLUSH_LINES = 64
FLUSH_SECONDS = 0.2


class AccessLog:
    def __init__(self, fd: int = 2):
        self.fd = fd
        self._lines: list[str] = []
        self._first = 0.0
        self._second = -1
        self._stamp = ""
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def line(self, client: str, method: str, path: str, status: int, sent: int,
             ms: float) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        if not self._lines:
            self._first = now
        self._lines.append(f"{self._stamp} {client} {method} {path} {status} {sent} "
                           f"{ms:.1f}ms\n")
        if len(self._lines) >= FLUSH_LINES or now - self._first >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        data = "".join(self._lines).encode("utf-8", "replace")
        self._lines.clear()
        with contextlib.suppress(OSError):
            while data:
                data = data[os.write(self.fd, data):]

    def start(self, loop: asyncio.AbstractEventLoop,
              on_tick: Callable[[], None] | None = None) -> None:
        """Flush on a timer in ``loop`` (so a quiet server's last lines appear); ``on_tick``
        runs on the same timer (the metrics write their totals)."""
        self._loop = loop

        def tick() -> None:
            self.flush()
            if on_tick is not None:
                on_tick()
            self._timer = loop.call_later(FLUSH_SECONDS, tick)

        self._timer = loop.call_later(FLUSH_SECONDS, tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.flush()
