"""Pure rules of a mirror write, shared by the store and the write helpers.

How manifests are signed (:func:`sign`: bytes, one signature per key), which version
items of a component manifest changed (:func:`changed_items`: their tarballs are
checked), what a rotation re-signs (:func:`rotation_roles`), the index flags a
component write may set (:class:`IndexFlags`), and the names and members the store
refuses. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tiup import trust
from tiup.errors import (
    InvalidNameError,
    ManifestError,
    RepositoryError,
    SignatureError,
    TiupError,
)
from tiup.keys import PrivateKey
from tiup.manifest.envelope import Envelope, envelope_bytes, parse_envelope, signed_bytes
from tiup.manifest.models import Component, Index, Root, Signed, VersionItem
from tiup.manifest.names import bootstrap_name, check_item_url, tarball_claim_conflict


@dataclass(frozen=True)
class IndexFlags:
    """Index flags a component write may set; None leaves a flag as it is."""

    yanked: bool | None = None
    hidden: bool | None = None
    standalone: bool | None = None
    #: A new owner (transfer-owner): the manifest must carry threshold
    #: signatures of both the current and the new owner.
    owner: str | None = None


def sign(signed: Signed, signers: list[PrivateKey]) -> bytes:
    """File bytes of ``signed`` with one signature per signer (in order)."""
    payload = signed_bytes(signed)
    return envelope_bytes([k.signature(payload) for k in signers], signed)


def rotation_roles(old: Root, new: Root) -> list[str]:
    """The roles whose manifests the commit of a rotation signs with ``new``'s keys:
    snapshot and timestamp always; the index too when its role changes (it must then be
    re-signed by the new index key, or clients would refuse it)."""
    roles = ["snapshot", "timestamp"]
    if old.roles["index"].to_dict() != new.roles["index"].to_dict():
        roles.insert(0, "index")
    return roles


def changed_items(new: Component, old: Component | None) -> list[tuple[str, str, VersionItem]]:
    """Version items of ``new`` that are new, or differ from ``old`` in url, length or hashes,
    or were un-yanked: the ones whose tarball must be checked."""
    out: list[tuple[str, str, VersionItem]] = []
    for plat, ver, item in new.items():
        before = old.platforms.get(plat, {}).get(ver) if old is not None else None
        if (before is None or before.url != item.url or before.length != item.length
                or before.hashes() != item.hashes() or (before.yanked and not item.yanked)):
            out.append((plat, ver, item))
    return out


def is_bootstrap(name: str) -> bool:
    """True for ``tiup-<os>-<arch>.tar.gz`` (never a versioned tarball name: one '-' short)."""
    parts = name.removesuffix(".tar.gz").split("-")
    if len(parts) != 3 or parts[0] != "tiup":
        return False
    try:
        return bootstrap_name(parts[1], parts[2]) == name
    except InvalidNameError:
        return False


def reject_unknown(comp: Component, source: str) -> None:
    """Refuse members this project does not know in a component manifest to store.

    Raises:
        ManifestError: naming them.
    """
    names = set(comp.unrecognized)
    for _p, _v, item in comp.items():
        names.update(item.unrecognized)
    if names:
        raise ManifestError(f"{source} has unknown members {sorted(names)}; Go TiUP clients "
                            "would drop them from their cache and then reject the manifest",
                            file=source)


def signing_owner(index: Index, env: Envelope) -> str:
    """The owner of ``index`` whose threshold of keys signed ``env``.

    Raises:
        SignatureError: no owner did.
    """
    ids = {s.keyid for s in env.signatures}
    for owner_id in sorted(index.owners):
        owner = index.owners[owner_id]
        if not ids & set(owner.keys):
            continue
        try:
            trust.verify_signatures(env, trust.owner_keys(index, owner_id, "index"), None)
        except SignatureError:
            continue
        return owner_id
    raise SignatureError(
        f"{env.source} is not signed by the keys of any owner of this mirror",
        file=env.source, hint="grant your key first: tiup mirror grant <owner-id>")


def check_envelope(data: bytes, name: str, role: trust.RoleKeys) -> None:
    """Check the signatures of a manifest about to be written.

    Raises:
        RepositoryError: refusing to write it.
    """
    try:
        env = parse_envelope(data, name)
        trust.verify_signatures(env, role, None)
    except TiupError as exc:
        raise RepositoryError(f"refusing to write {name}: {exc.message}", file=name) from exc


def item_names(cid: str, changed: list[tuple[str, str, VersionItem]], old: Component | None,
               others: Iterable[str]) -> list[tuple[str, VersionItem]]:
    """The tarball name of each new or changed item of ``cid`` (D1 rule): its url must be
    ``/<cid>-<version>-<os>-<arch>.tar.gz``, and a new version must not make that name
    collide with the names of the components ``others``.

    Raises:
        InvalidNameError: a url that breaks the rule, or a name that could collide.
    """
    out: list[tuple[str, VersionItem]] = []
    for plat, ver, item in changed:
        name = check_item_url(cid, plat, ver, item.url)
        if old is None or ver not in old.platforms.get(plat, {}):
            rival = tarball_claim_conflict(cid, ver, others)
            if rival is not None:
                raise InvalidNameError(
                    f"refusing version {ver} of {cid}: its tarball {name} could be "
                    f"mistaken for one of component {rival}",
                    hint=f"choose a version that does not start with "
                         f"'{rival[len(cid) + 1:]}-'")
        out.append((name, item))
    return out
