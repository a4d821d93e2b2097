"""Maintenance writes: grant, modify, renew, transfer-owner, rotate, sign.

Each function stages its change in an open :class:`~tiup.repository.store.Store`;
the caller commits (so snapshot and timestamp are re-signed once, last).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tiup.errors import ManifestError, MissingKeyError, RepositoryError, TiupError
from tiup.fsutil import atomic_write
from tiup.keys import PrivateKey, public_key
from tiup.manifest import versions
from tiup.manifest.canonical import encode_canonical
from tiup.manifest.envelope import envelope_bytes, parse_envelope
from tiup.manifest.models import Component, KeyInfo, Owner, Root
from tiup.manifest.names import component_id, owner_id
from tiup.repository.keyring import KeyRing
from tiup.repository.lifetimes import renew
from tiup.repository.publish import clone_component, owner_signers
from tiup.repository.store import IndexFlags, Store, sign, sign_component
from tiup.repository.view import MirrorView


def _next_manifest(store: MirrorView, cid: str, days: int | None = None
                   ) -> tuple[Component, str]:
    comp = store.component(cid)
    item = store.index.components.get(cid)
    if comp is None or item is None:
        raise RepositoryError(f"unknown component {cid} in mirror {store.location}",
                              hint="publish it first with `tiup mirror publish`")
    new = clone_component(comp)
    new.version = store.next_component_version(cid)
    renew(new, store.now, days or store.lifetimes.component, bump=False)
    return new, item.owner


def next_component_manifest(store: MirrorView, cid: str, days: int | None = None
                            ) -> tuple[Component, str]:
    """The current manifest of ``cid`` renewed (version +1), and its owner.

    Raises:
        RepositoryError: unknown component.
    """
    return _next_manifest(store, cid, days)


def grant(store: Store, owner: str, name: str, keys: list[KeyInfo], threshold: int = 1
          ) -> list[str]:
    """Add an owner holding the public parts of ``keys``; returns their key ids.

    Raises:
        InvalidNameError: unsafe id or a role name.
        RepositoryError: the owner exists, a key is already owned, or a bad threshold.
    """
    oid = owner_id(owner)
    index = store.index
    if oid in index.owners:
        raise RepositoryError(f"owner {oid} exists", hint="choose another owner id")
    pubs: dict[str, KeyInfo] = {}
    for info in keys:
        pub = public_key(info)
        for other_id, other in index.owners.items():
            if pub.keyid in other.keys:
                raise RepositoryError(f"key {pub.keyid} exists (owned by {other_id})",
                                      hint="each key can belong to one owner only")
        pubs[pub.keyid] = pub.keyinfo()
    if not 1 <= threshold <= len(pubs):
        raise RepositoryError(f"threshold {threshold} must be between 1 and the number of "
                              f"keys ({len(pubs)})")
    store.edit_index().owners[oid] = Owner(pubs, name or oid, threshold)
    return list(pubs)


def modify(store: MirrorView, ring: KeyRing, cid: str, version: str | None, *,
           yank: bool | None = None, hidden: bool | None = None,
           standalone: bool | None = None, desc: str = "") -> Component:
    """Change a published component: description, index flags, or yank one version.

    Raises:
        RepositoryError: unknown component or version; a nightly yank.
        MissingKeyError: the owner's keys are not available.
    """
    new, owner = _next_manifest(store, component_id(cid))
    if desc:
        new.description = desc
    flags = IndexFlags()
    if version:
        if yank is not None:
            if yank and versions.is_nightly(version):
                raise RepositoryError("nightly version can't be yanked")
            found = [p for p in new.platforms.values() if version in p]
            if not found:
                raise RepositoryError(f"version {version} not found in {cid}")
            for versions_map in found:
                versions_map[version] = dataclasses.replace(versions_map[version], yanked=yank)
    else:
        flags = IndexFlags(yanked=yank, hidden=hidden, standalone=standalone)
    store.publish_component(sign_component(new, owner_signers(store, owner, ring)),
                            flags=flags)
    return new


def renew_component(store: MirrorView, ring: KeyRing, cid: str, days: int | None = None
                    ) -> Component:
    """Re-sign a component manifest (version +1) valid for ``days`` (default: lifetime).

    Raises:
        RepositoryError: unknown component.
        MissingKeyError: the owner's keys are not available.
    """
    new, owner = _next_manifest(store, component_id(cid), days)
    store.publish_component(sign_component(new, owner_signers(store, owner, ring)))
    return new


def transfer_owner(store: MirrorView, ring: KeyRing, cid: str, new_owner: str) -> Component:
    """Give a component to another owner; signed by both owners' thresholds.

    Raises:
        RepositoryError: unknown component or owner, or the same owner.
        MissingKeyError: not enough keys of either owner.
    """
    oid = owner_id(new_owner)
    if oid not in store.index.owners:
        raise RepositoryError(f"new owner '{oid}' is not in the available owner list",
                              hint="add it first with `tiup mirror grant`")
    new, current = _next_manifest(store, component_id(cid))
    if current == oid:
        raise RepositoryError(f"{cid} is already owned by {oid}")
    signers = owner_signers(store, current, ring)
    signers += [k for k in owner_signers(store, oid, ring) if k not in signers]
    store.publish_component(sign_component(new, signers), flags=IndexFlags(owner=oid))
    return new


@dataclass
class RotatePlan:
    root: Root
    signed_by: list[str]


def propose_root(store: Store, *, add: Sequence[KeyInfo] = (), remove: Sequence[str] = (),
                 threshold: int | None = None, days: int | None = None) -> Root:
    """The next root of a local mirror (see :func:`next_root`).

    Raises:
        RepositoryError: as :func:`next_root`.
    """
    return next_root(store.state.root, store.now, days or store.lifetimes.root, add=add,
                     remove=remove, threshold=threshold)


def next_root(old: Root, now: datetime, days: int, *, add: Sequence[KeyInfo] = (),
              remove: Sequence[str] = (), threshold: int | None = None) -> Root:
    """The root after ``old``: version +1, root keys added/removed, threshold, expiry
    extended to ``now + days`` (never shortened).

    (The interactive ``$EDITOR`` mode of ``rotate`` starts from this root with no
    changes; signing and committing stay the same.)

    Raises:
        RepositoryError: a key to add is already there, a key to remove is unknown or
            ambiguous, or the threshold exceeds the number of keys.
    """
    new = copy.deepcopy(old)
    new.version = old.version + 1
    renew(new, now, days, bump=False)
    role = new.roles["root"]
    for info in add:
        pub = public_key(info)
        if pub.keyid in role.keys:
            raise RepositoryError(f"key {pub.keyid} is already a root key")
        role.keys[pub.keyid] = pub.keyinfo()
    for prefix in remove:
        matches = [k for k in role.keys if k.startswith(prefix.lower())] if len(prefix) >= 8 else []
        if len(matches) != 1:
            raise RepositoryError(f"--remove-key {prefix}: "
                                  f"{'ambiguous' if matches else 'no such root key'}",
                                  hint="give at least 8 leading hex digits of a root key id")
        del role.keys[matches[0]]
    if threshold is not None:
        role.threshold = threshold
    check_root_threshold(new)
    return new


def root_changed(old: Root, new: Root, *, expiry: bool) -> bool:
    """Whether ``new`` changes anything of ``old`` but its version (and, unless ``expiry``,
    its expiry date): a rotation that changes nothing is not published (an unedited
    proposal only differs in version and the pre-filled expiry)."""
    ignored = ("version",) if expiry else ("version", "expires")
    before, after = old.to_dict(), new.to_dict()
    for key in ignored:
        before.pop(key, None)
        after.pop(key, None)
    return before != after


def check_signing_keys(root: Root, ring: KeyRing, roles: Sequence[str], source: str) -> None:
    """Check that ``ring`` holds every key of ``roles`` in ``root`` (TiUP's rule: all of
    them) before any work that would be wasted without them, e.g. collecting the key
    holders' signatures of a new root.

    Raises:
        MissingKeyError: naming the first missing key, its role and where keys were looked for.
    """
    for role in roles:
        ring.role_signers(role, root.roles[role].keys, source)


def check_root_threshold(new: Root) -> None:
    """Raises RepositoryError unless 1 ≤ root threshold ≤ number of root keys."""
    role = new.roles["root"]
    if not 1 <= role.threshold <= len(role.keys):
        raise RepositoryError(f"root threshold {role.threshold} must be between 1 and the number "
                              f"of root keys ({len(role.keys)})")


def root_signers(old: Root, new: Root, ring: KeyRing) -> list[PrivateKey]:
    """Every local key of the old or new root role, checked to meet both thresholds.

    Raises:
        MissingKeyError: not enough root keys available to sign.
    """
    role = new.roles["root"]
    old_keys, new_keys = old.roles["root"].keys, role.keys
    signers: list[PrivateKey] = [k for kid, k in sorted(ring.keys.items())
                                 if kid in old_keys or kid in new_keys]
    for what, keys, need in (("old", old_keys, old.roles["root"].threshold),
                             ("new", new_keys, role.threshold)):
        have = sum(1 for k in signers if k.keyid in keys)
        if have < need:
            missing = ", ".join(k for k in sorted(keys) if k not in ring.keys)
            raise MissingKeyError(
                f"the {what} root needs {need} signature(s) from its root keys but only {have} "
                f"of them were found (missing: {missing}); searched {ring.where()}",
                hint="pass --key-dir with the root keys, or collect signatures over HTTP "
                     "with --addr")
    return signers


def sign_root(store: Store, ring: KeyRing, new: Root) -> RotatePlan:
    """Sign the next root with every local key of the old or new root role and stage it.

    At least the old threshold of old keys and the new threshold of new keys
    must sign (``format.md`` §10). (The multi-party signing server replaces
    this step in ``rotate --addr``.)

    Raises:
        MissingKeyError: not enough root keys available to sign.
        SignatureError, RollbackError: the result is not a valid next root.
    """
    signers = root_signers(store.state.root, new, ring)
    data = sign(new, signers)
    store.set_root(new, data)
    return RotatePlan(new, [k.keyid for k in signers])


def sign_file(path: Path, key: PrivateKey) -> None:
    """Add ``key``'s signature to a manifest file in place, rewriting it canonically.

    Raises:
        ManifestError: the file is not a manifest envelope.
        RepositoryError: unreadable/unwritable, or already signed by this key.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RepositoryError(f"open manifest file {path}: {exc.strerror}", file=str(path)) from exc
    env = parse_envelope(data, str(path))
    if any(s.keyid == key.keyid for s in env.signatures):
        raise RepositoryError("this manifest file has already been signed by specified key",
                              file=str(path))
    try:
        payload = encode_canonical(env.signed)
    except (ValueError, TiupError) as exc:
        raise ManifestError(f"unmarshal manifest.signed: {exc}", file=str(path)) from exc
    out = envelope_bytes([*env.signatures, key.signature(payload)], env.signed)
    try:
        atomic_write(path, out, 0o664)
    except OSError as exc:
        raise RepositoryError(f"write manifest file {path}: {exc.strerror}",
                              file=str(path)) from exc
