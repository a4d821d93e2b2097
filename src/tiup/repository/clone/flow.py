"""``tiup mirror clone``: copy (part of) a mirror into a local directory, signed anew.

The source is read through the verified walk (:class:`~tiup.reader.VerifiedMirror`,
given by the caller: the client's updater with its trust of that mirror; root chain,
timestamp, snapshot, index, component manifests, all checked); the
selection is :mod:`tiup.repository.clone.plan`; tarballs come through
:mod:`tiup.repository.clone.fetch` (parallel, resumable, every byte verified);
the manifests are written through the crash-safe :class:`~tiup.repository.store.Store`
(tarballs, versioned manifests, ``snapshot.json``, ``timestamp.json`` last) under
``<target>/lock``, held for the whole run.

The target must be new, empty, or an earlier clone whose keys are at hand;
another mirror (e.g. one made by ``tiup mirror init``) or a directory of other
files is refused without ``--force``, before anything is written
(:mod:`tiup.repository.clone.target`). So is a selection that matches nothing
(:func:`~tiup.repository.clone.plan.check_selection`).

Re-running into the same target is incremental (``behavior.md`` §12.6): the
clone's keys are reused (see :mod:`tiup.repository.clone.keys`), the versions
the earlier clone had are kept, only new or changed tarballs are downloaded,
and a component manifest is rewritten only if its content changes, with
version ``max(previous + 1, source version)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tiup import hashing
from tiup.errors import (
    FetchError,
    IntegrityError,
    RepositoryError,
    TiupError,
    UsageError,
)
from tiup.hashing import FileInfo
from tiup.keys import PrivateKey
from tiup.manifest.models import Component, Index, VersionItem
from tiup.reader import VerifiedMirror
from tiup.repository.clone.bootstrap import (
    LOCAL_INSTALL,
    tarball_of,
    write_bootstrap,
    write_bucket_bootstrap,
    write_local_install,
)
from tiup.repository.clone.fetch import (
    WORK_DIR,
    DownloadPool,
    FetchResult,
    FileJob,
    ProgressSink,
    remove_work_dir,
)
from tiup.repository.clone.keys import CLONE_LIFETIMES, OWNER, CloneKeys, write_new_mirror
from tiup.repository.clone.plan import (
    CloneOptions,
    CloneReport,
    Selection,
    check_selection,
    cloned_manifest,
    select,
)
from tiup.repository.clone.target import CloneTarget, inspect_storage_target, inspect_target
from tiup.repository.keyring import KeyRing
from tiup.repository.lifetimes import renew
from tiup.repository.local_storage import LocalStorage
from tiup.repository.state import MirrorState
from tiup.repository.storage import Storage
from tiup.repository.store import IndexFlags, Store, sign_component
from tiup.settings import Settings, current
from tiup.transport.address import normalise_address
from tiup.transport.base import Fetcher
from tiup.transport.local import LocalFetcher


def check_not_self(source: str, target: Path | str) -> None:
    """Refuse to clone a mirror into itself (resolved paths, normalised URLs and
    ``s3://`` addresses).

    Raises:
        UsageError: the source is the target.
    """
    where = normalise_address(target) if isinstance(target, str) \
        else str(target.expanduser().resolve())
    if normalise_address(source) == where:
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


def clone_mirror(updater: VerifiedMirror, target: Path | Storage, opts: CloneOptions, *,
                 now: datetime,
                 jobs: int = 4, progress: ProgressSink | None = None,
                 lock_timeout: float = 60.0, force: bool = False,
                 key_dirs: Sequence[Path] = (), settings: Settings | None = None,
                 owner_key: PrivateKey | None = None) -> CloneReport:
    """Clone the mirror ``updater`` reads into ``target`` (see the module docstring).

    The target and the selection are checked before anything is written
    (:func:`~tiup.repository.clone.target.inspect_target`,
    :func:`~tiup.repository.clone.plan.check_selection`): a refused clone leaves
    the target as it was (not even created).

    Args:
        force: replace another mirror in ``target``, or write next to other files there.
        key_dirs: where else the keys of an earlier clone may be (after ``<target>/keys``).
        settings: ``clone_give_up`` and the sync script (default: the process's).
        owner_key: the key of owner ``pingcap`` in the clone (e.g. on a PKCS#11 token):
            used for a new clone instead of a generated one (and not saved), and looked
            for when an earlier clone's keys are reused.

    Raises:
        UsageError: the source is the target; an unknown component option.
        RepositoryError: the target holds another mirror or other files (without
            ``force``); the selection matches nothing; the target cannot be written.
        VerificationError, FetchError: the source's metadata cannot be read and verified.
    """
    settings = settings if settings is not None else current()
    given = [owner_key] if owner_key is not None else []
    bucket: Storage | None = None
    if isinstance(target, Storage):
        bucket = target
        check_not_self(updater.address, bucket.location)
        inspect_storage_target(bucket, key_dirs, force=force, keys=given)
        target = spool_dir(bucket)
    else:
        target = target.expanduser().absolute()
        check_not_self(updater.address, target)
        inspect_target(target, key_dirs, force=force, keys=given)
    report = CloneReport(target, updater.address, metadata_only=opts.metadata_only)
    updater.refresh()
    index = updater.index
    unknown = sorted(set(opts.component_versions) - set(index.components))
    if unknown:
        raise UsageError(f"unknown component {', '.join(unknown)}",
                         hint=f"the components of {updater.address} are: "
                              + ", ".join(sorted(index.components)))
    picked = _select(updater, index, opts, report)
    check_selection(opts, {p.comp_id: p.source for p in picked},
                    {p.comp_id: p.selection for p in picked})
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RepositoryError(f"cannot create {target}: {exc.strerror}") from exc
    if bucket is not None:
        found = inspect_storage_target(bucket, key_dirs, force=force, keys=given)
        found.path = target
        report.storage = bucket.location
        return _clone_locked(updater, picked, found, opts, now, jobs, progress, report,
                             settings, bucket, key_dirs, owner_key)
    # the store of the last step takes the same lock again: a storage's lock is re-entrant
    storage = LocalStorage(target, sync_script=settings.sync_script)
    storage.acquire(lock_timeout)
    try:
        # again under the lock: another writer may have changed the target meanwhile
        found = inspect_target(target, key_dirs, force=force, keys=given)
        return _clone_locked(updater, picked, found, opts, now, jobs, progress, report,
                             settings, storage, owner_key=owner_key)
    finally:
        storage.release()


def _clone_locked(updater: VerifiedMirror, picked: list[_Picked], found: CloneTarget,
                  opts: CloneOptions, now: datetime, jobs: int, progress: ProgressSink | None,
                  report: CloneReport, settings: Settings, storage: Storage,
                  key_dirs: Sequence[Path] = (),
                  owner_key: PrivateKey | None = None) -> CloneReport:
    target = found.path
    prev = found.previous
    # a bucket: tarballs are fetched and verified in a local spool directory, then uploaded
    # by the commit; those its earlier clone already holds are not fetched again
    in_bucket = not isinstance(storage, LocalStorage)
    if found.replaced:
        report.warnings.append(f"{target}: {found.replaced}; it is replaced by a new clone "
                               "with new keys (--force): clients must run `tiup mirror set` "
                               "again")
    if found.foreign_files:
        report.warnings.append(f"{target} held {found.foreign_files} other entries (--force): "
                               "they are left where they are")
    plans = _plan(picked, opts, prev, report)
    wanted: dict[str, FileJob] = {}
    clashes: set[str] = set()
    for plan in plans:
        for plat, ver, item in plan.manifest.items():
            name = tarball_of(plan.comp_id, plat, ver, item)
            if name is None:
                report.failed.append((item.url, f"{plan.comp_id} {ver} ({plat}): its url is "
                                      "not <component>-<version>-<os>-<arch>.tar.gz"))
                continue
            if item.yanked:
                continue
            job = FileJob(name, item.length, item.sha256, item.sha512)
            if wanted.get(name, job) != job:
                clashes.add(name)
            wanted[name] = job
    for name in clashes:
        del wanted[name]
    #: tarballs the bucket holds since an earlier run of this clone (checked then)
    held: dict[str, FileInfo] = {}
    if in_bucket and prev is not None:
        for name in _held(prev, wanted):
            job = wanted.pop(name)
            held[name] = FileInfo(job.length, job.sha256.lower(), job.sha512.lower())
    ring: KeyRing | None = found.ring
    fresh = ring is None
    # New keys (7 RSA-2048 keys, ≈0.4 s of CPU that releases the GIL) are generated
    # while the tarballs download. Into a bucket, they are also saved and the new empty
    # mirror they sign is written meanwhile (key files synced, a dozen small PUTs): a
    # clone killed after that leaves a mirror that verifies, and its next run reuses
    # the keys. Nothing names the tarballs until the manifests commit at the end.
    key_dir = (key_dirs[0] if key_dirs else target / "keys") if in_bucket else target / "keys"
    keygen = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clone-keygen")
    new_keys = keygen.submit(CloneKeys.generate, 2, owner_key) if fresh else None
    early: Future[tuple[CloneKeys, list[Path], list[str]]] | None = None
    if new_keys is not None and in_bucket:
        def keys_and_mirror(keys: Future[CloneKeys] = new_keys) -> tuple[
                CloneKeys, list[Path], list[str]]:
            made = keys.result()
            saved = made.save(key_dir)
            return made, saved, write_new_mirror(storage, made, now)

        early = keygen.submit(keys_and_mirror)
    keygen.shutdown(wait=False)
    fetcher = updater.fetcher
    uploader = _Uploader(storage) if in_bucket else None
    # a local source's tarballs are verified in place and uploaded from there (no spool)
    direct: list[FileJob] = []
    local = _local_source(fetcher)
    if uploader is not None and local is not None:
        from tiup.repository.s3_storage import MULTIPART_THRESHOLD

        direct = [j for j in wanted.values() if j.length <= MULTIPART_THRESHOLD]
    spooled = [j for j in wanted.values() if j not in direct]
    pool = DownloadPool(fetcher, target, jobs=jobs, progress=progress,
                        give_up=settings.clone_give_up,
                        on_verified=uploader.submit if uploader is not None else None)

    def transfer() -> FetchResult:
        try:
            if direct:
                assert uploader is not None and local is not None
                got = uploader.from_local(local, direct, jobs, progress)
                return _merged(got, pool.run(spooled)) if spooled else got
            return pool.run(spooled)
        finally:
            if uploader is not None:
                uploader.wait()

    ahead: _Ahead | None = None
    if in_bucket:
        # the manifests are signed while the tarballs upload (the main thread has nothing
        # else to do meanwhile), assuming every file arrives; used only if they all did
        moving = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clone-transfer")
        transferring = moving.submit(transfer)
        moving.shutdown(wait=False)
        try:
            if early is not None:
                keys, report.key_files, written = early.result()
                report.written += written
                ring = keys.keyring()
                early = None
            if ring is not None:
                ahead = _sign_ahead(storage, now, ring, settings, plans, wanted, report)
        finally:
            try:
                fetched = transferring.result()
            except BaseException:
                if ahead is not None:
                    ahead.store.close()
                raise
    else:
        fetched = transfer()
    for name in clashes:
        fetched.failed[name] = ("/" + name, "two versions name this file with different contents")
    report.downloaded = len(fetched.downloaded)
    report.downloaded_bytes = fetched.bytes_downloaded
    report.present = len(fetched.present)
    report.resumed = len(fetched.resumed)
    report.failed.extend(sorted(fetched.failed.values()))

    if early is not None:
        keys, report.key_files, written = early.result()
        report.written += written
        ring = keys.keyring()
    elif new_keys is not None and ring is None:
        keys = new_keys.result()
        report.key_files = keys.save(key_dir)
        report.written += write_new_mirror(storage, keys, now)
        ring = keys.keyring()
    elif not fresh:
        report.reused_keys = True
    assert ring is not None
    if ahead is not None and not ahead.holds(fetched):
        ahead.store.close()
        ahead = None
    if ahead is not None:
        store, changed = ahead.store, ahead.changed
        ahead.report_into(report)
    else:
        store = Store(storage, now=now, keyring=ring, lifetimes=CLONE_LIFETIMES,
                      settings=settings)
        store.open()
    try:
        store.verified.update(fetched.verified)
        if ahead is None:
            changed = _write_components(store, plans, fetched, ring, report)
        if uploader is not None:
            # uploaded while the others downloaded (tarballs first: nothing names them
            # until the manifests below commit); any not uploaded yet go with the commit
            for name in sorted(store.claimed):
                if name in fetched.verified and name not in uploader.done:
                    store.stage_tarball(name, target / name)
            report.notes.append(f"{LOCAL_INSTALL} is not written into a bucket (it "
                                "installs from a mirror directory)")
        else:
            changed |= write_bootstrap(store, any(p.comp_id == "tiup" for p in plans),
                                       fetched, opts, report, fetcher)
        if changed or fresh:
            report.written += store.commit()
        cloned_tiup = store.component("tiup") if any(p.comp_id == "tiup" for p in plans) \
            else None
    finally:
        store.close()
    if in_bucket:
        from tiup.repository.s3_storage import S3Storage

        assert isinstance(storage, S3Storage)
        write_bucket_bootstrap(storage, cloned_tiup, opts, {**held, **fetched.verified}, report,
                               fetcher, target)
        if not fetched.failed:
            shutil.rmtree(target, ignore_errors=True)
        return report
    for path in (target / WORK_DIR).glob("tiup-*.tar.gz*"):  # unverified bootstrap copies
        path.unlink(missing_ok=True)
    write_local_install(target)
    if not fetched.failed:
        remove_work_dir(target)
    return report


@dataclass
class _Ahead:
    """The component manifests of a clone into a bucket, signed and staged while its
    tarballs upload, assuming every file arrives with its signed length and hashes."""

    store: Store
    changed: bool
    assumed: dict[str, FileInfo]
    #: what signing them reported (components, versions, updated, dropped, warnings)
    scratch: CloneReport

    def holds(self, fetched: FetchResult) -> bool:
        """The assumption held: no file failed, and each arrived as the manifest says."""
        return not fetched.failed and all(fetched.verified.get(name) == info
                                          for name, info in self.assumed.items())

    def report_into(self, report: CloneReport) -> None:
        report.components += self.scratch.components
        report.versions += self.scratch.versions
        report.updated += self.scratch.updated
        report.dropped += self.scratch.dropped
        report.warnings += self.scratch.warnings


def _sign_ahead(storage: Storage, now: datetime, ring: KeyRing, settings: Settings,
                plans: list[_Plan], wanted: dict[str, FileJob],
                report: CloneReport) -> _Ahead | None:
    """Sign and stage the manifests as if every tarball of ``wanted`` will arrive as its
    manifest says (nothing is written until the commit, after they did: see
    :meth:`_Ahead.holds`). None if that fails: the usual path after the transfer then
    meets the same error and reports it."""
    assumed = {name: FileInfo(job.length, job.sha256.lower(), job.sha512.lower())
               for name, job in wanted.items()}
    store = Store(storage, now=now, keyring=ring, lifetimes=CLONE_LIFETIMES,
                  settings=settings)
    try:
        store.open()
    except TiupError:
        return None
    scratch = CloneReport(report.target, report.source)
    try:
        store.verified.update(assumed)
        changed = _write_components(store, plans, FetchResult(), ring, scratch)
    except TiupError:
        store.close()
        return None
    return _Ahead(store, changed, assumed, scratch)


#: Called with (name, source file) after a tarball's file in a local source is opened and
#: found to have the signed length, before its bytes are sent (tests change the file there).
upload_hook: Callable[[str, Path], None] | None = None


class _Uploader:
    """Uploads each verified tarball into the bucket as soon as it is in the spool, then
    removes it from the spool; or, from a local source, straight from the source's file
    (:meth:`from_local`)."""

    def __init__(self, storage: Storage):
        from tiup.repository.s3_storage import UPLOAD_THREADS, S3Storage

        assert isinstance(storage, S3Storage)
        self.storage = storage
        self.threads = UPLOAD_THREADS
        self.pool = ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="clone-upload")
        self.futures: list[Future[None]] = []
        self.done: set[str] = set()
        self._lock = threading.Lock()

    def from_local(self, fetcher: LocalFetcher, jobs: Sequence[FileJob], threads: int,
                   progress: ProgressSink | None) -> FetchResult:
        """Upload each tarball straight from the local source's own file, verifying the
        bytes as they are sent: no copy into the spool, and the file read once.

        The PUT claims the signed manifest's sha256 (``x-amz-meta-sha256``, what a later
        writer adopts an existing object by) and is signed with it as its payload hash
        (:func:`~tiup.repository.s3_storage._sign_claimed_sha256`): the server refuses a
        body without that sha256 (``XAmzContentSHA256Mismatch``), so bytes that changed
        after the manifest was verified (another process writing the source) are never
        stored, nor adopted later. The sha512 of the bytes sent is checked against the
        manifest after the PUT; an object whose sha512 differs (a source manifest whose
        two hashes disagree) is deleted again. A tarball already in the bucket with the
        manifest's sha256 is kept, after the source file's length, sha256 and sha512 are
        checked. A refused file is a failed file of the clone, as in
        :class:`DownloadPool`; a tarball name holding other bytes in the bucket raises
        (ConflictError) as the spooled uploads do."""
        from tiup.repository.s3_storage import SentBody

        sink = progress or ProgressSink()
        result = FetchResult()
        todo = sorted(jobs, key=lambda j: -j.length)
        sink.begin(len(todo), sum(j.length for j in todo))

        def fail(job: FileJob, reason: str) -> None:
            with self._lock:
                result.failed[job.name] = (f"/{job.name}", reason)
            sink.finish(job.name, False)

        def wrong(job: FileJob, info: FileInfo) -> str | None:
            bad = hashing.mismatches(job.name, info, job, where="the signed manifest")
            return bad[0].reason if bad else None

        def one(job: FileJob) -> None:
            sink.start(job.name, job.length)
            if not job.sha256:
                fail(job, "the signed manifest gives no sha256")
                return
            where = fetcher.location(job.name)
            try:
                with fetcher.open_file(job.name, job.length) as fh:
                    size = os.fstat(fh.fileno()).st_size
                    if size != job.length:
                        fail(job, wrong(job, FileInfo(size, "", "")) or "wrong length")
                        return
                    if upload_hook is not None:
                        upload_hook(job.name, Path(where))
                    body = SentBody(fh, job.length, where)
                    claimed = FileInfo(job.length, job.sha256.lower(), job.sha512.lower())
                    if self.storage.upload_body(job.name, body, claimed):
                        sent = FileInfo(job.length, claimed.sha256, body.sent_sha512() or "")
                        reason = wrong(job, sent)
                        if reason is not None:
                            # never committed; if this delete fails, the object (with
                            # the signed sha256) is an orphan that prune removes
                            with contextlib.suppress(TiupError):
                                self.storage.delete(job.name)
                            fail(job, f"{reason} (checked as it was sent)")
                            return
                    else:  # the bucket holds these bytes already: check the source's
                        fh.seek(0)
                        sent = FileInfo.of_stream(fh)
                        reason = wrong(job, sent)
                        if reason is not None:
                            fail(job, reason)
                            return
            except FetchError as exc:
                fail(job, exc.reason)
                return
            except IntegrityError as exc:
                fail(job, "its bytes do not have the sha256 of the signed manifest "
                          f"(checked as they were sent: {exc.message})")
                return
            except OSError as exc:
                fail(job, f"cannot read {where}: {exc.strerror or exc}")
                return
            with self._lock:
                self.done.add(job.name)
                result.verified[job.name] = sent
                result.downloaded.append(job.name)
                result.bytes_downloaded += sent.length
            sink.advance(job.name, job.length)
            sink.finish(job.name, True)

        with ThreadPoolExecutor(max(threads, self.threads),
                                thread_name_prefix="clone-verify-upload") as pool:
            list(pool.map(one, todo))
        return result

    def submit(self, name: str, path: Path, info: FileInfo) -> None:
        def run() -> None:
            self.storage.upload_file(name, path, info)
            with self._lock:
                self.done.add(name)
            # in the bucket now: the spool holds only what is still on its way (bounded
            # disk); a resumed run finds it there ("same bytes") if it is fetched again
            path.unlink(missing_ok=True)

        with self._lock:
            self.futures.append(self.pool.submit(run))

    def wait(self) -> None:
        """Wait for every upload. Raises the first failure (ConflictError: the bucket
        holds other bytes under a tarball's name; RepositoryError)."""
        self.pool.shutdown(wait=True)
        for fut in self.futures:
            fut.result()


def _local_source(fetcher: Fetcher) -> LocalFetcher | None:
    """The local directory a fetcher reads (through wrappers such as the updater's
    request counter), or None."""
    for _ in range(4):
        if isinstance(fetcher, LocalFetcher):
            return fetcher
        inner = getattr(fetcher, "inner", None)
        if not isinstance(inner, Fetcher):
            return None
        fetcher = inner
    return None


def _merged(a: FetchResult, b: FetchResult) -> FetchResult:
    """One result of two disjoint sets of files."""
    return FetchResult(verified={**a.verified, **b.verified},
                       downloaded=a.downloaded + b.downloaded, present=a.present + b.present,
                       failed={**a.failed, **b.failed}, gave_up=a.gave_up or b.gave_up,
                       bytes_downloaded=a.bytes_downloaded + b.bytes_downloaded,
                       resumed=a.resumed + b.resumed)


def _held(prev: MirrorState, wanted: dict[str, FileJob]) -> list[str]:
    """The wanted tarballs an earlier clone in a bucket holds with the same sha256 (its
    verified manifests name them): not fetched again."""
    out: list[str] = []
    for cid in prev.index.components:
        comp = prev.component(cid)
        if comp is None:
            continue
        for _plat, _ver, item in comp.items():
            name = item.url.lstrip("/")
            job = wanted.get(name)
            if job is not None and not item.yanked and item.sha256 == job.sha256 \
                    and item.length == job.length:
                out.append(name)
    return sorted(set(out))


def spool_dir(storage: Storage) -> Path:
    """Where a clone into ``storage`` (a bucket) fetches and verifies tarballs before it
    uploads them: kept after an interrupted run, so the next one resumes; removed after
    a complete one."""
    digest = hashlib.sha256(storage.location.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"tiup-clone-{digest}"


# --------------------------------------------------------------------- planning
@dataclass
class _Picked:
    """One source component and what the options select of it (before the target is read)."""

    comp_id: str
    source: Component
    selection: Selection
    hidden: bool
    standalone: bool


def _select(updater: VerifiedMirror, index: Index, opts: CloneOptions,
            report: CloneReport) -> list[_Picked]:
    """Read every (non-yanked) source component and select its versions; writes nothing.

    Raises:
        RepositoryError: an exact per-component version exists nowhere.
        VerificationError, FetchError: a component manifest cannot be read and verified.
    """
    picked: list[_Picked] = []
    for comp_id in sorted(index.components):
        entry = index.components[comp_id]
        if entry.yanked:
            report.notes.append(f"{comp_id} is yanked in the source: not cloned")
            continue
        source = updater.component(comp_id)
        sel = select(source, opts)
        report.notes.extend(sel.notes)
        picked.append(_Picked(comp_id, source, sel, entry.hidden, entry.standalone))
    return picked


def _plan(picked: list[_Picked], opts: CloneOptions, prev: MirrorState | None,
          report: CloneReport) -> list[_Plan]:
    plans: list[_Plan] = []
    for p in picked:
        previous = _previous_component(prev, p.comp_id, report)
        if p.selection.empty and previous is None:
            if not opts.metadata_only:
                report.dropped.append(p.comp_id)
            continue
        manifest = _merge(previous, cloned_manifest(p.source, p.selection, full=opts.full,
                                                    platforms=opts.platforms))
        plans.append(_Plan(p.comp_id, p.source, p.selection, manifest, previous, p.hidden,
                           p.standalone))
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
            name = tarball_of(plan.comp_id, plat, ver, item)
            ok = name is not None and (item.yanked or name not in fetched.failed)
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
        store.publish_component(sign_component(comp, signers), flags=flags,
                                allow_version_jump=True)
        report.updated.append(plan.comp_id)
        changed = True
    return changed
