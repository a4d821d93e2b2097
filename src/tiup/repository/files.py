"""Low-level file steps of a mirror write: the lock, staged files, ordered renames.

Every file is first written as ``<mirror>/.tmp-<random>-<name>`` (same
directory, so the rename is atomic), flushed and fsynced; a commit then
renames the staged files over their final names group by group, fsyncing the
directory after each group (``behavior.md`` §12.3). Leftover ``.tmp-*``
files of a writer that died are removed by the next writer, under the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tiup.errors import ConflictError, RepositoryError
from tiup.fsutil import TMP_PREFIX, fsync_dir, tmp_name

LOCK_NAME = "lock"
FILE_MODE = 0o644
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class FileInfo:
    """Length and hashes of bytes actually written or read."""

    length: int
    sha256: str
    sha512: str

    @classmethod
    def of_bytes(cls, data: bytes) -> FileInfo:
        return cls(len(data), hashlib.sha256(data).hexdigest(), hashlib.sha512(data).hexdigest())


def hash_file(path: Path) -> FileInfo:
    """Length, sha256 and sha512 of a file, read once. Raises OSError."""
    h256, h512, size = hashlib.sha256(), hashlib.sha512(), 0
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            size += len(block)
            h256.update(block)
            h512.update(block)
    return FileInfo(size, h256.hexdigest(), h512.hexdigest())


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


class Staging:
    """Files written under temporary names, waiting for an ordered commit."""

    def __init__(self, directory: Path):
        self.directory = directory
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
        h256, h512, size = hashlib.sha256(), hashlib.sha512(), 0
        try:
            with open(source, "rb") as src:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
                self.files[name] = tmp
                with os.fdopen(fd, "wb") as dst:
                    while block := src.read(_CHUNK):
                        dst.write(block)
                        h256.update(block)
                        h512.update(block)
                        size += len(block)
                    dst.flush()
                    os.fsync(dst.fileno())
        except OSError as exc:
            raise write_failed(self.directory, name, exc) from exc
        return FileInfo(size, h256.hexdigest(), h512.hexdigest())

    def has(self, name: str) -> bool:
        return name in self.files

    def commit(self, groups: list[list[str]]) -> list[str]:
        """Rename the staged files of each group into place, fsyncing the directory per group.

        Raises:
            RepositoryError: a rename failed; files of earlier groups are in place
                but not yet referenced by ``timestamp.json`` unless it was renamed.
        """
        done: list[str] = []
        for group in groups:
            for name in group:
                tmp = self.files[name]
                try:
                    os.replace(tmp, self.directory / name)
                except OSError as exc:
                    raise write_failed(self.directory, name, exc) from exc
                del self.files[name]
                done.append(name)
            fsync_dir(self.directory)
        run_sync_script(self.directory, done)
        return done

    def discard(self) -> None:
        """Remove every staged file (after a failure)."""
        for tmp in self.files.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self.files.clear()


#: A program run after every commit with a directory holding the changed files.
SYNC_SCRIPT_ENV = "TIUP_MIRROR_SYNC_SCRIPT"


def run_sync_script(directory: Path, names: list[str]) -> None:
    """Run ``$TIUP_MIRROR_SYNC_SCRIPT <dir>`` where ``dir`` holds the files just committed.

    The files are hard links (copies across file systems) in a temporary directory
    removed afterwards, as TiUP passes its transaction directory. The script's
    output goes to tiup's own stdout/stderr.

    Raises:
        RepositoryError: the script could not run or exited non-zero; the commit stands.
    """
    script = os.environ.get(SYNC_SCRIPT_ENV)
    if not script or not names:
        return
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
