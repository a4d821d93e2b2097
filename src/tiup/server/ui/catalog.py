"""The verified state of a mirror as plain data for the web page and the metrics.

:func:`build_catalog` reads the mirror through the one verified walk
(:class:`tiup.reader.MirrorReader`, anchored at the mirror's own ``root.json``, as
``repository/state.py`` does): the root chain, ``timestamp.json``, ``snapshot.json``,
the index and every component manifest, with signatures, thresholds, hashes, lengths
and versions checked. Two differences from a client, both shown rather than hidden:
expiry is not enforced (an expired role is what the health panel must show, in red),
and a component whose manifest does not verify is listed with its error instead of
failing the whole page. Nothing unverified is ever shown: a commit interrupted
between ``snapshot.json`` and ``timestamp.json`` is refused as a client refuses it.

On disk (``<state>/catalog/``, written by the monitor process only)::

    current              name of the newest complete generation (replaced atomically)
    status.json          {"error": null | text, "at": time}: the last build's outcome
    <gen>/summary.json   roles, root keys, component rows, last publish
    <gen>/c/<id>.json    every version × platform of one component, newest first

A generation is written completely before ``current`` names it, and the previous one
is kept, so a worker reading a generation while the next is written never sees half of
one. Generations are never modified after ``current`` names them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tiup import trust
from tiup.errors import ManifestError, TiupError
from tiup.manifest import versions
from tiup.manifest.models import Component, Index, Signed
from tiup.manifest.timefmt import parse_time
from tiup.reader import MirrorReader
from tiup.transport.base import Fetcher
from tiup.transport.local import LocalFetcher

#: Version of the on-disk format (a worker ignores a generation of another format).
FORMAT = 1
CATALOG_DIR = "catalog"
CURRENT = "current"
STATUS = "status.json"
SUMMARY = "summary.json"
ROLES = ("root", "index", "snapshot", "timestamp")


@dataclass(frozen=True)
class RoleInfo:
    name: str
    version: int
    expires: str  # RFC 3339, UTC


@dataclass(frozen=True)
class ComponentRow:
    """One line of the index page."""

    id: str
    owner: str
    owner_name: str
    description: str = ""
    manifest_version: int = 0
    expires: str = ""
    yanked: bool = False
    hidden: bool = False
    standalone: bool = False
    latest: str = ""
    platforms: tuple[str, ...] = ()
    size_min: int = 0
    size_max: int = 0
    versions: int = 0
    #: why the manifest could not be verified (then only the index's facts are shown)
    error: str = ""


@dataclass(frozen=True)
class LastPublish:
    component: str
    version: str
    platform: str
    released: str  # RFC 3339, UTC


#: One version of a component: (version, [(platform, released, length, sha256, yanked)]).
VersionRows = list[tuple[str, list[tuple[str, str, int, str, bool]]]]


@dataclass
class Catalog:
    """What :func:`build_catalog` found (see the module docstring)."""

    built_at: str
    build_seconds: float
    roles: dict[str, RoleInfo]
    root_threshold: int
    root_keys: list[str]
    components: list[ComponentRow]
    last_publish: LastPublish | None
    versions: dict[str, VersionRows] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "built_at": self.built_at,
            "build_seconds": round(self.build_seconds, 3),
            "roles": {k: asdict(v) for k, v in self.roles.items()},
            "root_threshold": self.root_threshold,
            "root_keys": self.root_keys,
            "components": [asdict(c) for c in self.components],
            "last_publish": asdict(self.last_publish) if self.last_publish else None,
        }


def _utc(text: str) -> str:
    """RFC 3339 in UTC (``...Z``), or the text as it is when it is not a time."""
    try:
        return parse_time(text).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except ManifestError:
        return text


def _role(name: str, model: Signed) -> RoleInfo:
    return RoleInfo(name, model.version, _utc(model.expires))


def _component(cid: str, index: Index, comp: Component, rows: dict[str, VersionRows],
               newest: list[tuple[datetime, LastPublish]]) -> ComponentRow:
    item = index.components[cid]
    owner = index.owners.get(item.owner)
    by_version: dict[str, list[tuple[str, str, int, str, bool]]] = {}
    for plat, items in comp.platforms.items():
        for ver, vi in items.items():
            released = _utc(vi.released)
            by_version.setdefault(ver, []).append((plat, released, vi.length, vi.sha256,
                                                   vi.yanked))
            try:
                moment = parse_time(vi.released)
            except ManifestError:
                continue
            if not newest or moment > newest[0][0]:
                newest[:] = [(moment, LastPublish(cid, ver, plat, released))]
    ordered = sorted(by_version, key=versions.sort_key, reverse=True)
    rows[cid] = [(v, sorted(by_version[v])) for v in ordered]
    usable = [v for v in ordered if not all(r[4] for r in by_version[v])]
    latest = versions.latest_stable(usable) or (usable[0] if usable else "")
    sizes = [r[2] for r in by_version.get(latest, []) if not r[4]]
    return ComponentRow(
        id=cid, owner=item.owner, owner_name=owner.name if owner else "",
        description=comp.description, manifest_version=comp.version,
        expires=_utc(comp.expires), yanked=item.yanked, hidden=item.hidden,
        standalone=item.standalone, latest=latest,
        platforms=tuple(sorted(comp.platforms)),
        size_min=min(sizes, default=0), size_max=max(sizes, default=0),
        versions=len(ordered))


def open_mirror(mirror: str | Path) -> Fetcher:
    """A fetcher of ``mirror``: a local directory, or ``s3://BUCKET/PREFIX`` (a
    stateless server's bucket, read with the standard AWS credentials)."""
    from tiup.transport.address import is_s3

    if is_s3(str(mirror)):
        from tiup.repository.s3_storage import S3Storage

        return S3Storage(str(mirror)).fetcher()
    return LocalFetcher(str(mirror))


