"""Parallel, verified, resumable tarball downloads for ``tiup mirror clone``.

Every file is streamed into ``<target>/.tiup-clone/<sha256[:32]>-<name>.part`` while its
sha256 and sha512 are computed on the same bytes, then checked against the
length and hashes the source's signed manifest gives, and only then renamed
to ``<target>/<name>`` (same file system, so the rename is atomic). A part
file survives failures and runs: the next attempt re-hashes its bytes and asks
the source for the rest (``Range`` + ``If-Range``): the transport's one resumable-download
engine (:func:`tiup.transport.resume.fetch_part`) does it, with the hashing
:class:`_HashingSink` of this module.

A file already in the target with the right length and hashes is kept. So
that a re-run need not hash gigabytes again, ``<target>/.tiup-clone/verified.json``
remembers (size, mtime_ns, sha256, sha512) of every file verified; an entry is
used only while the file's size and mtime are unchanged.

A failing file is retried (the transport retries a request that does not
start; here a body that breaks is resumed as long as it makes progress, within the
transport's slow-retrieval rule and a per-file deadline, by the transport's one
:class:`~tiup.transport.retry.RetryPolicy`: 0.2 s doubling to 5 s without jitter, at
once after progress), then recorded as one short reason (:attr:`FetchResult.failed`);
the other files go on.

A source that stops answering ends the run early: once a file has failed and no byte
came from any request for ``give_up`` seconds (``TIUP_CLONE_GIVE_UP``, default 30;
0 = never; :attr:`tiup.settings.Settings.clone_give_up`), the source counts as gone.
Files still queued are not tried and files waiting to retry stop; each is recorded
with the same short reason, so the caller prints one summary instead of one long error
per file after minutes of retries.

Throughput (``docs/benchmarks.md``, "clone"): the bytes are read straight into a
few reused, page-aligned buffers, written with ``O_DIRECT`` where possible and
hashed while the next chunk arrives (:mod:`tiup.repository.clone.io`); a file
that downloads alone hashes its sha512 and writes on companion threads, so both
cores work even for one big file. A verified file is fsynced and renamed by a
finisher thread while its download thread goes on; the directory is fsynced
once at the end. Largest files start first.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tiup import hashing
from tiup.errors import FetchError, NotFoundError, TiupError
from tiup.fsutil import atomic_write, fsync_dir
from tiup.hashing import FileInfo, PipelinedHasher
from tiup.repository.clone.io import PartWriter
from tiup.settings import DEFAULT_GIVE_UP
from tiup.transport.base import Fetcher
from tiup.transport.resume import PartFile, fetch_part
from tiup.transport.retry import RetryPolicy
from tiup.transport.speed import Clock

WORK_DIR = ".tiup-clone"
CACHE_NAME = "verified.json"
_SAFE_NAME = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9_.+\-]*\.tar\.gz")
#: threads that fsync and rename finished files while the downloads go on
_FINISHERS = 2
#: longest wait between two attempts at one file, in seconds
BACKOFF_CAP = 5.0


@dataclass(frozen=True)
class FileJob:
    """One tarball to have in the target, as the source's signed manifest describes it."""

    name: str
    length: int
    sha256: str
    sha512: str = ""

    def matches(self, info: FileInfo) -> bool:
        return hashing.matches(info, self)


def safe_tarball_name(url: str) -> str | None:
    """The file name of a tarball url (``/x-v1-linux-amd64.tar.gz``), or None if unsafe."""
    name = url[1:] if url.startswith("/") else url
    return name if _SAFE_NAME.fullmatch(name) and ".." not in name else None


class ProgressSink:
    """Receives download progress; the CLI draws it. Methods may be called from threads."""

    def begin(self, files: int, total_bytes: int) -> None:
        """Work is known: ``files`` to fetch or check, ``total_bytes`` in all."""

    def start(self, name: str, length: int) -> None:
        """A file is being fetched."""

    def advance(self, name: str, delta: int) -> None:
        """``delta`` bytes of ``name`` are done (negative when a download restarts)."""

    def finish(self, name: str, ok: bool) -> None:
        """A file is done (or failed)."""


@dataclass
class FetchResult:
    """What the pool did."""

    #: name → verified length and hashes, for every file now in place
    verified: dict[str, FileInfo] = field(default_factory=dict)
    downloaded: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    #: name → (``/name``, short reason): one short line per failed file
    failed: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: why the rest was given up (the source stopped answering), if it was
    gave_up: str | None = None
    bytes_downloaded: int = 0
    resumed: list[str] = field(default_factory=list)


