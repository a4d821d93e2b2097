"""Expiry lifetimes of a mirror and the renewal rule.

``mirror init`` records the lifetimes it was given in ``<mirror>/.tiup-mirror.toml``
(``behavior.md`` §12.8); every later write renews with them. Without the file
the project's defaults apply (root and index 3650 days, components 1825,
snapshot and timestamp 365). The renewal rule is TiUP's (``format.md`` §5):
the version grows by one (except the snapshot's, which stays 0) and the
expiry moves to ``now + lifetime`` only if that is later, so it never shrinks.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from tiup.errors import FetchError, ManifestError, NotFoundError, RepositoryError
from tiup.manifest.models import Signed
from tiup.repository.storage import Storage

CONFIG_NAME = ".tiup-mirror.toml"
ROLES = ("root", "index", "component", "snapshot", "timestamp")


@dataclass(frozen=True)
class Lifetimes:
    """Days each kind of manifest stays valid after a write."""

    root: int = 3650
    index: int = 3650
    component: int = 1825
    snapshot: int = 365
    timestamp: int = 365

    def days(self, role: str) -> int:
        value: int = getattr(self, role)
        return value

    def with_overrides(self, **days: int | None) -> Lifetimes:
        """A copy with the given (non-None) lifetimes replaced.

        Raises:
            RepositoryError: a lifetime is not a positive number of days.
        """
        changes = {k: v for k, v in days.items() if v is not None}
        for role, value in changes.items():
            if role not in ROLES:
                raise RepositoryError(f"unknown manifest role {role!r}")
            if value < 1:
                raise RepositoryError(f"--{role}-days must be at least 1, got {value}")
        return replace(self, **changes)

    def to_toml(self) -> bytes:
        import tomli_w

        doc = {"expiry": {f"{k}_days": v for k, v in asdict(self).items()}}
        text = "# Written by `tiup mirror init`: lifetimes (days) used when this mirror is\n"
        text += "# re-signed. Ignored by Go TiUP.\n" + tomli_w.dumps(doc)
        return text.encode("utf-8")


def load_lifetimes(storage: Storage) -> Lifetimes:
    """The lifetimes recorded in the mirror's ``.tiup-mirror.toml``, else the defaults.

    Raises:
        RepositoryError: the file exists but is unreadable or malformed.
    """
    path = storage.location_of(CONFIG_NAME)
    try:
        data = storage.read(CONFIG_NAME)
    except NotFoundError:
        return Lifetimes()
    except FetchError as exc:
        raise RepositoryError(f"cannot read {path}: {exc.reason}", file=path) from exc
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RepositoryError(f"{path} is not valid TOML: {exc}", file=str(path)) from exc
    section = doc.get("expiry", {})
    values: dict[str, int | None] = {}
    for role in ROLES:
        value = section.get(f"{role}_days") if isinstance(section, dict) else None
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise RepositoryError(f"{path}: expiry.{role}_days must be an integer",
                                  file=str(path))
        values[role] = value
    return Lifetimes().with_overrides(**values)


def renew(signed: Signed, now: datetime, days: int, *, bump: bool = True) -> None:
    """Apply TiUP's renewal rule in place.

    The version grows by one when ``bump`` and the version is above 0; the
    expiry becomes ``now + days`` unless the current expiry is already later.
    """
    if bump and signed.version > 0:
        signed.version += 1
    target = now + timedelta(days=days)
    try:
        current = signed.expires_at()
    except ManifestError:
        signed.set_expires(target)
        return
    if target > current:
        signed.set_expires(target)
