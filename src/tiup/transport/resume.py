"""The one resumable-download engine: a file fetched into a part file, resumed across
failures and across runs.

Used by :meth:`Fetcher.download <tiup.transport.base.Fetcher.download>` (the client's
tarballs, ``mirror merge``) and by ``mirror clone``
(:mod:`tiup.repository.clone.fetch`, which hashes the bytes as they arrive through its
own :class:`Sink`). The local transport copies whole files with the kernel instead, but
through the same :class:`PartFile`.

A download, in order:

1. The bytes go to a part file; its sidecar ``<part>.meta`` (JSON ``{"source",
   "validator"}``) says where they came from. A part from another source, or longer
   than the expected length, is dropped: it is not a prefix we can trust.
2. Each attempt asks for the rest (:meth:`~tiup.transport.base.Fetcher.stream_range`
   from ``part.size``, with the validator as ``If-Range``). A source that answers from
   byte 0 instead (the file changed, or ranges are ignored) restarts the part.
3. The body is read into the sink's buffers (``readinto``), at most one byte more than
   the expected length: a longer file is a :class:`~tiup.errors.SizeLimitError` and the
   part is removed (the source's file is not the one expected). Every byte is counted
   by the slow-retrieval :class:`~tiup.transport.speed.Guard`.
4. A :class:`~tiup.transport.retry.TransientError` (a body that broke) is retried by the
   caller's :class:`~tiup.transport.retry.RetryPolicy`; an attempt that got further than
   any before earns a fresh budget. Other errors end the download, the part kept for
   the next run.
5. The caller checks hashes, then :meth:`PartFile.finish` fsyncs the part and renames it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from tiup.errors import FetchError, SizeLimitError, TiupError, TransientError
from tiup.fsutil import fsync_dir
from tiup.transport.chunks import Chunks
from tiup.transport.retry import RetryPolicy
from tiup.transport.speed import Guard

#: Called with the number of bytes of the file present so far (not a delta: it can go
#: back to 0 when a download restarts from the beginning).
Progress = Callable[[int], None]

#: Bytes read at a time by :class:`AppendSink`.
BUFFER = 256 * 1024


class RangeSource(Protocol):
    """What the engine needs from a fetcher (every :class:`~tiup.transport.base.Fetcher`
    is one)."""

    def location(self, resource: str) -> str: ...

    def stream_range(self, resource: str, max_size: int | None, offset: int = 0, *,
                     if_range: str | None = None) -> AbstractContextManager[Chunks]: ...


class PartFile:
    """A partial download and its sidecar ``<part>.meta`` (source and validator).

    The sidecar lets a later process resume only what came from the same source,
    and send the validator as ``If-Range`` so a changed file restarts from 0.

    Raises (constructor):
        FetchError: the part's directory cannot be created or the part cannot be read.
    """

    def __init__(self, path: Path, source: str):
        self.path = path
        self.meta_path = path.with_name(path.name + ".meta")
        self.source = source
        self.validator: str | None = None
        self.size = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.size = self.path.stat().st_size
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise FetchError(f"cannot use partial download {path}: {exc}", file=str(path)) from exc
        if self.size:
            meta = self._read_meta()
            if meta.get("source") != source:
                self.reset()  # bytes from another mirror or file: not a prefix we can trust
            else:
                v = meta.get("validator")
                self.validator = v if isinstance(v, str) else None

    def _read_meta(self) -> dict[str, object]:
        try:
            meta = json.loads(self.meta_path.read_bytes())
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}

    def remember(self, validator: str | None) -> None:
        """Record the source and validator of the bytes about to be appended.

        Raises:
            FetchError: the sidecar cannot be written.
        """
        if validator == self.validator and self.meta_path.exists():
            return
        self.validator = validator
        data = json.dumps({"source": self.source, "validator": validator}).encode()
        try:
            self.meta_path.write_bytes(data)
        except OSError as exc:
            raise FetchError(f"cannot write {self.meta_path}: {exc}",
                             file=str(self.meta_path)) from exc

    def reset(self) -> None:
        """Forget the partial bytes (start again from 0)."""
        self.remove()

    def remove(self) -> None:
        """Delete the part and its sidecar."""
        for p in (self.path, self.meta_path):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        self.size = 0
        self.validator = None

    def writer(self) -> Appender:
        """The part opened for appending at :attr:`size` (a torn tail beyond it is cut).

        Raises:
            FetchError: the part cannot be opened.
        """
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                os.ftruncate(fd, self.size)  # drop any torn tail beyond what we counted
                os.lseek(fd, self.size, os.SEEK_SET)
            except OSError:
                os.close(fd)
                raise
        except OSError as exc:
            raise FetchError(f"cannot write {self.path}: {exc}", file=str(self.path)) from exc
        return Appender(fd, self.path)

    @contextmanager
    def open_append(self) -> Iterator[Appender]:
        """:meth:`writer`, closed on exit."""
        writer = self.writer()
        try:
            yield writer
        finally:
            writer.close()

    def finish(self, dest: Path, *, sync_dir: bool = True) -> None:
        """fsync the part and rename it to ``dest``; drop the sidecar.

        With ``sync_dir=False`` the caller fsyncs ``dest``'s directory itself (once for
        many files) before anything refers to ``dest``.

        Raises:
            FetchError: the file could not be synced or renamed.
        """
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.path, dest)
        except OSError as exc:
            raise FetchError(f"cannot move {self.path} to {dest}: {exc}", file=str(dest)) from exc
        with contextlib.suppress(FileNotFoundError):
            self.meta_path.unlink()
        if sync_dir:
            fsync_dir(dest.parent)


class Appender:
    """Appends to an open file descriptor, translating OSError into FetchError."""

    def __init__(self, fd: int, path: Path):
        self.fd: int | None = fd
        self.path = path

    def write(self, data: bytes | memoryview) -> None:
        """Write all of ``data``. Raises FetchError."""
        assert self.fd is not None
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except OSError as exc:
            raise FetchError(f"cannot write {self.path}: {exc}", file=str(self.path)) from exc

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Sink(Protocol):
    """Where the engine puts the bytes of one download (one sink per download).

    Per attempt the engine calls :meth:`begin`, then (once the source answered)
    :meth:`open`, then :meth:`buffer` and :meth:`commit` (or :meth:`abandon`) for every
    read, and :meth:`close` at the end of the attempt, whatever happened.
    """

    def begin(self, part: PartFile) -> None:
        """Before a request: agree with the ``part.size`` bytes of the part (a sink that
        hashes re-reads them when it does not hold exactly those); may lower
        ``part.size``. Called again after a restart (``part.size`` 0)."""

    def open(self, part: PartFile) -> None:
        """The source answered: append from ``part.size``."""

    def buffer(self) -> memoryview:
        """A buffer for the next read (lent until :meth:`commit` or :meth:`abandon`)."""

    def commit(self, n: int) -> None:
        """The first ``n`` bytes of the buffer arrived: write them (and hash them)."""

    def abandon(self) -> None:
        """The buffer lent was not filled (end of body or error): take it back."""

    def close(self, part: PartFile) -> None:
        """End of the attempt: set ``part.size`` to the bytes now safely in the part
        (also when raising)."""


class AppendSink:
    """The plain sink: appends to the part through one reused buffer."""

    def __init__(self, size: int = BUFFER):
        self._buf = memoryview(bytearray(size))
        self._out: Appender | None = None
        self._size = 0

    def begin(self, part: PartFile) -> None:
        pass

    def open(self, part: PartFile) -> None:
        self._out = part.writer()
        self._size = part.size

    def buffer(self) -> memoryview:
        return self._buf

    def commit(self, n: int) -> None:
        assert self._out is not None
        self._out.write(self._buf[:n])
        self._size += n

    def abandon(self) -> None:
        pass

    def close(self, part: PartFile) -> None:
        part.size = self._size
        if self._out is not None:
            self._out.close()
            self._out = None


def fetch_part(source: RangeSource, resource: str, part: PartFile, *, length: int | None,
               guard: Guard, retry: RetryPolicy | None = None, sink: Sink | None = None,
               progress: Progress | None = None, must_complete: bool = False,
               before_wait: Callable[[TiupError, int, float], None] | None = None) -> None:
    """Bring ``part`` up to the whole of ``resource`` (steps 1-4 of the module docstring).

    Args:
        length: the expected length, which caps the file (None: no cap).
        guard: the file's slow-retrieval rule, over all attempts.
        retry: the retry policy (None: one attempt).
        sink: where the bytes go (default: :class:`AppendSink`).
        progress: told the part's size at the start and after every read.
        must_complete: a body that ends before ``length`` is a (retried) transient
            failure; else it ends the download and the caller's hash check decides.
        before_wait: passed to :meth:`RetryPolicy.run`.

    Raises:
        SizeLimitError: the file is larger than ``length`` (the part is removed).
        FetchError: any other failure of the source or of writing the part, including a
            download too slow or past its deadline (the part is kept).
        TiupError: whatever ``before_wait`` raises.
    """
    sink = sink if sink is not None else AppendSink()
    if length is not None and part.size > length:
        part.reset()
    sink.begin(part)
    if progress is not None:
        progress(part.size)
    if length is not None and part.size >= length:
        return  # complete already: the caller's hash check decides
    high_water = part.size

    def progressed() -> bool:
        nonlocal high_water
        grew = part.size > high_water
        high_water = max(high_water, part.size)
        return grew

    def attempt() -> None:
        sink.begin(part)
        _attempt(source, resource, part, length, guard, sink, progress)
        if must_complete and length is not None and part.size < length:
            raise TransientError(
                f"download from {source.location(resource)} ended after {part.size} of "
                f"{length} bytes", file=resource,
                reason=f"ended after {part.size} of {length} bytes")

    try:
        if retry is None:
            attempt()
        else:
            retry.run(attempt, progressed=progressed, guard=guard, before_wait=before_wait)
    except SizeLimitError:
        part.remove()  # the source's file is not the one expected: nothing to resume
        raise


def _attempt(source: RangeSource, resource: str, part: PartFile, length: int | None,
             guard: Guard, sink: Sink, progress: Progress | None) -> None:
    """One request: append what the source sends to the part."""
    offset = part.size
    with source.stream_range(resource, length, offset,
                             if_range=part.validator if offset else None) as body:
        if body.start != offset:
            part.reset()
            sink.begin(part)
            if progress is not None:
                progress(0)
        part.remember(body.validator)
        sink.open(part)
        try:
            _receive(source, resource, body, part, length, guard, sink, progress)
        finally:
            sink.close(part)


def _receive(source: RangeSource, resource: str, body: Chunks, part: PartFile,
             length: int | None, guard: Guard, sink: Sink, progress: Progress | None) -> None:
    received = part.size
    while True:
        view = sink.buffer()
        try:
            # one byte more than is left: a longer file is noticed
            want = len(view) if length is None else min(len(view), length - received + 1)
            n = body.readinto(view[:want])
            if length is not None and received + n > length:
                raise SizeLimitError(
                    f"download from {source.location(resource)} failed: more than {length} "
                    "bytes received (the expected length)", file=source.location(resource),
                    reason=f"more than {length} bytes")
            if n:
                sink.commit(n)
        except BaseException:
            sink.abandon()
            raise
        if not n:
            sink.abandon()
            return
        received += n
        if progress is not None:
            progress(received)
        guard.feed(n)


def download_file(source: RangeSource, resource: str, dest: Path, *,
                  expected_length: int | None, part_path: Path | None,
                  progress: Progress | None, guard: Guard,
                  retry: RetryPolicy | None) -> None:
    """:func:`fetch_part` into ``part_path`` (default ``dest`` + ``.part``), then rename
    the part to ``dest``: the whole of :meth:`Fetcher.download
    <tiup.transport.base.Fetcher.download>`.

    Raises:
        NotFoundError, SizeLimitError, FetchError: as for :func:`fetch_part`.
    """
    part = PartFile(part_path or dest.with_name(dest.name + ".part"), source.location(resource))
    fetch_part(source, resource, part, length=expected_length, guard=guard, retry=retry,
               progress=progress)
    part.finish(dest)
