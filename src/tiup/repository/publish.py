"""``tiup mirror publish``: check a tarball and build the next component manifest.

Differences from TiUP (``behavior.md`` §12.13, row "publish"): the version
must be semver with a ``v`` prefix (``--force`` overrides); ``entry`` must be
in the tarball; an expired manifest is renewed in the same publish; an
existing version with different hashes needs ``--overwrite`` and an identical
one is a no-op; old nightlies are pruned only when a nightly is published, and
only on the platforms where the new nightly now exists.
"""

from __future__ import annotations

import dataclasses
import posixpath
import tarfile
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tiup.errors import InvalidNameError, RepositoryError, TarballError
from tiup.hashing import FileInfo
from tiup.keys import PrivateKey
from tiup.manifest import versions
from tiup.manifest.models import Component, VersionItem
from tiup.manifest.names import (
    PUBLISH_PLATFORMS,
    ComponentId,
    VersionStr,
    split_platform,
    tarball_name,
)
from tiup.manifest.timefmt import format_time
from tiup.repository.keyring import KeyRing
from tiup.repository.lifetimes import renew
from tiup.repository.view import MirrorView


def clone_component(comp: Component) -> Component:
    """A copy to edit: new platform maps, shared version items (replace items, don't mutate).

    Much cheaper than ``copy.deepcopy`` on a manifest with 20,000 versions.
    """
    return dataclasses.replace(
        comp, platforms={p: dict(vs) for p, vs in comp.platforms.items()},
        unrecognized=dict(comp.unrecognized))


def check_platform(plat: str) -> str:
    """Raises InvalidNameError for a platform ``publish`` does not accept."""
    if plat not in PUBLISH_PLATFORMS:
        raise InvalidNameError(f"platform {plat} not supported",
                               hint="use one of " + ", ".join(PUBLISH_PLATFORMS))
    return plat


def check_version(version: VersionStr, force: bool) -> None:
    """Raises InvalidNameError unless ``version`` is ``v``-prefixed semver (or ``force``)."""
    if not force and not versions.is_valid(version):
        raise InvalidNameError(
            f"version {version} is not a semantic version with a 'v' prefix (like v1.2.3)",
            hint="use --force to publish it anyway")


def _normal(name: str) -> str:
    name = posixpath.normpath(name.lstrip("/"))
    return "" if name == "." else name


def inspect_tarball(path: Path, entry: str) -> None:
    """Check ``path`` is a readable gzip tar holding ``entry`` as a file or an in-tree link.

    Raises:
        TarballError: missing, unreadable, not gzip/tar, or without the entry.
    """
    want = _normal(entry)
    if not want or want.startswith("../"):
        raise TarballError(f"invalid entry {entry!r}: it must be a relative path in the tarball")
    if not path.is_file():
        raise TarballError(f"tarball {path} does not exist or is not a file", file=str(path))
    members: dict[str, tarfile.TarInfo] = {}
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for member in tar:
                members[_normal(member.name)] = member
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise TarballError(f"{path} is not a gzip-compressed tar archive: {reason}",
                           file=str(path), hint="build it with `tiup package` or tar -czf") from exc
    seen: set[str] = set()
    name = want
    while True:
        found = members.get(name)
        if found is None:
            raise TarballError(f"entry {entry} not found in {path}", file=str(path),
                               hint="the 4th argument of publish is the executable's path "
                                    "inside the tarball")
        member = found
        if member.isfile():
            return
        if name in seen or not (member.issym() or member.islnk()):
            raise TarballError(f"entry {entry} in {path} is not a regular file", file=str(path))
        seen.add(name)
        target = member.linkname
        name = _normal(target if member.islnk() else
                       posixpath.join(posixpath.dirname(name), target))
        if target.startswith("/") or not name or name.startswith("../") or name == "..":
            raise TarballError(f"entry {entry} in {path} links outside the tarball",
                               file=str(path))


@dataclass
class PublishPlan:
    """The next manifest (None when the version is already published identically)."""

    manifest: Component | None
    new_component: bool
    tarball_name: str


def plan_publish(store: MirrorView, cid: ComponentId, version: VersionStr, plat: str, entry: str,
                 info: FileInfo, *, desc: str, overwrite: bool, now: datetime) -> PublishPlan:
    """Build the next manifest of ``cid`` with ``version`` for ``plat``.

    Raises:
        RepositoryError: the version exists with different content and not ``overwrite``.
    """
    os_name, arch = split_platform(plat)
    name = tarball_name(cid, version, os_name, arch)
    current = store.component(cid)
    item = VersionItem(url="/" + name, entry=entry, sha256=info.sha256, sha512=info.sha512,
                       length=info.length, released=format_time(now))
    if current is None:
        comp = Component(expires=format_time(now), version=0, id=cid, description=desc)
    else:
        old = current.platforms.get(plat, {}).get(version)
        if old is not None and not overwrite:
            same = (old.sha256 == info.sha256 and old.length == info.length
                    and old.entry == entry and old.url == item.url)
            if same:
                return PublishPlan(None, False, name)
            raise RepositoryError(
                f"{cid} {version} is already published for {plat} with different content",
                hint="pass --overwrite to replace it (clients that installed it keep the old "
                     "files)")
        comp = clone_component(current)
        if desc:
            comp.description = desc
    comp.version = store.next_component_version(cid)
    renew(comp, now, store.lifetimes.component, bump=False)
    comp.platforms.setdefault(plat, {})[version] = item
    if versions.is_nightly(version):
        comp.nightly = version
        for other in [v for v in comp.platforms[plat] if versions.is_nightly(v) and v != version]:
            del comp.platforms[plat][other]
    return PublishPlan(comp, current is None, name)


def owner_signers(store: MirrorView, owner_id: str, ring: KeyRing) -> list[PrivateKey]:
    """Enough of an owner's private keys to meet its threshold (``-k`` keys first).

    Raises:
        MissingKeyError: not enough of the owner's keys are available.
    """
    owner = store.index.owners.get(owner_id)
    if owner is None:
        raise RepositoryError(f"owner {owner_id} not found in mirror {store.location}")
    return ring.threshold_signers(f"owner {owner_id}", owner.keys, owner.effective_threshold)


def owner_of_key(store: MirrorView, ring: KeyRing) -> str:
    """The owner holding the first explicit key (or, failing that, any loaded key).

    Raises:
        RepositoryError: no owner of the mirror holds any of the keys.
    """
    candidates = ring.explicit or list(ring.keys)
    for keyid in candidates:
        for owner_id in sorted(store.index.owners):
            if keyid in store.index.owners[owner_id].keys:
                return owner_id
    shown = ", ".join(f"{k[:16]} ({ring.origin.get(k, '?')})" for k in candidates) or "none"
    raise RepositoryError(
        f"no owner of mirror {store.location} holds the key(s) {shown}",
        hint="grant the key first: tiup mirror grant <owner-id> -k <key file>")
