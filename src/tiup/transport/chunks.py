"""The body of a ranged read: what :meth:`~tiup.transport.base.Fetcher.stream_range` yields."""

from __future__ import annotations

from collections.abc import Callable, Iterator


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
            The errors of iterating the body (:class:`~tiup.errors.FetchError` and
            subclasses).
        """
        if self._reader is not None and not self._pending:
            return self._reader(buf)
        while not self._pending:  # an empty chunk is not the end of the body
            block = next(self._chunks, None)
            if block is None:
                return 0
            self._pending = memoryview(block)
        n = min(len(buf), len(self._pending))
        buf[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n
