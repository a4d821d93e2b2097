"""Where the real TiUP fixture data lives, and a time at which it is valid."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures" / "tiup-testdata" / "manifests"

#: A reference time at which every manifest of the TiUP fixture mirror is valid
#: (its 1.root.json and manifests expire in 2031; root v6 expired 2026-07-26).
FIXTURE_NOW = datetime(2026, 1, 1, tzinfo=UTC)
