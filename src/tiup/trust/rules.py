"""The trust rules, each a pure function of bytes, models and a reference time.

Signatures and thresholds (:func:`verify_signatures`), the root chain
(:func:`verify_self_signed_root`, :func:`verify_next_root`), document
validity, expiry, hashes and the download caps. :class:`tiup.trust.state.TrustedState`
applies them in the order of an update; ``tiup mirror verify`` runs them one
by one to report every problem instead of stopping at the first. Error
classes matter: :class:`~tiup.errors.SignatureError` and
:class:`~tiup.errors.ExpiredError` on a timestamp make a reader walk the root
chain once and retry.

Nothing here reads files, talks to a network or looks at the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
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
from tiup.hashing import FileInfo
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
        SignatureError: duplicates, a bad signature, too few (code ``no-signatures`` when
            none of the role's keys signed, ``below-threshold`` otherwise), malformed or
            unsupported keys.
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
            file=src, expired_file=role.declared_in,
        )
    if len(identities) < role.threshold:
        raise SignatureError(
            f"not enough signatures ({len(identities)}) for threshold {role.threshold} in {src}"
            f" (role {role.name}, keys from {role.declared_in})",
            file=src, code="no-signatures" if not identities else "below-threshold",
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


#: Error code of :func:`check_timestamp_valid`: the snapshot cannot be located from it.
INVALID_TIMESTAMP = "invalid-timestamp"


def check_timestamp_valid(ts: Timestamp, source: str) -> None:
    """Exactly one meta entry, ``/snapshot.json``, with a sha256.

    Raises:
        ManifestError: code :data:`INVALID_TIMESTAMP`.
    """
    meta = ts.snapshot_meta
    if meta is None:
        raise ManifestError(
            f"timestamp manifest is missing entry for snapshot.json in {source}", file=source,
            code=INVALID_TIMESTAMP)
    if len(ts.meta) != 1:
        raise ManifestError(
            f"timestamp manifest has too many entries in meta in {source}", file=source,
            code=INVALID_TIMESTAMP)
    if not meta.hashes.get("sha256"):
        raise ManifestError(f"missing hash for snapshot.json in {source}", file=source,
                            code=INVALID_TIMESTAMP)


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
    if not (expected.get("sha256") or expected.get("sha512")):
        return
    info = FileInfo.of_bytes(data)
    for algo, got in (("sha256", info.sha256), ("sha512", info.sha512)):
        want = expected.get(algo)
        if want and got != want.lower():
            raise IntegrityError(f"{algo} of {source} is {got}, expected {want}", file=source)


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


# ------------------------------------------------ per-document checks (non-raising)
#
# Each returns every problem of one document, in the order the checks run, as
# errors (never raised): the trust state raises the first, ``tiup mirror verify``
# reports them all. ``now=None`` leaves expiry out (the audit reports it itself).

#: Every problem of one document, in the order the checks run.
Problems = list[TiupError]


def _collect(out: Problems, check: Callable[[], object]) -> None:
    try:
        check()
    except TiupError as exc:
        out.append(exc)


def timestamp_problems(env: Envelope, ts: Timestamp, root: Root, root_source: str,
                       now: datetime | None) -> Problems:
    """Signatures (timestamp role), spec version, expiry, the one ``/snapshot.json`` entry."""
    src = env.source
    out: Problems = []
    _collect(out, lambda: verify_signatures(env, role_keys(root, "timestamp", root_source), now))
    _collect(out, lambda: check_spec_version(ts, src))
    _collect(out, lambda: check_expiry(ts, src, now))
    _collect(out, lambda: check_timestamp_valid(ts, src))
    return out


def snapshot_problems(env: Envelope, snap: Snapshot, root: Root, root_source: str,
                      now: datetime | None) -> Problems:
    """Signatures (snapshot role), spec version, expiry, and no older root named.

    (The snapshot's bytes against the timestamp's hashes are :func:`check_hashes`.)
    """
    src = env.source
    out: Problems = []
    _collect(out, lambda: verify_signatures(env, role_keys(root, "snapshot", root_source), now))
    _collect(out, lambda: check_spec_version(snap, src))
    _collect(out, lambda: check_expiry(snap, src, now))
    root_meta = snap.meta.get("/root.json")
    if root_meta is not None and root_meta.version < root.version:
        out.append(RollbackError(
            f"{src} names root version {root_meta.version}, older than the trusted "
            f"root version {root.version}", file=src))
    return out


def index_problems(env: Envelope, index: Index, root: Root, root_source: str,
                   now: datetime | None, version: int) -> Problems:
    """Signatures (index role), spec version, expiry, validity, and the version the
    snapshot names."""
    src = env.source
    out: Problems = []
    _collect(out, lambda: verify_signatures(env, role_keys(root, "index", root_source), now))
    _collect(out, lambda: check_spec_version(index, src))
    _collect(out, lambda: check_expiry(index, src, now))
    _collect(out, lambda: check_index_valid(index, src))
    if index.version != version:
        out.append(RollbackError(
            f"{src} has version {index.version}, but snapshot.json names {version}", file=src))
    return out


def component_problems(env: Envelope, comp: Component, comp_id: str, index: Index,
                       index_source: str, now: datetime | None, version: int) -> Problems:
    """Signatures (the owner's keys per the index), the id, spec version, expiry, and the
    version the snapshot names."""
    src = env.source
    out: Problems = []
    item = index.components.get(comp_id)
    if item is None:
        out.append(VerificationError(f"unknown component {comp_id}", file=index_source))
        return out
    _collect(out, lambda: verify_signatures(env, owner_keys(index, item.owner, index_source),
                                            now))
    if comp.id != comp_id:
        out.append(SignatureError(
            f"expected component id {comp_id}, got {comp.id or 'nothing'} in {src}", file=src))
    _collect(out, lambda: check_spec_version(comp, src))
    _collect(out, lambda: check_expiry(comp, src, now))
    if comp.version != version:
        out.append(RollbackError(
            f"{src} has version {comp.version}, but snapshot.json names {version}", file=src))
    return out


def raise_first(problems: Problems) -> None:
    """Raise the first problem, if any (how the trust state applies the checks above)."""
    if problems:
        raise problems[0]
