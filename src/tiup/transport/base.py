"""The fetcher interface every transport implements, and the resumable download on top of it.

Exceptions raised by fetchers (all from :mod:`tiup.errors`)::

    FetchError                  the file could not be obtained
    ├── NotFoundError           the mirror has no such file
    ├── SizeLimitError          the file is larger than its cap
    └── TransientError          (this module) a failure that may pass if retried:
                                 a dropped connection, a timeout, a 503 ...

A file that arrives too slowly (:mod:`tiup.transport.speed`) ends with a plain
:class:`FetchError`, never retried.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TypeVar

from tiup.errors import FetchError, SizeLimitError
from tiup.transport.speed import Clock, Guard, SpeedRule

T = TypeVar("T")

#: Called with the number of bytes of the file present so far (not a delta: it can go
#: back to 0 when a download restarts from the beginning).
Progress = Callable[[int], None]


class TransientError(FetchError):
    """A failure that may succeed when retried (connection drop, timeout, 5xx, 429).

    Fetchers retry these themselves within their budget; callers see one only from a
    stream whose body broke, or wrapped in a plain :class:`FetchError` once the budget
    is spent.

    Attributes:
        retry_after: seconds the server asked us to wait (``Retry-After``), if any.
    """

    def __init__(self, message: str, *, file: str | None = None, hint: str | None = None,
                 retry_after: float | None = None, reason: str | None = None):
        super().__init__(message, file=file, hint=hint, reason=reason)
        self.retry_after = retry_after


class Chunks(Iterator[bytes]):
    """The body of a ranged read: an iterator of byte chunks plus what the source said.

    Attributes:
        start: offset in the file of the first byte the iterator yields. It equals the
            offset asked for, or 0 when the source ignored the range (HTTP 200 instead
            of 206, or an ``If-Range`` validator that no longer matches): the caller
            must then discard what it had. See :attr:`restarted`.
        requested: the offset asked for.
        size: the full size of the file when the source told it, else None.
        validator: a string that changes when the file changes (HTTP ``ETag`` or
            ``Last-Modified``; size and mtime for local files), or None; pass it back as
            ``if_range`` to resume safely.
    """

    def __init__(self, chunks: Iterator[bytes], *, start: int, requested: int,
                 size: int | None = None, validator: str | None = None,
                 reader: Callable[[memoryview], int] | None = None):
        self._chunks = chunks
        self._reader = reader
        self._pending = memoryview(b"")
        self.start = start
        self.requested = requested
        self.size = size
        self.validator = validator

    @property
    def restarted(self) -> bool:
        """True if an offset was asked for but the chunks start at byte 0."""
        return self.requested > 0 and self.start == 0

    def __next__(self) -> bytes:
        if self._pending:
            block, self._pending = bytes(self._pending), memoryview(b"")
            return block
        return next(self._chunks)

    def readinto(self, buf: memoryview) -> int:
        """Read the next bytes into ``buf`` (as many as are ready, up to ``len(buf)``).

        Returns the number of bytes read; 0 only at the end of the body. Transports that
        can read into the caller's buffer directly (HTTP) skip a copy and an allocation
        per chunk; the others are served from the chunk iterator. Do not mix with
        iterating the same body except through this class.

        Raises:
            The errors of iterating the body (:class:`FetchError` and subclasses).
        """
        if self._reader is not None and not self._pending:
            return self._reader(buf)
        if not self._pending:
            self._pending = memoryview(next(self._chunks, b""))
            if not self._pending:
                return 0
        n = min(len(buf), len(self._pending))
        buf[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


class Fetcher(ABC):
    """Reads files of one mirror by their name relative to the mirror root.

    Resource names are given without a leading ``/`` (``timestamp.json``,
    ``62.tidb.json``); a leading ``/`` is tolerated and stripped.
    Implementations are safe to use from several threads at once.
    """

    #: The mirror address as given (directory path or URL).
    address: str
    #: Minimum speed and per-file deadline (:mod:`tiup.transport.speed`); off by default.
    speed: SpeedRule = SpeedRule()
    #: The monotonic clock the speed rule reads (tests inject their own).
    clock: Clock = time.monotonic

    @abstractmethod
    def fetch(self, resource: str, max_size: int | None) -> bytes:
        """The whole content of ``resource``, at most ``max_size`` bytes.

        Raises:
            NotFoundError: the mirror has no such file.
            SizeLimitError: the file is larger than ``max_size``.
            FetchError: any other failure to read it.
        """

    @abstractmethod
    def stream(
        self, resource: str, max_size: int | None, offset: int = 0
    ) -> AbstractContextManager[Iterator[bytes]]:
        """A context manager yielding an iterator of chunks of ``resource`` from ``offset``.

        ``max_size`` caps the whole file (``offset`` included). Where the transport can
        tell, the iterator is a :class:`Chunks`; check its ``start`` when ``offset`` > 0.

        Raises (on entering or while iterating):
            NotFoundError, SizeLimitError, FetchError: as for :meth:`fetch`.
        """

    def stream_range(
        self, resource: str, max_size: int | None, offset: int = 0, *,
        if_range: str | None = None,
    ) -> AbstractContextManager[Chunks]:
        """Like :meth:`stream`, but always yields :class:`Chunks` and takes a validator.

        With ``if_range`` (a :attr:`Chunks.validator` from an earlier read), the source
        returns the range only if the file is unchanged, else the whole file
        (``Chunks.start == 0``).

        Raises:
            NotFoundError, SizeLimitError, FetchError: as for :meth:`fetch`.
        """
        return self._default_stream_range(resource, max_size, offset)

    @contextmanager
    def _default_stream_range(self, resource: str, max_size: int | None,
                              offset: int) -> Iterator[Chunks]:
        with self.stream(resource, max_size, offset) as chunks:
            if isinstance(chunks, Chunks):
                yield chunks
            else:
                yield Chunks(iter(chunks), start=offset, requested=offset)

    def location(self, resource: str) -> str:
        """Where ``resource`` is read from (URL or path), for messages."""
        return f"{self.address.rstrip('/')}/{resource.lstrip('/')}"

    def download(self, resource: str, dest: Path, *, expected_length: int | None = None,
                 part_path: Path | None = None, progress: Progress | None = None) -> None:
        """Download ``resource`` into the file ``dest``, resuming an earlier partial download.

        Bytes go to ``part_path`` (default: ``dest`` + ``.part``), which survives failures
        and is resumed from its size on the next call, guarded by the validator kept in
        ``<part_path>.meta``. ``expected_length`` caps the size. When complete the part
        is fsynced and renamed to ``dest``. Hashes are NOT checked here: the caller does.
        The whole download, retries included, is held to :attr:`speed` (minimum speed
        and a deadline scaled by ``expected_length``).

        Raises:
            NotFoundError: the mirror has no such file.
            SizeLimitError: the file is larger than ``expected_length`` (the part is removed).
            FetchError: any other failure, including a download too slow or past its
                deadline (the part is kept for the next attempt).
        """
        part = PartFile(part_path or dest.with_name(dest.name + ".part"),
                        self.location(resource))
        if expected_length is not None and part.size > expected_length:
            part.reset()
        if progress:
            progress(part.size)
        if expected_length is None or part.size < expected_length:
            high_water = part.size

            def progressed() -> bool:
                nonlocal high_water
                grew = part.size > high_water
                high_water = max(high_water, part.size)
                return grew

            guard = self.speed.guard(self.location(resource), expected_length, self.clock)
            self._with_retries(
                resource,
                lambda: self._download_once(resource, part, expected_length, progress, guard),
                progressed, guard)
        part.finish(dest)

    def _download_once(self, resource: str, part: PartFile, expected_length: int | None,
                       progress: Progress | None, guard: Guard) -> None:
        offset = part.size
        validator = part.validator if offset else None
        try:
            with self.stream_range(resource, expected_length, offset,
                                   if_range=validator) as body:
                if body.start != offset:
                    part.reset()
                part.remember(body.validator)
                with part.open_append() as out:
                    for block in body:
                        if expected_length is not None and \
                                part.size + len(block) > expected_length:
                            raise SizeLimitError(
                                f"download from {self.location(resource)} failed: more than "
                                f"{expected_length} bytes received (the expected length)",
                                file=self.location(resource))
                        out.write(block)
                        part.size += len(block)
                        if progress:
                            progress(part.size)
                        guard.feed(len(block))
        except SizeLimitError:
            part.remove()  # the source's file is not the one expected: nothing to resume
            raise

    def _with_retries(self, resource: str, attempt: Callable[[], T],
                      progressed: Callable[[], bool] | None = None,
                      guard: Guard | None = None) -> T:
        """Run ``attempt``; transports with a retry policy override this (checking
        ``guard`` before every retry)."""
        return attempt()

    def exists(self, resource: str) -> bool:
        """True if the mirror has ``resource``. Raises FetchError for other failures."""
        from tiup.errors import NotFoundError

        try:
            with self.stream(resource, None) as chunks:
                next(iter(chunks), None)
        except NotFoundError:
            return False
        return True

    def list_files(self) -> list[str] | None:
        """Names of the files at the mirror's top level, or None if the transport cannot list."""
        return None

    def local_path(self) -> str | None:
        """The mirror's directory if it is local, else None."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, most transports hold nothing
        """Release pooled connections and temporary files."""

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PartFile:
    """A partial download and its sidecar ``<part>.meta`` (source and validator).

    The sidecar lets a later process resume only what came from the same source,
    and send the validator as ``If-Range`` so a changed file restarts from 0.
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
        """Record the source and validator of the bytes about to be appended."""
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

    @contextmanager
    def open_append(self) -> Iterator[_Writer]:
        """The part opened for appending at :attr:`size` (raises FetchError on OSError)."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
            os.ftruncate(fd, self.size)  # drop any torn tail beyond what we counted
            os.lseek(fd, self.size, os.SEEK_SET)
        except OSError as exc:
            raise FetchError(f"cannot write {self.path}: {exc}", file=str(self.path)) from exc
        writer = _Writer(fd, self.path)
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
        from tiup.fsutil import fsync_dir

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


class _Writer:
    """Appends to an open file descriptor, translating OSError into FetchError."""

    def __init__(self, fd: int, path: Path):
        self.fd: int | None = fd
        self.path = path

    def write(self, data: bytes | memoryview) -> None:
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


def is_http(address: str) -> bool:
    """True for ``http://`` and ``https://`` addresses."""
    return address.startswith(("http://", "https://"))


def open_fetcher(address: str) -> Fetcher:
    """The fetcher for a mirror address: a directory path or an HTTP(S) URL.

    HTTP settings (timeouts, retries, proxies, CA bundle) come from the environment.

    Raises:
        FetchError: the address cannot be used.
        UsageError: a ``TIUP_HTTP_*`` variable is malformed.
    """
    if is_http(address):
        from tiup.transport.http import HTTPFetcher

        return HTTPFetcher(address)
    from tiup.transport.local import LocalFetcher

    return LocalFetcher(address)