class VerifiedCache:
    """``verified.json``: name → [size, mtime_ns, sha256, sha512] of files already checked."""

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.Lock()
        self.entries: dict[str, list[object]] = {}
        try:
            data = json.loads(path.read_bytes())
            if isinstance(data, dict):
                self.entries = {k: v for k, v in data.items()
                                if isinstance(v, list) and len(v) == 4}
        except (OSError, ValueError):
            pass

    def lookup(self, path: Path, name: str) -> FileInfo | None:
        """The remembered info if the file's size and mtime are unchanged."""
        try:
            st = path.stat()
        except OSError:
            return None
        with self.lock:
            entry = self.entries.get(name)
        if entry is None or entry[0] != st.st_size or entry[1] != st.st_mtime_ns:
            return None
        return FileInfo(int(str(entry[0])), str(entry[2]), str(entry[3]))

    def remember(self, path: Path, name: str, info: FileInfo) -> None:
        try:
            st = path.stat()
        except OSError:
            return
        with self.lock:
            self.entries[name] = [st.st_size, st.st_mtime_ns, info.sha256, info.sha512]

    def forget(self, name: str) -> None:
        with self.lock:
            self.entries.pop(name, None)

    def save(self, keep: Iterable[str] | None = None) -> None:
        """Write the cache (only entries named in ``keep``, when given). Best effort."""
        with self.lock:
            entries = self.entries if keep is None else {
                k: v for k, v in self.entries.items() if k in set(keep)}
            data = json.dumps(entries, sort_keys=True).encode()
        with contextlib.suppress(OSError):
            atomic_write(self.path, data, 0o644, sync_dir=False)


