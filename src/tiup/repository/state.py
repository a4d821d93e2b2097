"""The current state of a local mirror as a writer sees it.

Everything is verified with the mirror's own keys (signatures, thresholds,
hashes, the root chain), but expiry is ignored: a writer must be able to renew
a mirror that has already expired (``behavior.md`` §12.8). Component
manifests are read lazily, only when a write touches them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tiup.client import trust
from tiup.errors import IntegrityError, RepositoryError, TiupError
from tiup.manifest.models import Component, Index, Root, Snapshot, Timestamp
from tiup.manifest.names import versioned_url


def _damaged(directory: Path, exc: TiupError | str) -> RepositoryError:
    msg = exc if isinstance(exc, str) else exc.message
    return RepositoryError(
        f"mirror {directory} is damaged: {msg}",
        file=str(directory),
        hint=f"run `tiup mirror verify {directory}` for a full report",
    )


def _read(directory: Path, name: str, cap: int | None = None) -> bytes:
    path = directory / name
    try:
        with open(path, "rb") as fh:
            data = fh.read() if cap is None else fh.read(cap + 1)
    except FileNotFoundError as exc:
        raise _damaged(directory, f"{name} is missing") from exc
    except OSError as exc:
        raise RepositoryError(f"cannot read {path}: {exc.strerror}", file=str(path)) from exc
    if cap is not None and len(data) > cap:
        raise _damaged(directory, f"{name} is larger than {cap} bytes")
    return data


@dataclass
class MirrorState:
    """Verified manifests of a mirror at the moment its writer took the lock."""

    directory: Path
    root: Root
    root_name: str
    root_length: int
    root_json: bytes
    root_json_version: int
    timestamp: Timestamp
    snapshot: Snapshot
    index: Index
    index_name: str
    #: snapshot.json is newer than timestamp.json: a writer died between the two
    #: renames of its commit; the next commit completes it (see :func:`read_state`).
    interrupted: bool = False
    _components: dict[str, Component | None] = field(default_factory=dict)

    def component(self, comp_id: str) -> Component | None:
        """The verified manifest of ``comp_id`` (expiry ignored); None if not in the index.

        Raises:
            RepositoryError: the manifest is missing, malformed or badly signed.
        """
        if comp_id in self._components:
            return self._components[comp_id]
        item = self.index.components.get(comp_id)
        if item is None:
            return None
        meta = self.snapshot.meta.get(item.url)
        if meta is None:
            raise _damaged(self.directory, f"no entry in snapshot.json for {item.url}")
        name = versioned_url(item.url, meta.version).lstrip("/")
        data = _read(self.directory, name)
        try:
            env, comp = trust.load(data, name, Component)
            trust.verify_signatures(env, trust.owner_keys(self.index, item.owner,
                                                          self.index_name), None)
        except TiupError as exc:
            raise _damaged(self.directory, exc) from exc
        if comp.id != comp_id or comp.version != meta.version:
            raise _damaged(self.directory, f"{name} holds {comp.id} version {comp.version}")
        self._components[comp_id] = comp
        return comp


def latest_root(directory: Path) -> tuple[Root, str, int, bytes, int]:
    """Walk ``root.json`` → ``N+1.root.json`` … verifying each step (expiry ignored).

    Returns:
        (latest root, its file name, its length, the bytes of root.json, root.json's version)

    Raises:
        RepositoryError: a missing or invalid root.
    """
    first = _read(directory, "root.json", trust.MAX_ROOT_SIZE)
    try:
        _env, root = trust.verify_self_signed_root(first, "root.json")
    except TiupError as exc:
        raise _damaged(directory, exc) from exc
    name, length = "root.json", len(first)
    while True:
        nxt = f"{root.version + 1}.root.json"
        if not (directory / nxt).is_file():
            break
        data = _read(directory, nxt, trust.MAX_ROOT_SIZE)
        try:
            _env, root = trust.verify_next_root(root, name, data, nxt)
        except TiupError as exc:
            raise _damaged(directory, exc) from exc
        name, length = nxt, len(data)
    return root, name, length, first, _root_version(first)


def _root_version(data: bytes) -> int:
    try:
        return trust.load(data, "root.json", Root)[1].version
    except TiupError:
        return 0


def read_state(directory: Path) -> MirrorState:
    """Read and verify the current state of a mirror (expiry ignored).

    A validly signed ``snapshot.json`` that ``timestamp.json`` does not name is the
    trace of a commit interrupted between its last two renames: it is accepted and
    the state is marked ``interrupted`` (the next commit writes the timestamp).

    Raises:
        RepositoryError: a file is missing, malformed, or fails its signature or hash check.
    """
    if not (directory / "root.json").is_file():
        raise RepositoryError(f"{directory} is not a mirror: it has no root.json",
                              file=str(directory),
                              hint=f"create one with `tiup mirror init {directory}`")
    root, root_name, root_length, first, first_version = latest_root(directory)
    try:
        data = _read(directory, "timestamp.json", trust.MAX_TIMESTAMP_SIZE)
        env, ts = trust.load(data, "timestamp.json", Timestamp)
        trust.verify_signatures(env, trust.role_keys(root, "timestamp", root_name), None)
        trust.check_timestamp_valid(ts, "timestamp.json")
        meta = ts.snapshot_meta
        assert meta is not None
        data = _read(directory, "snapshot.json")
        try:
            trust.check_hashes(data, meta.hashes, None, "snapshot.json")
            interrupted = False
        except IntegrityError:
            # A writer died between renaming snapshot.json and timestamp.json (the two
            # unversioned files cannot change in one step). Every file the new snapshot
            # names was renamed into place before it, so the write is completed (rolled
            # forward) by the next commit, which always writes a new timestamp. The
            # snapshot must still carry the snapshot role's signatures, checked below.
            interrupted = True
        env, snap = trust.load(data, "snapshot.json", Snapshot)
        trust.verify_signatures(env, trust.role_keys(root, "snapshot", root_name), None)
        url = root.roles["index"].url or "/index.json"
        imeta = snap.meta.get(url)
        if imeta is None:
            raise _damaged(directory, f"no entry in snapshot.json for {url}")
        index_name = versioned_url(url, imeta.version).lstrip("/")
        data = _read(directory, index_name)
        env, index = trust.load(data, index_name, Index)
        trust.verify_signatures(env, trust.role_keys(root, "index", root_name), None)
        trust.check_index_valid(index, index_name)
    except RepositoryError:
        raise
    except TiupError as exc:
        raise _damaged(directory, exc) from exc
    return MirrorState(directory, root, root_name, root_length, first, first_version, ts, snap,
                       index, index_name, interrupted=interrupted)
