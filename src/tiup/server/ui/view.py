"""A worker's read-only view of what the monitor process wrote to the state directory.

Each worker process reads the catalog (:mod:`.catalog`) and the last verification
(:mod:`tiup.server.monitor`) from ``<state>``, and reads them again only when the files
change: a request costs three ``stat`` calls, the summary is loaded once per generation
(one per ``timestamp.json`` the monitor verified), and a component's versions are loaded
when its page is first asked for. Nothing here verifies or writes anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from tiup.server.ui.catalog import (
    CATALOG_DIR,
    CURRENT,
    FORMAT,
    STATUS,
    SUMMARY,
    ComponentRow,
    LastPublish,
    RoleInfo,
    VersionRows,
    read_text,
)

VERIFICATION = "verification.json"
#: Component version lists kept in memory per worker (the big one is ~3 MB).
KEEP_VERSIONS = 8


@dataclass(frozen=True)
class Summary:
    """One generation of the catalog, as the index page and the metrics use it."""

    generation: str
    built_at: str
    build_seconds: float
    roles: dict[str, RoleInfo]
    root_threshold: int
    root_keys: list[str]
    components: list[ComponentRow]
    last_publish: LastPublish | None
    by_id: dict[str, ComponentRow] = field(default_factory=dict)

    @classmethod
    def from_json(cls, generation: str, doc: dict[str, Any]) -> Summary:
        rows = [ComponentRow(**{**c, "platforms": tuple(c["platforms"])})
                for c in doc["components"]]
        last = doc.get("last_publish")
        return cls(generation, doc["built_at"], float(doc["build_seconds"]),
                   {k: RoleInfo(**v) for k, v in doc["roles"].items()},
                   int(doc["root_threshold"]), list(doc["root_keys"]), rows,
                   LastPublish(**last) if last else None, {r.id: r for r in rows})


@dataclass(frozen=True)
class Status:
    """The state as one request sees it: the newest good catalog, and why the current
    mirror state did not verify if it did not (``error``)."""

    summary: Summary | None
    error: str | None
    error_at: str
    verification: dict[str, Any] | None
    #: changes whenever anything above changes (a render cache key)
    stamp: tuple[object, ...]


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _load_json(path: Path) -> Any:
    with contextlib.suppress(OSError, ValueError):
        return json.loads(path.read_bytes())
    return None


class StateView:
    """Reads ``<state_dir>`` (None: no monitor runs, so there is nothing to show)."""

    def __init__(self, state_dir: str | None):
        self.base = Path(state_dir) if state_dir else None
        self._lock = threading.Lock()
        self._keys: tuple[object, ...] = ()
        self._status = Status(None, None, "", None, ())
        self._versions: OrderedDict[tuple[str, str], VersionRows] = OrderedDict()

    def status(self) -> Status:
        """The current :class:`Status` (reloaded if a file changed)."""
        if self.base is None:
            return self._status
        cat = self.base / CATALOG_DIR
        keys = (_stat_key(cat / CURRENT), _stat_key(cat / STATUS),
                _stat_key(self.base / VERIFICATION))
        if keys == self._keys:
            return self._status
        with self._lock:
            if keys != self._keys:
                self._status = self._reload(keys)
                self._keys = keys
        return self._status

    def _reload(self, keys: tuple[object, ...]) -> Status:
        assert self.base is not None
        cat = self.base / CATALOG_DIR
        summary = self._status.summary
        generation = read_text(cat / CURRENT)
        if generation is not None and (summary is None or summary.generation != generation):
            doc = _load_json(cat / generation / SUMMARY)
            if isinstance(doc, dict) and doc.get("format") == FORMAT:
                summary = Summary.from_json(generation, doc)
        status = _load_json(cat / STATUS)
        error, at = None, ""
        if isinstance(status, dict):
            error = status.get("error") if isinstance(status.get("error"), str) else None
            at = str(status.get("at", ""))
        verification = _load_json(self.base / VERIFICATION)
        if not isinstance(verification, dict):
            verification = None
        return Status(summary, error, at, verification, keys)

    def versions(self, summary: Summary, comp_id: str) -> VersionRows | None:
        """Every version of ``comp_id`` (newest first) in ``summary``'s generation, or
        None if it has none (unknown, or its manifest did not verify)."""
        if self.base is None or comp_id not in summary.by_id:
            return None
        key = (summary.generation, comp_id)
        with self._lock:
            rows = self._versions.get(key)
            if rows is not None:
                self._versions.move_to_end(key)
                return rows
        path = self.base / CATALOG_DIR / summary.generation / "c" / f"{comp_id}.json"
        raw = _load_json(path)
        if not isinstance(raw, list):
            return None
        # Written by the monitor as [[version, [[platform, released, length, sha256,
        # yanked], ...]], ...]: used as loaded (lists unpack like the tuples of the type;
        # converting 20,000 versions would double the load time).
        rows = cast(VersionRows, raw)
        with self._lock:
            self._versions[key] = rows
            while len(self._versions) > KEEP_VERSIONS:
                self._versions.popitem(last=False)
        return rows
