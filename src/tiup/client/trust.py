"""The trust rules: a pure state machine fed with bytes and a reference time.

Nothing here reads files, talks to a network or looks at the clock. The
updater fetches bytes (with the caps this module names) and hands them to
:class:`TrustedState` in order::

    root.json → N+1.root.json … → timestamp.json → snapshot.json
              → N.index.json → N.<component>.json

Each ``update_*`` method either returns the verified model and remembers it,
or raises a :class:`~tiup.errors.VerificationError` subclass naming the file
and the reason; the state is unchanged on failure. Error classes matter:
:class:`~tiup.errors.SignatureError` and :class:`~tiup.errors.ExpiredError`
on a timestamp make the updater walk the root chain once and retry.

The single checks are also public functions, so ``tiup mirror verify`` can
run them one by one and report every problem instead of stopping at the first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from tiup.errors import (
    ExpiredError,
    IntegrityError,
    ManifestError,
    RollbackError,
    SignatureError,
    TiupError,
    VerificationError,
)
from tiup.keys import RSA_TYPE, decode_signature, public_key
from tiup.manifest.envelope import Envelope, parse_envelope
from tiup.manifest.models import (
    ROLE_TYPES,
    SPEC_VERSION,
    Component,
    Index,
    KeyInfo,
    Root,
    Signed,
    Snapshot,
    Timestamp,
)
from tiup.manifest.names import ROLE_NAMES

#: Download caps (``format.md`` §11).
MAX_TIMESTAMP_SIZE = 1024
MAX_ROOT_SIZE = 1024 * 1024

T = TypeVar("T", bound=Signed)


@dataclass(frozen=True)
class RoleKeys:
    """Who may sign a document: keys, threshold, and when that grant expires.

    ``expires`` is the expiry of the manifest declaring the keys (the root for
    roles, the index for owners); None means the grant never expires (used for
    a root verifying itself).
    """

    name: str
    keys: Mapping[str, KeyInfo]
    threshold: int
    expires: datetime | None
    declared_in: str


def _fmt(moment: datetime) -> str:
    return moment.isoformat()


def verify_signatures(env: Envelope, role: RoleKeys, now: datetime | None) -> set[str]:
    """Check ``env`` is signed by at least ``role.threshold`` of ``role.keys``.

    Rules (``format.md`` §9): duplicate keyids are fatal; signatures by
    unknown keyids are ignored; a bad signature by a known key is fatal even
    if the threshold is met; each key (by its public numbers) counts once;
    role keys expire with the manifest that declared them.

    Args:
        now: reference time for the role-key expiry; None skips that check.

    Returns:
        The keyids whose signatures verified.

    Raises:
        SignatureError: duplicates, a bad signature, too few, malformed or unsupported keys.
        ExpiredError: the declaring manifest has expired at ``now``.
    """
    src = env.source
    ids = [s.keyid for s in env.signatures]
    if len(ids) != len(set(ids)):
        dup = next(k for k in ids if ids.count(k) > 1)
        raise SignatureError(f"{src} contains duplicate signatures (key {dup[:16]})", file=src)
    valid: set[str] = set()
    identities: set[Hashable] = set()
    for sig in env.signatures:
        info = role.keys.get(sig.keyid)
        if info is None:
            continue
        try:
            key = public_key(info, f"{role.declared_in} key {sig.keyid[:16]}")
            raw = decode_signature(sig.sig, src)
        except TiupError as exc:
            raise SignatureError(f"{src}: {exc.message}", file=src) from exc
        if not key.verify(env.signed_raw, raw):
            raise SignatureError(
                f"invalid signature by key {sig.keyid[:16]} ({role.name}) in {src}",
                file=src,
                hint="the file was modified after signing, or signed by a different key",
            )
        valid.add(sig.keyid)
        identities.add(key.identity())
    if role.name != "root" and now is not None and role.expires is not None and role.expires < now:
        raise ExpiredError(
            f"the keys of role {role.name} for {src} expired at {_fmt(role.expires)} "
            f"(declared in {role.declared_in})",
            file=src,
        )
    if len(identities) < role.threshold:
        raise SignatureError(
            f"not enough signatures ({len(identities)}) for threshold {role.threshold} in {src}"
            f" (role {role.name}, keys from {role.declared_in})",
            file=src,
        )
    return valid


def check_type(env: Envelope, expected: str) -> None:
    """The document's own ``_type`` must be the role being loaded. Raises SignatureError."""
    if env.type != expected:
        raise SignatureError(
            f"expected _type {expected}, got {env.type or 'nothing'} in {env.source}",
            file=env.source,
        )


