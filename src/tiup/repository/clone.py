"""``tiup mirror clone``: copy (part of) a mirror into a local directory, signed anew.

The source is read through the verified client path (:class:`~tiup.client.updater.Updater`:
root chain, timestamp, snapshot, index, component manifests, all checked); the
selection is :mod:`tiup.repository.clone_plan`; tarballs come through
:mod:`tiup.repository.clone_fetch` (parallel, resumable, every byte verified);
the manifests are written through the crash-safe :class:`~tiup.repository.store.Store`
(tarballs, versioned manifests, ``snapshot.json``, ``timestamp.json`` last) under
``<target>/lock``, held for the whole run.

Re-running into the same target is incremental (``behavior.md`` §12.6): the
clone's keys are reused (see :mod:`tiup.repository.clone_keys`), the versions
the earlier clone had are kept, only new or changed tarballs are downloaded,
and a component manifest is rewritten only if its content changes, with
version ``max(previous + 1, source version)``.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tiup.client.profile import normalise_address
from tiup.client.updater import Updater
from tiup.errors import FetchError, NotFoundError, RepositoryError, TiupError, UsageError
from tiup.fsutil import atomic_write
from tiup.manifest import versions as V
from tiup.manifest.models import Component, Index, VersionItem
from tiup.repository.clone_fetch import (
    WORK_DIR,
    DownloadPool,
    FetchResult,
    FileJob,
    ProgressSink,
    remove_work_dir,
    safe_tarball_name,
)
from tiup.repository.clone_keys import (
    CLONE_LIFETIMES,
    OWNER,
    CloneKeys,
    reusable_keyring,
    write_new_mirror,
)
from tiup.repository.clone_plan import CloneOptions, Selection, cloned_manifest, select
from tiup.repository.files import MirrorLock
from tiup.repository.keyring import KeyRing
from tiup.repository.lifetimes import renew
from tiup.repository.state import MirrorState, read_state
from tiup.repository.store import IndexFlags, Store, sign
from tiup.transport.base import Fetcher

LOCAL_INSTALL = "local_install.sh"
#: the source's bootstrap tarball (unverified fallback) may be at most this large
BOOTSTRAP_CAP = 512 * 1024 * 1024


@dataclass
class CloneReport:
    """What a clone did, for the CLI to print."""

    target: Path
    source: str
    metadata_only: bool = False
    #: components present in the clone with versions selected by this run
    components: list[str] = field(default_factory=list)
    versions: int = 0
    downloaded: int = 0
    downloaded_bytes: int = 0
    present: int = 0
    resumed: int = 0
    #: (location, reason) per file that could not be fetched
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: components left out (nothing selected, or every file failed)
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reused_keys: bool = False
    key_files: list[Path] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    bootstrap: list[str] = field(default_factory=list)


class _HeldLock(MirrorLock):
    """The clone already holds ``<target>/lock`` (for the whole run): the store must not
    take it again (a second flock from the same process would wait on itself)."""

    def acquire(self) -> None:
        return None

    def release(self) -> None:
        return None


def check_not_self(source: str, target: Path) -> None:
    """Refuse to clone a mirror into itself (resolved paths, normalised URLs).

    Raises:
        UsageError: the source is the target.
    """
    if normalise_address(source) == str(target.expanduser().resolve()):
        raise UsageError(
            f"Refusing to clone from {source} to {target}: the source mirror is the target",
            hint="run `tiup mirror set --reset` (or `tiup mirror set <upstream>`) first, or "
                 "pass --source <upstream>")


@dataclass
class _Plan:
    comp_id: str
    source: Component
    selection: Selection
    #: the manifest to write (before failures are taken out)
    manifest: Component
    previous: Component | None
    hidden: bool
    standalone: bool


def clone_mirror(updater: Updater, target: Path, opts: CloneOptions, *, now: datetime,
                 jobs: int = 4, progress: ProgressSink | None = None,
                 lock_timeout: float = 60.0) -> CloneReport:
    """Clone the mirror ``updater`` reads into ``target`` (see the module docstring).

    Raises:
        UsageError: the source is the target; an unknown component option.
        RepositoryError: a selected exact version exists nowhere; the target cannot be written.
        VerificationError, FetchError: the source's metadata cannot be read and verified.
    """
    target = target.expanduser().absolute()
    check_not_self(updater.address, target)
    report = CloneReport(target, updater.address, metadata_only=opts.metadata_only)
    updater.refresh()
    index = updater.index
    unknown = sorted(set(opts.component_versions) - set(index.components))
    if unknown:
        raise UsageError(f"unknown component {', '.join(unknown)}",
                         hint=f"the components of {updater.address} are: "
                              + ", ".join(sorted(index.components)))
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RepositoryError(f"cannot create {target}: {exc.strerror}") from exc
    lock = MirrorLock(target, lock_timeout)
    lock.acquire()
    try:
        return _clone_locked(updater, index, target, opts, now, jobs, progress, lock, report)
    finally:
        lock.release()


def _previous_state(target: Path, report: CloneReport) -> MirrorState | None:
    if not (target / "root.json").is_file():
        return None
    try:
        return read_state(target)
    except TiupError as exc:
        report.warnings.append(f"the mirror already in {target} cannot be read ({exc.message});"
                               " it is replaced by a new clone with new keys")
        return None


def _clone_locked(updater: Updater, index: Index, target: Path, opts: CloneOptions,
                  now: datetime, jobs: int, progress: ProgressSink | None, lock: MirrorLock,
                  report: CloneReport) -> CloneReport:
    prev = _previous_state(target, report)
    plans = _plan(updater, index, opts, prev, report)
    wanted: dict[str, FileJob] = {}
    for plan in plans:
        for _plat, ver, item in plan.manifest.items():
            if item.yanked:
                continue
            name = safe_tarball_name(item.url)
            if name is None:
                report.failed.append((item.url, f"unsafe tarball url in {plan.comp_id} {ver}"))
                continue
            wanted[name] = FileJob(name, item.length, item.sha256, item.sha512)
    ring: KeyRing | None = reusable_keyring(prev, target / "keys") if prev else None
    fresh = ring is None
    # New keys (7 RSA-2048 keys, ≈0.4 s of CPU that releases the GIL) are generated
    # while the tarballs download.
    keygen = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clone-keygen")
    new_keys = keygen.submit(CloneKeys.generate) if fresh else None
    keygen.shutdown(wait=False)
    fetcher = updater.fetcher.inner
    pool = DownloadPool(fetcher, target, jobs=jobs, progress=progress)
    fetched = pool.run(wanted.values())
    report.downloaded = len(fetched.downloaded)
    report.downloaded_bytes = fetched.bytes_downloaded
    report.present = len(fetched.present)
    report.resumed = len(fetched.resumed)
    report.failed.extend(sorted(fetched.failed.values()))

    if new_keys is not None:
        if prev is not None:
            report.warnings.append(
                f"{target} holds a mirror whose keys are not all in {target / 'keys'}: it is "
                "signed anew with new keys; clients must run `tiup mirror set` again")
        keys = new_keys.result()
        report.key_files = keys.save(target / "keys")
        report.written += write_new_mirror(target, keys, now)
        ring = keys.keyring()
    else:
        report.reused_keys = True
    assert ring is not None
    store = Store(target, now=now, keyring=ring, lifetimes=CLONE_LIFETIMES)
    store.lock = _HeldLock(target, 0)
    with store:
        store.verified.update(fetched.verified)
        changed = _write_components(store, plans, fetched, ring, report)
        changed |= _bootstrap(store, plans, fetched, opts, report, fetcher)
        if changed or fresh:
            report.written += store.commit()
    for path in (target / WORK_DIR).glob("tiup-*.tar.gz*"):  # unverified bootstrap copies
        path.unlink(missing_ok=True)
    _write_local_install(target)
    if not fetched.failed:
        remove_work_dir(target)
    return report


# --------------------------------------------------------------------- planning
def _plan(updater: Updater, index: Index, opts: CloneOptions, prev: MirrorState | None,
          report: CloneReport) -> list[_Plan]:
    plans: list[_Plan] = []
    for comp_id in sorted(index.components):
        entry = index.components[comp_id]
        previous = _previous_component(prev, comp_id, report)
        if entry.yanked:
            report.notes.append(f"{comp_id} is yanked in the source: not cloned")
            continue
        source = updater.component(comp_id)
        sel = select(source, opts)
        report.notes.extend(sel.notes)
        if sel.empty and previous is None:
            if not opts.metadata_only:
                report.dropped.append(comp_id)
            continue
        manifest = _merge(previous, cloned_manifest(source, sel, full=opts.full,
                                                    platforms=opts.platforms))
        plans.append(_Plan(comp_id, source, sel, manifest, previous, entry.hidden,
                           entry.standalone))
    return plans


def _previous_component(prev: MirrorState | None, comp_id: str,
                        report: CloneReport) -> Component | None:
    if prev is None or comp_id not in prev.index.components:
        return None
    try:
        return prev.component(comp_id)
    except TiupError as exc:
        report.warnings.append(f"{comp_id} of the earlier clone cannot be read: {exc.message}")
        return None


def _strip(item: VersionItem) -> VersionItem:
    return dataclasses.replace(item, unrecognized={})


def _merge(previous: Component | None, new: Component) -> Component:
    """The new selection on top of what the earlier clone had (its versions are kept).

    A version the source now yanks is kept but marked yanked; one the source
    re-published with other content takes the source's item.
    """
    platforms: dict[str, dict[str, VersionItem]] = {
        plat: {v: _strip(item) for v, item in vs.items()} for plat, vs in new.platforms.items()}
    nightly = new.nightly
    if previous is not None:
        for plat, vs in previous.platforms.items():
            mine = platforms.setdefault(plat, {})
            for ver, item in vs.items():
                if ver not in mine:
                    mine[ver] = item
        if not nightly and previous.nightly and any(previous.nightly in vs
                                                    for vs in platforms.values()):
            nightly = previous.nightly
    return dataclasses.replace(new, platforms={p: vs for p, vs in platforms.items() if vs},
                               nightly=nightly, unrecognized={}, absent=frozenset())


def mark_source_yanks(manifest: Component, source: Component) -> None:
    """Versions kept from an earlier clone that the source has since yanked become yanked."""
    for plat, vs in manifest.platforms.items():
        for ver, item in list(vs.items()):
            src = source.platforms.get(plat, {}).get(ver)
            if src is not None and src.yanked and not item.yanked and src.url == item.url:
                vs[ver] = dataclasses.replace(item, yanked=True)


# ---------------------------------------------------------------------- writing
def _without_failures(plan: _Plan, fetched: FetchResult) -> Component:
    """The manifest with versions whose tarball could not be fetched left out (or, for a
    version the earlier clone had, its earlier item kept)."""
    out: dict[str, dict[str, VersionItem]] = {}
    for plat, vs in plan.manifest.platforms.items():
        kept: dict[str, VersionItem] = {}
        for ver, item in vs.items():
            name = safe_tarball_name(item.url)
            ok = item.yanked or (name is not None and name not in fetched.failed)
            if ok:
                kept[ver] = item
                continue
            old = plan.previous.platforms.get(plat, {}).get(ver) if plan.previous else None
            if old is not None and old != item:
                kept[ver] = old
        if kept:
            out[plat] = kept
    nightly = plan.manifest.nightly
    if nightly and not any(nightly in vs for vs in out.values()):
        nightly = ""
    comp = dataclasses.replace(plan.manifest, platforms=out, nightly=nightly)
    mark_source_yanks(comp, plan.source)
    return comp


def _content(comp: Component) -> dict[str, object]:
    data = comp.to_dict()
    for key in ("version", "expires"):
        data.pop(key, None)
    return data


def _write_components(store: Store, plans: list[_Plan], fetched: FetchResult, ring: KeyRing,
                      report: CloneReport) -> bool:
    changed = False
    signers = None
    for plan in plans:
        comp = _without_failures(plan, fetched)
        current = store.component(plan.comp_id)
        item = store.index.components.get(plan.comp_id)
        if not comp.platforms and current is None:
            report.dropped.append(plan.comp_id)
            continue
        selected = {v for vs in plan.selection.platforms.values() for v in vs}
        landed = {v for vs in comp.platforms.values() for v, it in vs.items()
                  if v in selected and not it.yanked}
        if landed:
            report.components.append(plan.comp_id)
            report.versions += len(landed)
        if item is not None and item.owner != OWNER:
            report.warnings.append(f"{plan.comp_id} in the clone belongs to owner {item.owner}, "
                                   f"not {OWNER}: left as it is")
            continue
        flags = IndexFlags(hidden=plan.hidden, standalone=plan.standalone,
                           owner=OWNER if item is None else None)
        same_flags = item is not None and item.hidden == plan.hidden \
            and item.standalone == plan.standalone
        if current is not None and _content(current) == _content(comp) and same_flags:
            continue
        if current is not None and _content(current) == _content(comp):
            idx_item = store.edit_index().components[plan.comp_id]
            idx_item.hidden, idx_item.standalone = plan.hidden, plan.standalone
            changed = True
            continue
        comp.version = max(store.next_component_version(plan.comp_id), plan.source.version)
        comp.expires = ""
        renew(comp, store.now, store.lifetimes.component, bump=False)
        if signers is None:
            owner = store.index.owners[OWNER]
            signers = ring.threshold_signers(f"owner {OWNER}", owner.keys,
                                             owner.effective_threshold)
        store.publish_component(sign(comp, signers), flags=flags, allow_version_jump=True)
        report.updated.append(plan.comp_id)
        changed = True
    return changed


def _bootstrap(store: Store, plans: list[_Plan], fetched: FetchResult, opts: CloneOptions,
               report: CloneReport, fetcher: Fetcher) -> bool:
    """``tiup-<os>-<arch>.tar.gz`` per selected platform (``behavior.md`` §12.6).

    A copy of the verified tarball of the newest stable ``tiup`` cloned for that
    platform; only if none was cloned, the source's own bootstrap file, downloaded
    unverified (with a warning); a source without it is skipped (a note).
    """
    plan = next((p for p in plans if p.comp_id == "tiup"), None)
    comp = store.component("tiup") if plan is not None else None
    changed = False
    for plat in opts.platforms:
        boot = f"tiup-{plat.replace('/', '-')}.tar.gz"
        dest = store.directory / boot
        vs = {v: it for v, it in comp.platforms.get(plat, {}).items()
              if not it.yanked} if comp is not None else {}
        latest = V.latest_stable(vs)
        name = safe_tarball_name(vs[latest].url) if latest is not None else None
        if name is not None and name in fetched.verified:
            source = store.directory / name
        else:
            downloaded = _download_bootstrap(fetcher, boot, store.directory, report)
            if downloaded is None:
                continue
            source = downloaded
            report.warnings.append(
                f"{boot} is the source's own file, downloaded without verification: no "
                f"verified `tiup` component was cloned for {plat} (clone `--tiup latest` to "
                "get a verified copy)")
        try:
            same = dest.stat().st_size == source.stat().st_size and _same_file(dest, source)
        except OSError:
            same = False
        if not same:
            store.stage_tarball(boot, source)
            changed = True
        report.bootstrap.append(boot)
    return changed


def _download_bootstrap(fetcher: Fetcher, boot: str, target: Path,
                        report: CloneReport) -> Path | None:
    """The source's ``boot`` file in the clone's work directory, or None (noted)."""
    path = target / WORK_DIR / boot
    try:
        fetcher.download(boot, path, expected_length=BOOTSTRAP_CAP)
    except NotFoundError:
        report.notes.append(f"TiUP doesn't have {boot[5:-7].replace('-', '/')}, skipped")
        return None
    except FetchError as exc:
        report.failed.append((fetcher.location(boot), exc.message))
        return None
    return path


def _same_file(a: Path, b: Path) -> bool:
    from tiup.repository.files import hash_file

    return hash_file(a).sha256 == hash_file(b).sha256


def _write_local_install(target: Path) -> None:
    path = target / LOCAL_INSTALL
    data = LOCAL_INSTALL_SCRIPT.encode()
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    try:
        atomic_write(path, data, 0o755)
    except OSError as exc:
        raise RepositoryError(f"cannot write {path}: {exc.strerror}", file=str(path)) from exc


LOCAL_INSTALL_SCRIPT = r"""#!/bin/sh
# Install tiup from this offline mirror (written by `tiup mirror clone`).
set -e
script_dir=$(cd "$(dirname "$0")" && pwd)

