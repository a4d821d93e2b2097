"""Slow retrieval: a minimum speed and a per-file deadline (like curl's ``--speed-limit``
and ``--speed-time``, plus a deadline curl does not have).

A server (or a man in the middle) that trickles one byte every few seconds never trips a
read timeout, so without these rules one file could keep a client busy for hours. The
rules, for one file (a ``fetch``, a ``stream`` or a whole resumable ``download``,
retries included):

- **Minimum speed**: when the bytes that arrived since the start of the current window
  average fewer than ``limit`` bytes per second once the window is ``window`` seconds
  long, the transfer is aborted; otherwise a new window starts. The window spans
  retries: a stalled connection is first caught by the read timeout (a retryable
  error), and the window check before the retry aborts the file if too little arrived
  over the whole window. Deliberate waits (backoff, ``Retry-After``) are left out of the
  window (:meth:`Guard.waited`) but not out of the deadline.
- **Deadline**: the whole file, retries included, must arrive within
  ``base + length / limit`` seconds, ``length`` being the expected length (or the size
  cap). Without a known length there is no deadline, only the minimum speed.

Both end the file with a plain :class:`~tiup.errors.FetchError` naming the file and the
speed observed: it is deliberately not retryable (a retry would only start the trickle
again). Settings come from ``TIUP_HTTP_SPEED_LIMIT``, ``TIUP_HTTP_SPEED_TIME`` and
``TIUP_HTTP_DEADLINE`` (read in :mod:`tiup.settings`, turned into a :class:`SpeedRule` by
:func:`tiup.transport.httputil.speed_rule`). Time comes from an injected clock, so the
rule itself is tested without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tiup.errors import FetchError

#: A monotonic clock in seconds.
Clock = Callable[[], float]

SPEED_HINT = ("the mirror (or a proxy on the way) sends too slowly; on a slow but working "
              "network lower TIUP_HTTP_SPEED_LIMIT (bytes/s) or raise TIUP_HTTP_SPEED_TIME "
              "(seconds); 0 turns the check off")
DEADLINE_HINT = ("the mirror (or a proxy on the way) sends too slowly; on a slow but working "
                 "network raise TIUP_HTTP_DEADLINE or lower TIUP_HTTP_SPEED_LIMIT")


def human_speed(bytes_per_second: float) -> str:
    """``12 B/s``, ``3.4 KiB/s``, ``1.2 MiB/s``."""
    value = max(0.0, bytes_per_second)
    for unit in ("B/s", "KiB/s", "MiB/s"):
        if value < 1024 or unit == "MiB/s":
            return f"{value:.0f} {unit}" if unit == "B/s" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class SpeedRule:
    """The limits for slow retrieval; the default instance checks nothing.

    Attributes:
        limit: minimum average speed in bytes per second (0: no minimum).
        window: seconds over which the speed is averaged (0: no minimum).
        base: seconds of the per-file deadline before the length-scaled part
            (0: no deadline).
    """

    limit: float = 0.0
    window: float = 0.0
    base: float = 0.0

    @property
    def checks_speed(self) -> bool:
        return self.limit > 0 and self.window > 0

    def deadline(self, length: int | None) -> float | None:
        """Seconds allowed for a file of ``length`` bytes, or None for no deadline."""
        if length is None or self.base <= 0 or self.limit <= 0:
            return None
        return self.base + length / self.limit

    def guard(self, where: str, length: int | None, clock: Clock = time.monotonic) -> Guard:
        """A fresh :class:`Guard` for one file at ``where`` (URL or path), started now."""
        return Guard(self, where, length, clock)


class Guard:
    """Applies a :class:`SpeedRule` to one file: fed the byte counts as they arrive.

    Thread-compatible, not thread-safe: one guard per file transfer.
    """

    def __init__(self, rule: SpeedRule, where: str, length: int | None, clock: Clock):
        self.rule = rule
        self.where = where
        self.clock = clock
        self.started = clock()
        self.window_start = self.started
        self.window_bytes = 0
        self.total = 0
        self.allowed = rule.deadline(length)

    def feed(self, n: int) -> None:
        """Count ``n`` bytes just received, then :meth:`check`.

        Raises:
            FetchError: the file is too slow or past its deadline.
        """
        self.total += n
        self.window_bytes += n
        self.check()

    def waited(self, seconds: float) -> None:
        """Leave a deliberate wait of ``seconds`` (a retry backoff) out of the speed window."""
        self.window_start = min(self.window_start + max(0.0, seconds), self.clock())

    def check(self, ahead: float = 0.0) -> None:
        """Apply the rules now (or ``ahead`` seconds from now, before a wait that long).

        Raises:
            FetchError: the deadline has passed (or would during the wait), or the
                current window is over and its average speed is below the limit.
        """
        now = self.clock()
        elapsed = now - self.started
        if self.allowed is not None and elapsed + ahead > self.allowed:
            speed = human_speed(self.total / elapsed) if elapsed > 0 else "0 B/s"
            raise FetchError(
                f"download of {self.where} did not finish within its deadline of "
                f"{self.allowed:.1f} s: {self.total} bytes in {elapsed:.1f} s ({speed})",
                file=self.where, hint=DEADLINE_HINT,
                reason=f"too slow: {self.total} bytes in {elapsed:.1f} s ({speed})")
        if not self.rule.checks_speed:
            return
        span = now - self.window_start
        if span < self.rule.window:
            return
        if self.window_bytes < self.rule.limit * span:
            speed = human_speed(self.window_bytes / span)
            minimum = human_speed(self.rule.limit)
            raise FetchError(
                f"download of {self.where} is too slow: {speed} over the last {span:.1f} s "
                f"(minimum {minimum})", file=self.where, hint=SPEED_HINT,
                reason=f"too slow: {speed} over {span:.1f} s (minimum {minimum})")
        self.window_start, self.window_bytes = now, 0
