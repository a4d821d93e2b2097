"""The one verified walk of a mirror, used by every part of tiup that reads one.

:class:`MirrorReader` fetches bytes through a :class:`~tiup.transport.Fetcher`
(local directory, HTTP(S), later object storage) and feeds them, in order and
with the caps the rules name, to a :class:`~tiup.trust.TrustedState`::

    timestamp.json (cap 1024) ─▶ snapshot.json (cap from the timestamp)
        ─▶ N.index.json ─▶ N.<id>.json on demand (caps from the snapshot)

The root chain (``N+1.root.json`` until the mirror has none) is walked when
the timestamp fails its signature or expiry check and when the snapshot names
a newer root, so a no-op update is one request; a writer, which must sign
with the newest root's keys, walks it first (:meth:`MirrorReader.walk_roots`).

Users: the client's updater (with a :class:`ManifestCache` in ``$TIUP_HOME``),
the publisher's view of its own mirror (``repository/state.py``, no cache,
expiry ignored, interrupted commits accepted), merge and clone sources, and
``tiup mirror verify`` for its strict pass. Callers add their own messages
(which mirror, what to do); the rules and their order live here and in
:mod:`tiup.trust` only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from tiup import trust
from tiup.errors import (
    ExpiredError,
    FetchError,
    IntegrityError,
    SignatureError,
    SizeLimitError,
    TiupError,
    VerificationError,
)
from tiup.manifest.models import Component, Index
from tiup.manifest.names import versioned_url
from tiup.transport.base import Fetcher, is_absent

#: How often a snapshot that does not match the timestamp is re-read (a writer
#: replacing the pair between our two reads, or a cache in front of the mirror).
SNAPSHOT_ATTEMPTS = 4


class ManifestCache(Protocol):
    """Where a reader keeps verified manifests between runs (names like ``index.json``,
    ``<id>.json``, ``N.root.json``); every method is best effort."""

    def read(self, name: str) -> bytes | None:
        """The cached bytes, or None."""

    def write(self, name: str, data: bytes) -> None:
        """Keep verified bytes (atomically)."""

    def drop(self, name: str) -> None:
        """Forget a cached file that no longer verifies."""

    def source(self, name: str) -> str:
        """How to name the cached file in messages (its path)."""

    def prune(self, index: Index) -> None:
        """Forget component manifests of components the index no longer lists."""


class VerifiedMirror(Protocol):
    """A mirror read through the verified walk, as the publisher side uses one (a clone's
    source, a remote mirror to write to): a :class:`MirrorReader`, or the client's
    updater, which adds ``$TIUP_HOME``'s trust anchor, cache and messages."""

    address: str

    @property
    def fetcher(self) -> Fetcher:
        """The mirror's transport (for tarballs)."""

    @property
    def index(self) -> Index:
        """The verified index (refreshing first if needed)."""

    def trusted(self) -> trust.TrustedState:
        """The trust state (its root is the newest verified one)."""

    def refresh(self) -> None:
        """Verify timestamp, snapshot and index."""

    def walk_roots(self) -> bool:
        """Follow ``N+1.root.json`` to the newest root; True if it changed."""

    def component(self, comp_id: str, *, allow_expired: bool = False) -> Component:
        """A verified component manifest."""

    def close(self) -> None:
        """Release the transport."""



def probe_root(fetch: Callable[[str, int], bytes], version: int) -> tuple[bytes, str] | None:
    """``<version>.root.json`` and its name through ``fetch``, or None when the mirror has
    none: a 404, or the 403 an object store (S3, Ceph RGW, MinIO) answers for a missing
    object to readers that may not list the bucket. Ending a root walk on that 403 is no
    weaker than on a 404: whoever can forge one can forge the other, and the timestamp's
    expiry bounds a withheld root either way.

    Raises:
        FetchError: any other failure.
    """
    name = f"{version}.root.json"
    try:
        return fetch(name, trust.MAX_ROOT_SIZE), name
    except FetchError as exc:
        if is_absent(exc):
            return None
        raise

