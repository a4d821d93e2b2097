"""Version strings and their order, as TiUP (golang.org/x/mod/semver) orders them.

Versions carry a ``v`` prefix (``v4.0.2``); ``v4`` and ``v4.0`` are valid
shorthands; strings that are not semantic versions sort lowest. A version
containing ``nightly`` is a nightly build and is never "stable".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cmp_to_key
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import semver

_SEMVER = re.compile(
    r"v(0|[1-9]\d*)(?:\.(0|[1-9]\d*)(?:\.(0|[1-9]\d*)"
    r"(?:-([0-9A-Za-z\-]+(?:\.[0-9A-Za-z\-]+)*))?(?:\+([0-9A-Za-z\-]+(?:\.[0-9A-Za-z\-]+)*))?)?)?"
)


def parse(version: str) -> semver.Version | None:
    """Return the semantic version of ``version``, or None if it is not one."""
    m = _SEMVER.fullmatch(version)
    if m is None:
        return None
    major, minor, patch, pre, _build = m.groups()
    if (minor is None or patch is None) and (pre or _build):
        return None
    import semver  # on first use: most commands never compare versions (semver: ~4 ms)

    return semver.Version(int(major), int(minor or 0), int(patch or 0), pre)


def is_valid(version: str) -> bool:
    """True if ``version`` is a ``v``-prefixed semantic version."""
    return parse(version) is not None


def is_nightly(version: str) -> bool:
    """True for nightly builds (the string contains ``nightly``)."""
    return "nightly" in version


def compare(a: str, b: str) -> int:
    """Compare two version strings; invalid ones sort lowest (then by text)."""
    pa, pb = parse(a), parse(b)
    if pa is None or pb is None:
        if pa is None and pb is None:
            return (a > b) - (a < b)
        return -1 if pa is None else 1
    c = pa.compare(pb)
    return c if c else (a > b) - (a < b)


def sort_versions(versions: Iterable[str]) -> list[str]:
    """Versions in ascending order."""
    return sorted(versions, key=cmp_to_key(compare))


def latest_stable(versions: Iterable[str]) -> str | None:
    """The highest non-nightly release; if there is none, the highest pre-release."""
    candidates = [v for v in versions if not is_nightly(v)]
    releases = [v for v in candidates if (p := parse(v)) is not None and not p.prerelease]
    pool = releases or [v for v in candidates if parse(v) is not None]
    if not pool:
        return None
    return sort_versions(pool)[-1]


def normalise(version: str) -> str:
    """Add the ``v`` prefix a user may have left out (``5.2.2`` → ``v5.2.2``)."""
    if version and version[0].isdigit():
        return "v" + version
    return version