class DownloadPool:
    """Fetch a set of tarballs from ``fetcher`` into ``target`` with ``jobs`` threads.

    A verified file is fsynced and renamed into place by one of a few finisher threads
    while its download thread goes on with the next file; the directory is fsynced once
    at the end, before :meth:`run` returns (so before any manifest can name a file).

    ``give_up`` (seconds, default 30; None, 0 or less: never; the clone passes
    ``TIUP_CLONE_GIVE_UP``) bounds the time spent on a source that stopped answering
    (module docstring); ``clock`` is the monotonic clock for it and for the per-file
    deadline.
    """

    def __init__(self, fetcher: Fetcher, target: Path, *, jobs: int = 4,
                 progress: ProgressSink | None = None, attempts: int | None = None,
                 backoff: float = 0.2, give_up: float | None = DEFAULT_GIVE_UP,
                 clock: Clock = time.monotonic,
                 on_verified: Callable[[str, Path, FileInfo], None] | None = None):
        #: told (name, path, info) of each file as soon as it is verified in place (a
        #: clone into a bucket starts its upload then, while other files download)
        self.on_verified = on_verified
        self.fetcher = fetcher
        self.target = target
        self.work = target / WORK_DIR
        self.jobs = max(1, jobs)
        self.progress = progress or ProgressSink()
        self.retry = RetryPolicy(
            attempts=attempts or (fetcher.retry.attempts if fetcher.retry else 5),
            base=backoff, cap=BACKOFF_CAP, jitter=0.0, resume_at_once=True)
        self.cache = VerifiedCache(self.work / CACHE_NAME)
        self.result = FetchResult()
        self._lock = threading.Lock()
        self._finisher: ThreadPoolExecutor | None = None
        self._finishing: list[Future[None]] = []
        self._local = threading.local()
        self._active = 0  # downloads in progress
        self._hashers: list[PipelinedHasher] = []
        self.give_up = give_up if give_up is not None and give_up > 0 else None
        self.clock = clock
        #: when a byte last came from the source (any request); a float store is atomic
        self._last_heard = clock()

    def run(self, jobs: Iterable[FileJob]) -> FetchResult:
        """Make every file present and verified; failures are recorded, never raised.

        Raises:
            RepositoryError: only when the work directory cannot be created.
        """
        todo = list({j.name: j for j in jobs}.values())
        try:
            self.work.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            from tiup.repository.files import write_failed

            raise write_failed(self.target, WORK_DIR, exc) from exc
        self.progress.begin(len(todo), sum(j.length for j in todo))
        self._last_heard = self.clock()
        # Largest first: a big file started last would run alone at the end.
        todo.sort(key=lambda j: -j.length)
        with ThreadPoolExecutor(max_workers=_FINISHERS,
                                thread_name_prefix="clone-finish") as finisher:
            self._finisher = finisher
            try:
                with ThreadPoolExecutor(max_workers=self.jobs,
                                        thread_name_prefix="clone-fetch") as pool:
                    list(pool.map(self._one, todo))
            finally:
                for hasher in self._hashers:
                    hasher.close()
        self._finisher = None
        for fut in self._finishing:
            fut.result()  # re-raise a bug; expected failures are recorded
        if self.result.downloaded:
            fsync_dir(self.target)
        self.cache.save()
        return self.result

    # ----------------------------------------------------------------- one file
    def _fail(self, job: FileJob, reason: str) -> None:
        self.cache.forget(job.name)
        with self._lock:
            self.result.failed[job.name] = (f"/{job.name}", reason)
        self.progress.finish(job.name, False)

    def _heard(self) -> None:
        """The source just sent something."""
        self._last_heard = self.clock()

    def _gone(self) -> str | None:
        """Why the source counts as gone (see the module docstring), or None."""
        if self.result.gave_up is not None or self.give_up is None:
            return self.result.gave_up
        silent = self.clock() - self._last_heard
        if silent < self.give_up:
            return None
        with self._lock:
            if self.result.gave_up is None:
                self.result.gave_up = (f"the source stopped answering (silent for "
                                       f"{silent:.0f} s)")
            return self.result.gave_up

    def _one(self, job: FileJob) -> None:
        dest = self.target / job.name
        try:
            info = self._present(job, dest)
            if info is not None:
                with self._lock:
                    self.result.present.append(job.name)
                    self.result.verified[job.name] = info
                self.progress.advance(job.name, job.length)
                if self.on_verified is not None:
                    self.on_verified(job.name, dest, info)
                return
            if self.result.gave_up is not None:
                self._fail(job, f"not tried: {self.result.gave_up}")
                return
            self.progress.start(job.name, job.length)
            part, info, resumed = self._download(job)
        except FetchError as exc:
            if isinstance(exc, NotFoundError):
                self._heard()  # an answer, if not the one hoped for
            self._fail(job, exc.reason)
            self._gone()  # a failure after a long silence: the source is gone
            return
        except TiupError as exc:
            self._fail(job, exc.message)
            return
        except OSError as exc:
            self._fail(job, f"cannot write {dest}: {exc.strerror or exc}")
            return
        assert self._finisher is not None
        fut = self._finisher.submit(self._place, job, part, dest, info, resumed)
        with self._lock:
            self._finishing.append(fut)

    def _place(self, job: FileJob, part: PartFile, dest: Path, info: FileInfo,
               resumed: bool) -> None:
        """fsync and rename a verified part into place (a finisher thread)."""
        try:
            part.finish(dest, sync_dir=False)
        except TiupError as exc:
            self._fail(job, exc.message)
            return
        self.cache.remember(dest, job.name, info)
        with self._lock:
            self.result.downloaded.append(job.name)
            self.result.verified[job.name] = info
            self.result.bytes_downloaded += info.length
            if resumed:
                self.result.resumed.append(job.name)
        self.progress.finish(job.name, True)
        if self.on_verified is not None:
            self.on_verified(job.name, dest, info)

    def _present(self, job: FileJob, dest: Path) -> FileInfo | None:
        try:
            st = dest.stat()
        except FileNotFoundError:
            return None
        if not dest.is_file() or st.st_size != job.length:
            return None
        info = self.cache.lookup(dest, job.name)
        if info is None:
            info = FileInfo.of_file(dest)
            self.cache.remember(dest, job.name, info)
        return info if job.matches(info) else None

    def _download(self, job: FileJob) -> tuple[PartFile, FileInfo, bool]:
        """Fetch ``job`` into its part file and verify it (not yet in place)."""
        # named by content and name: two names with the same bytes never share a part
        part = PartFile(self.work / f"{job.sha256.lower()[:32]}-{job.name}.part",
                        self.fetcher.location(job.name))
        resumed = part.size > 0
        hasher = self._hasher()
        with self._lock:
            self._active += 1
        progress = _Advance(self.progress, job.name)
        try:
            info = self._fetch_part(job, part, hasher, progress)
            if not job.matches(info) and resumed:
                # The earlier bytes may come from a file that has changed since: start over
                # (the progress goes back by what was counted).
                part.remove()
                info = self._fetch_part(job, part, hasher, progress)
        finally:
            with self._lock:
                self._active -= 1
        if not job.matches(info):
            part.remove()
            wrong = hashing.mismatches(job.name, info, job, where="the signed manifest")[0]
            raise FetchError(str(wrong), file=job.name,
                             hint="the source's tarball does not match its signed manifest",
                             reason=wrong.reason)
        return part, info, resumed

    def _hasher(self) -> PipelinedHasher:
        """This download thread's hasher (its buffers and sha512 thread are reused)."""
        hasher: PipelinedHasher | None = getattr(self._local, "hasher", None)
        if hasher is None:
            hasher = self._local.hasher = PipelinedHasher()
            with self._lock:
                self._hashers.append(hasher)
        return hasher

    def _fetch_part(self, job: FileJob, part: PartFile, hasher: PipelinedHasher,
                    progress: _Advance) -> FileInfo:
        """Bring ``part`` to the whole file through the transport's resume engine."""
        hasher.sync()
        hasher.reset()

        def before_wait(exc: TiupError, failures: int, delay: float) -> None:
            gone = self._gone()
            if gone is not None:
                raise FetchError(f"{exc.message} ({gone})", file=job.name,
                                 reason=f"{getattr(exc, 'reason', exc.message)}; {gone}"
                                 ) from exc

        fetch_part(self.fetcher, job.name, part, length=job.length,
                   guard=self.fetcher.speed.guard(self.fetcher.location(job.name),
                                                  job.length, self.clock),
                   retry=self.retry, sink=_HashingSink(self, hasher), progress=progress,
                   must_complete=True, before_wait=before_wait)
        return hasher.info()