class MirrorReader:
    """Verified reads of one mirror (see the module docstring).

    Args:
        fetcher: reads the mirror's files (or a factory, called on the first fetch, so
            that work from the cache alone never opens the mirror).
        state: the trust state, holding the trusted root to start from.
        cache: verified copies to try before fetching, and where to keep new ones.
        accept_interrupted: a writer reading its own mirror accepts a validly signed
            snapshot the timestamp does not name (a commit interrupted between its
            last two renames; the writer's next commit completes it).
    """

    def __init__(self, fetcher: Fetcher | Callable[[], Fetcher], state: trust.TrustedState, *,
                 cache: ManifestCache | None = None, accept_interrupted: bool = False,
                 address: str | None = None):
        self._fetcher = fetcher
        self.address = address or (fetcher.address if isinstance(fetcher, Fetcher) else "")
        self.state = state
        self.cache = cache
        self.accept_interrupted = accept_interrupted
        self._ts_bytes: bytes | None = None
        self._refreshed = False
        #: manifests downloaded ahead by :meth:`prefetch_components`, not yet verified
        self._prefetched: dict[str, bytes] = {}

    # ------------------------------------------------------------ plumbing
    @property
    def fetcher(self) -> Fetcher:
        """The mirror's fetcher (opened on first use when given as a factory).

        Raises:
            Whatever the factory raises (e.g. offline mode for a remote mirror).
        """
        if isinstance(self._fetcher, Fetcher):
            return self._fetcher
        self._fetcher = self._fetcher()
        return self._fetcher

    def trusted(self) -> trust.TrustedState:
        return self.state

    def close(self) -> None:
        if isinstance(self._fetcher, Fetcher):
            self._fetcher.close()

    def fetch(self, name: str, cap: int | None) -> bytes:
        """Bytes of ``name`` (a prefetched copy if there is one), at most ``cap``.

        Raises:
            FetchError (NotFoundError, SizeLimitError): as the fetcher.
        """
        data = self._prefetched.pop(name, None)
        return data if data is not None else self.fetcher.fetch(name, cap)

    def _cached(self, name: str) -> bytes | None:
        return self.cache.read(name) if self.cache is not None else None

    def _keep(self, name: str, data: bytes) -> None:
        if self.cache is not None:
            self.cache.write(name, data)

    def _forget(self, name: str) -> None:
        if self.cache is not None:
            self.cache.drop(name)

    def _source(self, name: str) -> str:
        return self.cache.source(name) if self.cache is not None else name

    # ----------------------------------------------------------------- roots
    def walk_cached_roots(self) -> None:
        """Follow ``N+1.root.json`` in the cache, each verified like a fetched one; the
        first that fails is dropped from the cache and ends the walk."""
        if self.cache is None:
            return

        def cached(version: int) -> tuple[bytes, str] | None:
            name = f"{version}.root.json"
            data = self._cached(name)
            return None if data is None else (data, self._source(name))

        try:
            self.state.walk_roots(cached)
        except TiupError:
            self._forget(f"{self.state.root.version + 1}.root.json")

    def walk_roots(self) -> bool:
        """Fetch ``N+1.root.json`` until the mirror has none. True if the root changed.

        Each accepted root is cached, and the cache's ``root.json`` is the newest.

        Raises:
            VerificationError: a next root does not verify.
            FetchError: the mirror failed other than "not found".
        """

        def fetched(version: int) -> tuple[bytes, str] | None:
            return probe_root(self.fetch, version)

        changed: list[str] = []

        def accepted(data: bytes, name: str) -> None:
            self._keep(name, data)
            changed.append(name)

        try:
            self.state.walk_roots(fetched, accepted)
        finally:
            if changed:
                self._keep("root.json", self.state.root_raw)
                self._refreshed = False  # the state dropped what the old root verified
        return bool(changed)

    # ---------------------------------------------------------- the walk
    def refresh(self) -> None:
        """Bring timestamp, snapshot and index up to date (once per reader).

        Raises:
            VerificationError: any trust rule failed (nothing unverified is cached).
            FetchError: the mirror could not be read.
        """
        if self._refreshed:
            return
        state = self.state
        self._offer_cached_timestamp()
        self._ts_bytes = self.fetch("timestamp.json", trust.MAX_TIMESTAMP_SIZE)
        try:
            state.update_timestamp(self._ts_bytes)
        except (SignatureError, ExpiredError):
            self.walk_roots()
            state.update_timestamp(self._ts_bytes)
        for attempt in range(SNAPSHOT_ATTEMPTS):
            try:
                self._update_snapshot()
            except (IntegrityError, SizeLimitError):
                if attempt == SNAPSHOT_ATTEMPTS - 1:
                    raise
                self._ts_bytes = self.fetch("timestamp.json", trust.MAX_TIMESTAMP_SIZE)
                state.update_timestamp(self._ts_bytes)
                continue
            if not state.root_behind_snapshot():
                break
            self.walk_roots()
            state.update_timestamp(self._ts_bytes)
        else:
            raise VerificationError(
                f"snapshot.json of {self.address} names a root version that is not "
                "published", file="snapshot.json")
        self._update_index()
        self._refreshed = True

    def _offer_cached_timestamp(self) -> None:
        data = self._cached("timestamp.json")
        if data is None:
            return
        try:
            self.state.update_timestamp(data, self._source("timestamp.json"), allow_expired=True)
        except TiupError:
            self._forget("timestamp.json")

    def _update_snapshot(self) -> None:
        state = self.state
        assert state.timestamp is not None and state.timestamp.snapshot_meta is not None
        meta = state.timestamp.snapshot_meta
        cached = self._cached("snapshot.json")
        if cached is not None:
            try:
                trust.check_hashes(cached, meta.hashes, meta.length, "snapshot.json")
                state.update_snapshot(cached, self._source("snapshot.json"))
                self._keep_timestamp()
                return
            except IntegrityError:
                pass  # an older cached snapshot: fetch the current one
            except TiupError:
                self._forget("snapshot.json")
        cap = None if self.accept_interrupted else meta.length
        data = self.fetch("snapshot.json", cap)
        state.update_snapshot(data, accept_interrupted=self.accept_interrupted)
        self._keep("snapshot.json", data)
        self._keep_timestamp()

    def _keep_timestamp(self) -> None:
        assert self._ts_bytes is not None
        if self.cache is not None and self._cached("timestamp.json") != self._ts_bytes:
            self._keep("timestamp.json", self._ts_bytes)

    def _update_index(self) -> None:
        state = self.state
        version, length = state.expected_index()
        cached = self._cached("index.json")
        if cached is not None and state.offer_cached_index(
                cached, self._source("index.json")) is not None:
            return
        name = versioned_url(state.index_url(), version).lstrip("/")
        data = self.fetch(name, length)
        index = state.update_index(data, name)
        self._keep("index.json", data)
        if self.cache is not None:
            self.cache.prune(index)

    # ---------------------------------------------------------- components
    @property
    def index(self) -> Index:
        """The verified index (refreshing first if needed)."""
        self.refresh()
        assert self.state.index is not None
        return self.state.index

    def index_name(self) -> str:
        """The file the index was verified from (``N.index.json``, or the cache's copy)."""
        self.refresh()
        return self.state.index_source

    def component(self, comp_id: str, *, allow_expired: bool = False) -> Component:
        """The verified manifest of ``comp_id``, from the cache if it is current.

        ``allow_expired`` ignores the manifest's own expiry (a writer re-signs it).

        Raises:
            VerificationError: unknown component, or the manifest fails the rules.
            FetchError: it could not be downloaded.
        """
        self.refresh()
        state = self.state
        held = state.components.get(comp_id)
        if held is not None:
            return held
        url, version, length = state.component_entry(comp_id)
        cache_name = f"{comp_id}.json"
        cached = self._cached(cache_name)
        if cached is not None:
            comp = state.offer_cached_component(comp_id, cached, self._source(cache_name),
                                                allow_expired=allow_expired)
            if comp is not None:
                return comp
        name = versioned_url(url, version).lstrip("/")
        data = self.fetch(name, length)
        comp = state.update_component(comp_id, data, name, allow_expired=allow_expired)
        self._keep(cache_name, data)
        return comp

    def prefetch_components(self, comp_ids: Iterable[str], jobs: int = 8) -> None:
        """Download, ``jobs`` at a time, the manifests :meth:`component` will need.

        Only bytes are fetched here (with the snapshot's caps); each is verified when
        :meth:`component` takes it. Components whose cache is current are skipped, and
        failures are left for :meth:`component` to report.
        """
        self.refresh()
        state = self.state
        wanted: list[tuple[str, int]] = []
        for comp_id in comp_ids:
            if comp_id in state.components:
                continue
            try:
                url, version, length = state.component_entry(comp_id)
            except TiupError:
                continue
            cached = self._cached(f"{comp_id}.json")
            if cached is not None and _declared_version(cached) == version:
                continue
            wanted.append((versioned_url(url, version).lstrip("/"), length))
        if len(wanted) < 2:
            return
        fetcher = self.fetcher

        def get(item: tuple[str, int]) -> tuple[str, bytes | None]:
            try:
                return item[0], fetcher.fetch(item[0], item[1])
            except TiupError:
                return item[0], None

        from concurrent.futures import ThreadPoolExecutor  # here: not on the cached paths

        with ThreadPoolExecutor(max_workers=min(jobs, len(wanted))) as pool:
            for name, data in pool.map(get, wanted):
                if data is not None:
                    self._prefetched[name] = data


def _declared_version(data: bytes) -> int | None:
    """The ``signed.version`` a manifest claims (unverified: only to skip a download)."""
    import json

    try:
        version = json.loads(data)["signed"]["version"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    return version if isinstance(version, int) else None


__all__ = ["SNAPSHOT_ATTEMPTS", "ManifestCache", "MirrorReader", "VerifiedMirror"]
