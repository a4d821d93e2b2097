"""The local-directory transport: a mirror on disk, NFS, or a mounted share.

Only regular files are read (a symlink to one is fine). Every file is opened with
``O_NONBLOCK`` and checked with ``fstat`` before a byte is read, so a FIFO, a device
(``/dev/zero``, ``/dev/random``), a socket or a directory in place of a mirror file is
refused at once with a :class:`~tiup.errors.FetchError` naming it, instead of blocking
forever (a FIFO with no writer) or streaming without end (``/dev/zero``).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

from tiup.errors import FetchError, NotFoundError, SizeLimitError
from tiup.transport.base import Fetcher
from tiup.transport.chunks import Chunks
from tiup.transport.resume import PartFile, Progress

CHUNK = 1024 * 1024
COPY_BLOCK = 8 * 1024 * 1024


def _copy(src: int, dst: int, size: int, cap: int | None, progress: Progress | None) -> int:
    """Copy from ``src`` to ``dst`` with the fastest call the system has; at most cap+1 bytes.

    Raises:
        FetchError: a read or write failed.
    """
    limit = (cap + 1) if cap is not None else None
    copied = 0
    methods = ["copy_file_range", "sendfile", "read"]
    while limit is None or copied < limit:
        want = COPY_BLOCK if limit is None else min(COPY_BLOCK, limit - copied)
        try:
            if methods[0] == "copy_file_range":
                n = os.copy_file_range(src, dst, want)
            elif methods[0] == "sendfile":
                n = os.sendfile(dst, src, None, want)
            else:
                data = os.read(src, want)
                n = len(data)
                view = memoryview(data)
                while view:
                    view = view[os.write(dst, view):]
        except OSError as exc:
            if methods[0] != "read" and exc.errno in (errno.EXDEV, errno.ENOSYS, errno.EINVAL,
                                                       errno.EOPNOTSUPP, errno.EBADF):
                methods.pop(0)  # not supported for this pair of files: fall back
                continue
            raise FetchError(f"cannot copy {size} bytes: {exc}") from exc
        if n == 0:
            break
        copied += n
        if progress:
            progress(copied)
    return copied


def _kind(mode: int) -> str:
    """What a non-regular file is, for messages."""
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


class LocalFetcher(Fetcher):
    """Reads a mirror directory. Only regular files directly under it are served."""

    def __init__(self, address: str):
        self.address = address
        self.root = Path(address).expanduser().resolve()
        if not self.root.is_dir():
            raise FetchError(
                f"local mirror {address} is not a directory",
                file=address,
                hint="check the path, or run `tiup mirror set <dir|url>`",
            )

    def _path(self, resource: str) -> Path:
        name = resource.lstrip("/")
        if not name or "/" in name or name in (".", "..") or "\\" in name or "\0" in name:
            raise NotFoundError(f"{resource} is not a file name in mirror {self.address}")
        return self.root / name

    def _open(self, resource: str, max_size: int | None) -> tuple[int, int]:
        """Open ``resource`` for reading: a regular file of at most ``max_size`` bytes.

        Raises:
            NotFoundError: no such file.
            SizeLimitError: the file is larger than ``max_size``.
            FetchError: it cannot be opened, or is not a regular file (FIFO, device,
                socket, directory).
        """
        path = self._path(resource)
        try:
            # O_NONBLOCK: opening a FIFO without a writer must not wait for one
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise NotFoundError(f"{resource} not found in mirror {self.address}",
                                file=str(path), reason="not found") from exc
        except OSError as exc:
            raise FetchError(f"cannot read {path}: {exc.strerror or exc}", file=str(path),
                             reason=str(exc.strerror or exc)) from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                kind = _kind(st.st_mode)
                raise FetchError(
                    f"cannot read {path}: it is {kind}, not a regular file", file=str(path),
                    hint="a mirror file must be a regular file (or a symlink to one): "
                         "replace it with the real file",
                    reason=f"not a regular file ({kind})")
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        except OSError as exc:
            os.close(fd)
            raise FetchError(f"cannot read {path}: {exc.strerror or exc}", file=str(path),
                             reason=str(exc.strerror or exc)) from exc
        except BaseException:
            os.close(fd)
            raise
        size = st.st_size
        if max_size is not None and size > max_size:
            os.close(fd)
            raise SizeLimitError(
                f"local load from {path} failed, maximum size exceeded: {size} > {max_size}",
                file=str(path), reason=f"{size} bytes, over the {max_size}-byte cap",
            )
        return fd, size

    def open_file(self, resource: str, max_size: int | None) -> BinaryIO:
        """``resource`` open for reading (unbuffered), with the checks of :meth:`fetch`.

        Raises:
            NotFoundError, SizeLimitError, FetchError: as :meth:`fetch`.
        """
        fd, _size = self._open(resource, max_size)
        return os.fdopen(fd, "rb", buffering=0)

    def fetch(self, resource: str, max_size: int | None) -> bytes:
        fd, _size = self._open(resource, max_size)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read() if max_size is None else fh.read(max_size + 1)
        if max_size is not None and len(data) > max_size:
            raise SizeLimitError(f"{resource} grew beyond {max_size} bytes while reading",
                                 file=resource)
        return data

    @contextmanager
    def _stream(
        self, resource: str, max_size: int | None, offset: int, if_range: str | None = None
    ) -> Iterator[Chunks]:
        fd, size = self._open(resource, max_size)
        st = os.fstat(fd)
        validator = f"{st.st_size}-{st.st_mtime_ns}"
        start = offset if not if_range or if_range == validator else 0
        with os.fdopen(fd, "rb", buffering=0) as fh:
            if start:
                fh.seek(start)

            def chunks() -> Iterator[bytes]:
                total = start
                while True:
                    block = fh.read(CHUNK)
                    if not block:
                        return
                    total += len(block)
                    if max_size is not None and total > max_size:
                        raise SizeLimitError(f"{resource} exceeds {max_size} bytes", file=resource)
                    yield block

            yield Chunks(chunks(), start=start, requested=offset, size=size, validator=validator)

    def stream(
        self, resource: str, max_size: int | None, offset: int = 0
    ) -> AbstractContextManager[Chunks]:
        return self._stream(resource, max_size, offset)

    def stream_range(
        self, resource: str, max_size: int | None, offset: int = 0, *,
        if_range: str | None = None,
    ) -> AbstractContextManager[Chunks]:
        return self._stream(resource, max_size, offset, if_range)

    def location(self, resource: str) -> str:
        return str(self.root / resource.lstrip("/"))

    def download(self, resource: str, dest: Path, *, expected_length: int | None = None,
                 part_path: Path | None = None, progress: Progress | None = None) -> None:
        """Copy ``resource`` to ``dest`` through ``part_path`` (kernel copy, capped).

        A local copy is fast, so it always starts from 0 (any old part is replaced).

        Raises:
            NotFoundError: no such file.
            SizeLimitError: the file is larger than ``expected_length``.
            FetchError: the file cannot be read or written.
        """
        part = PartFile(part_path or dest.with_name(dest.name + ".part"), self.location(resource))
        part.reset()
        fd, size = self._open(resource, expected_length)
        try:
            with part.open_append() as out:
                assert out.fd is not None
                copied = _copy(fd, out.fd, size, expected_length, progress)
        finally:
            os.close(fd)
        if expected_length is not None and copied > expected_length:
            part.remove()
            raise SizeLimitError(f"{resource} grew beyond {expected_length} bytes while copying",
                                 file=str(self._path(resource)))
        part.finish(dest)

    def exists(self, resource: str) -> bool:
        try:
            return self._path(resource).is_file()
        except NotFoundError:
            return False

    def list_files(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir())

    def local_path(self) -> str:
        return str(self.root)