def check_spec_version(signed: Signed, source: str) -> None:
    """Raises ManifestError for an unknown ``spec_version``."""
    if signed.spec_version != SPEC_VERSION:
        raise ManifestError(
            f"unknown manifest version: `{signed.spec_version}` in {source}",
            file=source,
            hint="you might need to update tiup",
        )


def check_expiry(signed: Signed, source: str, now: datetime | None) -> None:
    """Raises ExpiredError if ``signed`` expired before ``now`` (None skips the check)."""
    if now is None:
        return
    at = signed.expires_at()
    if at < now:
        raise ExpiredError(f"{source} expired at {_fmt(at)}", file=source)


def _key_problem(info: KeyInfo, keyid: str, where: str) -> str | None:
    if (info.keytype, info.scheme) != RSA_TYPE:
        return f"unsupported key type {info.keytype} (key {keyid[:16]}) in {where}"
    if info.stored_id() != keyid:
        return f"key id {keyid[:16]} does not match its key in {where}"
    return None


def check_root_valid(root: Root, source: str) -> None:
    """``Root.isValid`` plus stricter key checks.

    Raises:
        ManifestError: a role is missing or has a bad threshold.
        SignatureError: a key id does not match its key, or a key type is unsupported.
    """
    for name in ROLE_TYPES:
        role = root.roles.get(name)
        if role is None:
            raise ManifestError(f"root manifest is missing {name} role in {source}", file=source)
        if role.threshold < 1:
            raise ManifestError(
                f"invalid threshold ({role.threshold}) for role {name} in {source}", file=source
            )
        if len(role.keys) < role.threshold:
            raise ManifestError(
                f"role {name} has {len(role.keys)} keys, fewer than its threshold "
                f"{role.threshold}, in {source}",
                file=source,
            )
        for keyid, info in role.keys.items():
            problem = _key_problem(info, keyid, source)
            if problem:
                raise SignatureError(problem, file=source)


def check_index_valid(index: Index, source: str) -> None:
    """Owners exist, are not role names, have sound keys and thresholds.

    Raises:
        ManifestError: unknown owner or default component, bad threshold.
        SignatureError: an owner shadows a role, a key id is wrong, an unsupported key.
    """
    for owner_id, owner in index.owners.items():
        if owner_id in ROLE_NAMES:
            raise SignatureError(f"owner id {owner_id} shadows a role in {source}", file=source)
        if owner.threshold is not None and owner.threshold < 1:
            raise ManifestError(
                f"invalid threshold ({owner.threshold}) for owner {owner_id} in {source}",
                file=source,
            )
        if len(owner.keys) < owner.effective_threshold:
            raise ManifestError(
                f"owner {owner_id} has fewer keys than its threshold in {source}", file=source
            )
        for keyid, info in owner.keys.items():
            problem = _key_problem(info, keyid, f"{source} owner {owner_id}")
            if problem:
                raise SignatureError(problem, file=source)
    for comp_id, item in index.components.items():
        if item.owner not in index.owners:
            raise ManifestError(
                f"component {comp_id} has unknown owner {item.owner} in {source}", file=source
            )
    for comp_id in index.default_components or []:
        if comp_id not in index.components:
            raise ManifestError(
                f"default component {comp_id} is not in the index {source}", file=source
            )


