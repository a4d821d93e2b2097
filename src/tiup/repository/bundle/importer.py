"""``tiup mirror import``: verify a bundle against the target's own trust, then commit it.

The bundle is read as a stream, once (bounded memory: manifests are capped, tarballs
pass through in chunks). Under the target's lock (``<target>/lock``):

1. The target's state is read through the verified walk anchored at its own
   ``root.json`` (:func:`~tiup.repository.state.read_state`); a directory without
   ``root.json`` is a first import.
2. ``bundle.json`` (unsigned) is checked against that state only to refuse early with
   a clear message: already imported (nothing to do), older than the target
   (``rollback``), made ``--since`` another state (``gap``), or not a full bundle for
   an empty target.
3. Every manifest member is read (each capped, each checked against the bundle index
   to name damage early) until the first tarball; then all of them are verified by the
   one verified walk (:class:`~tiup.reader.MirrorReader` over the bundle's manifests,
   falling back to the target's own copies of unchanged ones) with a
   :class:`~tiup.trust.TrustedState` starting from the **target's** newest root (first
   import: from the bundle's ``1.root.json``, accepted only if the operator's
   ``--trust-root`` file or ``--fingerprint`` matches a root of its chain): root chain,
   timestamp, snapshot, index and every component manifest, signatures, versions not
   going back (``rollback``), lengths and hashes.
4. Each tarball member must be named by a verified version item (bootstrap copies:
   equal to a verified ``tiup`` item of their platform); it is streamed into the
   storage's staging area (``.tmp-*``, invisible) while hashed, and checked against
   that item. No member is ever extracted to its own name before the commit.
5. The files go live through the storage's one commit (:meth:`Transaction.commit
   <tiup.repository.storage.Transaction.commit>`, the order of the store's commit):
   tarballs, versioned manifests (and ``root.json``), ``snapshot.json``,
   ``timestamp.json`` last. A first import writes ``root.json`` after
   ``timestamp.json``: until then the directory is not a mirror, and a re-run starts
   over. Killed anywhere, the target is its old state (or, between the last two
   renames, the state the next run completes); the same bundle re-run completes it.

A refusal raises :class:`~tiup.errors.BundleError` (``code`` says which) before the
first rename, so the target is left as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from tiup import hashing, trust
from tiup.errors import (
    BundleError,
    ExpiredError,
    InvalidNameError,
    NotFoundError,
    RepositoryError,
    RollbackError,
    SignatureError,
    SizeLimitError,
    TiupError,
)
from tiup.hashing import FileInfo
from tiup.manifest.models import Component, Index, VersionItem
from tiup.manifest.names import bootstrap_platform, check_item_url, versioned_url
from tiup.reader import MirrorReader
from tiup.repository.bundle.format import (
    INDEX_NAME,
    MAX_INDEX_SIZE,
    MAX_MANIFEST_SIZE,
    PARTS_SUFFIX,
    ROOT,
    TARBALL,
    TIMESTAMP,
    BundleIndex,
    PartsReader,
    chunks,
    malformed,
    member_kind,
    parts_file,
    read_parts_list,
    versioned_parts,
)
from tiup.repository.clone.bootstrap import LOCAL_INSTALL, write_local_install
from tiup.repository.local_storage import LocalStorage
from tiup.repository.state import MirrorState, read_state
from tiup.repository.storage import Transaction, Write
from tiup.transport.base import Fetcher

Progress = Callable[[int, int], None]
_NEUTRAL = frozenset({"lock", LOCAL_INSTALL})
#: what a manifest member may weigh before it is parsed (clients' caps where they have one)
_CAPS = {ROOT: trust.MAX_ROOT_SIZE, TIMESTAMP: trust.MAX_TIMESTAMP_SIZE}


@dataclass
class ImportReport:
    """What an import did."""

    target: Path
    bundle: str
    up_to_date: bool = False
    first: bool = False
    #: components whose manifest the bundle changed
    components: list[str] = field(default_factory=list)
    #: version items that are new
    versions: int = 0
    tarballs: int = 0
    bytes: int = 0
    written: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    root_version: int = 0
    timestamp_version: int = 0


def open_bundle(bundle: str) -> tuple[BinaryIO, str]:
    """The tar stream of ``bundle``: ``-`` (stdin), a file, or a split bundle (the
    ``.parts.json`` file, or the name it was exported as). Raises BundleError."""
    if bundle == "-":
        return sys.stdin.buffer, "<stdin>"
    path = Path(bundle)
    if path.name.endswith(PARTS_SUFFIX):
        return PartsReader(read_parts_list(path)), str(path)  # type: ignore[return-value]
    if not path.is_file() and parts_file(path).is_file():
        return PartsReader(read_parts_list(parts_file(path))), str(path)  # type: ignore[return-value]
    try:
        return open(path, "rb"), str(path)
    except OSError as exc:
        raise malformed(f"cannot read the bundle {bundle}: {exc.strerror}", bundle,
                        hint="name the bundle file (or its .parts.json)") from exc


def import_bundle(bundle: str, target: Path, *, now: datetime, trust_root: bytes | None = None,
                  fingerprint: str | None = None, progress: Progress | None = None,
                  lock_timeout: float = 60.0, sync_script: str | None = None) -> ImportReport:
    """Verify ``bundle`` against ``target``'s trust and commit it (module docstring).

    Args:
        trust_root: for a first import, the bytes of a root the operator trusts.
        fingerprint: for a first import, the sha256 of a root the operator trusts.

    Raises:
        BundleError: the bundle is refused (``code``: ``foreign``, ``rollback``, ``gap``,
            ``tampered``, ``untrusted``, ``malformed``, ``not-empty``); nothing changed.
        RepositoryError: the target cannot be read, locked or written.
    """
    target = target.expanduser().absolute()
    stream, where = open_bundle(bundle)
    created = not target.exists()
    had_lock = (target / "lock").exists()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        stream.close()
        raise RepositoryError(f"cannot create {target}: {exc.strerror}", file=str(target)) from exc
    storage = LocalStorage(target, sync_script=sync_script)
    report = ImportReport(target, where)
    ok = False
    try:
        storage.acquire(lock_timeout)
        try:
            storage.remove_leftovers()
            run = _Import(storage, report, now, trust_root, fingerprint, progress)
            with stream:
                run.run(stream)
            ok = True
        finally:
            storage.release()
    finally:
        if not ok and not had_lock and not report.written:
            # a refused first import leaves the directory as it found it
            (target / "lock").unlink(missing_ok=True)
            if created:
                with contextlib.suppress(OSError):
                    target.rmdir()
    return report


@dataclass
class _Verified:
    """The outcome of verifying a bundle's manifests."""

    #: tarball name → the signed item its bytes must match
    tarballs: dict[str, VersionItem]
    #: tarballs the new state names (not yanked): in the bundle or already in the target
    required: set[str]
    #: platform → the verified tiup items a bootstrap copy may equal
    bootstrap: dict[str, list[VersionItem]]
    #: manifest files to write (versioned, root.json, snapshot.json, timestamp.json)
    files: dict[str, bytes]


