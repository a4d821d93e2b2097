"""``tiup mirror verify``: audit a whole mirror and report every problem.

The audit runs the client's trust checks (:mod:`tiup.trust`) one by
one over every file of a mirror, recording each failure as a
:class:`Finding` instead of stopping, so one run lists everything that is
wrong. It never writes. Tarballs are hashed streaming (sha256 and sha512 in
one pass), several at a time, each against every item naming it
(:mod:`tiup.repository.audit_tarballs`).

Every manifest is read with the cap a client uses (``format.md`` §11):
``timestamp.json`` 1024 bytes, roots 1 MiB, ``snapshot.json`` the length the
timestamp declares, index and component manifests the length the snapshot
declares (:data:`MAX_UNDECLARED` where nothing declares one). A file over its cap
is a finding naming it; the transport never reads past the cap, and a local
mirror refuses FIFOs and devices, so an endless or blocking file cannot stall
the audit.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from tiup import trust
from tiup.errors import FetchError, ManifestError, NotFoundError, SizeLimitError, TiupError
from tiup.manifest.envelope import (
    SIGNED_NOT_CANONICAL,
    Envelope,
    check_canonical,
    parse_canonical_envelope,
    parse_envelope,
)
from tiup.manifest.models import (
    Component,
    ComponentItem,
    Index,
    Root,
    Signed,
    Snapshot,
    Timestamp,
    VersionItem,
)
from tiup.manifest.names import split_platform, versioned_url
from tiup.repository.audit_tarballs import TarballAudit, hash_stream
from tiup.transport.base import Fetcher

__all__ = ["AuditReport", "Finding", "audit_mirror", "hash_stream"]

#: The cap on a manifest whose length nothing declares (``snapshot.json`` when the
#: timestamp is unusable); the same as the publish API's limit on a manifest.
MAX_UNDECLARED = 64 << 20

ERROR, WARN, NOTE = "ERROR", "WARN", "NOTE"
#: The url of a version item a verify accepts: ``/`` and one file name of safe characters.
_SAFE_URL = re.compile(r"/[A-Za-z0-9_.+\-]+")
#: Added when snapshot.json does not match timestamp.json (see ``repository/state.py``).
INTERRUPTED = ("; if a write was interrupted between snapshot.json and timestamp.json, the "
               "next write completes it (e.g. `tiup mirror --repo <dir> renew`)")


@dataclass(frozen=True)
class Finding:
    severity: str
    file: str
    message: str


@dataclass
class AuditReport:
    """Everything ``mirror verify`` found."""

    mirror: str
    findings: list[Finding] = field(default_factory=list)
    root_version: int | None = None
    manifests_checked: int = 0
    tarballs_checked: int = 0
    tarball_bytes: int = 0

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARN]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "mirror": self.mirror,
            "root_version": self.root_version,
            "problems": [{"file": f.file, "error": f.message} for f in self.errors],
            "findings": [
                {"severity": f.severity, "file": f.file, "message": f.message}
                for f in self.findings
            ],
            "manifests_checked": self.manifests_checked,
            "tarballs_checked": self.tarballs_checked,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
        }


#: Called with (bytes hashed so far, total bytes to hash).
ProgressFn = Callable[[int, int], None]

TARBALLS_ALL, TARBALLS_EXIST, TARBALLS_SKIP = "all", "exist", "skip"


class _Audit:
    def __init__(self, fetcher: Fetcher, now: datetime, trusted_root: bytes | None,
                 trusted_root_name: str, tarballs: str, jobs: int,
                 progress: ProgressFn | None):
        self.f = fetcher
        self.now = now
        self.trusted_root = trusted_root
        self.trusted_root_name = trusted_root_name
        self.tarballs = tarballs
        self.jobs = max(1, jobs)
        self.progress = progress
        self.report = AuditReport(fetcher.address)
        self.referenced: set[str] = set()
        self.lock = threading.Lock()
        self.root_source = "root.json"
        self.index_source = ""

    # ---------------------------------------------------------------- helpers
    def add(self, severity: str, file: str, message: str) -> None:
        with self.lock:
            self.report.findings.append(Finding(severity, file, message))

    def error(self, file: str, exc: TiupError | str) -> None:
        self.add(ERROR, file, exc if isinstance(exc, str) else exc.message)

    def read(self, name: str, cap: int, what: str, note: str = "") -> bytes | None:
        """``name``, at most ``cap`` bytes (``what`` says where the cap comes from), or
        None with a finding (``note`` is added to a size finding)."""
        self.referenced.add(name)
        try:
            return self.f.fetch(name, cap)
        except NotFoundError:
            self.error(name, f"{name} is missing")
        except SizeLimitError:
            self.error(name, f"{name} is larger than {what} ({cap} bytes): clients refuse "
                             f"it{note}")
        except FetchError as exc:
            self.error(name, exc)
        return None

    def parse(self, name: str, data: bytes) -> Envelope | None:
        self.report.manifests_checked += 1
        try:
            env, form = parse_canonical_envelope(data, name)
        except ManifestError as exc:
            self.error(name, exc)
            return None
        if form is not None:
            raw_ok = form.code != SIGNED_NOT_CANONICAL
            self.add(WARN if raw_ok else ERROR, name, form.message)
        if env.extra_members:
            self.add(WARN, name, f"unknown envelope members {sorted(env.extra_members)}")
        return env

    def model(self, env: Envelope, cls: type[trust.T]) -> trust.T | None:
        try:
            trust.check_type(env, cls.TYPE)
            model = cls.from_dict(env.signed, env.source)  # type: ignore[attr-defined]
        except TiupError as exc:
            self.error(env.source, exc)
            return None
        self.unknown_members(env.source, model)
        return model  # type: ignore[no-any-return]

    def unknown_members(self, source: str, model: Signed) -> None:
        names: set[str] = set(model.unrecognized)
        if isinstance(model, Index):
            for item in model.components.values():
                names.update(f"components.*.{k}" for k in item.unrecognized)
            for owner in model.owners.values():
                names.update(f"owners.*.{k}" for k in owner.unrecognized)
        elif isinstance(model, Component):
            for _p, _v, version_item in model.items():
                names.update(f"platforms.*.*.{k}" for k in version_item.unrecognized)
        if names:
            self.add(WARN, source, f"unknown members {sorted(names)} (Go TiUP drops them "
                                   "from its cache)")

    def expiry(self, model: Signed, source: str, what: str = "") -> None:
        try:
            at = model.expires_at()
        except ManifestError as exc:
            self.error(source, exc)
            return
        if at < self.now:
            extra = f" ({what})" if what else ""
            self.error(source, f"{source}{extra} expired at {at.isoformat()}")

    def problems(self, env: Envelope, problems: trust.Problems, role: trust.RoleKeys | None,
                 what: str) -> None:
        """Report the problems the trust rules found in one document (expiry is left to
        :meth:`expiry`, which says more); "no signature from the role's keys" says whose."""
        for exc in problems:
            msg = exc.message
            if exc.code == "no-signatures" and role is not None:
                msg = (f"{env.source} is not signed by the {what} of {role.declared_in} "
                       f"(needs {role.threshold} signature(s), found none from its keys)")
            self.error(env.source, msg)

    # ------------------------------------------------------------------ steps
    def run(self) -> AuditReport:
        root = self.roots()
        if root is None:
            return self.report
        ts = self.timestamp(root)
        snap = self.snapshot(root, ts)
        index = self.index(root, snap)
        items = self.components(index, snap) if index is not None else []
        self.files(snap, index)
        if self.tarballs != TARBALLS_SKIP:
            self.check_tarballs(items)
        self.leftovers()
        return self.report

    def roots(self) -> Root | None:
        if self.trusted_root is not None:
            source = self.trusted_root_name
            data = self.trusted_root
        else:
            source = "root.json"
            got = self.read(source, trust.MAX_ROOT_SIZE, "the cap on roots")
            if got is None:
                return None
            data = got
        self.report.manifests_checked += 1
        try:
            env, root = trust.verify_self_signed_root(data, source)
        except TiupError as exc:
            self.error(source, exc)
            return None
        if self.trusted_root is None:
            self.parse_extras(env, data, root)
            self.lower_chain(root)
        else:
            self.referenced.add("root.json")
            self.compare_mirror_root(root)
        self.referenced.add("1.root.json")
        current, current_src = self.walk(data, source, None)
        self.report.root_version = current.version
        self.expiry(current, current_src, f"root version {current.version}")
        self.root_source = current_src
        return current

    def walk(self, data: bytes, source: str, stop: int | None, *, quiet: bool = False
             ) -> tuple[Root, str]:
        """Follow ``N+1.root.json`` from the root ``data`` (up to version ``stop``) with the
        trust state's one root walk, reporting each step."""
        state = trust.TrustedState(data, None, source)

        def next_root(version: int) -> tuple[bytes, str] | None:
            if stop is not None and version > stop:
                return None
            name = f"{version}.root.json"
            try:
                got = self.f.fetch(name, trust.MAX_ROOT_SIZE)
            except NotFoundError:
                return None
            self.referenced.add(name)
            if not quiet:
                self.report.manifests_checked += 1
            return got, name

        def accepted(got: bytes, name: str) -> None:
            if not quiet:
                self.parse_extras(parse_envelope(got, name), got, state.root)

        try:
            state.walk_roots(next_root, accepted)
        except TiupError as exc:
            self.error(exc.file or f"{state.root.version + 1}.root.json", exc)
        return state.root, state.root_source

    def lower_chain(self, root: Root) -> None:
        """``1.root.json`` … must lead to the mirror's ``root.json`` (clients may hold any)."""
        try:
            data = self.f.fetch("1.root.json", trust.MAX_ROOT_SIZE)
        except FetchError:
            return
        self.report.manifests_checked += 1
        try:
            _env, first = trust.verify_self_signed_root(data, "1.root.json")
        except TiupError as exc:
            self.error("1.root.json", exc)
            return
        if root.version == 1:
            if first.to_dict() != root.to_dict():
                self.error("1.root.json", "1.root.json differs from root.json (both version 1)")
            return
        reached, _src = self.walk(data, "1.root.json", root.version, quiet=True)
        if reached.version != root.version:
            self.add(WARN, "1.root.json", f"the root chain from 1.root.json stops at version "
                                          f"{reached.version} and does not reach root.json "
                                          f"(version {root.version})")
        elif reached.to_dict() != root.to_dict():
            self.error("root.json", f"root.json differs from {root.version}.root.json")

    def parse_extras(self, env: Envelope, data: bytes, model: Signed) -> None:
        try:
            check_canonical(env, data)
        except ManifestError as exc:
            self.add(ERROR if exc.code == SIGNED_NOT_CANONICAL else WARN, env.source,
                     exc.message)
        self.unknown_members(env.source, model)

    def compare_mirror_root(self, trusted: Root) -> None:
        """With ``--root``: the mirror's own roots must still be sound for new clients."""
        for name in ("root.json", "1.root.json"):
            try:
                data = self.f.fetch(name, trust.MAX_ROOT_SIZE)
            except FetchError:
                if name == "root.json":
                    self.add(WARN, name, "the mirror has no root.json for new clients to trust")
                continue
            self.report.manifests_checked += 1
            try:
                _env, mirror_root = trust.verify_self_signed_root(data, name)
            except TiupError as exc:
                self.error(name, f"the mirror's {name} is unusable: {exc.message}")
                continue
            same = mirror_root.to_dict() == trusted.to_dict()
            if name == "root.json" and not same and mirror_root.version >= trusted.version:
                self.add(NOTE, name, f"the mirror's root.json (version {mirror_root.version}) "
                                     "is not the trusted root given with --root; it was not used")

    def timestamp(self, root: Root) -> Timestamp | None:
        name = "timestamp.json"
        data = self.read(name, trust.MAX_TIMESTAMP_SIZE, "the cap on timestamps (Go TiUP's "
                                                          "too)")
        if data is None:
            return None
        env = self.parse(name, data)
        if env is None:
            return None
        ts = self.model(env, Timestamp)
        if ts is None:
            return None
        found = trust.timestamp_problems(env, ts, root, self.root_source, None)
        self.problems(env, found, trust.role_keys(root, "timestamp", self.root_source),
                      "timestamp key")
        self.expiry(ts, name)
        if any(exc.code == trust.INVALID_TIMESTAMP for exc in found):
            return None
        return ts

    def snapshot(self, root: Root, ts: Timestamp | None) -> Snapshot | None:
        name = "snapshot.json"
        declared = ts.snapshot_meta if ts is not None else None
        if declared is not None:
            data = self.read(name, declared.length, "the length timestamp.json declares",
                             INTERRUPTED)
        else:
            data = self.read(name, MAX_UNDECLARED, "any manifest may be")
        if data is None:
            return None
        if ts is not None and ts.snapshot_meta is not None:
            try:
                trust.check_hashes(data, ts.snapshot_meta.hashes, ts.snapshot_meta.length, name)
            except TiupError as exc:
                self.error(name, f"{exc.message} (as declared in timestamp.json){INTERRUPTED}")
        env = self.parse(name, data)
        if env is None:
            return None
        snap = self.model(env, Snapshot)
        if snap is None:
            return None
        self.problems(env, trust.snapshot_problems(env, snap, root, self.root_source, None),
                      trust.role_keys(root, "snapshot", self.root_source), "snapshot key")
        self.expiry(snap, name)
        if snap.version != 0:
            self.error(name, f"{name} has version {snap.version}; it must always be 0")
        root_meta = snap.meta.get("/root.json")
        if root_meta is None:
            self.error(name, f"{name} has no entry for /root.json")
        elif root_meta.version != root.version:
            self.error(name, f"{name} names root version {root_meta.version}, but the root "
                             f"chain reaches version {root.version}")
        return snap

    def index(self, root: Root, snap: Snapshot | None) -> Index | None:
        if snap is None:
            return None
        url = root.roles["index"].url or "/index.json"
        meta = snap.meta.get(url)
        if meta is None:
            self.error("snapshot.json", f"no entry in snapshot manifest for {url}")
            return None
        name = versioned_url(url, meta.version).lstrip("/")
        data = self.read(name, meta.length, "the length snapshot.json declares")
        if data is None:
            return None
        env = self.parse(name, data)
        if env is None:
            return None
        index = self.model(env, Index)
        if index is None:
            return None
        self.problems(env, trust.index_problems(env, index, root, self.root_source, None,
                                                meta.version),
                      trust.role_keys(root, "index", self.root_source), "index key")
        self.expiry(index, name, "owner keys expire with it")
        for owner_id, owner in index.owners.items():
            if owner.threshold is None:
                self.add(NOTE, name, f"owner {owner_id} has no threshold (data older than "
                                     "June 2020); treated as 1")
        self.index_source = name
        return index

    def components(self, index: Index, snap: Snapshot | None) -> list[tuple[str, VersionItem]]:
        items: list[tuple[str, VersionItem]] = []
        for comp_id in sorted(index.components):
            entry: ComponentItem = index.components[comp_id]
            if entry.url != f"/{comp_id}.json":
                self.add(WARN, self.index_source,
                         f"component {comp_id} has url {entry.url}, expected /{comp_id}.json")
            meta = snap.meta.get(entry.url) if snap is not None else None
            if meta is None:
                self.error("snapshot.json", f"no entry in snapshot manifest for {entry.url} "
                                            f"(component {comp_id})")
                continue
            name = versioned_url(entry.url, meta.version).lstrip("/")
            data = self.read(name, meta.length, "the length snapshot.json declares")
            if data is None:
                continue
            env = self.parse(name, data)
            if env is None:
                continue
            comp = self.model(env, Component)
            if comp is None:
                continue
            try:
                role: trust.RoleKeys | None = trust.owner_keys(index, entry.owner,
                                                               self.index_source)
            except TiupError:
                role = None  # reported by the checks below
            self.problems(env, trust.component_problems(env, comp, comp_id, index,
                                                        self.index_source, None, meta.version),
                          role, f"keys of owner {entry.owner}")
            self.expiry(comp, name)
            found = self.version_items(comp_id, comp, name)
            if entry.yanked:  # a yanked component's versions are all withdrawn
                found = ((where, replace(item, yanked=True)) for where, item in found)
            items.extend(found)
        return items

    def version_items(self, comp_id: str, comp: Component, name: str
                      ) -> Iterable[tuple[str, VersionItem]]:
        nightly_found = not comp.nightly
        for plat, versions in comp.platforms.items():
            try:
                os_name, arch = split_platform(plat)
            except TiupError as exc:
                for _ver in versions:
                    self.error(name, exc)
                continue
            for ver, item in versions.items():
                if ver == comp.nightly:
                    nightly_found = True
                where = f"{comp_id} {ver} {plat}"
                if not item.entry:
                    self.add(WARN, name, f"{where} has an empty entry (clients treat it as "
                                         "absent)")
                expected = f"/{comp_id}-{ver}-{os_name}-{arch}.tar.gz"
                if item.url != expected:
                    self.add(WARN, name, f"{where} has url {item.url}, expected {expected}")
                if not _SAFE_URL.fullmatch(item.url):
                    self.error(name, f"{where} has an unsafe url {item.url!r}")
                    continue
                if not item.sha256:
                    self.error(name, f"{where} has no sha256 hash")
                self.referenced.add(item.url.lstrip("/"))
                yield where, item
        if not nightly_found:
            self.error(name, f"nightly pointer {comp.nightly} names no version in {name}")

    def files(self, snap: Snapshot | None, index: Index | None) -> None:
        if snap is None:
            return
        listed = self.f.list_files()
        components = set(index.components) if index is not None else set()
        for url in sorted(snap.meta):
            if url in ("/root.json", "/index.json"):
                continue
            comp = url.lstrip("/").removesuffix(".json")
            if index is not None and comp not in components:
                self.error("snapshot.json", f"snapshot.json lists {url}, which is not a "
                                            "component of the index")
        if listed is None:
            return
        for name in listed:
            if name.endswith(".tar.gz") and name not in self.referenced:
                if name.startswith("tiup-") and name.count("-") == 2:
                    continue  # bootstrap copies for install scripts
                self.add(WARN, name, f"tarball {name} is not referenced by any manifest")

    def check_tarballs(self, items: list[tuple[str, VersionItem]]) -> None:
        checker = TarballAudit(self.f, error=self.error, jobs=self.jobs,
                               note=lambda file, msg: self.add(NOTE, file, msg),
                               progress=self.progress)
        self.referenced.update(item.url.lstrip("/") for _w, item in items)
        checker.run(items, hash_files=self.tarballs != TARBALLS_EXIST)
        self.report.tarballs_checked += checker.checked
        self.report.tarball_bytes += checker.hashed_bytes

    def leftovers(self) -> None:
        listed = self.f.list_files()
        if listed is None:
            return
        for name in listed:
            if name.startswith(".tmp-"):
                self.add(WARN, name, "leftover of an interrupted write (removed by the next "
                                     "writer)")
        base = self.f.local_path()
        if base is None:
            return
        from tiup.repository.keyscan import private_keys_under

        by_dir: dict[str, list[str]] = {}
        for path in private_keys_under(base):
            by_dir.setdefault(os.path.dirname(path) or ".", []).append(path)
        for folder, paths in sorted(by_dir.items()):
            self.add(WARN, folder + "/", f"{len(paths)} private key file(s) inside the mirror "
                                         "directory: move them out of any directory you publish "
                                         "(tiup finds them with --key-dir)")


def audit_mirror(fetcher: Fetcher, now: datetime, *, trusted_root: bytes | None = None,
                 trusted_root_name: str = "root.json", tarballs: str = TARBALLS_ALL,
                 jobs: int = 4, progress: ProgressFn | None = None) -> AuditReport:
    """Audit every file of a mirror at the reference time ``now``.

    Args:
        trusted_root: bytes of a root to start the chain from instead of the
            mirror's ``root.json``.
        tarballs: ``all`` (length and hashes), ``exist`` (presence only) or ``skip``.

    Returns:
        The report; it never raises for problems in the mirror.

    Raises:
        FetchError: the mirror cannot be read at all.
    """
    return _Audit(fetcher, now, trusted_root, trusted_root_name, tarballs, jobs, progress).run()