def check_timestamp_valid(ts: Timestamp, source: str) -> None:
    """Exactly one meta entry, ``/snapshot.json``, with a sha256. Raises ManifestError."""
    meta = ts.snapshot_meta
    if meta is None:
        raise ManifestError(
            f"timestamp manifest is missing entry for snapshot.json in {source}", file=source
        )
    if len(ts.meta) != 1:
        raise ManifestError(
            f"timestamp manifest has too many entries in meta in {source}", file=source
        )
    if not meta.hashes.get("sha256"):
        raise ManifestError(f"missing hash for snapshot.json in {source}", file=source)


def check_hashes(data: bytes, expected: Mapping[str, str], max_length: int | None, source: str,
                 exact_length: bool = False) -> None:
    """Check length (as a cap, or exact) and every known hash of ``data``.

    Raises:
        IntegrityError: naming the file, the expected and the actual value.
    """
    if max_length is not None:
        if exact_length and len(data) != max_length:
            raise IntegrityError(
                f"length of {source} is {len(data)}, expected {max_length}", file=source
            )
        if len(data) > max_length:
            raise IntegrityError(
                f"{source} is {len(data)} bytes, more than the declared {max_length}", file=source
            )
    for algo in ("sha256", "sha512"):
        want = expected.get(algo)
        if want:
            got = hashlib.new(algo, data).hexdigest()
            if got != want.lower():
                raise IntegrityError(
                    f"{algo} of {source} is {got}, expected {want}", file=source
                )


def load(data: bytes, source: str, cls: type[T]) -> tuple[Envelope, T]:
    """Parse a manifest of the expected type.

    Raises:
        ManifestError: malformed.
        SignatureError: the ``_type`` is not the expected one.
    """
    env = parse_envelope(data, source)
    check_type(env, cls.TYPE)
    model = cls.from_dict(env.signed, source)  # type: ignore[attr-defined]
    assert isinstance(model, cls)
    return env, model


def role_keys(root: Root, name: str, source: str) -> RoleKeys:
    role = root.roles[name]
    return RoleKeys(name, role.keys, role.threshold, root.expires_at(), source)


def owner_keys(index: Index, owner_id: str, source: str) -> RoleKeys:
    """The keys of an owner; they expire with the index. Raises ManifestError if unknown."""
    owner = index.owners.get(owner_id)
    if owner is None:
        raise ManifestError(f"owner {owner_id} not found in {source}", file=source)
    return RoleKeys(
        f"owner {owner_id}", owner.keys, owner.effective_threshold, index.expires_at(), source
    )


def verify_self_signed_root(data: bytes, source: str) -> tuple[Envelope, Root]:
    """A root verified against its own root keys; its expiry is not checked.

    Raises:
        ManifestError, SignatureError: as for :func:`load` and :func:`check_root_valid`.
    """
    env, root = load(data, source, Root)
    check_spec_version(root, source)
    check_root_valid(root, source)
    verify_signatures(env, RoleKeys("root", root.roles["root"].keys,
                                    root.roles["root"].threshold, None, source), None)
    return env, root


def verify_next_root(current: Root, current_source: str, data: bytes, source: str
                     ) -> tuple[Envelope, Root]:
    """Verify root N+1 against root N (``format.md`` §10, client side).

    Raises:
        SignatureError: not signed by the old threshold of old keys and the new
            threshold of new keys, or invalid.
        RollbackError: version is not exactly N+1, or expiry moved backwards.
        ManifestError: malformed.
    """
    if len(data) > MAX_ROOT_SIZE:
        raise IntegrityError(f"{source} is larger than {MAX_ROOT_SIZE} bytes", file=source)
    env, new = load(data, source, Root)
    old_role = current.roles["root"]
    verify_signatures(env, RoleKeys("root", old_role.keys, old_role.threshold, None,
                                    current_source), None)
    check_spec_version(new, source)
    check_root_valid(new, source)
    new_role = new.roles["root"]
    verify_signatures(env, RoleKeys("root", new_role.keys, new_role.threshold, None, source), None)
    if new.version != current.version + 1:
        raise RollbackError(
            f"root version is {new.version}, but should be: {current.version + 1} ({source})",
            file=source,
        )
    if new.expires_at() < current.expires_at():
        raise RollbackError(
            f"manifests have mis-ordered expiry times: {source} expires before {current_source}",
            file=source,
        )
    return env, new


