"""A mirror in a directory (on disk, NFS, a mounted share): the :class:`Storage` of today.

Writers are serialised by the ``flock`` on ``<mirror>/lock``
(:class:`~tiup.repository.files.MirrorLock`); a transaction is a
:class:`~tiup.repository.files.Staging`: files written as ``.tmp-<random>-<name>`` in
the mirror directory and fsynced, then renamed group by group with the directory
fsynced after each group, and ``.tmp-*`` leftovers of a writer that died removed by the
next one, under the lock (``behavior.md`` §12.3).

A tag is the sha256 of a file's bytes. Reads go through
:class:`~tiup.transport.local.LocalFetcher` (regular files only, size caps), so a
FIFO or a device in place of a mirror file is refused, never waited on.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import shutil
import stat
from pathlib import Path

from tiup.errors import ConflictError, FetchError, NotFoundError, RepositoryError
from tiup.fsutil import atomic_write
from tiup.hashing import CHUNK, FileInfo
from tiup.repository.files import (
    FILE_MODE,
    MirrorLock,
    Staging,
    remove_leftovers,
    write_failed,
)
from tiup.repository.storage import CHANGED, EXISTS, Entry, Storage, Tag
from tiup.transport.local import LocalFetcher

#: how long a single-file ``replace`` waits for the lock when the caller does not hold it
DEFAULT_LOCK_TIMEOUT = 60.0


def tag_of(data: bytes) -> Tag:
    """The tag of bytes in a directory mirror: their sha256."""
    return Tag(hashlib.sha256(data).hexdigest())


class _TaggingFetcher(LocalFetcher):
    """The local transport, recording the tag of each whole file it returns."""

    def __init__(self, storage: LocalStorage):
        super().__init__(str(storage.directory))
        self._storage = storage

    def fetch(self, resource: str, max_size: int | None) -> bytes:
        data = super().fetch(resource, max_size)
        self._storage.record_read(resource, tag_of(data))
        return data


class LocalStorage(Storage):
    """The files of a mirror directory (see the module docstring).

    ``sync_script`` (``TIUP_MIRROR_SYNC_SCRIPT``) runs after each commit with the files
    just committed (:func:`~tiup.repository.files.run_sync_script`); None: no script.
    """

    def __init__(self, directory: str | Path, *, sync_script: str | None = None):
        super().__init__()
        self.directory = Path(directory).expanduser().resolve()
        self.location = str(self.directory)
        self.sync_script = sync_script
        self._lock: MirrorLock | None = None
        self._depth = 0

    def _path(self, name: str) -> Path:
        """The path of ``name`` (relative, no ``..``). Raises NotFoundError."""
        parts = name.split("/")
        if (not name or name.startswith("/") or "\\" in name or "\0" in name
                or any(p in ("", ".", "..") for p in parts)):
            raise NotFoundError(f"{name!r} is not a file name in mirror {self.location}",
                                file=name)
        return self.directory.joinpath(*parts)

    def location_of(self, name: str) -> str:
        return str(self.directory / name)

    # ----------------------------------------------------------------- reads
    def fetcher(self) -> LocalFetcher:
        try:
            return _TaggingFetcher(self)
        except FetchError as exc:
            raise RepositoryError(f"mirror {self.location} is not a directory",
                                  file=self.location,
                                  hint="create one with `tiup mirror init <dir>`") from exc

    def read(self, name: str, max_size: int | None = None) -> bytes:
        self._path(name)
        with LocalFetcher(str(self.directory)) as fetcher:
            return fetcher.fetch(name, max_size)

    def stat(self, name: str) -> Entry | None:
        path = self._path(name)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _read_failed(path, exc) from exc
        if stat.S_ISDIR(st.st_mode):
            size = sum(e.size for e in self.list(name.rstrip("/") + "/"))
            return Entry(name, size, st.st_mtime, directory=True)
        if not stat.S_ISREG(st.st_mode):
            return None
        return Entry(name, st.st_size, st.st_mtime)

    def list(self, prefix: str = "") -> list[Entry]:
        out: list[Entry] = []
        if prefix.endswith("/"):
            top = self._path(prefix.rstrip("/"))
            for root, _dirs, files in os.walk(top):
                for file in files:
                    path = Path(root, file)
                    try:
                        st = path.stat()
                    except OSError:
                        continue
                    if stat.S_ISREG(st.st_mode):
                        rel = path.relative_to(self.directory).as_posix()
                        out.append(Entry(rel, st.st_size, st.st_mtime))
            return sorted(out, key=lambda e: e.name)
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    if not entry.name.startswith(prefix):
                        continue
                    try:
                        if not entry.is_file():
                            continue
                        st = entry.stat()
                    except OSError:
                        continue
                    out.append(Entry(entry.name, st.st_size, st.st_mtime))
        except OSError as exc:
            raise _read_failed(self.directory, exc) from exc
        return sorted(out, key=lambda e: e.name)

    def file_info(self, name: str) -> FileInfo:
        path = self._path(name)
        try:
            return FileInfo.of_file(path)
        except FileNotFoundError as exc:
            raise NotFoundError(f"{name} not found in mirror {self.location}",
                                file=str(path), reason="not found") from exc
        except OSError as exc:
            raise _read_failed(path, exc) from exc

    def tag(self, name: str) -> Tag | None:
        path = self._path(name)
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as fh:
                while block := fh.read(CHUNK):
                    digest.update(block)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _read_failed(path, exc) from exc
        return Tag(digest.hexdigest())

    # ---------------------------------------------------------- single writes
    def put_new(self, name: str, data: bytes) -> Tag:
        path = self._path(name)
        try:
            atomic_write(path, data, FILE_MODE, overwrite=False)
        except FileExistsError as exc:
            raise ConflictError(f"{name} already exists in mirror {self.location}",
                                file=name, code=EXISTS) from exc
        except OSError as exc:
            raise write_failed(self.directory, name, exc) from exc
        return tag_of(data)

    def replace(self, name: str, data: bytes, expected: Tag | None) -> Tag:
        path = self._path(name)
        self.acquire(DEFAULT_LOCK_TIMEOUT)
        try:
            if self.tag(name) != expected:
                raise ConflictError(
                    f"{name} of mirror {self.location} changed since it was read",
                    file=name, code=CHANGED, hint="read it again and retry")
            try:
                atomic_write(path, data, FILE_MODE)
            except OSError as exc:
                raise write_failed(self.directory, name, exc) from exc
        finally:
            self.release()
        return tag_of(data)

    def delete(self, name: str) -> bool:
        path = self._path(name)
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise RepositoryError(f"cannot delete {path}: {exc.strerror or exc}",
                                  file=str(path)) from exc
        return True

    # ------------------------------------------------------------ transaction
    def acquire(self, timeout: float) -> None:
        if self._depth == 0:
            if not self.directory.is_dir():
                raise RepositoryError(f"mirror {self.directory} is not a directory",
                                      file=str(self.directory),
                                      hint="create one with `tiup mirror init <dir>`")
            lock = MirrorLock(self.directory, timeout)
            lock.acquire()
            self._lock = lock
        self._depth += 1

    def release(self) -> None:
        if self._depth == 0:
            return
        self._depth -= 1
        if self._depth == 0 and self._lock is not None:
            self._lock.release()
            self._lock = None

    def remove_leftovers(self) -> builtins.list[str]:
        try:
            return remove_leftovers(self.directory)
        except OSError as exc:
            raise write_failed(self.directory, ".tmp-* leftovers", exc) from exc

    def begin(self) -> Staging:
        return Staging(self.directory, sync_script=self.sync_script, tag=self.tag)


def _read_failed(path: Path, exc: OSError) -> FetchError:
    reason = str(exc.strerror or exc)
    return FetchError(f"cannot read {path}: {reason}", file=str(path), reason=reason)
