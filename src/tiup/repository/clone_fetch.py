"""Parallel, verified, resumable tarball downloads for ``tiup mirror clone``.

Every file is streamed into ``<target>/.tiup-clone/<sha256[:32]>-<name>.part`` while its
sha256 and sha512 are computed on the same bytes, then checked against the
length and hashes the source's signed manifest gives, and only then renamed
to ``<target>/<name>`` (same file system, so the rename is atomic). A part
file survives failures and runs: the next attempt re-hashes its bytes and asks
the source for the rest (``Range`` + ``If-Range``, through
:meth:`~tiup.transport.base.Fetcher.stream_range`).

A file already in the target with the right length and hashes is kept. So
that a re-run need not hash gigabytes again, ``<target>/.tiup-clone/verified.json``
remembers (size, mtime_ns, sha256, sha512) of every file verified; an entry is
used only while the file's size and mtime are unchanged.

A failing file is retried (the transport retries a request that does not
start; here a body that breaks is resumed as long as it makes progress, within the
transport's slow-retrieval rule and a per-file deadline), then recorded as one short
reason (:attr:`FetchResult.failed`); the other files go on.

A source that stops answering ends the run early: once a file has failed and no byte
came from any request for ``give_up`` seconds (``TIUP_CLONE_GIVE_UP``, default 30;
0 = never), the source counts as gone. Files still queued are not tried and files
waiting to retry stop; each is recorded with the same short reason, so the caller
prints one summary instead of one long error per file after minutes of retries.

Throughput (``docs/benchmarks.md``, "clone"): the bytes are read straight into a
few reused, page-aligned buffers, written with ``O_DIRECT`` where possible and
hashed while the next chunk arrives (:mod:`tiup.repository.clone_io`); a file
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
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tiup.errors import FetchError, NotFoundError, SizeLimitError, TiupError
from tiup.fsutil import atomic_write, fsync_dir
from tiup.repository.clone_io import PartWriter, PipelinedHasher
from tiup.repository.files import FileInfo, hash_file
from tiup.transport.base import Chunks, Fetcher, PartFile, TransientError
from tiup.transport.speed import Clock, Guard

WORK_DIR = ".tiup-clone"
CACHE_NAME = "verified.json"
_SAFE_NAME = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9_.+\-]*\.tar\.gz")
#: seconds without a byte from the source (after a failure) before the rest is given up
DEFAULT_GIVE_UP = 30.0
#: threads that fsync and rename finished files while the downloads go on
_FINISHERS = 2


@dataclass(frozen=True)
class FileJob:
    """One tarball to have in the target, as the source's signed manifest describes it."""

    name: str
    length: int
    sha256: str
    sha512: str = ""

    def matches(self, info: FileInfo) -> bool:
        return (info.length == self.length and info.sha256 == self.sha256.lower()
                and (not self.sha512 or info.sha512 == self.sha512.lower()))


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

    ``give_up`` (seconds; default ``TIUP_CLONE_GIVE_UP``, else 30; 0 or less: never)
    bounds the time spent on a source that stopped answering (module docstring);
    ``clock`` is the monotonic clock for it and for the per-file deadline.

    Raises (constructor):
        UsageError: ``TIUP_CLONE_GIVE_UP`` is not a number.
    """

    def __init__(self, fetcher: Fetcher, target: Path, *, jobs: int = 4,
                 progress: ProgressSink | None = None, attempts: int | None = None,
                 backoff: float = 0.2, give_up: float | None = None,
                 clock: Clock = time.monotonic):
        self.fetcher = fetcher
        self.target = target
        self.work = target / WORK_DIR
        self.jobs = max(1, jobs)
        self.progress = progress or ProgressSink()
        self.attempts = attempts or int(getattr(fetcher, "attempts", 5))
        self.backoff = backoff
        self.cache = VerifiedCache(self.work / CACHE_NAME)
        self.result = FetchResult()
        self._lock = threading.Lock()
        self._finisher: ThreadPoolExecutor | None = None
        self._finishing: list[Future[None]] = []
        self._local = threading.local()
        self._active = 0  # downloads in progress
        self._hashers: list[PipelinedHasher] = []
        if give_up is None:
            from tiup.transport.httputil import env_seconds

            give_up = env_seconds("TIUP_CLONE_GIVE_UP", DEFAULT_GIVE_UP)
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

    def _present(self, job: FileJob, dest: Path) -> FileInfo | None:
        try:
            st = dest.stat()
        except FileNotFoundError:
            return None
        if not dest.is_file() or st.st_size != job.length:
            return None
        info = self.cache.lookup(dest, job.name)
        if info is None:
            info = hash_file(dest)
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
        try:
            info = self._fetch_part(job, part, hasher)
            if not job.matches(info) and resumed:
                # The earlier bytes may come from a file that has changed since: start over.
                part.remove()
                self.progress.advance(job.name, -info.length)
                info = self._fetch_part(job, part, hasher)
        finally:
            with self._lock:
                self._active -= 1
        if not job.matches(info):
            part.remove()
            raise FetchError(_mismatch(job, info), file=job.name,
                             hint="the source's tarball does not match its signed manifest",
                             reason=_mismatch(job, info, short=True))
        return part, info, resumed

    def _hasher(self) -> PipelinedHasher:
        """This download thread's hasher (its buffers and sha512 thread are reused)."""
        hasher: PipelinedHasher | None = getattr(self._local, "hasher", None)
        if hasher is None:
            hasher = self._local.hasher = PipelinedHasher()
            with self._lock:
                self._hashers.append(hasher)
        return hasher

    def _fetch_part(self, job: FileJob, part: PartFile, hasher: PipelinedHasher) -> FileInfo:
        hasher.sync()
        hasher.reset()
        if part.size > job.length:
            part.reset()
        if part.size:
            _hash_prefix(part.path, part.size, hasher)
            part.size = hasher.size
            self.progress.advance(job.name, part.size)
        failures = 0
        guard = self.fetcher.speed.guard(self.fetcher.location(job.name), job.length,
                                         self.clock)
        while True:
            if hasher.size != part.size:  # bytes hashed that did not reach the file
                hasher.sync()
                hasher.reset()
                _hash_prefix(part.path, part.size, hasher)
                part.size = hasher.size
            before = part.size
            try:
                self._attempt(job, part, hasher, guard)
                if part.size < job.length:
                    raise TransientError(
                        f"download from {self.fetcher.location(job.name)} ended after "
                        f"{part.size} of {job.length} bytes", file=job.name)
                return hasher.info()
            except NotFoundError:
                raise
            except SizeLimitError:
                part.remove()
                raise
            except TransientError as exc:
                if part.size > before:
                    failures = 0
                failures += 1
                if failures >= self.attempts:
                    raise FetchError(f"{exc.message} (gave up after {failures} attempts "
                                     "without progress)", file=job.name,
                                     reason=f"{exc.reason} ({failures} attempts)") from exc
                gone = self._gone()
                if gone is not None:
                    raise FetchError(f"{exc.message} ({gone})", file=job.name,
                                     reason=f"{exc.reason}; {gone}") from exc
                delay = min(self.backoff * 2 ** (failures - 1), 5.0) \
                    if part.size == before else 0.0
                guard.check(ahead=delay)
                if delay:
                    slept_from = self.clock()
                    time.sleep(delay)
                    guard.waited(self.clock() - slept_from)

    def _attempt(self, job: FileJob, part: PartFile, hasher: PipelinedHasher,
                 guard: Guard) -> None:
        offset = part.size
        with self.fetcher.stream_range(job.name, job.length, offset,
                                       if_range=part.validator if offset else None) as body:
            self._heard()
            if body.start != offset:
                self.progress.advance(job.name, -offset)
                part.reset()
                hasher.sync()
                hasher.reset()
            part.remember(body.validator)
            with self._lock:
                alone = self._active < 2
            out = PartWriter(part.path, part.size, hasher, background=alone)
            try:
                self._receive(job, body, out, hasher, alone, guard)
            finally:
                try:
                    out.close()
                finally:
                    part.size = out.size

    def _receive(self, job: FileJob, body: Chunks, out: PartWriter,
                 hasher: PipelinedHasher, alone: bool, guard: Guard) -> None:
        """Read the body into the hasher's buffers, write and hash every chunk."""
        while True:
            i = hasher.take()
            buf = hasher.buffers[i]
            start = len(out.carry)
            try:
                buf[:start] = out.carry
                # one byte more than is left: a longer file is noticed
                want = min(len(buf) - start, job.length - hasher.size + 1)
                n = body.readinto(buf[start:start + want])
                if hasher.size + n > job.length:
                    raise SizeLimitError(
                        f"{self.fetcher.location(job.name)} is larger than the "
                        f"{job.length} bytes its manifest declares", file=job.name)
                if n:
                    out.write(i, start + n)
            except BaseException:
                hasher.give_back(i)
                raise
            if not n:
                hasher.give_back(i)
                return
            self._last_heard = self.clock()
            hasher.update(i, start, start + n, inline=not alone)
            self.progress.advance(job.name, n)
            guard.feed(n)


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


def _mismatch(job: FileJob, info: FileInfo, *, short: bool = False) -> str:
    if info.length != job.length:
        if short:
            return f"length {info.length}, the signed manifest says {job.length}"
        return f"file length mismatch, expected: {job.length}, got: {info.length}"
    algo = "sha256" if info.sha256 != job.sha256.lower() else "sha512"
    if short:
        return f"{algo} differs from the signed manifest"
    if algo == "sha256":
        return f"file sha256 hash mismatch, expected: {job.sha256}, got: {info.sha256}"
    return f"file sha512 hash mismatch, expected: {job.sha512}, got: {info.sha512}"


def remove_work_dir(target: Path) -> None:
    """Drop leftover part files (after a fully successful clone); keeps ``verified.json``."""
    work = target / WORK_DIR
    with contextlib.suppress(OSError):
        for entry in os.scandir(work):
            if entry.name.endswith((".part", ".part.meta")):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