class _Advance:
    """Turns the engine's sizes into the deltas a :class:`ProgressSink` takes."""

    def __init__(self, sink: ProgressSink, name: str):
        self.sink, self.name, self.last = sink, name, 0

    def __call__(self, size: int) -> None:
        delta, self.last = size - self.last, size
        if delta:
            self.sink.advance(self.name, delta)


class _HashingSink:
    """The :class:`~tiup.transport.resume.Sink` of a clone download: the body is read into
    the hasher's page-aligned buffers, written by :class:`~tiup.repository.clone.io.PartWriter`
    and hashed (sha256 here, sha512 on the companion thread) while the next chunk arrives."""

    def __init__(self, pool: DownloadPool, hasher: PipelinedHasher):
        self.pool = pool
        self.hasher = hasher
        self.out: PartWriter | None = None
        self.alone = False
        self._lent: int | None = None  # the buffer lent to the engine
        self._start = 0  # where the new bytes start in it (after the writer's carry)

    def begin(self, part: PartFile) -> None:
        if self.hasher.size != part.size:  # bytes hashed that did not reach the file
            self.hasher.sync()
            self.hasher.reset()
            if part.size:
                _hash_prefix(part.path, part.size, self.hasher)
                part.size = self.hasher.size

    def open(self, part: PartFile) -> None:
        self.pool._heard()
        with self.pool._lock:
            self.alone = self.pool._active < 2
        self.out = PartWriter(part.path, part.size, self.hasher, background=self.alone)

    def buffer(self) -> memoryview:
        assert self.out is not None
        i = self._lent = self.hasher.take()
        buf = self.hasher.buffers[i]
        self._start = len(self.out.carry)
        buf[:self._start] = self.out.carry
        return buf[self._start:]

    def commit(self, n: int) -> None:
        assert self.out is not None and self._lent is not None
        i, end = self._lent, self._start + n
        self.out.write(i, end)
        self._lent = None
        self.pool._heard()
        self.hasher.update(i, self._start, end, inline=not self.alone)

    def abandon(self) -> None:
        if self._lent is not None:
            self.hasher.give_back(self._lent)
            self._lent = None

    def close(self, part: PartFile) -> None:
        out, self.out = self.out, None
        if out is not None:
            try:
                out.close()
            finally:
                part.size = out.size


def _hash_prefix(path: Path, size: int, hasher: PipelinedHasher) -> None:
    """Hash the first ``size`` bytes of a part file (what an earlier run downloaded)."""
    with open(path, "rb", buffering=0) as fh:
        left = size
        while left > 0:
            i = hasher.take()
            n = fh.readinto(hasher.buffers[i][:min(left, len(hasher.buffers[i]))])
            if not n:
                hasher.give_back(i)
                break
            hasher.update(i, 0, n)
            left -= n
    hasher.sync()


def remove_work_dir(target: Path) -> None:
    """Drop leftover part files (after a fully successful clone); keeps ``verified.json``."""
    work = target / WORK_DIR
    with contextlib.suppress(OSError):
        for entry in os.scandir(work):
            if entry.name.endswith((".part", ".part.meta")):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
