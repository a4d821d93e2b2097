"""The one place tiup reads the wall clock.

Library code takes ``now`` as an argument; the CLI gets it from :func:`now`.
``TIUP_TEST_NOW`` (RFC 3339) fixes the clock for tests and for rehearsing
expiry ("what happens on 2032-01-01?"); it is never needed in normal use.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime


def now() -> datetime:
    """The current time (aware, UTC), or ``TIUP_TEST_NOW`` when set.

    Raises:
        UsageError: ``TIUP_TEST_NOW`` is set but not an RFC 3339 time with an offset.
    """
    fixed = os.environ.get("TIUP_TEST_NOW")
    if fixed:
        try:
            moment = datetime.fromisoformat(fixed)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            from tiup.errors import UsageError

            raise UsageError(f"TIUP_TEST_NOW={fixed!r} is not an RFC 3339 time with an "
                             "offset, e.g. 2030-06-01T00:00:00Z")
        return moment.astimezone(UTC)
    return datetime.now(UTC)