class _Import:
    def __init__(self, storage: LocalStorage, report: ImportReport, now: datetime,
                 trust_root: bytes | None, fingerprint: str | None,
                 progress: Progress | None):
        self.storage = storage
        self.report = report
        self.now = now
        self.trust_root = trust_root
        self.fingerprint = fingerprint.lower() if fingerprint else None
        self.progress = progress
        self.target = storage.directory
        self.state: MirrorState | None = None

    # ------------------------------------------------------------------ run
    def run(self, stream: BinaryIO) -> None:
        storage = self.storage
        if storage.stat("root.json") is not None:
            self.state = read_state(storage)
        else:
            self.report.first = True
        try:
            # a stream, closed by the caller; read 1 MiB at a time
            tar = tarfile.open(fileobj=stream, mode="r|", bufsize=1024 * 1024)  # noqa: SIM115
        except tarfile.TarError as exc:
            raise malformed(f"{self.report.bundle} is not a bundle (not a tar stream)",
                            self.report.bundle) from exc
        members = self._members(tar)
        first = next(members, None)
        if first is None or first.name != INDEX_NAME:
            raise malformed(f"{self.report.bundle} is not a bundle: it does not start with "
                            f"{INDEX_NAME}", self.report.bundle)
        idx = BundleIndex.decode(self._read(tar, first, MAX_INDEX_SIZE), INDEX_NAME)
        self.report.timestamp_version = idx.timestamp_version
        self.report.root_version = idx.root_version
        if self._precheck(idx):
            # an earlier run committed it but may have died before local_install.sh
            write_local_install(self.target)
            return
        if self.state is None:
            self._check_empty(idx)
        declared = {m.name: m for m in idx.files}
        total = sum(m.length for m in idx.files if member_kind(m.name) == TARBALL)
        done = 0
        meta: dict[str, bytes] = {}
        verified: _Verified | None = None
        staged: dict[str, FileInfo] = {}
        txn = storage.begin()
        try:
            for member in members:
                name = member.name
                decl = declared.pop(name, None)
                if decl is None:
                    raise malformed(f"the bundle holds {name!r}, which its index does not list "
                                    "(or lists once)", name)
                if member.size != decl.length:
                    raise _tampered(name, f"is {member.size} bytes, its index says {decl.length}")
                if member_kind(name) != TARBALL:
                    if verified is not None:
                        raise malformed(f"manifest {name} comes after the tarballs", name)
                    data = self._read(tar, member, _CAPS.get(member_kind(name),
                                                             MAX_MANIFEST_SIZE))
                    if hashlib.sha256(data).hexdigest() != decl.sha256:
                        raise _tampered(name, "differs from the bundle index (sha256)")
                    meta[name] = data
                    continue
                if verified is None:
                    verified = self._verify(idx, meta)
                item = self._expected_tarball(verified, name, decl.sha256)
                if member.size != item.length:
                    raise _tampered(name, f"is {member.size} bytes, its signed manifest says "
                                          f"{item.length}")
                fh = tar.extractfile(member)
                assert fh is not None
                info = txn.put_stream(name, self._counted(chunks(fh, member.size), done, total))
                done += member.size
                if not hashing.matches(info, item):
                    raise _tampered(name, "does not match the length and hashes its signed "
                                          "manifest declares")
                staged[name] = info
            if declared:
                raise malformed(f"the bundle ends before {sorted(declared)[0]} (and "
                                f"{len(declared) - 1} more): truncated", self.report.bundle)
            if verified is None:
                verified = self._verify(idx, meta)
            self._commit(txn, verified, staged)
        except tarfile.TarError as exc:
            raise malformed(f"{self.report.bundle} is damaged: {exc}", self.report.bundle) from exc
        finally:
            txn.discard()
        write_local_install(self.target)

    def _members(self, tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
        """The members, each a regular file with a mirror file name (checked before any
        byte of it is read)."""
        seen: set[str] = set()
        try:
            for member in tar:
                name = member.name
                if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):  # no sparse files
                    raise malformed(f"bundle member {name!r} is not a regular file (links, "
                                    "directories and devices are refused)", name)
                if name != INDEX_NAME:
                    member_kind(name)
                if name in seen:
                    raise malformed(f"bundle member {name!r} appears twice", name)
                seen.add(name)
                yield member
        except tarfile.TarError as exc:
            raise malformed(f"{self.report.bundle} is damaged: {exc}", self.report.bundle) from exc

    def _read(self, tar: tarfile.TarFile, member: tarfile.TarInfo, cap: int) -> bytes:
        if member.size > cap:
            raise malformed(f"bundle member {member.name} is {member.size} bytes, over the "
                            f"{cap}-byte limit", member.name)
        fh = tar.extractfile(member)
        assert fh is not None
        return b"".join(chunks(fh, member.size))

    def _counted(self, it: Iterator[bytes], done: int, total: int) -> Iterator[bytes]:
        for block in it:
            done += len(block)
            if self.progress is not None:
                self.progress(done, total)
            yield block

    # ------------------------------------------------------------ pre-checks
    def _precheck(self, idx: BundleIndex) -> bool:
        """Refusals the (unsigned) index already shows; True if there is nothing to do."""
        hint = (f"copy {self.target}/timestamp.json to the connected side and run "
                f"`tiup mirror export <mirror> <bundle> --since timestamp.json` there (a full "
                "bundle, without --since, also fits any earlier state)")
        if self.state is None:
            if idx.since is not None:
                raise BundleError(
                    f"{self.target} holds no mirror yet, but the bundle only brings what "
                    f"changed since {idx.since.describe()}: a first import needs a full bundle",
                    file=self.report.bundle, code="gap",
                    hint="export a full bundle (`tiup mirror export <mirror> <bundle>` without "
                         "--since)")
            return False
        from tiup.repository.bundle.export import mirror_id

        if idx.mirror_id != mirror_id(self.storage, self.state):
            raise _foreign(self.target, "its mirror's first root is not the target's")
        ts = self.state.timestamp
        meta = ts.snapshot_meta
        assert meta is not None
        current = meta.hashes.get("sha256", "")
        if idx.snapshot_sha256 == current:
            self.report.up_to_date = True
            return True
        if idx.timestamp_version <= ts.version:
            raise BundleError(
                f"the bundle brings timestamp version {idx.timestamp_version}, not newer than "
                f"the version {ts.version} of {self.target}: it is an old bundle (refused: a "
                "rollback)", file=self.report.bundle, code="rollback", hint=hint)
        if idx.since is not None and idx.since.snapshot_sha256 != current:
            raise BundleError(
                f"the bundle was made for a mirror at {idx.since.describe()}, but {self.target} "
                f"is at timestamp version {ts.version} (snapshot sha256 {current[:12]}): "
                "importing it would leave a gap", file=self.report.bundle, code="gap",
                hint=hint)
        return False

    def _check_empty(self, idx: BundleIndex) -> None:
        """A first import writes into an empty directory, or over what an interrupted
        run of it left (names the bundle holds)."""
        names = {m.name for m in idx.files}
        other = [e.name for e in self.storage.list()
                 if e.name not in names and e.name not in _NEUTRAL]
        try:
            dirs = [p.name for p in self.target.iterdir() if p.is_dir()]
        except OSError as exc:
            raise RepositoryError(f"cannot read {self.target}: {exc.strerror}") from exc
        if other or dirs:
            raise BundleError(
                f"refusing a first import into {self.target}: it is not empty and holds no "
                f"mirror ({sorted(other + dirs)[0]}, {len(other) + len(dirs)} entries)",
                file=str(self.target), code="not-empty",
                hint="import into an empty directory, or into the mirror made by an earlier "
                     "import")

    # ----------------------------------------------------------- verification
    def _verify(self, idx: BundleIndex, meta: dict[str, bytes]) -> _Verified:
        try:
            return self._verify_unwrapped(idx, meta)
        except BundleError:
            raise
        except NotFoundError as exc:
            raise BundleError(f"{exc.file} is neither in the bundle nor in {self.target}: the "
                              "bundle was made for another state of this mirror", code="gap",
                              file=exc.file) from exc
        except RollbackError as exc:
            raise BundleError(f"refusing the bundle: {exc.message}", file=exc.file,
                              code="rollback") from exc
        except TiupError as exc:
            raise BundleError(f"refusing the bundle: {exc.message}", file=exc.file,
                              code="tampered",
                              hint="make the bundle again on the connected side") from exc

    def _roots(self, meta: dict[str, bytes]) -> dict[int, bytes]:
        out = {}
        for name, data in meta.items():
            vp = versioned_parts(name)
            if vp is not None and vp[1] == "root":
                out[vp[0]] = data
        return out

    def _anchor(self, meta: dict[str, bytes]) -> trust.TrustedState:
        roots = self._roots(meta)
        if self.state is None:
            if 1 not in roots:
                raise BundleError("the bundle does not start its root chain at 1.root.json: "
                                  "a first import needs a full bundle", code="gap",
                                  file=self.report.bundle)
            st = trust.TrustedState(roots[1], None, "1.root.json")
            chain = [roots[1]]
            st.walk_roots(lambda v: (roots[v], f"{v}.root.json") if v in roots else None,
                          lambda data, _name: chain.append(data))
            pinned = any(d == self.trust_root for d in chain) or any(
                hashlib.sha256(d).hexdigest() == self.fingerprint for d in chain)
            if not pinned:
                latest = hashlib.sha256(st.root_raw).hexdigest()
                what = ("the --trust-root file is none of the bundle's roots"
                        if self.trust_root is not None else
                        "the --fingerprint matches none of the bundle's roots"
                        if self.fingerprint else "nothing pins the trust of its root")
                raise BundleError(
                    f"refusing a first import into {self.target}: {what} (the bundle's root: "
                    f"{trust.describe_root(st.root)}, sha256 {latest})", code="untrusted",
                    file=self.report.bundle,
                    hint="compare that sha256 with `sha256sum root.json` of the mirror on the "
                         "connected side, then run again with --fingerprint <sha256> (or "
                         "--trust-root <a copy of that root.json>)")
            return st
        state = self.state
        anchor = state.reader.state.root_raw
        r = state.root.version
        for v, data in sorted(roots.items()):
            if v > r:
                continue
            try:
                mine = anchor if v == r else self.storage.read(f"{v}.root.json",
                                                               trust.MAX_ROOT_SIZE)
            except NotFoundError:
                mine = None
            if mine != data:
                raise _foreign(self.target, f"its {v}.root.json is not the target's")
        st = trust.TrustedState(anchor, None, state.root_name)
        try:
            st.walk_roots(lambda v: (roots[v], f"{v}.root.json") if v in roots else None)
        except TiupError as exc:
            raise _foreign(self.target, f"its root chain does not follow the target's root "
                                        f"({exc.message})") from exc
        return st

    def _verify_unwrapped(self, idx: BundleIndex, meta: dict[str, bytes]) -> _Verified:
        st = self._anchor(meta)
        old = self.state
        for must in ("timestamp.json", "snapshot.json"):
            if must not in meta:
                raise malformed(f"the bundle has no {must}", self.report.bundle)
        if "root.json" in meta and meta["root.json"] != st.root_raw:
            raise _tampered("root.json", "is not the newest root of the bundle's chain")
        if old is None and "root.json" not in meta:
            raise malformed("a full bundle must hold root.json", self.report.bundle)
        # the one verified walk, over the bundle's manifests (and, for what the bundle does
        # not carry, the target's own copies): timestamp, snapshot, index, components
        reader = MirrorReader(_BundleFetcher(meta, None if old is None else self.storage,
                                             self.report.bundle), st)
        try:
            reader.refresh()
        except SignatureError as exc:
            if old is None or st.timestamp is not None:
                raise
            raise _foreign(self.target, f"its timestamp.json is not signed by the target's "
                                        f"keys ({exc.message})") from exc
        ts = st.timestamp
        assert ts is not None and st.index is not None
        if old is not None and ts.version <= old.timestamp.version:
            raise BundleError(f"the bundle's timestamp.json (version {ts.version}) is not newer "
                              f"than the target's ({old.timestamp.version})", code="rollback",
                              file="timestamp.json")
        self._warn_expired(st)
        index_url = st.index_url()
        index, name = st.index, st.index_source
        if old is not None:
            prev = old.snapshot.meta.get(index_url)
            if prev is not None and index.version < prev.version:
                raise RollbackError(f"the bundle's index version {index.version} is older than "
                                    f"the target's {prev.version}", file="snapshot.json")
        used = {"timestamp.json", "snapshot.json", "root.json", name,
                *(f"{v}.root.json" for v in self._roots(meta))}
        tarballs: dict[str, VersionItem] = {}
        required: set[str] = set()
        bootstrap: dict[str, list[VersionItem]] = {}
        clashes: set[str] = set()
        for cid in sorted(index.components):
            url, cver, _len = st.component_entry(cid)
            cname = versioned_url(url, cver).lstrip("/")
            before: Component | None = None
            if old is not None:
                prev = old.snapshot.meta.get(url)
                if prev is not None and cver < prev.version:
                    raise RollbackError(f"the bundle's {cid} manifest version {cver} is older "
                                        f"than the target's {prev.version}", file=cname)
                if prev is not None and cname in meta and cver > prev.version:
                    before = old.component(cid)
            comp = reader.component(cid)
            used.add(cname)
            if cname in meta:
                self.report.components.append(cid)
                known = set() if before is None else {(p, v) for p, v, _i in before.items()}
                self.report.versions += sum(1 for p, v, i in comp.items()
                                            if (p, v) not in known and not i.yanked)
            for plat, ver, item in comp.items():
                try:
                    tname = check_item_url(cid, plat, ver, item.url)
                except InvalidNameError:
                    continue
                if tname in tarballs and tarballs[tname].sha256 != item.sha256:
                    clashes.add(tname)
                tarballs[tname] = item
                if not item.yanked:
                    required.add(tname)
                if cid == "tiup":
                    bootstrap.setdefault(plat, []).append(item)
        for tname in clashes:
            del tarballs[tname]
            required.discard(tname)
        self._check_older_manifests(meta, used, index, st)
        return _Verified(tarballs, required, bootstrap, dict(meta))

    def _warn_expired(self, st: trust.TrustedState) -> None:
        """Expiry is the clients' check, not a reason to refuse authentic files (a writer
        never refuses its own mirror for it); an expired bundle is said out loud."""
        for model, source in ((st.timestamp, "timestamp.json"), (st.snapshot, "snapshot.json"),
                              (st.root, "root.json")):
            assert model is not None
            try:
                trust.check_expiry(model, source, self.now)
            except ExpiredError as exc:
                self.report.warnings.append(
                    f"{exc.message} (in the bundle): clients will refuse the mirror until the "
                    "connected side renews it (`tiup mirror renew`, or a re-clone) and a new "
                    "bundle is imported")

    def _check_older_manifests(self, meta: dict[str, bytes], used: set[str], index: Index,
                               st: trust.TrustedState) -> None:
        """Versioned manifests older than the current ones (an exporter that committed
        twice between two bundles): signed by today's keys, of their own name."""
        index_base = st.index_url().lstrip("/").removesuffix(".json")
        for name in sorted(set(meta) - used):
            vp = versioned_parts(name)
            if vp is None:
                raise malformed(f"the bundle holds {name}, which no verified manifest names",
                                name)
            version, base = vp
            if base == index_base:
                env, model = trust.load(meta[name], name, Index)
                trust.verify_signatures(env, trust.role_keys(st.root, "index", st.root_source),
                                        None)
                declared = model.version
            else:
                item = index.components.get(base)
                if item is None:
                    raise malformed(f"the bundle holds {name}, a manifest of a component the "
                                    "index does not list", name)
                env, comp = trust.load(meta[name], name, Component)
                trust.verify_signatures(env, trust.owner_keys(index, item.owner, name), None)
                if comp.id != base:
                    raise _tampered(name, f"is a manifest of {comp.id}")
                declared = comp.version
            if declared != version:
                raise _tampered(name, f"declares version {declared}")

    def _referenced(self, name: str) -> bool:
        """True if the target's current state names ``name`` (or a later version of it):
        a file of the target's verified history, which a bundle must not replace."""
        assert self.state is not None
        vp = versioned_parts(name)
        if vp is None:
            return True
        version, base = vp
        if base == "root":
            return version <= self.state.root.version
        meta = self.state.snapshot.meta.get(f"/{base}.json")
        return meta is not None and version <= meta.version

    def _expected_tarball(self, verified: _Verified, name: str, sha256: str) -> VersionItem:
        item = verified.tarballs.get(name)
        if item is not None:
            return item
        boot = bootstrap_platform(name)
        if boot is not None:
            for candidate in verified.bootstrap.get(f"{boot[0]}/{boot[1]}", []):
                if candidate.sha256 == sha256:
                    return candidate
        raise _tampered(name, "is named by no signed manifest of the bundle")

    # ------------------------------------------------------------------ commit
    def _commit(self, txn: Transaction, verified: _Verified, staged: dict[str, FileInfo]
                ) -> None:
        storage = self.storage
        for name in sorted(verified.required - set(staged)):
            entry = storage.stat(name)
            item = verified.tarballs[name]
            if entry is None or entry.size != item.length:
                raise BundleError(f"{name} is neither in the bundle nor in {self.target}: the "
                                  "bundle was made for another state of this mirror",
                                  code="gap", file=name)
        tar_group = [Write.put(n) for n in sorted(staged)]
        manifests: list[Write] = []
        files = verified.files
        for name in sorted(files):
            if name in ("timestamp.json", "snapshot.json", "root.json"):
                continue
            data = files[name]
            if self.state is not None:
                tag = storage.tag(name)
                if tag == hashlib.sha256(data).hexdigest():
                    continue  # an interrupted run of this import already put it there
                if tag is not None and self._referenced(name):
                    raise _foreign(self.target, f"the target holds another {name}")
                # else: absent, or a file no manifest of the target names (what a writer
                # that died left): replaced, as the store's commit replaces it
                txn.put_bytes(name, data)
                manifests.append(Write.new(name))
            else:
                txn.put_bytes(name, data)
                manifests.append(Write.put(name))
        groups: list[list[Write]] = [tar_group, manifests]
        first = self.state is None
        for name in ("snapshot.json", "timestamp.json"):
            txn.put_bytes(name, files[name])
            groups.append([Write.put(name) if first else
                           Write.swap(name, storage.read_tag(name))])
        if "root.json" in files:
            txn.put_bytes("root.json", files["root.json"])
            if first:
                groups.append([Write.swap("root.json", None)])
            else:
                groups[1].append(Write.swap("root.json", storage.read_tag("root.json")))
        self.report.tarballs = len(staged)
        self.report.bytes = sum(i.length for i in staged.values()) + sum(
            len(d) for d in files.values())
        self.report.written = txn.commit(groups)


