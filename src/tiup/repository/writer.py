"""One way to write any mirror: :class:`MirrorWriter`.

Every write command is one build function run in one transaction::

    with writer:
        result = writer.run(lambda view: modify(view, ring, "hello", None, yank=True))

``build`` sees a :class:`~tiup.repository.view.MirrorView`, reads the mirror through it,
signs and stages its changes; :meth:`MirrorWriter.run` then commits them. The
implementations:

* :class:`LocalWriter` — a :class:`~tiup.repository.store.Store` over a
  :class:`~tiup.repository.storage.Storage` (a directory today; object storage next):
  open (lock, leftovers, verified state), build, commit (tarballs, versioned manifests,
  snapshot, timestamp last). Signs the role manifests with its key ring.
* :class:`RemoteWriter` — a :class:`~tiup.repository.remote.RemoteMirror` over a
  tiup-server's publish API: each attempt reads fresh verified metadata (the verified
  source comes from a factory the caller gives: the client's updater, which this layer
  must not import), builds, and sends; a 409 conflict or a transient failure runs the
  whole attempt again (:func:`~tiup.repository.remote.publish_retry`). The server signs
  the role manifests.

What only a local mirror can do is refused by one method, :meth:`MirrorWriter.local`
(a whole command) or :meth:`MirrorWriter.local_only` (one option), with one clear error.
"""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Self, TypeVar

from tiup.errors import ConflictError, ExpiredError, RepositoryError, TiupError, UsageError
from tiup.reader import VerifiedMirror
from tiup.repository.keyring import KeyRing
from tiup.repository.local_storage import LocalStorage
from tiup.repository.remote import RemoteMirror, with_retries
from tiup.repository.storage import CHANGED, EXISTS, Storage
from tiup.repository.store import DEFAULT_LOCK_TIMEOUT, Store
from tiup.repository.view import MirrorView
from tiup.settings import Settings

if TYPE_CHECKING:  # the HTTP client (urllib3) is loaded only by a remote write
    from tiup.transport.publish_api import APIClient
    from tiup.transport.retry import RetryPolicy

T = TypeVar("T")
#: attempts of a commit that keeps losing races, whatever the time (object storage)
MIN_ATTEMPTS = 20
S = TypeVar("S", bound=VerifiedMirror)


class MirrorWriter(ABC):
    """A mirror to write (see the module docstring). Use as a context manager: leaving
    it releases what it holds (a remote writer's connections)."""

    #: the mirror, for messages (a directory path or a URL)
    address: str
    #: the keys build functions sign with (owners' keys; locally also the role keys)
    keyring: KeyRing
    #: the keys the commit signs the index, snapshot and timestamp with; None where the
    #: mirror's server signs them
    role_keys: KeyRing | None

    @abstractmethod
    def run(self, build: Callable[[MirrorView], T], *,
            commit_if: Callable[[T], bool] | None = None) -> T:
        """Open the mirror, run ``build`` on it and commit what it staged, as one
        transaction; with ``commit_if``, commit only if ``commit_if(result)``.

        Returns:
            What ``build`` returned.

        Raises:
            TiupError: what ``build``, the opening or the commit raised (a remote
                writer: the last failure, once retrying no longer helps).
        """

    @abstractmethod
    def read(self, look: Callable[[MirrorView], T]) -> T:
        """``look`` at the mirror's current state; nothing is written. Raises TiupError."""

    def local(self) -> LocalWriter:
        """This writer, for a command that only a local mirror can run.

        Raises:
            RepositoryError: the mirror is not local.
        """
        raise not_local(self.address)

    def local_only(self, message: str) -> None:
        """Refuse an option that needs a local mirror.

        Raises:
            UsageError: ``message``, unless the mirror is local.
        """
        raise UsageError(message)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the writer holds."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def not_local(address: str) -> RepositoryError:
    """The error of a command that writes only a local mirror, given ``address``."""
    return RepositoryError(
        f"the mirror {address} is not a local directory; this command writes a local mirror",
        hint="pass `tiup mirror --repo <dir> ...` or `tiup mirror set <dir>` first")


