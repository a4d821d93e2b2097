"""``tiup mirror export``: what a target mirror lacks, as one streamable tar.

The exporting mirror is read through the verified walk (:func:`~tiup.repository.state
.read_state`: its own root, signatures, hashes; expiry ignored) under its lock, so a
clone running meanwhile cannot change it half-way. What the target has is its
``snapshot.json`` (``since``):

* ``--since timestamp.json`` (the usual way: the file is tiny). The exporter checks
  that one of its roots' timestamp keys signed it, then looks its snapshot up by sha256
  in the **export history**: every export records the ``snapshot.json`` it carried
  (``<history>/<timestamp version>-<sha256>.snapshot.json``), and an air-gapped
  mirror only ever holds states some export carried. If the timestamp names the
  exporter's current snapshot, the target is up to date.
* ``--since N``: the timestamp version N (``snapshot.json``'s own version is always
  0 in TiUP, so the number that counts states is the timestamp's), looked up the same way.
* ``--since snapshot.json``: the target's snapshot itself, checked against this
  mirror's snapshot keys; needs no history.

From that snapshot S0 the bundle holds: every ``N.root.json`` newer than S0's root
version (the import walks them from the target's own root), ``root.json`` if the root
changed, every versioned index and component manifest newer than S0 names,
``snapshot.json``, ``timestamp.json``, the tarballs named by the current manifests
whose (name, sha256) S0's manifests did not name, and bootstrap copies the target
cannot have. Without ``since``: everything (a full bundle).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from tiup import trust
from tiup.errors import BundleError, NotFoundError, RepositoryError, TiupError
from tiup.manifest.envelope import parse_envelope
from tiup.manifest.models import Component, Root, Snapshot, Timestamp
from tiup.manifest.names import bootstrap_platform, check_item_url, versioned_url
from tiup.repository.bundle.format import (
    INDEX_NAME,
    MANIFEST,
    ROOT,
    SNAPSHOT,
    TARBALL,
    TIMESTAMP,
    BundleIndex,
    Member,
    PartWriter,
    Since,
    member_kind,
    versioned_parts,
)
from tiup.repository.local_storage import LocalStorage
from tiup.repository.state import MirrorState, read_state

#: tar blocks; a whole tar stream is padded to a multiple of tarfile's record (10 KiB)
RECORD = tarfile.BLOCKSIZE
#: how much tarfile reads and writes at a time
COPY_BUFFER = 1024 * 1024

Progress = Callable[[int, int], None]


@dataclass
class ExportPlan:
    """What a bundle will hold (see the module docstring)."""

    mirror: Path
    index: BundleIndex
    #: the exporter's current snapshot bytes (recorded in the history after an export)
    snapshot: bytes
    up_to_date: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[Member]:
        return self.index.files

    def tar_size(self) -> int:
        """The exact size of the tar stream :func:`write_bundle` writes."""
        size = _tar_member_size(len(self.index.encode()))
        size += sum(_tar_member_size(m.length) for m in self.files)
        size += 2 * RECORD
        return -(-size // tarfile.RECORDSIZE) * tarfile.RECORDSIZE

    def summary(self) -> dict[str, int]:
        kinds = [member_kind(m.name) for m in self.files]
        return {"tarballs": kinds.count(TARBALL),
                "manifests": len(kinds) - kinds.count(TARBALL),
                "bytes": sum(m.length for m in self.files)}


def _tar_member_size(length: int) -> int:
    return RECORD + (length + RECORD - 1) // RECORD * RECORD


# ---------------------------------------------------------------------- since
def mirror_id(storage: LocalStorage, state: MirrorState) -> str:
    """A mirror's identity: the sha256 of its ``1.root.json`` (every later root is signed
    by the one before, so the first one names the mirror across rotations)."""
    try:
        first = storage.read("1.root.json", trust.MAX_ROOT_SIZE)
    except NotFoundError:
        first = state.root_json
    return hashlib.sha256(first).hexdigest()


def history_dir(base: Path, storage: LocalStorage, state: MirrorState) -> Path:
    """The export history of one mirror under ``base`` (by its identity)."""
    return base / mirror_id(storage, state)[:16]


def _signed_by_any_root(state: MirrorState, storage: LocalStorage, data: bytes, source: str,
                        role: str) -> None:
    """Check ``data`` is signed by ``role`` of one of the mirror's roots (expiry ignored).

    Raises:
        BundleError: (``foreign``) no root of this mirror signed it.
    """
    env = parse_envelope(data, source)
    for version in range(state.root.version, 0, -1):
        name = f"{version}.root.json"
        raw: bytes | None
        try:
            raw = storage.read(name, trust.MAX_ROOT_SIZE)
        except NotFoundError:
            raw = state.root_json if version == state.root_json_version else None
        if raw is None:
            continue
        try:
            _env, root = trust.load(raw, name, Root)
            trust.verify_signatures(env, trust.role_keys(root, role, name), None)
            return
        except TiupError:
            continue
    raise BundleError(f"{source} is not signed by the {role} keys of mirror "
                      f"{storage.location}: it comes from another mirror", file=source,
                      code="foreign", hint="pass the file copied out of the mirror this "
                                           "one was exported to")


def resolve_since(state: MirrorState, storage: LocalStorage, since: bytes | int,
                  source: str, history: Path | None) -> tuple[Since, bytes | None]:
    """The target's state from ``--since``: (Since, its snapshot bytes or None when the
    target is at the exporter's current snapshot).

    Raises:
        BundleError: ``foreign`` (not this mirror's file), ``no-history`` (the snapshot
            it names was never exported from here), ``malformed``.
    """
    current = state.reader.state.snapshot_raw
    assert current is not None
    cur_sha = hashlib.sha256(current).hexdigest()
    if isinstance(since, int):
        version: int | None = since
        wanted_sha: str | None = None
        if version == state.timestamp.version:
            return Since(cur_sha, version), None
    else:
        try:
            env = parse_envelope(since, source)
        except TiupError as exc:
            raise BundleError(f"--since {source} is not a timestamp.json or snapshot.json: "
                              f"{exc.message}", file=source, code="malformed") from exc
        kind = env.type
        if kind == "snapshot":
            _signed_by_any_root(state, storage, since, source, "snapshot")
            sha = hashlib.sha256(since).hexdigest()
            return Since(sha, None), (None if sha == cur_sha else since)
        if kind != "timestamp":
            raise BundleError(f"--since {source} is a {kind} manifest, not timestamp.json "
                              "or snapshot.json", file=source, code="malformed")
        _signed_by_any_root(state, storage, since, source, "timestamp")
        _env, ts = trust.load(since, source, Timestamp)
        meta = ts.snapshot_meta
        assert meta is not None
        version, wanted_sha = ts.version, meta.hashes.get("sha256")
        if wanted_sha == cur_sha:
            return Since(cur_sha, version), None
    where = history
    found: Path | None = None
    if where is not None and where.is_dir():
        pattern = f"{version}-*.snapshot.json" if wanted_sha is None \
            else f"*-{wanted_sha}.snapshot.json"
        found = next(iter(sorted(where.glob(pattern))), None)
    if found is None:
        what = f"timestamp version {version}"
        raise BundleError(
            f"no export from {storage.location} carried the state of the target ({what}): "
            "this side cannot tell which files the target holds", file=source,
            code="no-history",
            hint="pass --since with the target's snapshot.json instead, or export a full "
                 "bundle (no --since)")
    data = found.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if wanted_sha is not None and sha != wanted_sha:
        raise BundleError(f"the export history file {found} is damaged", file=str(found),
                          code="no-history", hint="remove it and pass --since snapshot.json")
    _signed_by_any_root(state, storage, data, str(found), "snapshot")
    return Since(sha, version), data


# ---------------------------------------------------------------------- plan
def plan_export(mirror: Path, *, since: bytes | int | None = None, since_source: str = "",
                history: Path | None = None) -> ExportPlan:
    """Work out what a bundle of ``mirror`` for the target state ``since`` holds.

    Raises:
        RepositoryError: the mirror cannot be read or does not verify.
        BundleError: as :func:`resolve_since`.
    """
    storage = LocalStorage(mirror)
    storage.acquire(60.0)
    try:
        return _plan(storage, since, since_source, history)
    finally:
        storage.release()


def _plan(storage: LocalStorage, since: bytes | int | None, since_source: str,
          history: Path | None) -> ExportPlan:
    state = read_state(storage)
    if state.interrupted:
        raise RepositoryError(
            f"mirror {storage.location} has a commit that was interrupted (snapshot.json is "
            "newer than timestamp.json): its state is not one a bundle can carry",
            file=storage.location,
            hint="complete it with a write first (run the `tiup mirror clone` again, or "
                 f"`tiup mirror --repo {storage.location} renew`)")
    ts_raw = state.reader.state.timestamp_raw
    snap_raw = state.reader.state.snapshot_raw
    assert ts_raw is not None and snap_raw is not None
    hist = history_dir(history, storage, state) if history is not None else None
    target: Since | None = None
    old_snapshot: bytes | None = None
    up_to_date = False
    if since is not None:
        target, old_snapshot = resolve_since(state, storage, since, since_source, hist)
        up_to_date = old_snapshot is None
    root_name = state.root_name
    root_raw = state.reader.state.root_raw
    idx = BundleIndex(mirror_id(storage, state), hashlib.sha256(root_raw).hexdigest(),
                      state.root.version, state.timestamp.version,
                      hashlib.sha256(snap_raw).hexdigest(), target)
    plan = ExportPlan(storage.directory, idx, snap_raw, up_to_date=up_to_date)
    if up_to_date:
        return plan
    old_versions: dict[str, int] = {}
    old_root = 0
    known: set[tuple[str, str]] = set()
    known_sha: set[str] = set()
    if old_snapshot is not None:
        _env, s0 = trust.load(old_snapshot, "the target's snapshot.json", Snapshot)
        old_versions = {url: meta.version for url, meta in s0.meta.items()}
        old_root = old_versions.get("/root.json", 0)
        for url, version in old_versions.items():
            if url in ("/root.json", state.reader.state.index_url()):
                continue
            for name, sha in _tarballs_named(storage, url, version):
                known.add((name, sha))
                known_sha.add(sha)
    files: list[tuple[int, int, str, str]] = []  # (kind, version, base, name): the order
    listing = {e.name: e for e in storage.list()}
    for name in listing:
        vp = versioned_parts(name)
        if vp is None:
            continue
        version, base = vp
        if base == "root":
            if old_root < version <= state.root.version:
                files.append((ROOT, version, "root", name))
            continue
        url = f"/{base}.json"
        current = state.snapshot.meta.get(url)
        if current is None:
            continue
        if old_versions.get(url, 0) < version <= current.version:
            files.append((MANIFEST, version, base, name))
    if target is None or state.root.version > old_root:
        files.append((ROOT, state.root.version + 1, "root", "root.json"))
        if root_name != "root.json" and storage.read("root.json") != root_raw:
            raise BundleError(f"root.json of {storage.location} is not its newest root "
                              f"({root_name})", file="root.json", code="malformed",
                              hint=f"run `tiup mirror verify {storage.location}`")
    files.append((TIMESTAMP, 0, "timestamp.json", "timestamp.json"))
    files.append((SNAPSHOT, 0, "snapshot.json", "snapshot.json"))
    # tarballs: lengths and hashes from the verified manifests (no re-hashing here; the
    # write pass checks each file's sha256 as it copies it)
    tarballs: dict[str, Member] = {}
    index = state.index
    for cid in sorted(index.components):
        comp = state.component(cid)
        assert comp is not None
        for plat, ver, item in comp.items():
            try:
                name = check_item_url(comp.id, plat, ver, item.url)
            except TiupError:
                continue
            entry = listing.get(name)
            if (name, item.sha256) in known or entry is None:
                continue
            if entry.size != item.length:
                raise BundleError(f"{name} of {storage.location} is {entry.size} bytes, its "
                                  f"manifest says {item.length}", file=name, code="tampered",
                                  hint=f"run `tiup mirror verify {storage.location}`")
            tarballs[name] = Member(name, item.length, item.sha256, item.sha512)
    for name in sorted(listing):
        if bootstrap_platform(name) is not None:
            info = storage.file_info(name)
            if info.sha256 not in known_sha:
                tarballs[name] = Member(name, info.length, info.sha256, info.sha512)
    files.sort(key=lambda f: (f[0], f[2], f[1]))
    for _kind, _version, _base, name in files:
        info = storage.file_info(name)
        idx.files.append(Member(name, info.length, info.sha256, info.sha512))
    idx.files += [tarballs[n] for n in sorted(tarballs) if bootstrap_platform(n) is None]
    idx.files += [tarballs[n] for n in sorted(tarballs) if bootstrap_platform(n) is not None]
    return plan


def _tarballs_named(storage: LocalStorage, url: str, version: int) -> Iterator[tuple[str, str]]:
    """(tarball name, sha256) of every item of the component manifest ``version`` of ``url``
    in the exporter's mirror: what the target's manifests named (used only to leave files
    out; a wrong answer makes the import refuse the bundle as a gap, never trust more)."""
    name = versioned_url(url, version).lstrip("/")
    try:
        data = storage.read(name)
        _env, comp = trust.load(data, name, Component)
    except TiupError:
        return
    for plat, ver, item in comp.items():
        try:
            tar = check_item_url(comp.id, plat, ver, item.url)
        except TiupError:
            continue
        yield tar, item.sha256


# ---------------------------------------------------------------------- write
def write_bundle(plan: ExportPlan, out: Path | None, *, part_size: int | None = None,
                 history: Path | None = None, progress: Progress | None = None) -> list[Path]:
    """Write the bundle (``out`` None: to stdout) and record the exported snapshot in the
    export history. Returns the files written.

    The bundle is written under a temporary name (or as parts, ``.parts.json`` last) and
    renamed when complete: an interrupted export leaves no bundle that looks whole.

    Raises:
        BundleError: a mirror file changed since the plan (``tampered``).
        RepositoryError: the bundle cannot be written.
    """
    written: list[Path] = []
    try:
        if out is None:
            _write_tar(plan, sys.stdout.buffer, progress)
        elif part_size:
            writer = PartWriter(out, part_size)
            try:
                _write_tar(plan, writer, progress)  # type: ignore[arg-type]
                written = writer.finish()
            except BaseException:
                writer.abort()
                raise
        else:
            tmp = out.with_name(f".tmp-{out.name}")
            try:
                with open(tmp, "wb") as fh:
                    _write_tar(plan, fh, progress)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, out)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            written = [out]
    except OSError as exc:
        raise RepositoryError(f"cannot write the bundle {out or '<stdout>'}: "
                              f"{exc.strerror or exc}", file=str(out)) from exc
    if history is not None:
        record_history(history, plan)
    return written


def record_history(base: Path, plan: ExportPlan) -> None:
    """Keep the exported snapshot for a later ``--since`` (best effort: a failure only
    means that later export needs ``--since snapshot.json``)."""
    storage = LocalStorage(plan.mirror)
    with contextlib.suppress(TiupError, OSError):
        state = read_state(storage)
        where = history_dir(base, storage, state)
        where.mkdir(parents=True, exist_ok=True)
        name = f"{plan.index.timestamp_version}-{plan.index.snapshot_sha256}.snapshot.json"
        if not (where / name).exists():
            from tiup.fsutil import atomic_write

            atomic_write(where / name, plan.snapshot, 0o644)


def _write_tar(plan: ExportPlan, out: BinaryIO, progress: Progress | None) -> None:
    """The tar stream, written directly: a ustar header per member (``tarfile`` makes it),
    the bytes in 1 MiB blocks with their sha256 taken as they pass, zero padding to the
    512-byte block, two zero blocks, zero padding to tarfile's 10 KiB record."""
    total = sum(m.length for m in plan.files)
    done = written = 0

    def put(data: bytes | memoryview) -> None:
        nonlocal written
        out.write(data)
        written += len(data)

    data = plan.index.encode()
    put(_header(INDEX_NAME, len(data)))
    put(data + _pad(len(data)))
    for m in plan.files:
        path = plan.mirror / m.name
        put(_header(m.name, m.length))
        digest, length = hashlib.sha256(), 0
        with open(path, "rb") as fh:
            while length < m.length and (block := fh.read(min(COPY_BUFFER, m.length - length))):
                digest.update(block)
                put(block)
                length += len(block)
                if progress is not None:
                    progress(done + length, total)
        if length != m.length or digest.hexdigest() != m.sha256:
            raise BundleError(f"{path} changed while the bundle was written", file=str(path),
                              code="tampered", hint="run the export again")
        put(_pad(m.length))
        done += m.length
    put(bytes(2 * RECORD))
    put(bytes(-written % tarfile.RECORDSIZE))


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    info.type = tarfile.REGTYPE
    return info.tobuf(tarfile.USTAR_FORMAT, tarfile.ENCODING, "strict")


def _pad(length: int) -> bytes:
    return bytes(-length % RECORD)