class _BundleFetcher(Fetcher):
    """The bundle's manifests as a mirror the verified reader walks; a versioned manifest
    it does not carry is the target's own copy (``storage``; None on a first import).
    Roots come from the bundle only: the target's were walked when its state was read."""

    def __init__(self, meta: dict[str, bytes], storage: LocalStorage | None, address: str):
        self._meta = meta
        self._storage = storage
        self.address = address

    def fetch(self, resource: str, max_size: int | None) -> bytes:
        name = resource.lstrip("/")
        data = self._meta.get(name)
        if data is None:
            vp = versioned_parts(name)
            if self._storage is None or vp is None or vp[1] == "root":
                raise NotFoundError(f"{name} is not in the bundle", file=name)
            data = self._storage.read(name, max_size)
        if max_size is not None and len(data) > max_size:
            raise SizeLimitError(f"{name} in the bundle is {len(data)} bytes, over the "
                                 f"{max_size} its parent manifest allows", file=name)
        return data

    @contextmanager
    def stream(self, resource: str, max_size: int | None,
               offset: int = 0) -> Iterator[Iterator[bytes]]:
        yield iter([self.fetch(resource, max_size)[offset:]])


def _tampered(name: str, what: str) -> BundleError:
    return BundleError(f"{name} in the bundle {what}: refused, nothing was written",
                       file=name, code="tampered",
                       hint="the bundle was damaged or altered: copy it again, or make it again "
                            "on the connected side")


def _foreign(target: Path, why: str) -> BundleError:
    return BundleError(f"the bundle was made for another mirror than {target}: {why}",
                       file=str(target), code="foreign",
                       hint="import the bundle into the mirror it was exported for, or export "
                            "one from the mirror this target was imported from")


__all__ = ["ImportReport", "import_bundle", "open_bundle"]
