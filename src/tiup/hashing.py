"""The one sha256 + sha512 hasher, and the one "bytes vs version item" check.

Every file tiup installs, clones, merges, verifies, stores or receives is
described by a length and its sha256 and sha512, computed here from the bytes
actually read or written (never from an object):

- :class:`Hasher`: a streaming hasher, ``update(chunk)`` then ``info()``;
- :class:`FileInfo`: length + sha256 + sha512, with ``of_bytes`` and ``of_file``;
- :class:`PipelinedHasher`: the same result with sha512 on a companion thread,
  for the clone's download loop (see its docstring);
- :func:`mismatches` (non-raising, for tools that report every problem) and
  :func:`check` (raising) compare a :class:`FileInfo` with what a manifest
  declares (any :class:`Expected`: a ``VersionItem``, a clone job, another
  ``FileInfo``).

The rule, in this order: the length is exact; the sha256 is required and
equal; the sha512 is equal when the manifest gives one. Hex digests are
compared case-insensitively (TiUP writes lower case, but a hand-edited
manifest may not). When the length differs nothing more is compared: hashes of
bytes of the wrong length say nothing new.
"""

from __future__ import annotations

import hashlib
import mmap
import threading
from dataclasses import dataclass
from pathlib import Path
from queue import SimpleQueue
from typing import BinaryIO, Protocol

from tiup.errors import IntegrityError, TiupError

#: bytes read at a time by :meth:`FileInfo.of_file`
CHUNK = 1024 * 1024

#: what a chunk may be: anything hashlib takes without a copy
Chunk = bytes | bytearray | memoryview


class Expected(Protocol):
    """What a manifest declares about a file: ``VersionItem`` satisfies it.

    ``sha256`` and ``sha512`` are hex digests, ``""`` when not given.
    """

    @property
    def length(self) -> int: ...

    @property
    def sha256(self) -> str: ...

    @property
    def sha512(self) -> str: ...


@dataclass(frozen=True)
class FileInfo:
    """Length and hashes (lower-case hex) of bytes actually written or read."""

    length: int
    sha256: str
    sha512: str

    @classmethod
    def of_bytes(cls, data: Chunk) -> FileInfo:
        hasher = Hasher()
        hasher.update(data)
        return hasher.info()

    @classmethod
    def of_file(cls, path: Path | str, chunk: int = CHUNK) -> FileInfo:
        """Length and hashes of a file, read once. Raises OSError."""
        with open(path, "rb") as fh:
            return cls.of_stream(fh, chunk)

    @classmethod
    def of_stream(cls, fh: BinaryIO, chunk: int = CHUNK) -> FileInfo:
        """Length and hashes of the rest of an open file, read once. Raises OSError."""
        hasher = Hasher()
        while block := fh.read(chunk):
            hasher.update(block)
        return hasher.info()


class Hasher:
    """sha256 and sha512 of a stream of chunks, and its length.

    Attributes:
        length: bytes hashed so far.
    """

    __slots__ = ("_h256", "_h512", "length")

    def __init__(self) -> None:
        self._h256 = hashlib.sha256()
        self._h512 = hashlib.sha512()
        self.length = 0

    def update(self, chunk: Chunk) -> None:
        """Hash the next bytes of the stream."""
        self._h256.update(chunk)
        self._h512.update(chunk)
        self.length += chunk.nbytes if isinstance(chunk, memoryview) else len(chunk)

    def info(self) -> FileInfo:
        """Length and hashes of everything hashed so far (hashing may go on)."""
        return FileInfo(self.length, self._h256.hexdigest(), self._h512.hexdigest())


# ------------------------------------------------------------------ the check
@dataclass(frozen=True)
class Mismatch:
    """One way a file differs from what a manifest declares.

    Attributes:
        file: the file (name or URL) checked.
        kind: ``"length"``, ``"sha256"`` or ``"sha512"``.
        expected: the declared value; ``""`` when the manifest gives no sha256.
        actual: the value of the bytes.
        where: what declared it, for the message (``"the manifest"``,
            ``"hello v1.0.0 in the manifest"``, ``"its manifest at <url>"``).
    """

    file: str
    kind: str
    expected: str
    actual: str
    where: str = "the manifest"

    @property
    def missing(self) -> bool:
        """True when the manifest gives no value at all (a sha256 is required)."""
        return not self.expected

    def __str__(self) -> str:
        if self.missing:
            return f"{self.where} gives no {self.kind} for {self.file}"
        return (f"{self.kind} of {self.file} does not match {self.where}: "
                f"expected {self.expected}, got {self.actual}")

    @property
    def reason(self) -> str:
        """A few words without the file's name or the digests, for one-line summaries."""
        if self.missing:
            return f"{self.where} gives no {self.kind}"
        if self.kind == "length":
            return f"length {self.actual}, {self.where} says {self.expected}"
        return f"{self.kind} differs from {self.where}"


def mismatches(file: str, info: FileInfo, expected: Expected, *,
               where: str = "the manifest") -> list[Mismatch]:
    """Every way ``info`` differs from ``expected``, in the order of the rule; [] if none.

    A length mismatch is reported alone. Never raises.
    """
    if info.length != expected.length:
        return [Mismatch(file, "length", str(expected.length), str(info.length), where)]
    found: list[Mismatch] = []
    for kind, want, got, required in (("sha256", expected.sha256, info.sha256, True),
                                      ("sha512", expected.sha512, info.sha512, False)):
        if not want:
            if required:
                found.append(Mismatch(file, kind, "", got.lower(), where))
        elif want.lower() != got.lower():
            found.append(Mismatch(file, kind, want, got.lower(), where))
    return found