def build_catalog(mirror: str | Path, now: datetime) -> Catalog:
    """Read and verify ``mirror`` (a local directory or a bucket, :func:`open_mirror`)
    into a :class:`Catalog`.

    ``now`` is only recorded (``built_at``); expiry is shown, not enforced.

    Raises:
        VerificationError: the root chain, timestamp, snapshot or index does not verify.
        FetchError: a file the walk needs cannot be read.
        TiupError: ``root.json`` itself is unusable.
    """
    started = time.perf_counter()
    fetcher = open_mirror(mirror)
    try:
        first = fetcher.fetch("root.json", trust.MAX_ROOT_SIZE)
        reader = MirrorReader(fetcher, trust.TrustedState(first, None, "root.json"))
        reader.walk_roots()
        reader.refresh()
        state = reader.state
        assert state.timestamp is not None and state.snapshot is not None
        index = reader.index
        rows: dict[str, VersionRows] = {}
        newest: list[tuple[datetime, LastPublish]] = []
        components: list[ComponentRow] = []
        comp_expiries: list[str] = []
        for cid in sorted(index.components):
            try:
                comp = reader.component(cid, allow_expired=True)
            except TiupError as exc:
                item = index.components[cid]
                owner = index.owners.get(item.owner)
                components.append(ComponentRow(
                    id=cid, owner=item.owner, owner_name=owner.name if owner else "",
                    yanked=item.yanked, hidden=item.hidden, standalone=item.standalone,
                    error=exc.message))
                continue
            components.append(_component(cid, index, comp, rows, newest))
            comp_expiries.append(comp.expires)
        root = state.root
        root_role = root.roles.get("root")
        roles = {"root": _role("root", root), "index": _role("index", index),
                 "snapshot": _role("snapshot", state.snapshot),
                 "timestamp": _role("timestamp", state.timestamp)}
    finally:
        fetcher.close()
    return Catalog(
        built_at=now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        build_seconds=time.perf_counter() - started,
        roles=roles,
        root_threshold=root_role.threshold if root_role else 0,
        root_keys=sorted(root_role.keys) if root_role else [],
        components=components,
        last_publish=newest[0][1] if newest else None,
        versions=rows,
    )


# ------------------------------------------------------------------------- on disk
def _write(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically (no fsync: the state directory does not outlive the
    server, and a torn file after a crash is never read because it is never renamed)."""
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _dump(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def write_catalog(state_dir: str | Path, catalog: Catalog, generation: str) -> None:
    """Write ``catalog`` as generation ``generation``, point ``current`` at it, record
    success in ``status.json`` and delete generations older than the previous one.

    Raises:
        OSError: the state directory is not writable.
    """
    base = Path(state_dir, CATALOG_DIR)
    gen_dir = base / generation
    (gen_dir / "c").mkdir(parents=True, exist_ok=True)
    for cid, rows in catalog.versions.items():
        _write(gen_dir / "c" / f"{cid}.json", _dump(rows))
    _write(gen_dir / SUMMARY, _dump(catalog.summary()))
    previous = read_text(base / CURRENT)
    _write(base / CURRENT, generation.encode())
    write_status(state_dir, None, catalog.built_at)
    keep = {generation, previous}
    for entry in base.iterdir():
        if entry.is_dir() and entry.name not in keep:
            shutil.rmtree(entry, ignore_errors=True)


def write_status(state_dir: str | Path, error: str | None, at: str) -> None:
    """Record the outcome of the last build (``error`` None: it succeeded).

    Raises:
        OSError: the state directory is not writable.
    """
    base = Path(state_dir, CATALOG_DIR)
    base.mkdir(parents=True, exist_ok=True)
    _write(base / STATUS, _dump({"error": error, "at": at}))


def read_text(path: Path) -> str | None:
    with contextlib.suppress(OSError, UnicodeDecodeError):
        return path.read_text().strip() or None
    return None
