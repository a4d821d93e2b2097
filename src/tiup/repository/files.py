"""Low-level file steps of a mirror write: the lock, staged files, ordered renames
(the parts of :class:`~tiup.repository.local_storage.LocalStorage`).

Every file is first written as ``<mirror>/.tmp-<random>-<name>`` (same
directory, so the rename is atomic), flushed and fsynced; a commit then
renames the staged files over their final names group by group, fsyncing the
directory after each group (``behavior.md`` §12.3). Leftover ``.tmp-*``
files of a writer that died are removed by the next writer, under the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from tiup.errors import ConflictError, RepositoryError
from tiup.fsutil import TMP_PREFIX, fsync_dir, tmp_name
from tiup.hashing import CHUNK, FileInfo, Hasher
from tiup.repository.storage import CHANGED, Mode, Tag, Transaction, Write
from tiup.settings import SYNC_SCRIPT_ENV

LOCK_NAME = "lock"
FILE_MODE = 0o644


def write_failed(directory: Path, what: str, exc: OSError) -> RepositoryError:
    """The error for a failed write into a mirror directory."""
    return RepositoryError(
        f"cannot write {what} in mirror {directory}: {exc.strerror or exc}; "
        "the mirror was left unchanged",
        file=str(directory),
        hint="check that the directory is writable and the disk is not full",
    )


class MirrorLock:
    """The exclusive ``flock`` on ``<mirror>/lock`` that serialises writers.

    The kernel releases a flock when its holder dies, so a crashed writer never
    leaves a stale lock behind.
    """

    def __init__(self, directory: Path, timeout: float):
        self.directory = directory
        self.timeout = timeout
        self.fd: int | None = None

    def acquire(self) -> None:
        """Raises ConflictError (busy past the timeout), RepositoryError (cannot open)."""
        path = self.directory / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError as exc:
            raise write_failed(self.directory, LOCK_NAME, exc) from exc
        deadline = time.monotonic() + max(0.0, self.timeout)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise ConflictError(
                        f"mirror {self.directory} is locked by another writer",
                        file=str(path),
                        hint="wait for the other command to finish, or raise --lock-timeout",
                    ) from None
                time.sleep(0.02)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def remove_leftovers(directory: Path) -> list[str]:
    """Delete ``.tmp-*`` files of interrupted writes (call only under the lock)."""
    removed: list[str] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.startswith(TMP_PREFIX) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(entry.name)
    return removed


class Staging(Transaction):
    """Files written under temporary names, waiting for an ordered commit: the
    :class:`~tiup.repository.storage.Transaction` of a mirror directory.

    ``sync_script`` (``TIUP_MIRROR_SYNC_SCRIPT``, :func:`run_sync_script`) runs after the
    commit; None: no script. ``tag`` gives the current tag of a file, for the check of a
    :attr:`~tiup.repository.storage.Mode.SWAP` write (default: no such writes).
    """

    def __init__(self, directory: Path, *, sync_script: str | None = None,
                 tag: Callable[[str], Tag | None] | None = None):
        self.directory = directory
        self.sync_script = sync_script
        self._tag = tag
        #: final name → temporary path
        self.files: dict[str, Path] = {}

    def _tmp(self, name: str) -> Path:
        old = self.files.pop(name, None)
        if old is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(old)
        return tmp_name(self.directory / name)

    def put_bytes(self, name: str, data: bytes) -> FileInfo:
        """Stage ``data`` as ``name``. Raises RepositoryError."""
        tmp = self._tmp(name)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            finally:
                self.files[name] = tmp
        except OSError as exc:
            raise write_failed(self.directory, name, exc) from exc
        return FileInfo.of_bytes(data)

    def put_file(self, name: str, source: Path) -> FileInfo:
        """Copy ``source`` into the staging area as ``name``, hashing what is written.

        Raises:
            RepositoryError: the copy failed (source unreadable, disk full, ...).
        """
        tmp = self._tmp(name)
        hasher = Hasher()
        try:
            with open(source, "rb") as src:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
                self.files[name] = tmp
                with os.fdopen(fd, "wb") as dst:
                    while block := src.read(CHUNK):
                        dst.write(block)
                        hasher.update(block)
                    dst.flush()
                    os.fsync(dst.fileno())
        except OSError as exc:
            raise write_failed(self.directory, name, exc) from exc
        return hasher.info()

    def put_stream(self, name: str, chunks: Iterable[bytes]) -> FileInfo:
        """Write the bytes ``chunks`` yields into the staging area as ``name``, hashing
        them as they pass (one chunk in memory at a time).

        Raises:
            RepositoryError: the write failed (disk full, ...); whatever ``chunks`` raises
            (the partial file stays staged and goes with :meth:`discard`).
        """
        from concurrent.futures import Future, ThreadPoolExecutor

        tmp = self._tmp(name)
        hasher = Hasher()
        # hashlib releases the GIL: the hashes of one block run on another core while
        # this thread writes it and reads the next (at most two blocks in flight)
        pending: list[Future[None]] = []
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage-hash") as pool:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
                self.files[name] = tmp
                with os.fdopen(fd, "wb") as dst:
                    for block in chunks:
                        pending.append(pool.submit(hasher.update, block))
                        dst.write(block)
                        if len(pending) > 1:
                            pending.pop(0).result()
                    dst.flush()
                    os.fsync(dst.fileno())
                for job in pending:
                    job.result()
        except OSError as exc:
            raise write_failed(self.directory, name, exc) from exc
        return hasher.info()

    def has(self, name: str) -> bool:
        return name in self.files

    def commit(self, groups: Sequence[Sequence[Write]]) -> list[str]:
        """Rename the staged files of each group into place, fsyncing the directory per group.

        The caller holds the mirror lock, so no other writer is live: a ``NEW`` name that
        exists can only be a file a writer that died renamed into place and nothing
        references (the store writes versions above the snapshot's); it is replaced. A
        ``SWAP`` write is checked against the file's current tag first (a read, no step).

        Raises:
            ConflictError: a ``SWAP`` file changed since it was read (``code`` "changed").
            RepositoryError: a rename failed; files of earlier groups are in place
                but not yet referenced by ``timestamp.json`` unless it was renamed.
        """
        done: list[str] = []
        for group in groups:
            for write in group:
                name = write.name
                if write.mode is Mode.SWAP:
                    self._check_unchanged(write)
                tmp = self.files[name]
                try:
                    os.replace(tmp, self.directory / name)
                except OSError as exc:
                    raise write_failed(self.directory, name, exc) from exc
                del self.files[name]
                done.append(name)
            fsync_dir(self.directory)
        run_sync_script(self.directory, done, self.sync_script)
        return done

    def _check_unchanged(self, write: Write) -> None:
        current = self._tag(write.name) if self._tag is not None else None
        if self._tag is None or current != write.tag:
            raise ConflictError(
                f"{write.name} of mirror {self.directory} changed since this writer read it",
                file=write.name, code=CHANGED,
                hint="another program wrote the mirror without its lock; run the command again")

    def discard(self) -> None:
        """Remove every staged file (after a failure)."""
        for tmp in self.files.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self.files.clear()


def run_sync_script(directory: Path, names: list[str], script: str | None) -> None:
    """Run ``script <dir>`` (``$TIUP_MIRROR_SYNC_SCRIPT``, :attr:`Settings.sync_script
    <tiup.settings.Settings.sync_script>`; None: nothing) where ``dir`` holds the files
    just committed.

    The files are hard links (copies across file systems) in a temporary directory
    removed afterwards, as TiUP passes its transaction directory. The script's
    output goes to tiup's own stdout/stderr.

    Raises:
        RepositoryError: the script could not run or exited non-zero; the commit stands.
    """
    if not script or not names:
        return
    import subprocess  # here: only a mirror with a sync script runs one

    with tempfile.TemporaryDirectory(prefix="tiup-commit-") as tmp:
        for name in names:
            try:
                os.link(directory / name, Path(tmp) / name)
            except OSError:
                shutil.copy2(directory / name, Path(tmp) / name)
        try:
            proc = subprocess.run([script, tmp], check=False)
        except OSError as exc:
            raise RepositoryError(
                f"changes committed, but sync script failed: cannot run {script}: "
                f"{exc.strerror or exc}", hint=f"check {SYNC_SCRIPT_ENV}") from exc
    if proc.returncode != 0:
        raise RepositoryError(
            f"changes committed, but sync script failed: {script} exited with status "
            f"{proc.returncode}", hint=f"run it again by hand, or fix {SYNC_SCRIPT_ENV}")
