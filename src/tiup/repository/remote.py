"""Writing to a mirror served over HTTP(S): the same commands, through the publish API.

:class:`~tiup.repository.view.MirrorView` is what the write helpers of
:mod:`tiup.repository.publish` and :mod:`tiup.repository.admin` need from a
mirror. A local :class:`~tiup.repository.store.Store` is one;
:class:`RemoteMirror` is the other: it reads the index and component manifests
through the verified walk it is given (:class:`~tiup.reader.VerifiedMirror`, the
client's updater with its trust of that mirror: timestamp → snapshot → index →
component, signatures checked, expiry of the component ignored so an expired
manifest can be renewed), records what the helpers publish, and
:meth:`RemoteMirror.commit` sends it (a new root, then each tarball streamed and its
manifest). :class:`~tiup.repository.writer.RemoteWriter` runs the attempts.

:func:`with_retries` runs a whole build-sign-send attempt again on a 409
conflict or a transient failure: up to 10 attempts, backoff 2 s doubling to
30 s (``behavior.md`` §12.5, :func:`publish_retry`), each attempt with freshly
fetched metadata; the loop is the transport's one :class:`RetryPolicy`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from tiup.errors import (
    ConflictError,
    FetchError,
    IntegrityError,
    TiupError,
    TransientError,
    UsageError,
)
from tiup.manifest.envelope import Envelope, envelope_bytes, parse_envelope
from tiup.manifest.models import Component, Index, Root
from tiup.reader import VerifiedMirror
from tiup.repository.lifetimes import Lifetimes
from tiup.repository.store import IndexFlags, SignedComponent
from tiup.settings import DEFAULT_PUBLISH_BACKOFF
from tiup.transport.retry import RetryPolicy

if TYPE_CHECKING:  # the HTTP client (urllib3) is loaded only by a remote write
    from tiup.transport.publish_api import APIClient

T = TypeVar("T")

MAX_ATTEMPTS = 10
BACKOFF_BASE = DEFAULT_PUBLISH_BACKOFF
BACKOFF_CAP = 30.0


@dataclass
class Pending:
    comp_id: str
    manifest: bytes
    tarball: Path | None
    tarball_name: str | None
    flags: dict[str, bool | str] = field(default_factory=dict)


class RemoteMirror:
    """An HTTP(S) mirror read through the verified client path, written through its API."""

    def __init__(self, source: VerifiedMirror, now: datetime, client: APIClient,
                 *, lifetimes: Lifetimes | None = None):
        self.directory = source.address
        self.address = source.address
        self.location = source.address
        self.now = now
        self.lifetimes = lifetimes or Lifetimes()
        self.client = client
        self.updater = source
        self.pending: list[Pending] = []
        #: a new root's bytes, sent first (POST /api/v1/rotate)
        self.pending_root: bytes | None = None
        self.sent: list[str] = []

    @property
    def index(self) -> Index:
        """The verified index. Raises VerificationError, FetchError."""
        return self.updater.index

    @property
    def root(self) -> Root:
        """The latest verified root (walks ``N+1.root.json``). Raises VerificationError."""
        self.updater.refresh()
        self.updater.walk_roots()
        return self.updater.trusted().root

    @property
    def root_name(self) -> str:
        """The file the latest verified root was read from, for messages."""
        return self.updater.trusted().root_source

    def component(self, comp_id: str) -> Component | None:
        """The verified manifest (expiry ignored), None if the index has no such component.

        Raises:
            VerificationError: it fails a trust check; FetchError: it cannot be read.
        """
        self.updater.refresh()
        if comp_id not in self.updater.index.components:
            return None
        return self.updater.component(comp_id, allow_expired=True)

    def next_component_version(self, comp_id: str) -> int:
        state = self.updater.trusted()
        self.updater.refresh()
        assert state.index is not None
        item = state.index.components.get(comp_id)
        if item is None:
            return 1
        return state.component_entry(comp_id)[1] + 1

    def publish_component(self, manifest: bytes | Envelope | SignedComponent,
                          tarball: Path | None = None, *,
                          tarball_name: str | None = None,
                          flags: IndexFlags | None = None) -> Component:
        """Record a signed manifest (and tarball) to send at :meth:`commit` (the server's
        store makes every check).

        Raises:
            ManifestError: not a component manifest.
        """
        if isinstance(manifest, SignedComponent):
            comp, data = manifest.model, manifest.file_bytes()
        else:
            env = manifest if isinstance(manifest, Envelope) else parse_envelope(
                manifest, "component manifest")
            comp = Component.from_dict(env.signed, env.source)
            data = envelope_bytes(env.signatures, env.signed)
        query: dict[str, bool | str] = {}
        if flags is not None:
            for key in ("yanked", "standalone", "hidden", "owner"):
                value = getattr(flags, key)
                if value is not None:
                    query[key] = value
            if self.index.components.get(comp.id) is not None and flags.owner is not None \
                    and self.index.components[comp.id].owner == flags.owner:
                query.pop("owner")
        self.pending.append(Pending(comp.id, data, tarball,
                                    tarball_name or (tarball.name if tarball else None), query))
        return comp

    def set_root(self, root: Root, data: bytes) -> None:
        """Record the next root (signed) to send at :meth:`commit`; the server re-signs what
        it needs (snapshot, timestamp, the index if its role changed)."""
        self.pending_root = data

    def renew_index(self, days: int | None = None) -> Index:
        """Not possible here: the index key is the server's.

        Raises:
            UsageError: always.
        """
        raise UsageError(f"re-signing the index of {self.address} needs its index key: run "
                         "it on the server's mirror directory")

    def commit(self, progress: Callable[[int], None] | None = None) -> list[str]:
        """Send what was recorded: a new root, then each tarball and its manifest, in one
        session each.

        Raises:
            ConflictError, SignatureError, RepositoryError, TransientError, FetchError.
        """
        if self.pending_root is not None:
            self.client.post_rotate(self.pending_root)
            self.pending_root = None
            self.sent.append("root.json")
        for item in self.pending:
            sid = str(uuid.uuid4())
            if item.tarball is not None and item.tarball_name:
                self.client.upload_tarball(sid, item.tarball, item.tarball_name, progress)
                self.sent.append(item.tarball_name)
            self.client.post_component(sid, item.comp_id, item.manifest, item.flags)
            self.sent.append(f"{item.comp_id}.json")
        self.pending.clear()
        return self.sent

    def close(self) -> None:
        self.updater.close()


def publish_retry(*, base: float = BACKOFF_BASE,
                  sleep: Callable[[float], None] = time.sleep) -> RetryPolicy:
    """The retry policy of a publish: 10 attempts, ``base`` seconds doubling to 30 s, ±20 %
    jitter so that racing publishers do not retry in lockstep."""
    return RetryPolicy(attempts=MAX_ATTEMPTS, base=base, cap=BACKOFF_CAP, jitter=0.2,
                       sleep=sleep)


def retryable(exc: TiupError) -> bool:
    """409 conflicts and transient transport failures (a new attempt may succeed)."""
    if isinstance(exc, ConflictError | TransientError):
        return True
    # A snapshot that changed between our timestamp and snapshot reads (a publish
    # landed meanwhile) fails its hash or length check: fetching again fixes it.
    return isinstance(exc, IntegrityError)


def with_retries(attempt: Callable[[int], T], policy: RetryPolicy,
                 on_retry: Callable[[int, TiupError, float], None] | None = None) -> T:
    """Run ``attempt(n)`` (n = 1, 2, ...) until it returns or fails for good.

    ``on_retry(failures, error, delay)`` is told before each wait.

    Raises:
        TiupError: the last error, once attempts are exhausted or it is not retryable.
    """
    calls = 0

    def once() -> T:
        nonlocal calls
        calls += 1
        return attempt(calls)

    def exhausted(exc: TiupError, failures: int) -> TiupError:
        return type(exc)(f"operation exceeds the max retry attempts of {policy.attempts}. "
                         f"error of last attempt: {exc.message}", file=exc.file, hint=exc.hint)

    def before_wait(exc: TiupError, failures: int, delay: float) -> None:
        if on_retry is not None:
            on_retry(failures, exc, delay)

    return policy.run(once, retryable=retryable, before_wait=before_wait, exhausted=exhausted)


__all__ = ["FetchError", "RemoteMirror", "RetryPolicy", "publish_retry", "with_retries"]
