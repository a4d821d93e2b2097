"""The one retry policy: what is retried, how long to wait, when to give up.

Every retry loop in tiup runs through :meth:`RetryPolicy.run`: the HTTP transport (a
request that does not start, a whole ``fetch``), the resumable-download engine
(:mod:`tiup.transport.resume`: a body that breaks is resumed), ``mirror clone``'s
downloads and the publish client (a build-sign-send attempt against the publish API,
``tiup.repository.remote.with_retries``). The callers differ only in their numbers:

| caller | attempts | backoff | cap | jitter | after progress |
|---|---|---|---|---|---|
| HTTP, ``download`` | 5 (``TIUP_HTTP_RETRIES``) | 0.5 s × 2ⁿ | 8 s | ±20 % | new budget, wait |
| ``mirror clone`` | the transport's | 0.2 s × 2ⁿ | 5 s | none | new budget, at once |
| remote publish | 10 | 2 s × 2ⁿ | 30 s | ±20 % | (no progress) |

The wait after the n-th consecutive failure is ``min(base × 2ⁿ⁻¹, cap)``, times a
random factor in ``[1 - jitter, 1 + jitter]`` so that racing clients do not retry in
lockstep; a server's ``Retry-After`` (:attr:`TransientError.retry_after`) replaces it,
capped at :attr:`RetryPolicy.retry_after_cap`. An attempt that got further than any
before (``progressed``) earns a fresh budget: a download is bounded by the file's length,
and in time by the slow-retrieval :class:`~tiup.transport.speed.Guard`, which is checked
before every wait (no wait that would end past the file's deadline) and told about the
wait (a deliberate pause is not a slow server).

Exceptions::

    FetchError (tiup.errors)
    └── TransientError      (this module) a failure that may pass if retried:
                             a dropped connection, a timeout, a 503 ...
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tiup.errors import FetchError, TiupError, TransientError
from tiup.transport.speed import Guard

T = TypeVar("T")


def is_transient(exc: TiupError) -> bool:
    """The default rule: retry :class:`TransientError` only."""
    return isinstance(exc, TransientError)


def gave_up(exc: TiupError, failures: int) -> TiupError:
    """The default error once the budget is spent: a plain (not transient) FetchError
    saying how many attempts were made."""
    plural = "s" if failures > 1 else ""
    reason = getattr(exc, "reason", exc.message)
    return FetchError(f"{exc.message} (gave up after {failures} attempt{plural})",
                      file=exc.file, hint=exc.hint,
                      reason=f"{reason} ({failures} attempt{plural})")


@dataclass(frozen=True)
class RetryPolicy:
    """How one caller retries (see the module docstring for each caller's numbers).

    Attributes:
        attempts: attempts in all (at least 1) before giving up.
        base: seconds to wait after the first failure; doubled after each further one.
        cap: the longest backoff, in seconds.
        jitter: the backoff is multiplied by a random factor in ``[1-jitter, 1+jitter]``.
        retry_after_cap: the longest ``Retry-After`` obeyed, in seconds.
        resume_at_once: after an attempt that made progress, retry without waiting.
        sleep: waits that many seconds (tests inject one that records instead).
    """

    attempts: int
    base: float
    cap: float
    jitter: float = 0.2
    retry_after_cap: float = 60.0
    resume_at_once: bool = False
    sleep: Callable[[float], None] = time.sleep

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap)
        wait = min(self.base * 2.0 ** (failures - 1), self.cap)
        if self.jitter:
            wait *= random.uniform(1.0 - self.jitter, 1.0 + self.jitter)
        return float(wait)

    def run(self, attempt: Callable[[], T], *,
            retryable: Callable[[TiupError], bool] = is_transient,
            progressed: Callable[[], bool] | None = None,
            guard: Guard | None = None,
            before_wait: Callable[[TiupError, int, float], None] | None = None,
            exhausted: Callable[[TiupError, int], TiupError] = gave_up) -> T:
        """Run ``attempt`` until it returns, fails for good, or the budget is spent.

        Args:
            retryable: which failures are worth another attempt (default: transient).
            progressed: called after a failure: True if the attempt got further than any
                before (the budget starts again).
            guard: the slow-retrieval rule of the file, checked before each wait.
            before_wait: called with (error, failures, delay) before each wait; it may
                raise to stop (``mirror clone`` gives up on a source gone silent).
            exhausted: the error raised (``from`` the last one) once the budget is spent.

        Raises:
            TiupError: a failure that is not ``retryable`` (as it is); the error of
                ``exhausted`` after the last attempt; FetchError from ``guard`` (too slow,
                past the deadline) or whatever ``before_wait`` raises.
        """
        failures = 0
        while True:
            try:
                return attempt()
            except TiupError as exc:
                if not retryable(exc):
                    raise
                moved = progressed is not None and progressed()
                if moved:
                    failures = 0
                failures += 1
                if failures >= self.attempts:
                    raise exhausted(exc, failures) from exc
                at_once = moved and self.resume_at_once
                delay = 0.0 if at_once else self.delay(
                    failures, getattr(exc, "retry_after", None))
                if before_wait is not None:
                    before_wait(exc, failures, delay)
                self._wait(delay, guard, skip=at_once)

    def _wait(self, delay: float, guard: Guard | None, *, skip: bool) -> None:
        if guard is not None:
            guard.check(ahead=delay)  # first the window the failure ended, and
        if skip:                      # no wait that would end past the deadline
            return
        if guard is None:
            self.sleep(delay)
            return
        before = guard.clock()
        self.sleep(delay)
        guard.waited(guard.clock() - before)
