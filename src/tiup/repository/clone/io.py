"""The byte path of a clone download: writes past the page cache.

The download thread reads each chunk into one of the page-aligned receive buffers
of a :class:`tiup.hashing.PipelinedHasher` (sha256 here, sha512 on a companion
thread, so the two hashes run on two cores even for one big file).

:class:`PartWriter` appends the chunks to a part file. Where the file system allows
it, block-aligned runs go straight from the (page-aligned) receive buffers to the
disk with ``O_DIRECT``: every downloaded file is fsynced before it is used anyway,
so the page cache buys nothing, and filling it costs more CPU than hashing on some
machines (fresh page-cache pages are expensive in VMs). The unaligned rest of a
chunk (under one block) is carried to the front of the next buffer and written with
it; at the end of the body, or when it breaks, the rest is written normally. Without
``O_DIRECT`` (other systems, tmpfs, a write refused with EINVAL) the writer falls
back to ordinary writes.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from queue import SimpleQueue

from tiup.errors import FetchError
from tiup.hashing import PipelinedHasher

#: O_DIRECT alignment (offsets, lengths and addresses): covers 512 B and 4 KiB sectors
ALIGN = 4096
_O_DIRECT: int = getattr(os, "O_DIRECT", 0)


class PartWriter:
    """Appends to a part file from ``size`` on (on its own thread with ``background``).

    :meth:`write` takes a receive buffer (of ``hasher``) whose first ``len(carry)``
    bytes are :attr:`carry` (received, not yet written) followed by new bytes; its
    block-aligned part is written (or, with ``background``, handed to the writer
    thread, which holds the buffer until written), the rest becomes the next carry.
    :meth:`close` waits for the writes, writes the carry and sets :attr:`size` to
    the bytes in the file.

    ``background`` pays when the download is alone (one big file: the download
    thread then only receives and hashes sha256, the sha512 thread hashes, and the
    writes overlap both); with several downloads running the cores are busy anyway
    and the extra thread only adds switches.

    Raises (``write``, ``close``):
        FetchError: the file cannot be opened or written (a failed background write
            is raised by the next call).
    """

    def __init__(self, path: Path, size: int, hasher: PipelinedHasher, *,
                 direct: bool = True, background: bool = False):
        self.path = path
        self.background = background
        self.hasher = hasher
        self.carry = b""
        self._direct: int | None = None
        self._error: FetchError | None = None
        self._jobs: SimpleQueue[tuple[int, int, int] | None] = SimpleQueue()
        self._thread: threading.Thread | None = None
        try:
            self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            os.ftruncate(self._fd, size)  # drop any torn tail beyond what was counted
        except OSError as exc:
            raise FetchError(f"cannot write {path}: {exc}", file=str(path)) from exc
        # resume at a block boundary: the partial last block becomes the carry
        try:
            self.carry = os.pread(self._fd, size % ALIGN, size - size % ALIGN)
        except OSError:
            self.carry = b""
        if len(self.carry) != size % ALIGN:
            self._close_fds()
            raise FetchError(f"cannot read back the end of {path}", file=str(path))
        #: bytes in the file (up to date after close)
        self.size = size - len(self.carry)
        self._next = self.size  # file offset of the next block handed to the thread
        if direct and _O_DIRECT:
            try:
                self._direct = os.open(path, os.O_WRONLY | _O_DIRECT)
            except OSError:
                self._direct = None  # tmpfs and others: ordinary writes

    @property
    def direct(self) -> bool:
        """True while block-aligned runs bypass the page cache."""
        return self._direct is not None

    def write(self, i: int, end: int) -> None:
        """Write ``hasher.buffers[i][:end]`` (its first ``len(carry)`` bytes are the carry)."""
        if self._error is not None:
            raise self._error
        buf = self.hasher.buffers[i]
        aligned = end - end % ALIGN
        if aligned and not self.background:
            self._write_block(buf[:aligned], self._next)
            self._next += aligned
            self.size = self._next
        elif aligned:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="clone-write",
                                                daemon=True)
                self._thread.start()
            self.hasher.acquire(i)
            self._jobs.put((i, aligned, self._next))
            self._next += aligned
        self.carry = bytes(buf[aligned:end])

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            i, length, offset = job
            try:
                if self._error is None:
                    self._write_block(self.hasher.buffers[i][:length], offset)
                    self.size = offset + length
            except FetchError as exc:
                self._error = exc
            finally:
                self.hasher.release(i)

    def _write_block(self, data: memoryview, offset: int) -> None:
        if self._direct is not None:
            try:
                self._pwrite(self._direct, data, offset)
                return
            except FetchError as exc:
                if not isinstance(exc.__cause__, OSError) or \
                        exc.__cause__.errno != errno.EINVAL:
                    raise
                self._stop_direct()  # refused after all: ordinary writes from now on
        self._pwrite(self._fd, data, offset)

    def _pwrite(self, fd: int | None, data: memoryview, offset: int) -> None:
        assert fd is not None
        try:
            while data:
                n = os.pwrite(fd, data, offset)
                data, offset = data[n:], offset + n
        except OSError as exc:
            raise FetchError(f"cannot write {self.path}: {exc.strerror or exc}",
                             file=str(self.path)) from exc

    def _stop_direct(self) -> None:
        if self._direct is not None:
            fd, self._direct = self._direct, None
            os.close(fd)

    def _close_fds(self) -> None:
        self._stop_direct()
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def close(self) -> None:
        """Wait for the writer thread, write the carry, close the file.

        :attr:`size` then counts every byte in the file; the file is closed even when
        this raises.
        """
        try:
            if self._thread is not None:
                self._jobs.put(None)
                self._thread.join()
                self._thread = None
            if self._error is not None:
                raise self._error
            self._stop_direct()
            if self.carry:
                self._pwrite(self._fd, memoryview(self.carry), self._next)
                self._next += len(self.carry)
                self.carry = b""
            self.size = self._next
        finally:
            self._close_fds()
