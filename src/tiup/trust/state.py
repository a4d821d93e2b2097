"""The closed trust state of one mirror: fed with bytes, in order, and nothing else.

:class:`TrustedState` holds what has been verified so far: the trusted root,
then ``timestamp.json``, ``snapshot.json``, the index and component manifests.
Its state is private (read-only properties); the only way to change it is an
``update_*`` call with the bytes of the next document, and the calls must come
in the order the rules require::

    root ─▶ N+1.root … ─▶ timestamp ─▶ snapshot ─▶ N.index ─▶ N.<component> …

A call out of order (a snapshot before a timestamp, an index before the
snapshot, a timestamp once the snapshot is held, a second index) raises
:class:`~tiup.errors.OrderError` and changes nothing. Each update
either verifies everything and then takes the document, or raises a
:class:`~tiup.errors.VerificationError` subclass naming the file and leaves
the state exactly as it was.

Roots may be updated at any point: a newer root invalidates everything that
was verified under the old one (timestamp, snapshot, index, components are
dropped and must be verified again), but the versions seen so far stay as
rollback floors, so re-verification can never go backwards.

Cached copies (the client's ``$TIUP_HOME/manifests``) are "intermediate"
documents: :meth:`TrustedState.offer_cached_index` and
:meth:`TrustedState.offer_cached_component` take a cached copy as the current
one if it is, and otherwise still use a validly signed copy as proof of the
newest version ever trusted, so a snapshot that names an older version is a
rollback. The root chain is walked by :meth:`TrustedState.walk_roots` from a
callback that returns the next root's bytes (the one loop over ``N+1.root.json``).

Nothing here reads files, talks to a network or looks at the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType

from tiup.errors import (
    IntegrityError,
    OrderError,
    RollbackError,
    TiupError,
    VerificationError,
)
from tiup.manifest.envelope import Envelope
from tiup.manifest.models import Component, Index, Root, Snapshot, Timestamp
from tiup.trust.rules import (
    MAX_TIMESTAMP_SIZE,
    check_expiry,
    check_hashes,
    component_problems,
    index_problems,
    load,
    owner_keys,
    raise_first,
    role_keys,
    snapshot_problems,
    timestamp_problems,
    verify_next_root,
    verify_self_signed_root,
    verify_signatures,
)

#: ``next_root(version)``: the bytes and source name of ``<version>.root.json``, or None
#: when the mirror has no such root (the end of the chain).
NextRoot = Callable[[int], "tuple[bytes, str] | None"]


def _order(message: str, source: str) -> OrderError:
    return OrderError(f"{message} (refused: documents must be verified in order)", file=source)


class TrustedState:
    """The verified metadata of one mirror (see the module docstring).

    Args:
        root_data: bytes of the trusted root (``root.json`` or a pinned copy).
        now: the reference time; None ignores every expiry (a writer renewing an
            expired mirror, offline use of installed components).
        source: the name of the trusted root, for messages.

    Raises:
        ManifestError, SignatureError: the trusted root itself is unusable.
    """

    def __init__(self, root_data: bytes, now: datetime | None, source: str = "root.json"):
        self._now = now
        self._root_env, self._root = verify_self_signed_root(root_data, source)
        self._root_source = source
        self._root_raw = root_data
        self._timestamp: Timestamp | None = None
        self._timestamp_raw: bytes | None = None
        self._snapshot: Snapshot | None = None
        self._snapshot_raw: bytes | None = None
        self._index: Index | None = None
        self._index_source = ""
        self._components: dict[str, Component] = {}
        # The newest versions ever verified (also under an older root): rollback floors.
        self._floor_timestamp = 0
        self._floor_index = 0
        self._floor_components: dict[str, int] = {}

    # ------------------------------------------------------------- read only
    @property
    def now(self) -> datetime | None:
        return self._now

    @property
    def root(self) -> Root:
        return self._root

    @property
    def root_env(self) -> Envelope:
        return self._root_env

    @property
    def root_raw(self) -> bytes:
        """The bytes of the latest trusted root."""
        return self._root_raw

    @property
    def root_source(self) -> str:
        return self._root_source

    @property
    def timestamp(self) -> Timestamp | None:
        return self._timestamp

    @property
    def timestamp_raw(self) -> bytes | None:
        return self._timestamp_raw

    @property
    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    @property
    def snapshot_raw(self) -> bytes | None:
        return self._snapshot_raw

    @property
    def index(self) -> Index | None:
        return self._index

    @property
    def index_source(self) -> str:
        return self._index_source

    @property
    def components(self) -> Mapping[str, Component]:
        return MappingProxyType(self._components)

    # ------------------------------------------------------------------ root
    def update_root(self, data: bytes, source: str) -> Root:
        """Accept root N+1 (signed by the old and the new root thresholds).

        Everything verified under the old root is dropped (its versions stay as
        rollback floors) and must be verified again.

        Raises:
            SignatureError, RollbackError, ManifestError, IntegrityError: as
                :func:`~tiup.trust.rules.verify_next_root`.
        """
        env, root = verify_next_root(self._root, self._root_source, data, source)
        self._root_env, self._root, self._root_source, self._root_raw = env, root, source, data
        self._timestamp = self._snapshot = None
        self._timestamp_raw = self._snapshot_raw = None
        self._index, self._index_source = None, ""
        self._components = {}
        return root

    def walk_roots(self, next_root: NextRoot,
                   accepted: Callable[[bytes, str], None] | None = None) -> int:
        """Accept ``N+1.root.json``, ``N+2.root.json`` … as ``next_root`` gives them.

        Args:
            next_root: the bytes and name of a root version, or None past the last.
            accepted: told each root's bytes and name once it is verified (to cache it).

        Returns:
            How many newer roots were accepted.

        Raises:
            As :meth:`update_root` (the roots accepted before the failure stay), and
            whatever ``next_root`` or ``accepted`` raise.
        """
        count = 0
        while (got := next_root(self._root.version + 1)) is not None:
            self.update_root(*got)
            count += 1
            if accepted is not None:
                accepted(*got)
        return count

    def check_root_fresh(self) -> None:
        """After the root walk: the final root must not be expired. Raises ExpiredError."""
        check_expiry(self._root, self._root_source, self._now)

    def root_behind_snapshot(self) -> bool:
        """True if the held snapshot names a newer root than the trusted one."""
        if self._snapshot is None:
            return False
        meta = self._snapshot.meta.get("/root.json")
        return meta is not None and meta.version > self._root.version

    # ------------------------------------------------------------- timestamp
    def update_timestamp(self, data: bytes, source: str = "timestamp.json",
                         *, allow_expired: bool = False) -> Timestamp:
        """Verify a timestamp with the timestamp role of the trusted root.

        A second timestamp may replace the first (a cached copy, then the
        mirror's) until the snapshot is verified; it must not be older.
        ``allow_expired`` takes a cached copy only to compare versions with.

        Raises:
            IntegrityError: over 1024 bytes.
            SignatureError, ExpiredError, ManifestError: as the rules say.
            RollbackError: older than a timestamp already trusted.
            OrderError: the snapshot is already verified.
        """
        if self._snapshot is not None:
            raise _order("timestamp.json offered after snapshot.json was verified", source)
        if len(data) > MAX_TIMESTAMP_SIZE:
            raise IntegrityError(
                f"{source} is {len(data)} bytes, over the {MAX_TIMESTAMP_SIZE}-byte limit",
                file=source,
            )
        now = None if allow_expired else self._now
        env, ts = load(data, source, Timestamp)
        raise_first(timestamp_problems(env, ts, self._root, self._root_source, now))
        floor = max(self._floor_timestamp,
                    self._timestamp.version if self._timestamp is not None else 0)
        if ts.version < floor:
            raise RollbackError(
                f"timestamp manifest has a version number < the old manifest "
                f"({ts.version}, {floor}) in {source}",
                file=source,
            )
        self._timestamp, self._timestamp_raw = ts, data
        self._floor_timestamp = max(self._floor_timestamp, ts.version)
        return ts

    # -------------------------------------------------------------- snapshot
    def update_snapshot(self, data: bytes, source: str = "snapshot.json",
                        *, allow_expired: bool = False,
                        accept_interrupted: bool = False) -> Snapshot:
        """Verify the snapshot against the held timestamp's hashes and the snapshot role.

        Args:
            accept_interrupted: a writer reading its own mirror accepts a validly
                signed snapshot that the timestamp does not name: the trace of a
                commit interrupted between its last two renames, which the writer's
                next commit completes. Never for readers.

        Raises:
            IntegrityError: length over the cap, or a hash mismatch.
            SignatureError, ExpiredError, ManifestError, RollbackError.
            OrderError: no timestamp yet, or the index is already verified.
        """
        if self._timestamp is None or self._timestamp.snapshot_meta is None:
            raise _order("snapshot.json offered before timestamp.json", source)
        if self._index is not None:
            raise _order("snapshot.json offered after the index was verified", source)
        meta = self._timestamp.snapshot_meta
        try:
            check_hashes(data, meta.hashes, meta.length, source)
        except IntegrityError:
            if not accept_interrupted:
                raise
        now = None if allow_expired else self._now
        env, snap = load(data, source, Snapshot)
        raise_first(snapshot_problems(env, snap, self._root, self._root_source, now))
        self._snapshot, self._snapshot_raw = snap, data
        return snap

    def snapshot_matches_timestamp(self) -> bool:
        """False if the held snapshot was taken as an interrupted commit (see above)."""
        if self._snapshot_raw is None or self._timestamp is None:
            return False
        meta = self._timestamp.snapshot_meta
        assert meta is not None
        try:
            check_hashes(self._snapshot_raw, meta.hashes, meta.length, "snapshot.json")
        except IntegrityError:
            return False
        return True

    # ----------------------------------------------------------------- index
    def index_url(self) -> str:
        return self._root.roles["index"].url or "/index.json"

    def expected_index(self) -> tuple[int, int]:
        """(version, max length) of the index the snapshot names. Raises VerificationError."""
        return self._snapshot_entry(self.index_url())

    def _snapshot_entry(self, url: str) -> tuple[int, int]:
        if self._snapshot is None:
            raise _order(f"{url} requested before snapshot.json was verified", url)
        meta = self._snapshot.meta.get(url)
        if meta is None:
            raise VerificationError(
                f"no entry in snapshot manifest for {url}", file="snapshot.json"
            )
        return meta.version, meta.length

    def update_index(self, data: bytes, source: str, *, allow_expired: bool = False) -> Index:
        """Verify the index named by the snapshot.

        Raises:
            IntegrityError: over the snapshot's length cap.
            RollbackError: version differs from the snapshot's, or is older than one
                trusted before.
            SignatureError, ExpiredError, ManifestError.
            OrderError: no snapshot yet, or an index is already held.
        """
        if self._index is not None:
            raise _order(f"{source} offered, but the index is already verified", source)
        version, length = self.expected_index()
        if len(data) > length:
            raise IntegrityError(
                f"{source} is {len(data)} bytes, more than the declared {length}", file=source
            )
        now = None if allow_expired else self._now
        env, index = load(data, source, Index)
        raise_first(index_problems(env, index, self._root, self._root_source, now, version))
        if index.version < self._floor_index:
            raise RollbackError(
                f"{source} version {index.version} is older than the trusted "
                f"{self._floor_index}",
                file=source,
            )
        self._index, self._index_source = index, source
        self._floor_index = index.version
        return index

    def offer_cached_index(self, data: bytes, source: str) -> Index | None:
        """A cached index: taken if it is the current one, else a rollback floor.

        Returns:
            The index if the cached copy is the one the snapshot names (now held);
            None if it is not (the caller fetches the current one).

        Raises:
            RollbackError: the cached copy is validly signed by the index role and
                newer than the version the snapshot names.
            OrderError: out of order (as :meth:`update_index`).
        """
        try:
            return self.update_index(data, source)
        except OrderError:
            raise
        except TiupError:
            pass  # not the current index: it may still prove a newer one was trusted
        version, _length = self.expected_index()
        held = self._signed_version(data, source, Index, "index")
        if held is not None and held > version:
            raise RollbackError(
                f"snapshot.json names index version {version}, older than the trusted "
                f"version {held}",
                file="snapshot.json",
            )
        return None

    def _signed_version(self, data: bytes, source: str, cls: type[Index] | type[Component],
                        owner_of: str) -> int | None:
        """The version of a validly signed copy (expiry ignored), else None."""
        try:
            env, model = load(data, source, cls)
            if isinstance(model, Index):
                verify_signatures(env, role_keys(self._root, "index", self._root_source), None)
            else:
                assert self._index is not None
                owner = self._index.components[owner_of].owner
                verify_signatures(env, owner_keys(self._index, owner, self._index_source), None)
                if model.id != owner_of:
                    return None
        except (TiupError, KeyError):
            return None
        return model.version

    # ------------------------------------------------------------- component
    def component_entry(self, comp_id: str) -> tuple[str, int, int]:
        """(url, version, max length) of a component per index and snapshot.

        Raises:
            VerificationError: no index yet, unknown component, or no snapshot entry.
        """
        if self._index is None:
            raise _order(f"component {comp_id} requested before the index", comp_id)
        item = self._index.components.get(comp_id)
        if item is None:
            raise VerificationError(f"unknown component {comp_id}", file=self._index_source)
        version, length = self._snapshot_entry(item.url)
        return item.url, version, length

    def update_component(self, comp_id: str, data: bytes, source: str,
                         *, allow_expired: bool = False) -> Component:
        """Verify a component manifest with its owner's keys.

        Raises:
            IntegrityError: over the length cap.
            RollbackError: version is not the snapshot's, or older than one trusted.
            SignatureError: not signed by the owner's threshold; wrong ``_type`` or ``id``.
            ExpiredError, ManifestError.
            OrderError: no index yet, or the component is already held.
            VerificationError: unknown component.
        """
        if comp_id in self._components:
            raise _order(f"{source} offered, but {comp_id} is already verified", source)
        _url, version, length = self.component_entry(comp_id)
        assert self._index is not None
        if len(data) > length:
            raise IntegrityError(
                f"{source} is {len(data)} bytes, more than the declared {length}", file=source
            )
        now = None if allow_expired else self._now
        env, comp = load(data, source, Component)
        raise_first(component_problems(env, comp, comp_id, self._index, self._index_source,
                                       now, version))
        floor = self._floor_components.get(comp_id, 0)
        if comp.version < floor:
            raise RollbackError(
                f"{source} version {comp.version} is older than the trusted {floor}",
                file=source,
            )
        self._components[comp_id] = comp
        self._floor_components[comp_id] = comp.version
        return comp

    def offer_cached_component(self, comp_id: str, data: bytes, source: str, *,
                               allow_expired: bool = False) -> Component | None:
        """A cached component manifest: taken if current, else a rollback floor.

        Returns:
            The manifest if the cached copy is the one the snapshot names; else None.

        Raises:
            RollbackError: a validly signed cached copy is newer than the snapshot's.
            OrderError: out of order (as :meth:`update_component`).
        """
        try:
            return self.update_component(comp_id, data, source, allow_expired=allow_expired)
        except OrderError:
            raise
        except TiupError:
            pass  # not the current manifest: it may still prove a newer one was trusted
        _url, version, _length = self.component_entry(comp_id)
        held = self._signed_version(data, source, Component, comp_id)
        if held is not None and held > version:
            raise RollbackError(
                f"snapshot.json names {comp_id} version {version}, older than the trusted "
                f"version {held}",
                file="snapshot.json",
            )
        return None