def describe_root(root: Root) -> str:
    """``v3, keys 1a2b3c4d, 5e6f7a8b``: a root and its root-role key ids, for messages."""
    ids = ", ".join(sorted(k[:8] for k in root.roles["root"].keys)) or "none"
    return f"v{root.version}, keys {ids}"


class TrustedState:
    """The verified metadata of one mirror, built up in the order of the update flow.

    Args:
        root_data: bytes of the trusted root (``root.json`` or a pinned copy).
        now: the reference time; None ignores every expiry (offline use of
            already installed components, where signatures still count).

    Raises:
        ManifestError, SignatureError: the trusted root itself is unusable.
    """

    def __init__(self, root_data: bytes, now: datetime | None, source: str = "root.json"):
        self.now = now
        self.root_env, self.root = verify_self_signed_root(root_data, source)
        self.root_source = source
        self.timestamp: Timestamp | None = None
        self.snapshot: Snapshot | None = None
        self.snapshot_raw: bytes | None = None
        self.index: Index | None = None
        self.index_source = ""
        self.components: dict[str, Component] = {}

    # ------------------------------------------------------------------ root
    def update_root(self, data: bytes, source: str) -> Root:
        """Accept root N+1. Raises as :func:`verify_next_root`."""
        self.root_env, self.root = verify_next_root(self.root, self.root_source, data, source)
        self.root_source = source
        return self.root

    def check_root_fresh(self) -> None:
        """After the root walk: the final root must not be expired. Raises ExpiredError."""
        check_expiry(self.root, self.root_source, self.now)

    # ------------------------------------------------------------- timestamp
    def update_timestamp(self, data: bytes, source: str = "timestamp.json",
                         *, allow_expired: bool = False) -> Timestamp:
        """Verify a timestamp with the timestamp role of the trusted root.

        ``allow_expired`` loads a cached copy only to compare versions with.

        Raises:
            IntegrityError: over 1024 bytes.
            SignatureError, ExpiredError, ManifestError: as the rules say.
            RollbackError: older than the timestamp already held.
        """
        if len(data) > MAX_TIMESTAMP_SIZE:
            raise IntegrityError(
                f"{source} is {len(data)} bytes, over the {MAX_TIMESTAMP_SIZE}-byte limit",
                file=source,
            )
        now = None if allow_expired else self.now
        env, ts = load(data, source, Timestamp)
        verify_signatures(env, role_keys(self.root, "timestamp", self.root_source), now)
        check_spec_version(ts, source)
        check_expiry(ts, source, now)
        check_timestamp_valid(ts, source)
        if self.timestamp is not None and ts.version < self.timestamp.version:
            raise RollbackError(
                f"timestamp manifest has a version number < the old manifest "
                f"({ts.version}, {self.timestamp.version}) in {source}",
                file=source,
            )
        self.timestamp = ts
        return ts

    # -------------------------------------------------------------- snapshot
    def update_snapshot(self, data: bytes, source: str = "snapshot.json",
                        *, allow_expired: bool = False) -> Snapshot:
        """Verify the snapshot against the held timestamp's hashes and the snapshot role.

        Raises:
            IntegrityError: length over the cap, or a hash mismatch.
            SignatureError, ExpiredError, ManifestError, RollbackError.
        """
        if self.timestamp is None or self.timestamp.snapshot_meta is None:
            raise VerificationError("snapshot.json loaded before timestamp.json", file=source)
        meta = self.timestamp.snapshot_meta
        check_hashes(data, meta.hashes, meta.length, source)
        now = None if allow_expired else self.now
        env, snap = load(data, source, Snapshot)
        verify_signatures(env, role_keys(self.root, "snapshot", self.root_source), now)
        check_spec_version(snap, source)
        check_expiry(snap, source, now)
        root_meta = snap.meta.get("/root.json")
        if root_meta is not None and root_meta.version < self.root.version:
            raise RollbackError(
                f"{source} names root version {root_meta.version}, older than the trusted "
                f"root version {self.root.version}",
                file=source,
            )
        self.snapshot, self.snapshot_raw = snap, data
        return snap

    def root_behind_snapshot(self) -> bool:
        """True if the snapshot names a newer root than the trusted one (walk the chain)."""
        if self.snapshot is None:
            return False
        meta = self.snapshot.meta.get("/root.json")
        return meta is not None and meta.version > self.root.version

    # ----------------------------------------------------------------- index
    def index_url(self) -> str:
        return self.root.roles["index"].url or "/index.json"

    def expected_index(self) -> tuple[int, int]:
        """(version, max length) of the index the snapshot names. Raises VerificationError."""
        return self._snapshot_entry(self.index_url())

    def _snapshot_entry(self, url: str) -> tuple[int, int]:
        if self.snapshot is None:
            raise VerificationError(f"{url} requested before snapshot.json was verified")
        meta = self.snapshot.meta.get(url)
        if meta is None:
            raise VerificationError(
                f"no entry in snapshot manifest for {url}", file="snapshot.json"
            )
        return meta.version, meta.length

    def update_index(self, data: bytes, source: str, *, allow_expired: bool = False) -> Index:
        """Verify the index named by the snapshot.

        Raises:
            IntegrityError: over the snapshot's length cap.
            RollbackError: version differs from the snapshot's, or is older than the held one.
            SignatureError, ExpiredError, ManifestError.
        """
        version, length = self.expected_index()
        if len(data) > length:
            raise IntegrityError(
                f"{source} is {len(data)} bytes, more than the declared {length}", file=source
            )
        now = None if allow_expired else self.now
        env, index = load(data, source, Index)
        verify_signatures(env, role_keys(self.root, "index", self.root_source), now)
        check_spec_version(index, source)
        check_expiry(index, source, now)
        check_index_valid(index, source)
        if index.version != version:
            raise RollbackError(
                f"{source} has version {index.version}, but snapshot.json names {version}",
                file=source,
            )
        if self.index is not None and index.version < self.index.version:
            raise RollbackError(
                f"{source} version {index.version} is older than the trusted "
                f"{self.index.version}",
                file=source,
            )
        self.index, self.index_source = index, source
        return index

    # ------------------------------------------------------------- component
    def component_entry(self, comp_id: str) -> tuple[str, int, int]:
        """(url, version, max length) of a component per index and snapshot.

        Raises:
            VerificationError: no index yet, unknown component, or no snapshot entry.
        """
        if self.index is None:
            raise VerificationError(f"component {comp_id} requested before the index")
        item = self.index.components.get(comp_id)
        if item is None:
            raise VerificationError(f"unknown component {comp_id}", file=self.index_source)
        version, length = self._snapshot_entry(item.url)
        return item.url, version, length

    def update_component(self, comp_id: str, data: bytes, source: str,
                         *, allow_expired: bool = False) -> Component:
        """Verify a component manifest with its owner's keys.

        Raises:
            IntegrityError: over the length cap.
            RollbackError: version is not the snapshot's, or older than the held one.
            SignatureError: not signed by the owner's threshold; wrong ``_type`` or ``id``.
            ExpiredError, ManifestError.
        """
        assert self.index is not None
        _url, version, length = self.component_entry(comp_id)
        if len(data) > length:
            raise IntegrityError(
                f"{source} is {len(data)} bytes, more than the declared {length}", file=source
            )
        now = None if allow_expired else self.now
        env, comp = load(data, source, Component)
        owner = self.index.components[comp_id].owner
        verify_signatures(env, owner_keys(self.index, owner, self.index_source), now)
        if comp.id != comp_id:
            raise SignatureError(
                f"expected component id {comp_id}, got {comp.id or 'nothing'} in {source}",
                file=source,
            )
        check_spec_version(comp, source)
        check_expiry(comp, source, now)
        if comp.version != version:
            raise RollbackError(
                f"{source} has version {comp.version}, but snapshot.json names {version}",
                file=source,
            )
        held = self.components.get(comp_id)
        if held is not None and comp.version < held.version:
            raise RollbackError(
                f"{source} version {comp.version} is older than the trusted {held.version}",
                file=source,
            )
        self.components[comp_id] = comp
        return comp
