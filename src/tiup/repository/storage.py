"""Where a mirror's files live: one small interface, a directory today, a bucket next.

A :class:`Storage` holds the files of one mirror by name, relative to the mirror's root
and without a leading ``/`` (``timestamp.json``, ``3.hello.json``,
``hello-v1.0.0-linux-amd64.tar.gz``). The :class:`~tiup.repository.store.Store` reads
and writes a mirror only through it, so publish, grant, modify, merge, clone and prune
work on any storage that keeps this contract; :mod:`tiup.repository.state` reads the
mirror through :meth:`Storage.fetcher`, the one verified walk over it.

Single files::

    read(name)                    the bytes                       NotFoundError if absent
    stat(name) / list(prefix)     Entry(name, size, mtime)        None / [] if absent
    file_info(name)               length, sha256, sha512 of the stored bytes
    tag(name)                     the version token of the stored bytes (None if absent)
    put_new(name, data)           create only if absent           ConflictError "exists"
    replace(name, data, tag)      replace only if still ``tag``   ConflictError "changed"
    delete(name)                  remove it; False if it was not there

One write transaction (what :meth:`Store.commit <tiup.repository.store.Store.commit>`
needs)::

    acquire(timeout) / release()  exclude other writers where the storage needs a lock
    remove_leftovers()            what dead writers left half-written, under the lock
    begin()                       a Transaction: stage files, then commit(groups)

:meth:`Transaction.commit` publishes the staged files group by group, in order, each
:class:`Write` with its precondition: :attr:`Mode.PUT` (tarballs: any earlier file of
that name is replaced), :attr:`Mode.NEW` (versioned manifests: no other live writer
may have created the name), :attr:`Mode.SWAP` (``snapshot.json``, ``timestamp.json``,
``root.json``: replaced only if unchanged since this writer read it, the tag it read
through :meth:`Storage.fetcher` being :meth:`Storage.read_tag`). A storage guarantees
that a reader sees each file old or new, never torn, and that a group is durable
before the next one starts. On a directory (:class:`~tiup.repository.local_storage
.LocalStorage`) the lock makes the preconditions hold by construction and the commit
renames staged ``.tmp-*`` files; on object storage (``If-None-Match: *``,
``If-Match: <etag>``) they are the conditional requests themselves.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import NewType

from tiup.hashing import FileInfo
from tiup.transport.base import Fetcher

#: An opaque token naming one version of a stored file (a directory: the sha256 of its
#: bytes; object storage: the ETag). Equal tags mean the same bytes.
Tag = NewType("Tag", str)

#: ``code`` of the :class:`~tiup.errors.ConflictError` raised when ``put_new`` finds the
#: name taken, and when ``replace`` (or a ``SWAP`` write) finds the file changed.
EXISTS = "exists"
CHANGED = "changed"


@dataclass(frozen=True)
class Entry:
    """One stored file."""

    name: str
    #: bytes (a directory: the total of the files below it)
    size: int
    #: last modification, seconds since the epoch
    mtime: float
    #: a directory (only where the storage has them)
    directory: bool = False


class Mode(Enum):
    """The precondition of one write of a commit (see the module docstring)."""

    PUT = "put"
    NEW = "new"
    SWAP = "swap"


@dataclass(frozen=True)
class Write:
    """One staged file to publish, and its precondition."""

    name: str
    mode: Mode = Mode.PUT
    #: for :attr:`Mode.SWAP`: the tag the writer read (None: the file was absent)
    tag: Tag | None = None

    @classmethod
    def put(cls, name: str) -> Write:
        return cls(name)

    @classmethod
    def new(cls, name: str) -> Write:
        return cls(name, Mode.NEW)

    @classmethod
    def swap(cls, name: str, tag: Tag | None) -> Write:
        return cls(name, Mode.SWAP, tag)


class Transaction(ABC):
    """Files staged by one writer, invisible to readers until :meth:`commit`."""

    @abstractmethod
    def put_bytes(self, name: str, data: bytes) -> FileInfo:
        """Stage ``data`` as ``name`` (replacing an earlier staged copy). Raises
        RepositoryError."""

    @abstractmethod
    def put_file(self, name: str, source: Path) -> FileInfo:
        """Stage a copy of the local file ``source`` as ``name``; returns the length and
        hashes of the bytes staged. Raises RepositoryError."""

    def put_stream(self, name: str, chunks: Iterable[bytes]) -> FileInfo:
        """Stage the bytes ``chunks`` yields as ``name``; returns their length and hashes.
        A storage that can should write as it reads (bounded memory); this default
        gathers them first. Raises RepositoryError, and whatever ``chunks`` raises."""
        return self.put_bytes(name, b"".join(chunks))

    @abstractmethod
    def has(self, name: str) -> bool:
        """True if ``name`` is staged."""

    @abstractmethod
    def commit(self, groups: Sequence[Sequence[Write]]) -> list[str]:
        """Publish the staged files of each group in order (see the module docstring).

        Returns:
            The names published, in order.

        Raises:
            ConflictError: a precondition failed (``code`` :data:`EXISTS` or
                :data:`CHANGED`); files of earlier groups are published but nothing
                references them unless ``timestamp.json`` was.
            RepositoryError: a write failed, with the same guarantee.
        """

    @abstractmethod
    def discard(self) -> None:
        """Drop every staged file that was not published (after a failure, or when done)."""


class Storage(ABC):
    """The files of one mirror (see the module docstring)."""

    #: where the mirror is, for messages (a directory path, a URL)
    location: str
    #: writers commit at once without a lock (object storage): a lost race is retried by
    #: :class:`~tiup.repository.writer.LocalWriter`, and :meth:`first_free` skips
    #: versioned names a dead writer created but never referenced
    concurrent: bool = False

    def __init__(self) -> None:
        #: name → tag of the bytes :meth:`fetcher` last returned for it
        self._read_tags: dict[str, Tag] = {}

    def __str__(self) -> str:
        return self.location

    # ----------------------------------------------------------------- reads
    @abstractmethod
    def fetcher(self) -> Fetcher:
        """A fetcher over this storage for the verified reader; each file it returns whole
        has the tag of those bytes recorded (:meth:`read_tag`). Raises RepositoryError
        (the storage does not exist)."""

    def read_tag(self, name: str) -> Tag | None:
        """The tag of the bytes :meth:`fetcher` returned for ``name``; None if it read none."""
        return self._read_tags.get(name)

    def last_read(self, name: str) -> bytes | None:
        """The bytes :meth:`fetcher` last returned for ``name``, where the storage keeps
        them (object storage keeps ``snapshot.json``'s); else None."""
        return None

    def record_read(self, name: str, tag: Tag) -> None:
        """Remember the tag of bytes just read through :meth:`fetcher` (for implementations)."""
        self._read_tags[name.lstrip("/")] = tag

    @abstractmethod
    def read(self, name: str, max_size: int | None = None) -> bytes:
        """The bytes of ``name``.

        Raises:
            NotFoundError: no such file. SizeLimitError: larger than ``max_size``.
            FetchError: it cannot be read.
        """

    @abstractmethod
    def stat(self, name: str) -> Entry | None:
        """The file ``name`` (where the storage has directories, also a directory:
        ``directory`` set, ``size`` the total below it); None if there is none.
        Raises FetchError."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[Entry]:
        """The files whose names start with ``prefix``, sorted by name: at the top level,
        or, for a prefix ending in ``/``, everywhere below it. Raises FetchError."""

    @abstractmethod
    def file_info(self, name: str) -> FileInfo:
        """Length, sha256 and sha512 of the stored bytes of ``name``.

        Raises:
            NotFoundError: no such file. FetchError: it cannot be read.
        """

    @abstractmethod
    def tag(self, name: str) -> Tag | None:
        """The tag of what is stored as ``name`` now; None if nothing. Raises FetchError."""

    def first_free(self, name_of: Callable[[int], str], start: int) -> int:
        """The first version from ``start`` whose versioned name (``name_of(version)``) a
        commit may create. Under a lock every such name is free (the commit replaces a
        dead writer's leftover); object storage skips names already taken."""
        return start

    def location_of(self, name: str) -> str:
        """Where ``name`` is, for messages."""
        return f"{self.location.rstrip('/')}/{name}"

    # ---------------------------------------------------------- single writes
    @abstractmethod
    def put_new(self, name: str, data: bytes) -> Tag:
        """Create ``name`` holding ``data``, only if no file has that name.

        Raises:
            ConflictError: the name is taken (``code`` :data:`EXISTS`).
            RepositoryError: the write failed; nothing is left visible.
        """

    @abstractmethod
    def replace(self, name: str, data: bytes, expected: Tag | None) -> Tag:
        """Replace ``name`` with ``data``, only if it still holds the bytes tagged
        ``expected`` (None: only if it is still absent).

        Raises:
            ConflictError: it changed since (``code`` :data:`CHANGED`).
            RepositoryError: the write failed; the old bytes stay.
        """

    @abstractmethod
    def delete(self, name: str) -> bool:
        """Remove ``name`` (where the storage has directories, a directory and all in it).

        Returns:
            False if there was nothing to remove.

        Raises:
            RepositoryError: it could not be removed.
        """

    # ------------------------------------------------------------ transaction
    @abstractmethod
    def acquire(self, timeout: float) -> None:
        """Exclude other writers until :meth:`release` (re-entrant within this object;
        a storage whose conditional writes need no lock does nothing).

        Raises:
            RepositoryError: the mirror does not exist or cannot be locked.
            ConflictError: another writer holds it past ``timeout`` seconds.
        """

    @abstractmethod
    def release(self) -> None:
        """Undo one :meth:`acquire`."""

    @abstractmethod
    def remove_leftovers(self) -> builtins.list[str]:
        """Remove what writers that died left half-written (call under the lock).

        Returns:
            The names removed. Raises RepositoryError.
        """

    @abstractmethod
    def begin(self) -> Transaction:
        """A new transaction (see :class:`Transaction`)."""
