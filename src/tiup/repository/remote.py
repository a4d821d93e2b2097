"""Writing to a mirror served over HTTP(S): the same commands, through the publish API.

:class:`~tiup.repository.view.MirrorView` is what the write helpers of
:mod:`tiup.repository.publish` and :mod:`tiup.repository.admin` need from a
mirror. A local :class:`~tiup.repository.store.Store` is one;
:class:`RemoteMirror` is the other: it reads the index and component manifests through the verified
client path (:class:`~tiup.client.updater.Updater`: timestamp → snapshot →
index → component, signatures checked, expiry of the component ignored so an
expired manifest can be renewed), records what the helpers publish, and
:meth:`RemoteMirror.commit` sends it (tarball streamed, then the manifest).

:func:`with_retries` runs a whole build-sign-send attempt again on a 409
conflict or a transient failure: up to 10 attempts, backoff 2 s doubling to
30 s (``behavior.md`` §12.5), each attempt with freshly fetched metadata.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from tiup.client.profile import Profile
from tiup.client.remote import APIClient
from tiup.client.updater import Updater
from tiup.errors import ConflictError, FetchError, IntegrityError, TiupError
from tiup.manifest.envelope import Envelope, envelope_bytes, parse_envelope
from tiup.manifest.models import Component, Index, Root
from tiup.manifest.names import versioned_url
from tiup.repository.lifetimes import Lifetimes
from tiup.repository.store import IndexFlags
from tiup.transport.base import TransientError

T = TypeVar("T")

MAX_ATTEMPTS = 10
BACKOFF_BASE = 2.0
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

    def __init__(self, address: str, profile: Profile, now: datetime, client: APIClient,
                 *, lifetimes: Lifetimes | None = None):
        self.directory = address
        self.address = address
        self.now = now
        self.lifetimes = lifetimes or Lifetimes()
        self.client = client
        self.updater = Updater(profile, address, now, command="this write")
        self.pending: list[Pending] = []
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

    def component(self, comp_id: str) -> Component | None:
        """The verified manifest (expiry ignored), None if the index has no such component.

        Raises:
            VerificationError: it fails a trust check; FetchError: it cannot be read.
        """
        state = self.updater.trusted()
        self.updater.refresh()
        assert state.index is not None
        if comp_id not in state.index.components:
            return None
        url, version, length = state.component_entry(comp_id)
        name = versioned_url(url, version).lstrip("/")
        data = self.updater.fetcher.fetch(name, length)
        return state.update_component(comp_id, data, name, allow_expired=True)

    def next_component_version(self, comp_id: str) -> int:
        state = self.updater.trusted()
        self.updater.refresh()
        assert state.index is not None
        item = state.index.components.get(comp_id)
        if item is None:
            return 1
        return state.component_entry(comp_id)[1] + 1

    def publish_component(self, manifest: bytes | Envelope, tarball: Path | None = None, *,
                          tarball_name: str | None = None,
                          flags: IndexFlags | None = None) -> Component:
        """Record a signed manifest (and tarball) to send at :meth:`commit`.

        Raises:
            ManifestError: not a component manifest.
        """
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

    def commit(self, progress: Callable[[int], None] | None = None) -> list[str]:
        """Send what was recorded: each tarball, then its manifest, in one session each.

        Raises:
            ConflictError, SignatureError, RepositoryError, TransientError, FetchError.
        """
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


@dataclass
class RetryPolicy:
    attempts: int = MAX_ATTEMPTS
    base: float = BACKOFF_BASE
    cap: float = BACKOFF_CAP
    sleep: Callable[[float], None] = time.sleep

    def delay(self, failures: int) -> float:
        """Backoff with ±20 % jitter, so racing publishers do not retry in lockstep."""
        wait = min(self.base * 2 ** (failures - 1), self.cap)
        return float(wait * random.uniform(0.8, 1.2))


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

    Raises:
        TiupError: the last error, once attempts are exhausted or it is not retryable.
    """
    failures = 0
    while True:
        try:
            return attempt(failures + 1)
        except TiupError as exc:
            failures += 1
            if not retryable(exc) or failures >= policy.attempts:
                if failures >= policy.attempts and retryable(exc):
                    raise type(exc)(
                        f"operation exceeds the max retry attempts of {policy.attempts}. "
                        f"error of last attempt: {exc.message}", file=exc.file,
                        hint=exc.hint) from exc
                raise
            wait = policy.delay(failures)
            if on_retry is not None:
                on_retry(failures, exc, wait)
            policy.sleep(wait)


__all__ = ["FetchError", "RemoteMirror", "RetryPolicy", "with_retries"]