case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    *) echo "OS $(uname -s) is not supported" >&2; exit 1 ;;
esac
case "$(uname -m)" in
    amd64|x86_64) arch=amd64 ;;
    arm64|aarch64) arch=arm64 ;;
    *) echo "architecture $(uname -m) is not supported" >&2; exit 1 ;;
esac

TIUP_HOME=${TIUP_HOME:-$HOME/.tiup}
bin_dir="$TIUP_HOME/bin"
tarball="$script_dir/tiup-$os-$arch.tar.gz"
if [ ! -f "$tarball" ]; then
    echo "this mirror has no tiup for $os/$arch ($tarball)" >&2
    exit 1
fi
mkdir -p "$bin_dir"
tar -zxf "$tarball" -C "$bin_dir"
chmod 755 "$bin_dir/tiup"
cp "$script_dir/root.json" "$bin_dir/root.json"
rm -rf "$TIUP_HOME/manifests"
"$bin_dir/tiup" mirror set "$script_dir" --silent

shell=$(basename "${SHELL:-sh}")
profile=""
for candidate in "$HOME/.${shell}_profile" "$HOME/.${shell}_login" "$HOME/.${shell}rc"; do
    if [ -f "$candidate" ]; then profile=$candidate; break; fi
done
[ -n "$profile" ] || profile="$HOME/.profile"
case ":$PATH:" in
    *":$bin_dir:"*) ;;
    *) echo "export PATH=$bin_dir:\$PATH" >> "$profile"
       echo "$profile has been modified to add tiup to PATH" ;;
esac
echo "Installed path: $bin_dir/tiup"
echo "Open a new terminal or source $profile to use it"
"""

