"""Pure rules of a mirror write, shared by the store and the write helpers.

How manifests are signed (:func:`sign`: bytes, one signature per key, the manifest
encoded once; :func:`sign_component`: the same for a component manifest the store
takes without parsing it back), which version items of a component manifest changed
(:func:`changed_items`: their tarballs are checked), what a rotation re-signs
(:func:`rotation_roles`), the index flags a component write may set
(:class:`IndexFlags`), and the names and members the store refuses. No I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
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
from tiup.manifest.envelope import (
    Envelope,
    Signature,
    parse_envelope,
    signed_bytes,
    signed_envelope_bytes,
)
from tiup.manifest.models import Component, Index, Root, Signed, VersionItem
from tiup.manifest.names import (
    bootstrap_platform,
    check_item_url,
    split_platform,
    tarball_claim_conflict,
    version_str,
)


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
    """File bytes of ``signed`` with one signature per signer (in order).

    Raises:
        KeyFormatError: a key's signature does not verify (a damaged key).
    """
    payload = signed_bytes(signed)
    return signed_envelope_bytes([k.signature(payload) for k in signers], payload)


@dataclass(frozen=True)
class SignedComponent:
    """A component manifest signed in this process (:func:`sign_component`).

    ``signed_raw`` is ``signed_bytes(model)``, encoded once: the signatures cover it and
    the file is made of it. :meth:`Store.publish_component
    <tiup.repository.store.Store.publish_component>` takes this instead of file bytes
    to skip parsing back what was just encoded (20,000 version items rebuilt, encoded
    again), and checks the model as the parser checks a file (:func:`check_model`).
    The model must not change after signing.
    """

    model: Component
    signed_raw: bytes
    signatures: tuple[Signature, ...]

    def file_bytes(self) -> bytes:
        """The manifest file: canonical JSON of the envelope."""
        return signed_envelope_bytes(list(self.signatures), self.signed_raw)

    def envelope(self, source: str) -> Envelope:
        """The envelope to verify the signatures of (they cover ``signed_raw`` only, so
        its ``signed`` object is left empty: the model stands for it)."""
        return Envelope(list(self.signatures), {}, self.signed_raw, source)


def sign_component(comp: Component, signers: list[PrivateKey]) -> SignedComponent:
    """``comp`` encoded once and signed by each signer (in order).

    Raises:
        KeyFormatError: a key's signature does not verify (a damaged key).
    """
    payload = signed_bytes(comp)
    return SignedComponent(comp, payload, tuple(k.signature(payload) for k in signers))


def check_model(comp: Component, old: Component | None, source: str) -> None:
    """Check a component model built in this process as the parser checks a file.

    What :meth:`Component.from_dict` checks when a manifest is read (names of the id,
    nightly, platforms and versions; urls and entries; member types, ranges, case and
    depth) is checked here on every part of ``comp`` that is not carried over unchanged
    from ``old``, the verified current manifest (its items were checked when it was
    read), by running the parser itself on that part (``from_dict`` of its
    ``to_dict``) and requiring the result to equal it: the model is then exactly what
    its canonical bytes say, so the store's checks on the model are checks on the
    bytes it writes.

    Raises:
        ManifestError: a part fails the parser's checks, or does not read back as itself.
    """
    top = dataclasses.replace(comp, platforms={})
    if Component.from_dict(top.to_dict(), source) != top:
        raise ManifestError(f"{source}: the manifest does not read back as it was built",
                            file=source)
    for plat, versions in comp.platforms.items():
        before = old.platforms.get(plat, {}) if old is not None else {}
        if not before:
            _checked(split_platform, plat, f"{source} platform {plat!r}")
        for ver, item in versions.items():
            was = before.get(ver)
            if item is was or (was is not None and item == was):
                continue
            where = f"{source} {plat} {ver}"
            if was is None:
                _checked(version_str, ver, where)
            if VersionItem.from_dict(item.to_dict(), where) != item:
                raise ManifestError(f"{where}: the version item does not read back as it "
                                    "was built", file=source)


def _checked(rule: Callable[[str], object], value: str, where: str) -> None:
    try:
        rule(value)
    except InvalidNameError as exc:
        raise ManifestError(f"{where}: {exc.message}", hint=exc.hint) from exc


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
        if before is item:  # carried over (publish shares unchanged items)
            continue
        if (before is None or before.url != item.url or before.length != item.length
                or before.hashes() != item.hashes() or (before.yanked and not item.yanked)):
            out.append((plat, ver, item))
    return out


def is_bootstrap(name: str) -> bool:
    """True for ``tiup-<os>-<arch>.tar.gz`` (never a versioned tarball name: one '-' short)."""
    return bootstrap_platform(name) is not None


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