class LocalWriter(MirrorWriter):
    """A mirror in a :class:`Storage` (or a directory), written through a :class:`Store`.

    ``clock`` gives the time of each transaction; ``on_commit(store, written)`` is told
    after each commit (the CLI reports leftovers removed and an expiring root).
    """

    def __init__(self, mirror: Storage | str | Path, keyring: KeyRing, *,
                 clock: Callable[[], datetime], lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
                 settings: Settings | None = None,
                 on_commit: Callable[[Store, list[str]], None] | None = None,
                 on_conflict: Callable[[int, ConflictError], None] | None = None):
        sync_script = settings.sync_script if settings is not None else None
        self.storage = mirror if isinstance(mirror, Storage) else LocalStorage(
            mirror, sync_script=sync_script)
        self.address = self.storage.location
        self.keyring = keyring
        self.role_keys: KeyRing | None = keyring
        self.clock = clock
        self.lock_timeout = lock_timeout
        self.settings = settings
        self.on_commit = on_commit
        #: told ``(attempt, error)`` when a commit lost a race and is run again
        self.on_conflict = on_conflict

    def local(self) -> LocalWriter:
        return self

    def local_only(self, message: str) -> None:
        return None

    def open(self) -> Store:
        """A new transaction, not yet open: use it as a context manager."""
        return Store(self.storage, now=self.clock(), keyring=self.keyring,
                     lock_timeout=self.lock_timeout, settings=self.settings)

    def commit(self, store: Store) -> list[str]:
        """Commit ``store`` and tell ``on_commit``. Raises as :meth:`Store.commit`."""
        written = store.commit()
        if self.on_commit is not None:
            self.on_commit(store, written)
        return written

    def run_store(self, build: Callable[[Store], T], *,
                  commit_if: Callable[[T], bool] | None = None) -> T:
        """:meth:`run` for a build that needs the whole :class:`Store` (grant, merge).

        On a storage without a lock (:attr:`Storage.concurrent`, object storage) a commit
        that lost a race to another writer (``ConflictError`` ``exists``/``changed``) is
        run again, from a fresh read of the new state, for up to ``lock_timeout`` seconds
        (and at least :data:`MIN_ATTEMPTS` times), with a short random backoff.
        """
        attempt = 0
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                with self.open() as store:
                    result = build(store)
                    if commit_if is None or commit_if(result):
                        self.commit(store)
                    return result
            except ConflictError as exc:
                if not self.storage.concurrent or exc.code not in (EXISTS, CHANGED):
                    raise
                attempt += 1
                if attempt >= MIN_ATTEMPTS and time.monotonic() > deadline:
                    raise
                if self.on_conflict is not None:
                    self.on_conflict(attempt, exc)
                time.sleep(random.uniform(0, min(1.0, 0.02 * 2 ** min(attempt, 6))))

    def run(self, build: Callable[[MirrorView], T], *,
            commit_if: Callable[[T], bool] | None = None) -> T:
        return self.run_store(build, commit_if=commit_if)

    def read(self, look: Callable[[MirrorView], T]) -> T:
        with self.open() as store:
            return look(store)


class RemoteWriter(MirrorWriter, Generic[S]):
    """A mirror behind a tiup-server's publish API (see the module docstring).

    Args:
        address: the mirror's URL.
        keyring: the keys build functions sign with.
        client: the publish-API client (closed with the writer).
        source: makes the verified reader of the mirror for an attempt at a time
            (the client's updater, with its trust in that mirror).
        policy: how attempts are retried (:func:`~tiup.repository.remote.publish_retry`).
        on_retry: told ``(failures, error, delay)`` before each wait.
        after: told the source of each successful attempt (its warnings, say).
        explain: turns an expiry error of the mirror into the one to raise.
    """

    def __init__(self, address: str, keyring: KeyRing, client: APIClient,
                 source: Callable[[datetime], S], *,
                 clock: Callable[[], datetime], policy: RetryPolicy,
                 on_retry: Callable[[int, TiupError, float], None] | None = None,
                 after: Callable[[S], None] | None = None,
                 explain: Callable[[ExpiredError], TiupError] | None = None):
        self.address = address
        self.keyring = keyring
        self.role_keys = None
        self.client = client
        self.source = source
        self.clock = clock
        self.policy = policy
        self.on_retry = on_retry
        self.after = after
        self.explain = explain

    def run(self, build: Callable[[MirrorView], T], *,
            commit_if: Callable[[T], bool] | None = None) -> T:
        def attempt(_n: int) -> T:
            at = self.clock()
            source = self.source(at)
            view = RemoteMirror(source, at, self.client)
            try:
                result = build(view)
                if commit_if is None or commit_if(result):
                    view.commit()
                if self.after is not None:
                    self.after(source)
                return result
            finally:
                view.close()

        try:
            return with_retries(attempt, self.policy, self.on_retry)
        except ExpiredError as exc:
            if self.explain is None:
                raise
            raise self.explain(exc) from exc

    def read(self, look: Callable[[MirrorView], T]) -> T:
        return self.run(look, commit_if=lambda _result: False)

    def close(self) -> None:
        self.client.close()
