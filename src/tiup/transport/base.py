"""The fetcher interface every transport implements.

Exceptions raised by fetchers (all :class:`~tiup.errors.FetchError`)::

    FetchError                  the file could not be obtained
    ├── NotFoundError           the mirror has no such file
    ├── SizeLimitError          the file is larger than its cap
    └── TransientError          (tiup.transport.retry) a failure that may pass if
                                 retried: a dropped connection, a timeout, a 503 ...

A file that arrives too slowly (:mod:`tiup.transport.speed`) ends with a plain
:class:`~tiup.errors.FetchError`, never retried.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from tiup.errors import NotFoundError
from tiup.transport.chunks import Chunks
from tiup.transport.resume import Progress, download_file
from tiup.transport.retry import RetryPolicy
from tiup.transport.speed import Clock, SpeedRule

#: ``code`` of the FetchError for an HTTP 403. Object stores (S3, Ceph RGW, MinIO) answer
#: a missing object with 403 to readers that may not list the bucket: a root walk treats
#: it as "no such file" (see :meth:`tiup.reader.MirrorReader.walk_roots`).
FORBIDDEN = "forbidden"


def is_absent(exc: BaseException) -> bool:
    """True if a failed fetch means "no such file": a 404, or the 403 with which object
    stores answer readers that may not list the bucket. Only for files that may be
    missing (the next root, a source's unsigned bootstrap copy), never for signed ones."""
    from tiup.errors import FetchError, NotFoundError

    return isinstance(exc, NotFoundError) or (isinstance(exc, FetchError)
                                              and exc.code == FORBIDDEN)


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
    #: How a failed download is retried (:mod:`tiup.transport.retry`); None: not at all.
    retry: RetryPolicy | None = None

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
        tell, the iterator is a :class:`~tiup.transport.chunks.Chunks`; check its
        ``start`` when ``offset`` > 0.

        Raises (on entering or while iterating):
            NotFoundError, SizeLimitError, FetchError: as for :meth:`fetch`.
        """

    def stream_range(
        self, resource: str, max_size: int | None, offset: int = 0, *,
        if_range: str | None = None,
    ) -> AbstractContextManager[Chunks]:
        """Like :meth:`stream`, but always yields :class:`~tiup.transport.chunks.Chunks`
        and takes a validator.

        With ``if_range`` (a ``Chunks.validator`` from an earlier read), the source
        returns the range only if the file is unchanged, else the whole file
        (``Chunks.start == 0``). The default ignores ``if_range``: transports that
        resume implement it.

        Raises:
            NotFoundError, SizeLimitError, FetchError: as for :meth:`fetch`.
        """
        return self._as_chunks(resource, max_size, offset)

    @contextmanager
    def _as_chunks(self, resource: str, max_size: int | None, offset: int) -> Iterator[Chunks]:
        with self.stream(resource, max_size, offset) as chunks:
            yield chunks if isinstance(chunks, Chunks) else Chunks(
                iter(chunks), start=offset, requested=offset)

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
        Failures are retried by :attr:`retry`; the whole download, retries included, is
        held to :attr:`speed` (minimum speed and a deadline scaled by
        ``expected_length``). The default runs the engine of
        :mod:`tiup.transport.resume`.

        Raises:
            NotFoundError: the mirror has no such file.
            SizeLimitError: the file is larger than ``expected_length`` (the part is removed).
            FetchError: any other failure, including a download too slow or past its
                deadline (the part is kept for the next attempt).
        """
        download_file(self, resource, dest, expected_length=expected_length,
                      part_path=part_path, progress=progress, retry=self.retry,
                      guard=self.speed.guard(self.location(resource), expected_length,
                                             self.clock))

    def exists(self, resource: str) -> bool:
        """True if the mirror has ``resource``. Raises FetchError for other failures."""
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
