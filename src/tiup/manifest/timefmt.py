"""RFC 3339 timestamps as TiUP writes and reads them.

TiUP writes whole seconds with ``Z`` (``mirror init``) or a numeric offset
(official data); readers accept fractional seconds of any precision.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from tiup.errors import ManifestError

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_time(text: str, *, where: str = "") -> datetime:
    """Parse an RFC 3339 timestamp into an aware :class:`datetime`.

    Fractional seconds beyond microseconds are truncated (never rounded up,
    so an expiry is never moved later).

    Raises:
        ManifestError: the text is not an RFC 3339 timestamp.
    """
    m = _RFC3339.match(text) if isinstance(text, str) else None
    if m is None:
        raise ManifestError(
            f"invalid time {text!r}{' in ' + where if where else ''}: expected RFC 3339 "
            "such as 2031-10-21T08:19:55+08:00",
            file=where or None,
        )
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac = m.group(7)
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    zone = m.group(8)
    if zone in ("Z", "z"):
        offset = timedelta(0)
    else:
        sign = 1 if zone[0] == "+" else -1
        offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=timezone(offset))
    except ValueError as exc:
        raise ManifestError(f"invalid time {text!r}: {exc}", file=where or None) from exc


def format_time(moment: datetime) -> str:
    """Format an aware datetime as TiUP's writers do: UTC, whole seconds, ``Z``."""
    if moment.tzinfo is None:
        raise ValueError("format_time needs an aware datetime")
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_user_time(text: str, now: datetime) -> datetime:
    """Parse a time given on the command line: RFC 3339, a date, or ``+<N>d``.

    Raises:
        ValueError: the text is none of these forms.
    """
    text = text.strip()
    rel = re.fullmatch(r"\+(\d+)d", text)
    if rel:
        return now + timedelta(days=int(rel.group(1)))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    try:
        return parse_time(text)
    except ManifestError as exc:
        raise ValueError(
            f"invalid time {text!r}: use RFC 3339 (2032-01-01T00:00:00Z), a date "
            "(2032-01-01) or +<N>d"
        ) from exc
