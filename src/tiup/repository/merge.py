"""``tiup mirror merge``: add the versions of other mirrors to a local mirror, verified.

Differences from TiUP (``behavior.md`` §12.7): every source is verified with
its own root (root chain, timestamp → snapshot → index → component manifests
with owner thresholds; expiry only warned about); each source tarball is
checked (length, sha256, sha512) before it enters the base; a version present
in both with other content is a conflict, reported and not merged; the whole
merge is one commit of the store (one index bump, one version bump per
component).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tiup import hashing, trust
from tiup.errors import (
    FetchError,
    InvalidNameError,
    RepositoryError,
    TarballError,
    TiupError,
    VerificationError,
)
from tiup.manifest import versions as V
from tiup.manifest.models import Component, Index, Root, Signed, VersionItem
from tiup.manifest.names import check_item_url
from tiup.reader import MirrorReader
from tiup.repository.keyring import KeyRing
from tiup.repository.lifetimes import renew
from tiup.repository.publish import clone_component, owner_signers
from tiup.repository.store import IndexFlags, Store, sign_component
from tiup.transport.base import Fetcher


@dataclass
class SourceMirror:
    """A source mirror, verified with its own keys (expiry ignored, reported)."""

    address: str
    fetcher: Fetcher
    root: Root
    index: Index
    components: dict[str, Component] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def read_source(fetcher: Fetcher, now: datetime) -> SourceMirror:
    """Read and verify a source mirror with its own ``root.json`` and root chain.

    Expiry does not stop a merge (the base re-signs everything); it is reported in
    the returned warnings.

    Raises:
        VerificationError: a signature, threshold, hash, length or version check failed.
        FetchError: a file could not be read.
    """
    address = fetcher.address
    try:
        data = fetcher.fetch("root.json", trust.MAX_ROOT_SIZE)
        reader = MirrorReader(fetcher, trust.TrustedState(data, None, "root.json"))
        reader.walk_roots()
        index = reader.index
        state = reader.state
        src = SourceMirror(address, fetcher, state.root, index)
        for cid in sorted(index.components):
            src.components[cid] = reader.component(cid)
    except FetchError:
        raise
    except TiupError as exc:
        raise VerificationError(f"source mirror {address} does not verify: {exc.message}",
                                file=exc.file,
                                hint=f"run `tiup mirror verify {address}` for a full report"
                                ) from exc
    assert state.timestamp is not None and state.snapshot is not None
    docs: list[tuple[Signed, str]] = [(state.root, state.root_source),
                                      (state.timestamp, "timestamp.json"),
                                      (state.snapshot, "snapshot.json"),
                                      (index, state.index_source)]
    docs += [(comp, f"{comp.version}.{cid}.json") for cid, comp in src.components.items()]
    for doc, label in docs:
        if doc.is_expired(now):
            src.warnings.append(f"{label} of {address} expired at {doc.expires}")
    return src


@dataclass
class MergeItem:
    component: str
    platform: str
    version: str
    item: VersionItem
    source: SourceMirror


@dataclass
class MergePlan:
    items: list[MergeItem] = field(default_factory=list)
    #: (component version platform, reason)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    #: new component → (owner, source)
    new_components: dict[str, tuple[str, SourceMirror]] = field(default_factory=dict)
    missing_owners: dict[str, list[str]] = field(default_factory=dict)


def plan_merge(store: Store, sources: list[SourceMirror]) -> MergePlan:
    """What each source adds to the base (sources in order; the first one wins).

    Raises:
        RepositoryError: the base's manifest of a component cannot be read.
    """
    plan = MergePlan()
    taken: dict[tuple[str, str, str], VersionItem] = {}
    for src in sources:
        for cid, comp in sorted(src.components.items()):
            entry = src.index.components[cid]
            base_entry = store.index.components.get(cid)
            if entry.yanked:
                plan.skipped.append((f"{cid} (all versions)", f"yanked in {src.address}"))
                continue
            if base_entry is not None and base_entry.yanked:
                plan.skipped.append((f"{cid} (all versions)", "yanked in the base"))
                continue
            base = store.component(cid)
            if base_entry is None and cid not in plan.new_components:
                if entry.owner not in store.index.owners:
                    plan.missing_owners.setdefault(entry.owner, []).append(cid)
                plan.new_components[cid] = (entry.owner, src)
            for plat, ver, item in sorted(comp.items()):
                what = f"{cid} {ver} {plat}"
                if item.yanked:
                    plan.skipped.append((what, "yanked"))
                    continue
                if V.is_nightly(ver):
                    plan.skipped.append((what, "nightly"))
                    continue
                try:
                    check_item_url(cid, plat, ver, item.url)
                except InvalidNameError:
                    plan.skipped.append((what, f"incorrect file name {item.url}"))
                    continue
                have = (base.platforms.get(plat, {}).get(ver) if base is not None else None) \
                    or taken.get((cid, plat, ver))
                if have is not None:
                    if have.length == item.length and have.sha256.lower() == item.sha256.lower():
                        plan.skipped.append((what, "present"))
                    else:
                        plan.conflicts.append(f"conflict: {cid} {ver} {plat}: keeping base copy")
                    continue
                taken[(cid, plat, ver)] = item
                plan.items.append(MergeItem(cid, plat, ver, item, src))
    return plan


def apply_merge(store: Store, ring: KeyRing, plan: MergePlan, work: Path) -> list[str]:
    """Fetch and check each tarball, then stage one new manifest per component.

    The caller commits. Returns the tarball names staged.

    Raises:
        RepositoryError: owners missing in the base.
        TarballError: a source tarball does not match its source manifest.
        MissingKeyError: the owner's keys are not available.
        FetchError: a source tarball cannot be downloaded.
    """
    if plan.missing_owners:
        listed = "; ".join(f"{o} (components {', '.join(cs)})"
                           for o, cs in sorted(plan.missing_owners.items()))
        raise RepositoryError(f"owners of the sources are not in the base mirror: {listed}",
                              hint="add each owner first: tiup mirror grant <owner-id> "
                                   "(with its key)")
    work.mkdir(parents=True, exist_ok=True)
    by_comp: dict[str, list[MergeItem]] = {}
    for mi in plan.items:
        by_comp.setdefault(mi.component, []).append(mi)
    staged: list[str] = []
    for cid, items in sorted(by_comp.items()):
        for mi in items:
            name = mi.item.url.lstrip("/")
            tmp = work / name
            mi.source.fetcher.download(name, tmp, expected_length=mi.item.length,
                                       part_path=work / (name + ".part"))
            info = store.stage_tarball(name, tmp)
            tmp.unlink()
            hashing.check(name, info, mi.item, where=f"its manifest at {mi.source.address}",
                          error=TarballError)
            staged.append(name)
        base = store.component(cid)
        entry = store.index.components.get(cid)
        src_comp = items[0].source.components[cid]
        if base is None:
            owner, src = plan.new_components[cid]
            src_entry = src.index.components[cid]
            comp = Component(expires="", version=0, id=cid, description=src_comp.description)
            flags = IndexFlags(owner=owner, hidden=src_entry.hidden,
                               standalone=src_entry.standalone)
        else:
            assert entry is not None
            owner = entry.owner
            comp = clone_component(base)
            if not comp.description:
                comp.description = src_comp.description
            flags = IndexFlags()
        for mi in items:
            comp.platforms.setdefault(mi.platform, {})[mi.version] = dataclasses.replace(
                mi.item, unrecognized={})
        comp.version = store.next_component_version(cid)
        renew(comp, store.now, store.lifetimes.component, bump=False)
        store.publish_component(sign_component(comp, owner_signers(store, owner, ring)),
                                flags=flags)
    return staged
