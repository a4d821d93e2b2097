"""The crash-safe store of a local mirror: read, stage, check, commit.

A :class:`Store` is one write transaction on a mirror (``behavior.md`` §12.3), kept in
a :class:`~tiup.repository.storage.Storage` (a directory path is a
:class:`~tiup.repository.local_storage.LocalStorage`)::

    with Store(path, now=now, keyring=ring) as store:   # flock <mirror>/lock
        store.publish_component(envelope, tarball)       # stage + check
        store.commit()                                   # snapshot, timestamp last

Opening takes the storage's lock, removes leftovers of crashed writers (``.tmp-*``),
and reads the current state (latest root, timestamp, snapshot, index) through
:mod:`tiup.repository.state`, verifying signatures but ignoring expiry so that an
expired mirror can still be renewed. The store touches the mirror only through the
storage interface. Component manifests are read only when a write touches them,
so a publish costs the same in a mirror of 150 components as in one of 1.

:meth:`Store.publish_component` is the single entry for component writes,
local or (later) from the HTTP server: it takes a signed component manifest
and an optional tarball and checks the owner threshold, the version
(snapshot version + 1, else :class:`~tiup.errors.ConflictError`), the tarball
name, length and hashes. :meth:`Store.commit` signs the index, snapshot and
timestamp with the latest root's role keys, checks the whole new state, then
publishes tarballs, versioned manifests (created only if absent), ``snapshot.json``
and finally ``timestamp.json`` (each replaced only if unchanged since it was read).
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import datetime
from pathlib import Path

from tiup import hashing, trust
from tiup.errors import (
    ConflictError,
    FetchError,
    MissingKeyError,
    MissingTarballError,
    RepositoryError,
    TarballError,
    TiupError,
)
from tiup.hashing import FileInfo
from tiup.manifest.canonical import encode_canonical
from tiup.manifest.envelope import Envelope, parse_envelope, signed_envelope_bytes
from tiup.manifest.models import (
    Component,
    ComponentItem,
    FileMeta,
    HashedMeta,
    Index,
    Root,
    VersionItem,
)
from tiup.manifest.names import (
    bootstrap_name,
    component_id,
    is_tarball_file,
    versioned_url,
)
from tiup.manifest.versions import latest_stable
from tiup.repository.keyring import KeyRing
from tiup.repository.lifetimes import Lifetimes, load_lifetimes, renew
from tiup.repository.local_storage import LocalStorage
from tiup.repository.rules import (
    IndexFlags,
    SignedComponent,
    changed_items,
    check_envelope,
    check_model,
    is_bootstrap,
    item_names,
    reject_unknown,
    rotation_roles,
    sign,
    sign_component,
    signing_owner,
)
from tiup.repository.state import MirrorState, read_state
from tiup.repository.storage import Storage, Write
from tiup.settings import Settings, current

DEFAULT_LOCK_TIMEOUT = 60.0

#: ``IndexFlags``, ``sign``, ``sign_component``, ``SignedComponent``, ``rotation_roles`` are
#: re-exported: write helpers take them here
__all__ = ["DEFAULT_LOCK_TIMEOUT", "IndexFlags", "SignedComponent", "Store", "rotation_roles",
           "sign", "sign_component"]


class Store:
    """One write transaction on a mirror (see the module docstring).

    ``mirror`` is the storage, or the path of a mirror directory. ``settings`` gives the
    sync script a directory runs after the commit (default: the process's,
    :func:`tiup.settings.current`; a malformed environment raises ``UsageError`` here).
    """

    def __init__(self, mirror: str | Path | Storage, *, now: datetime,
                 keyring: KeyRing | None = None, lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
                 lifetimes: Lifetimes | None = None, settings: Settings | None = None):
        self.settings = settings if settings is not None else current()
        self.storage = mirror if isinstance(mirror, Storage) else LocalStorage(
            mirror, sync_script=self.settings.sync_script)
        #: where the mirror is, for messages
        self.location = self.storage.location
        self.now = now
        self.keyring = keyring if keyring is not None else KeyRing()
        self.lock_timeout = lock_timeout
        self._locked = False
        self._lifetimes = lifetimes
        self.lifetimes = Lifetimes()
        self.staging = self.storage.begin()
        self.removed_leftovers: list[str] = []
        self._state: MirrorState | None = None
        self.new_index: Index | None = None
        self.new_root: tuple[Root, bytes] | None = None
        #: component id → (model, file bytes)
        self.new_components: dict[str, tuple[Component, bytes]] = {}
        self.tarballs: dict[str, FileInfo] = {}
        #: tarball name → the component whose new or changed version item names it
        self.claimed: dict[str, str] = {}
        #: Tarballs already in the mirror directory whose length and hashes the caller
        #: computed from the bytes it wrote (clone), so the checks need not re-read them.
        self.verified: dict[str, FileInfo] = {}
        self.committed = False
        self._component_envs: dict[str, Envelope] = {}
        #: component id → the version its next manifest gets (see Storage.first_free)
        self._next_versions: dict[str, int] = {}

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> Store:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Lock the mirror, remove crash leftovers and read its state.

        Raises:
            RepositoryError: not a mirror directory, unreadable, or damaged.
            ConflictError: another writer holds the lock past the timeout.
        """
        self.storage.acquire(self.lock_timeout)
        self._locked = True
        try:
            self.removed_leftovers = self.storage.remove_leftovers()
            self.lifetimes = self._lifetimes or load_lifetimes(self.storage)
            self._state = read_state(self.storage)
            if self.storage.concurrent and self._state.interrupted:
                self._complete_interrupted()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.staging.discard()
        if self._locked:
            self._locked = False
            self.storage.release()

    @property
    def directory(self) -> Path:
        """The mirror's directory, for callers that work on local files (the server's
        upload sessions, a clone's downloads).

        Raises:
            RepositoryError: the mirror is not in a directory.
        """
        if not isinstance(self.storage, LocalStorage):
            raise RepositoryError(f"mirror {self.location} is not a local directory")
        return self.storage.directory

    @property
    def state(self) -> MirrorState:
        if self._state is None:
            raise RepositoryError("the store is not open")
        return self._state

    # ----------------------------------------------------------------- reads
    @property
    def root(self) -> Root:
        return self.new_root[0] if self.new_root else self.state.root

    @property
    def index(self) -> Index:
        return self.new_index if self.new_index is not None else self.state.index

    @property
    def root_name(self) -> str:
        """The file the current root was read from (``N.root.json``), for messages."""
        return self.state.root_name

    def component(self, comp_id: str) -> Component | None:
        """The current manifest of a component (verified, expiry ignored), None if unknown.

        Raises:
            RepositoryError: the manifest is missing or damaged.
        """
        staged = self.new_components.get(comp_id)
        if staged is not None:
            return staged[0]
        return self.state.component(comp_id)

    def next_component_version(self, comp_id: str) -> int:
        known = self._next_versions.get(comp_id)
        if known is not None:
            return known
        meta = self.state.snapshot.meta.get(f"/{comp_id}.json")
        version = self.storage.first_free(lambda v: f"{v}.{comp_id}.json",
                                          (meta.version if meta is not None else 0) + 1)
        self._next_versions[comp_id] = version
        return version

    # --------------------------------------------------------------- writes
    def edit_index(self) -> Index:
        """The index of this transaction, renewed once (version +1); edit it in place."""
        if self.new_index is None:
            self.new_index = copy.deepcopy(self.state.index)
            renew(self.new_index, self.now, self.lifetimes.index)
            url = self.state.root.roles["index"].url or "/index.json"
            self.new_index.version = self.storage.first_free(
                lambda v: versioned_url(url, v).lstrip("/"), self.new_index.version)
        return self.new_index

    def renew_index(self, days: int | None = None) -> Index:
        """Re-sign the index (version +1), expiry now + ``days`` (default: index lifetime)."""
        idx = self.edit_index()
        renew(idx, self.now, days or self.lifetimes.index, bump=False)
        return idx

    def set_root(self, root: Root, data: bytes) -> None:
        """Stage the next root (``rotate``); checked against the current one at commit.

        When the new root changes the index role, the index is re-signed too (with the
        new index key): clients would refuse it otherwise.

        Raises:
            SignatureError, RollbackError, ManifestError: not a valid next root.
        """
        trust.verify_next_root(self.state.root, self.state.root_name, data,
                               f"{root.version}.root.json")
        self.new_root = (root, data)
        if "index" in rotation_roles(self.state.root, root):
            self.renew_index()

    def stage_tarball(self, name: str, source: Path) -> FileInfo:
        """Copy a tarball into the staging area under its mirror name.

        Only a tarball file name is accepted here (never a manifest, ``lock``,
        ``keys/`` or a dotfile); :meth:`commit` further requires that a staged
        component names it (or that it is the ``tiup-<os>-<arch>.tar.gz`` copy).

        Raises:
            TarballError: ``name`` is not a tarball file name.
            RepositoryError: the copy failed.
        """
        if not is_tarball_file(name):
            raise TarballError(f"refusing to store {name!r} as a tarball: not a tarball file "
                               "name (<component>-<version>-<os>-<arch>.tar.gz)", file=name)
        info = self.staging.put_file(name, source)
        self.tarballs[name] = info
        return info

    def publish_component(self, manifest: bytes | Envelope | SignedComponent,
                          tarball: Path | None = None, *,
                          tarball_name: str | None = None,
                          flags: IndexFlags | None = None,
                          allow_version_jump: bool = False) -> Component:
        """Stage a signed component manifest (and its tarball) after every check.

        Args:
            manifest: the envelope bytes (or parsed envelope) signed by the owner, or a
                manifest signed in this process (:func:`~tiup.repository.rules.sign_component`:
                its model is checked as the parser checks bytes, by
                :func:`~tiup.repository.rules.check_model`, instead of being encoded and
                parsed back).
            tarball: a tarball file to store; its mirror name is ``tarball_name``
                (default: the file's name) and must be the url of one version item.
            flags: index flags to set; ``flags.owner`` transfers ownership.
            allow_version_jump: accept any version above the current one, not only
                current + 1 (``mirror clone`` keeps the source's version numbers).

        Returns:
            The staged component model.

        Raises:
            ManifestError: malformed manifest or unknown members.
            InvalidNameError: unsafe component id.
            ConflictError: ``version`` is not the current version + 1.
            SignatureError: the owner threshold is not met (or the new owner's, on transfer).
            InvalidNameError: a new or changed version item's url is not
                ``/<id>-<version>-<os>-<arch>.tar.gz``, or its name could collide with
                another component's tarballs.
            TarballError: wrong tarball name, length or hashes; a new version's tarball
                missing; a tarball that exists in the mirror belongs to another component.
        """
        flags = flags or IndexFlags()
        built: SignedComponent | None = None
        parsed: Envelope | None = None
        if isinstance(manifest, SignedComponent):
            built = manifest
            comp = built.model
            where = "component manifest"
        else:
            parsed = manifest if isinstance(manifest, Envelope) else parse_envelope(
                manifest, "component manifest")
            trust.check_type(parsed, "component")
            comp = Component.from_dict(parsed.signed, parsed.source)
            where = parsed.source
        trust.check_spec_version(comp, where)
        cid = component_id(comp.id)
        reject_unknown(comp, where)
        source = f"{comp.version}.{cid}.json"
        expected = self.next_component_version(cid)
        wrong = comp.version < expected if allow_version_jump else comp.version != expected
        if cid in self.new_components or wrong:
            raise ConflictError(
                f"manifest conflict: {cid} has version {comp.version}, expected {expected}",
                file=source, hint="the component changed meanwhile; fetch it again and retry")
        if parsed is not None:
            # Signatures are checked over canonical bytes, which are also what is written.
            env = Envelope(parsed.signatures, parsed.signed, encode_canonical(parsed.signed),
                           source)
        else:
            assert built is not None
            # The canonical bytes encoded once, when it was signed: checked and written.
            env = built.envelope(source)
        old_item = self.index.components.get(cid)
        owner = (flags.owner or (old_item.owner if old_item else None)
                 or signing_owner(self.index, env))
        trust.verify_signatures(env, trust.owner_keys(self.index, owner, "index"), None)
        if old_item is not None and owner != old_item.owner:
            trust.verify_signatures(env, trust.owner_keys(self.index, old_item.owner, "index"),
                                    None)
        old = self.component(cid) if old_item is not None else None
        if built is not None:
            check_model(comp, old, source)
        changed = changed_items(comp, old)
        claims = self._claim_names(cid, changed, old)
        if tarball is not None:
            self._take_tarball(comp, tarball, tarball_name or tarball.name, claims)
            if cid == "tiup":
                self._stage_bootstrap(comp, tarball, tarball_name or tarball.name, changed)
        for plat, ver, item in changed:
            if not item.yanked:
                self._check_tarball(cid, plat, ver, item)
        self._apply_flags(cid, old_item, owner, flags)
        # canonical(envelope) = {"signatures":[...],"signed":<canonical signed>}: reuse the bytes.
        data = signed_envelope_bytes(env.signatures, env.signed_raw)
        self.new_components[cid] = (comp, data)
        self._component_envs[cid] = env
        return comp

    def _claim_names(self, cid: str, changed: list[tuple[str, str, VersionItem]],
                     old: Component | None) -> dict[str, VersionItem]:
        """The tarball names the new or changed items of ``cid`` may write (D1 rule).

        Each such item's url must be ``/<cid>-<version>-<os>-<arch>.tar.gz``; a new
        version must not make that name collide with another component's names; and
        for a live (not yanked) item, a file of that name already in the mirror must
        belong to ``cid`` itself. Returns the live items by tarball name.

        Raises:
            InvalidNameError, TarballError: see :meth:`publish_component`.
        """
        claims: dict[str, VersionItem] = {}
        for name, item in item_names(cid, changed, old, self.index.components.keys()):
            claimant = self.claimed.get(name)
            if claimant is not None and claimant != cid:
                raise TarballError(f"{name} is claimed by both {claimant} and {cid}",
                                   file=name)
            if not item.yanked:
                self._check_not_foreign(cid, name, old)
                claims[name] = item
        for name in claims:
            self.claimed[name] = cid
        return claims

    def _check_not_foreign(self, cid: str, name: str, old: Component | None) -> None:
        """Refuse to replace a tarball in the mirror that ``cid``'s manifest does not name."""
        if name in self.verified or self.storage.concurrent:
            # placed and verified by this writer itself (clone); or object storage, whose
            # commit never replaces a file with other bytes (identical bytes: a retry's)
            return
        if self.storage.stat(name) is None:
            return  # new
        if old is not None and any(it.url == "/" + name for _p, _v, it in old.items()):
            return
        raise TarballError(
            f"refusing to write {name}: the mirror already has that file and no version of "
            f"{cid} names it (it belongs to another component, or to none)", file=name,
            hint="publish under another version; an administrator can remove a stray file")

    def _take_tarball(self, comp: Component, path: Path, name: str,
                      claims: dict[str, VersionItem]) -> None:
        item = claims.get(name)
        if item is None or not is_tarball_file(name):
            raise TarballError(f"incorrect file name {name}: no new or changed version of "
                               f"{comp.id} has url /{name}", file=name)
        info = self.stage_tarball(name, path)
        hashing.check(name, info, item, error=TarballError)

    def _stage_bootstrap(self, comp: Component, path: Path, name: str,
                         changed: list[tuple[str, str, VersionItem]]) -> None:
        """``tiup-<os>-<arch>.tar.gz``, the file install scripts read: a copy of the
        published ``tiup`` tarball when it is the newest stable version of its platform
        (the tarball was checked against its item just before)."""
        for plat, ver, item in changed:
            if item.url != "/" + name or item.yanked:
                continue
            live = [v for v, it in comp.platforms.get(plat, {}).items() if not it.yanked]
            if latest_stable(live) == ver:
                os_name, _, arch = plat.partition("/")
                self.stage_tarball(bootstrap_name(os_name, arch), path)

    def _check_tarball(self, cid: str, plat: str, ver: str, item: VersionItem) -> None:
        name = item.url.lstrip("/")
        info = self.tarballs.get(name) or self.verified.get(name)
        if info is None:
            entry = self.storage.stat(name) if name and "/" not in name else None
            if entry is None or entry.directory:
                raise MissingTarballError(
                    f"tarball {name} of {cid} {ver} ({plat}) is not in mirror {self.location}",
                    file=name, hint="publish the tarball together with the manifest")
            try:
                info = self.storage.file_info(name)
            except FetchError as exc:
                raise TarballError(f"cannot read {self.storage.location_of(name)}: "
                                   f"{exc.reason}", file=name) from exc
        hashing.check(name, info, item, error=TarballError)

    def _apply_flags(self, cid: str, old_item: ComponentItem | None, owner: str,
                     flags: IndexFlags) -> None:
        if old_item is None:
            idx = self.edit_index()
            idx.components[cid] = ComponentItem(
                owner=owner, url=f"/{cid}.json", yanked=bool(flags.yanked),
                hidden=bool(flags.hidden), standalone=bool(flags.standalone))
            return
        wanted = {"owner": owner, "yanked": flags.yanked, "hidden": flags.hidden,
                  "standalone": flags.standalone}
        changes = {k: v for k, v in wanted.items()
                   if v is not None and getattr(old_item, k) != v}
        if changes:
            item = self.edit_index().components[cid]
            for key, value in changes.items():
                setattr(item, key, value)

    # --------------------------------------------------------------- commit
    def commit(self) -> list[str]:
        """Sign, check and write the new state; snapshot and timestamp are always renewed.

        A store commits once; open a new one for the next write.

        Returns:
            The files written, in write order.

        Raises:
            MissingKeyError: a role key needed to sign is not in the key ring.
            KeyFormatError: a role key's signature does not verify (a damaged key file).
            RepositoryError: the new state failed a check, or a write failed.
        """
        if self.committed:
            raise RepositoryError("this store transaction is already committed")
        for name in self.tarballs:
            if name not in self.claimed and not is_bootstrap(name):
                raise RepositoryError(f"refusing to write {name}: no new or changed version "
                                      "item of this transaction names it", file=name)
        root = self.root
        ring = self.keyring
        # tarballs; then versioned manifests (new names) and root.json; snapshot.json;
        # timestamp.json last: the commit point
        groups: list[list[Write]] = [[Write.put(n) for n in sorted(self.tarballs)], []]
        old_snap = self.state.snapshot
        # FileMeta entries are replaced, never mutated: a shallow copy of the map suffices.
        snap = dataclasses.replace(old_snap, meta=dict(old_snap.meta),
                                   unrecognized=dict(old_snap.unrecognized))
        root_name = self.state.root_name
        if self.new_root is not None:
            new_root, data = self.new_root
            root_name = f"{new_root.version}.root.json"
            first = self.state.root_json
            if self.state.root_json_version == 1 and self.storage.stat("1.root.json") is None:
                self._stage(groups[1], Write.new("1.root.json"), first)
            self._stage(groups[1], Write.new(root_name), data)
            self._stage(groups[1], self._swap("root.json"), data)
        root_len = (len(self.new_root[1]) if self.new_root
                    else self.state.root_length)
        snap.meta["/root.json"] = FileMeta(root.version, root_len)
        index_url = root.roles["index"].url or "/index.json"
        if self.new_index is not None:
            idx = self.new_index
            signers = ring.role_signers("index", root.roles["index"].keys, root_name)
            data = sign(idx, signers)
            name = versioned_url(index_url, idx.version).lstrip("/")
            check_envelope(data, name, trust.role_keys(root, "index", root_name))
            trust.check_index_valid(idx, name)
            self._stage(groups[1], Write.new(name), data)
            snap.meta[index_url] = FileMeta(idx.version, len(data))
        index = self.index
        for cid, (comp, data) in sorted(self.new_components.items()):
            name = f"{comp.version}.{cid}.json"
            item = index.components.get(cid)
            if item is None:
                raise RepositoryError(f"component {cid} is not in the index")
            env = self._component_envs.get(cid)
            role = trust.owner_keys(index, item.owner, "index")
            if env is None:
                check_envelope(data, name, role)
            else:
                try:
                    trust.verify_signatures(env, role, None)
                except TiupError as exc:
                    raise RepositoryError(f"refusing to write {name}: {exc.message}",
                                          file=name) from exc
            self._stage(groups[1], Write.new(name), data)
            snap.meta[item.url] = FileMeta(comp.version, len(data))
        wanted = {"/root.json", index_url} | {i.url for i in index.components.values()}
        for url in list(snap.meta):
            if url not in wanted:
                del snap.meta[url]
        missing = wanted - set(snap.meta)
        if missing:
            raise RepositoryError(f"snapshot would lack entries for {sorted(missing)}")
        snap.version = 0
        renew(snap, self.now, self.lifetimes.snapshot, bump=False)
        snap_data = sign(snap, ring.role_signers(
            "snapshot", root.roles["snapshot"].keys, root_name))
        check_envelope(snap_data, "snapshot.json",
                             trust.role_keys(root, "snapshot", root_name))
        ts_data = self._sign_timestamp(snap_data, root, root_name)
        last: list[list[Write]] = [[], []]
        self._stage(last[0], self._swap("snapshot.json"), snap_data)
        self._stage(last[1], self._swap("timestamp.json"), ts_data)
        written = self.staging.commit([*groups, *last])
        self.committed = True
        return written

    def _sign_timestamp(self, snap_data: bytes, root: Root, root_name: str) -> bytes:
        """The next timestamp.json, naming ``snap_data``. Raises MissingKeyError,
        RepositoryError."""
        ts = copy.deepcopy(self.state.timestamp)
        info = FileInfo.of_bytes(snap_data)
        ts.meta = {"/snapshot.json": HashedMeta({"sha256": info.sha256, "sha512": info.sha512},
                                                info.length)}
        renew(ts, self.now, self.lifetimes.timestamp)
        ts_keys = self.keyring.role_signers("timestamp", root.roles["timestamp"].keys,
                                            root_name)
        ts_data = sign(ts, ts_keys[:1])
        check_envelope(ts_data, "timestamp.json",
                             trust.role_keys(root, "timestamp", root_name))
        if len(ts_data) > trust.MAX_TIMESTAMP_SIZE:
            raise RepositoryError(f"timestamp.json would be {len(ts_data)} bytes, over the "
                                  f"{trust.MAX_TIMESTAMP_SIZE}-byte limit of TiUP clients")
        return ts_data

    def _complete_interrupted(self) -> None:
        """Object storage: another writer put its snapshot.json and has not (yet, or ever:
        it died) put the timestamp.json naming it. Finish that commit for it: a
        timestamp naming the verified snapshot, compare-and-swapped against the one read
        (whoever of the two swaps first wins; the other re-reads). Without the timestamp
        key this writer cannot help, and commits on top as a directory writer does.

        Raises:
            ConflictError: the timestamp changed meanwhile (``code`` "changed": retried).
        """
        snap_data = self.storage.last_read("snapshot.json")
        if snap_data is None:
            return
        state = self.state
        try:
            ts_data = self._sign_timestamp(snap_data, state.root, state.root_name)
        except MissingKeyError:
            return
        self.storage.replace("timestamp.json", ts_data, self.storage.read_tag("timestamp.json"))
        self._state = read_state(self.storage)

    def _stage(self, group: list[Write], write: Write, data: bytes) -> None:
        self.staging.put_bytes(write.name, data)
        group.append(write)

    def _swap(self, name: str) -> Write:
        """Replace ``name`` only if it still holds the bytes the state was read from."""
        return Write.swap(name, self.storage.read_tag(name))