def matches(info: FileInfo, expected: Expected) -> bool:
    """True when ``info`` passes the rule against ``expected``. Never raises."""
    return not mismatches("", info, expected)


def check(file: str, info: FileInfo, expected: Expected, *, where: str = "the manifest",
          error: type[TiupError] = IntegrityError, hint: str | None = None) -> None:
    """Refuse ``info`` unless it passes the rule against ``expected``.

    Raises:
        IntegrityError (or ``error``, e.g. ``TarballError``): for the first
            mismatch, naming ``file``, the expected and the actual value; its
            ``file`` is ``file``.
    """
    found = mismatches(file, info, expected, where=where)
    if found:
        raise error(str(found[0]), file=file, hint=hint)


# ------------------------------------------------------- the pipelined variant
#: bytes per receive buffer, and receive buffers per :class:`PipelinedHasher`
PIPE_CHUNK = 256 * 1024
PIPE_BUFFERS = 4


class PipelinedHasher:
    """sha256 on the caller's thread, sha512 on a companion thread, over reused buffers.

    The clone's download thread reads a chunk into one of a few fixed receive
    buffers, writes it and hashes its sha256, then hands the buffer to the
    companion thread, which hashes its sha512 and gives the buffer back.
    hashlib releases the GIL on large buffers, so the two hashes (the costliest
    steps) run on two cores even when one big file is downloading; reusing the
    buffers keeps memory flat and avoids an allocation (and fresh pages) per
    chunk. The buffers are ``mmap``-ed, so page-aligned: a writer may hand them
    to ``O_DIRECT`` writes.

    Protocol: ``i = take()`` (the caller holds buffer ``i``); fill ``buffers[i]``; then
    either ``update(i, start, end)`` (the caller's hold passes to the sha512 thread)
    or ``give_back(i)``. Another consumer of the same buffer (a part writer's
    thread) takes a hold with :meth:`acquire` before it is handed the buffer and
    gives it up with :meth:`release`; a buffer is free again once nobody holds it.
    :meth:`sync` waits until every buffer is free; :meth:`close` stops the thread.

    Attributes:
        size: bytes hashed so far (sha256; the sha512 may lag until :meth:`sync`).
    """

    def __init__(self, buffers: int = PIPE_BUFFERS, size: int = PIPE_CHUNK) -> None:
        self._maps = [mmap.mmap(-1, size) for _ in range(buffers)]
        self.buffers = [memoryview(m) for m in self._maps]
        self._holds = [0] * buffers
        self._queued = 0  # sha512 jobs handed to the thread and not done yet
        self._lock = threading.Lock()
        self._free: SimpleQueue[int] = SimpleQueue()
        for i in range(buffers):
            self._free.put(i)
        self._todo: SimpleQueue[tuple[int, int, int] | None] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self.reset()

    def reset(self) -> None:
        """Start again from byte 0 (call :meth:`sync` first)."""
        self.h256 = hashlib.sha256()
        self.h512 = hashlib.sha512()
        self.size = 0

    def take(self) -> int:
        """A free buffer's index, held by the caller (waits for one to be free)."""
        i = self._free.get()
        self._holds[i] = 1
        return i

    def acquire(self, i: int) -> None:
        """One more hold on buffer ``i`` (by a thread it is handed to)."""
        with self._lock:
            self._holds[i] += 1

    def release(self, i: int) -> None:
        """Give up a hold on buffer ``i``; the last one frees it."""
        with self._lock:
            self._holds[i] -= 1
            if self._holds[i]:
                return
        self._free.put(i)

    give_back = release

    def update(self, i: int, start: int, end: int, *, inline: bool = False) -> None:
        """Hash ``buffers[i][start:end]``, the next bytes of the file.

        ``inline`` hashes the sha512 here too (when other downloads keep the cores busy,
        handing buffers to another thread only adds switches).
        """
        self.h256.update(self.buffers[i][start:end])
        self.size += end - start
        if inline and not self._queued:  # (in order: nothing is waiting for the thread)
            self.h512.update(self.buffers[i][start:end])
            self.release(i)
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="clone-sha512",
                                            daemon=True)
            self._thread.start()
        with self._lock:
            self._queued += 1
        self._todo.put((i, start, end))

    def _run(self) -> None:
        while (item := self._todo.get()) is not None:
            i, start, end = item
            self.h512.update(self.buffers[i][start:end])
            with self._lock:
                self._queued -= 1
            self.release(i)

    def sync(self) -> None:
        """Wait until every buffer is free (all hashing and writing done)."""
        taken = [self._free.get() for _ in self.buffers]
        for i in taken:
            self._free.put(i)

    def info(self) -> FileInfo:
        """Length and hashes of everything hashed so far."""
        self.sync()
        return FileInfo(self.size, self.h256.hexdigest(), self.h512.hexdigest())

    def close(self) -> None:
        if self._thread is not None:
            self._todo.put(None)
            self._thread.join()
            self._thread = None
