"""``tiup mirror prune``: remove old or yanked versions from a local mirror, safely (#1498).

The change is a normal signed update (``behavior.md`` §12.12): versions chosen by
``--keep``/``--before`` are first *yanked* in new component manifests, signed by
their owners and committed through the store (snapshot and timestamp last); only
then are the tarballs that no live (non-yanked) version references any more
deleted, so a client never sees a live version whose file is missing. ``--yanked``
deletes the tarballs of versions that are already yanked: no manifest changes,
so no owner key is needed; the versions of a yanked component are marked yanked
too (a signed update, with the owner key) before their tarballs go, so that every
missing tarball belongs to a yanked version. The nightly pointer's version and
each platform's latest stable version are never chosen by ``--keep``/``--before``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tiup.errors import TiupError
from tiup.manifest import versions as V
from tiup.manifest.models import Component
from tiup.manifest.timefmt import parse_time
from tiup.repository.keyring import KeyRing
from tiup.repository.lifetimes import renew
from tiup.repository.publish import clone_component, owner_signers
from tiup.repository.storage import Storage
from tiup.repository.store import Store, sign_component

_VERSIONED = re.compile(r"([0-9]+)\.(.+)\.json")
_BOOTSTRAP = re.compile(r"tiup-[a-z0-9_]+-[a-z0-9_]+\.tar\.gz")


@dataclass
class PruneOptions:
    keep: int | None = None
    before: datetime | None = None
    yanked: bool = False
    superseded: bool = False
    orphans: bool = False
    commits: bool = False
    components: tuple[str, ...] = ()
    grace_days: float = 1.0


@dataclass
class PrunePlan:
    #: component → [(platform, version, reason)] whose tarballs go (yanked first if live)
    versions: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    #: component → {(platform, version)} yanked by this prune (a subset of ``versions``)
    yanks: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    #: (file name relative to the mirror, size, reason) deleted after the commit
    files: list[tuple[str, int, str]] = field(default_factory=list)
    #: the new manifests to commit (the chosen versions marked yanked)
    manifests: dict[str, Component] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return sum(size for _n, size, _r in self.files)

    @property
    def empty(self) -> bool:
        return not self.files and not self.manifests


def _size(storage: Storage, name: str) -> int:
    try:
        entry = storage.stat(name)
    except TiupError:
        return 0
    return entry.size if entry is not None else 0


def _released_before(released: str, before: datetime) -> bool:
    try:
        return parse_time(released) < before
    except TiupError:
        return False


def _choose(comp: Component, plat: str, opts: PruneOptions, yanked_component: bool
            ) -> dict[str, str]:
    """version → reason for the versions of one platform to prune."""
    items = comp.platforms.get(plat, {})
    chosen: dict[str, str] = {}
    if opts.yanked:
        for ver, item in items.items():
            if item.yanked or yanked_component:
                chosen[ver] = "yanked" if item.yanked else "component yanked"
    if (opts.keep is None and opts.before is None) or yanked_component:
        return chosen
    live = {v: i for v, i in items.items() if not i.yanked}
    protected = {comp.nightly, V.latest_stable(live)}
    candidates = [v for v in V.sort_versions(live) if not V.is_nightly(v) and v not in protected]
    if opts.keep is not None:
        stable = [v for v in V.sort_versions(live) if not V.is_nightly(v)]
        newest = set(stable[-opts.keep:]) if opts.keep > 0 else set()
        for ver in candidates:
            if ver not in newest:
                chosen.setdefault(ver, f"older than the newest {opts.keep}")
    if opts.before is not None:
        for ver in candidates:
            if _released_before(live[ver].released, opts.before):
                chosen.setdefault(ver, f"released before {opts.before.date().isoformat()}")
    return chosen


def plan_prune(store: Store, opts: PruneOptions) -> PrunePlan:
    """What to yank and delete (nothing is changed).

    Raises:
        RepositoryError: a component manifest of the mirror cannot be read.
    """
    plan = PrunePlan()
    index = store.index
    wanted = set(opts.components) or set(index.components)
    live: set[str] = set()        # tarballs of live versions once the prune is committed
    referenced: set[str] = set()  # tarballs any manifest entry names (yanked ones too)
    chosen: list[tuple[str, str, str, str, str]] = []  # cid, plat, ver, reason, file
    for cid in sorted(index.components):
        comp = store.component(cid)
        if comp is None:
            continue
        comp_yanked = index.components[cid].yanked
        new = clone_component(comp)
        if cid in wanted:
            for plat in sorted(comp.platforms):
                for ver, reason in sorted(_choose(comp, plat, opts, comp_yanked).items()):
                    item = comp.platforms[plat][ver]
                    chosen.append((cid, plat, ver, reason, item.url.lstrip("/")))
                    if not item.yanked:  # a live version, or one of a yanked component
                        new.platforms[plat][ver] = dataclasses.replace(item, yanked=True)
                        plan.yanks.setdefault(cid, set()).add((plat, ver))
            if cid in plan.yanks:
                plan.manifests[cid] = new
        for _p, _v, item in new.items():
            referenced.add(item.url.lstrip("/"))
            if not item.yanked and not comp_yanked:
                live.add(item.url.lstrip("/"))
    storage = store.storage
    going: set[str] = set()
    for cid, plat, ver, reason, name in chosen:
        deleted = name not in live and (name in going or _is_file(storage, name))
        if deleted and name not in going:
            going.add(name)
            plan.files.append((name, _size(storage, name),
                               f"tarball of a pruned version ({reason})"))
        if deleted or (plat, ver) in plan.yanks.get(cid, set()):
            plan.versions.setdefault(cid, []).append((plat, ver, reason))
    if opts.orphans:
        # Without a lock (object storage) a live writer's uploads are unreferenced until its
        # commit: only files older than the grace period are orphans there.
        limit = store.now - timedelta(days=opts.grace_days)
        current = {url.lstrip("/").removesuffix(".json"): meta.version
                   for url, meta in store.state.snapshot.meta.items()}
        for entry in storage.list():
            name = entry.name
            if storage.concurrent and datetime.fromtimestamp(
                    entry.mtime, tz=store.now.tzinfo) > limit:
                continue
            m = _VERSIONED.fullmatch(name)
            if (storage.concurrent and m is not None and m.group(2) != "root"
                    and m.group(2) in current and int(m.group(1)) > current[m.group(2)]):
                plan.files.append((name, entry.size,
                                   "orphan: a versioned manifest no commit references"))
                continue
            if (not name.endswith(".tar.gz") or name in referenced or name in going
                    or _BOOTSTRAP.fullmatch(name)):
                continue
            plan.files.append((name, entry.size, "orphan: no manifest references it"))
        if storage.concurrent:  # a stateless server's upload sessions never completed
            for entry in storage.list(".upload/"):
                if datetime.fromtimestamp(entry.mtime, tz=store.now.tzinfo) <= limit:
                    plan.files.append((entry.name, entry.size,
                                       "orphan: an upload session no manifest followed"))
    if opts.superseded:
        plan.files.extend(_superseded(store, opts.grace_days))
    commits = storage.stat("commits") if opts.commits else None
    if commits is not None and commits.directory:
        plan.files.append(("commits", commits.size, "TiUP's commit history"))
    return plan


def _is_file(storage: Storage, name: str) -> bool:
    try:
        entry = storage.stat(name)
    except TiupError:
        return False
    return entry is not None and not entry.directory


def _superseded(store: Store, grace_days: float) -> list[tuple[str, int, str]]:
    current: dict[str, int] = {}
    for url, meta in store.state.snapshot.meta.items():
        current[url.lstrip("/").removesuffix(".json")] = meta.version
    limit = store.now - timedelta(days=grace_days)
    out: list[tuple[str, int, str]] = []
    for entry in store.storage.list():
        m = _VERSIONED.fullmatch(entry.name)
        if m is None or m.group(2) == "root":
            continue
        version, name = int(m.group(1)), m.group(2)
        if name not in current or version >= current[name]:
            continue
        if datetime.fromtimestamp(entry.mtime, tz=store.now.tzinfo) > limit:
            continue
        out.append((entry.name, entry.size, f"superseded by version {current[name]}"))
    return out


def stage_prune(store: Store, ring: KeyRing, plan: PrunePlan) -> None:
    """Stage the new manifests (the chosen versions yanked; signed by each owner); the
    caller commits.

    Raises:
        MissingKeyError: an owner's keys are not available.
    """
    for cid, comp in sorted(plan.manifests.items()):
        item = store.index.components[cid]
        comp.version = store.next_component_version(cid)
        renew(comp, store.now, store.lifetimes.component, bump=False)
        store.publish_component(sign_component(comp, owner_signers(store, item.owner, ring)))


def delete_files(storage: Storage, plan: PrunePlan) -> list[tuple[str, int]]:
    """Delete the planned files (after the commit). Returns (name, size) of those deleted.

    Raises:
        RepositoryError: a file could not be deleted (those before it are gone).
    """
    done: list[tuple[str, int]] = []
    for name, size, _reason in plan.files:
        if storage.delete(name):
            done.append((name, size))
    return done
