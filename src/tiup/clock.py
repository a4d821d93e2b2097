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
        ManifestError: ``TIUP_TEST_NOW`` is set but not RFC 3339.
    """
    fixed = os.environ.get("TIUP_TEST_NOW")
    if fixed:
        from tiup.manifest.timefmt import parse_time

        return parse_time(fixed, where="TIUP_TEST_NOW")
    return datetime.now(UTC)
