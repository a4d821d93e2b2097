"""The current state of a local mirror as a writer sees it.

Read through the one verified walk (:class:`tiup.reader.MirrorReader`) with the
mirror's own ``root.json`` as the trust anchor: signatures, thresholds, hashes,
versions and the root chain are all checked, but expiry is ignored, since a
writer must be able to renew a mirror that has already expired (``behavior.md``
§12.8). The root chain is walked first: a writer signs with the newest root's
keys. A commit interrupted between its last two renames (``snapshot.json`` new,
``timestamp.json`` old) is accepted and marked ``interrupted``: the writer's next
commit completes it. Component manifests are read lazily, only when a write
touches them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tiup import trust
from tiup.errors import FetchError, NotFoundError, RepositoryError, TiupError
from tiup.manifest.models import Component, Index, Root, Snapshot, Timestamp
from tiup.reader import MirrorReader
from tiup.repository.local_storage import LocalStorage
from tiup.repository.storage import Storage


def _storage(mirror: Storage | str | Path) -> Storage:
    return mirror if isinstance(mirror, Storage) else LocalStorage(mirror)


def _damaged(directory: str | Path, exc: TiupError | str) -> RepositoryError:
    msg = exc if isinstance(exc, str) else exc.message
    return RepositoryError(
        f"mirror {directory} is damaged: {msg}",
        file=str(directory),
        hint=f"run `tiup mirror verify {directory}` for a full report",
    )


@dataclass
class MirrorState:
    """Verified manifests of a mirror at the moment its writer took the lock."""

    #: where the mirror is (for messages)
    directory: str
    reader: MirrorReader
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
    #: renames of its commit; the next commit completes it.
    interrupted: bool = False

    def component(self, comp_id: str) -> Component | None:
        """The verified manifest of ``comp_id`` (expiry ignored); None if not in the index.

        Raises:
            RepositoryError: the manifest is missing, malformed or badly signed.
        """
        if comp_id not in self.index.components:
            return None
        try:
            return self.reader.component(comp_id)
        except TiupError as exc:
            raise _damaged(self.directory, exc) from exc


def _open(storage: Storage) -> tuple[MirrorReader, bytes]:
    """A reader of ``storage`` anchored at its own ``root.json`` (and that root's bytes);
    each file it reads has its tag recorded (:meth:`Storage.read_tag`).

    Raises:
        RepositoryError: no readable, validly self-signed ``root.json``.
    """
    directory = storage.location
    fetcher = storage.fetcher()
    try:
        first = fetcher.fetch("root.json", trust.MAX_ROOT_SIZE)
    except NotFoundError as exc:
        raise RepositoryError(f"{directory} is not a mirror: it has no root.json",
                              file=str(directory),
                              hint=f"create one with `tiup mirror init {directory}`") from exc
    except FetchError as exc:
        raise _damaged(directory, exc) from exc
    try:
        state = trust.TrustedState(first, None, "root.json")
    except TiupError as exc:
        raise _damaged(directory, exc) from exc
    return MirrorReader(fetcher, state, accept_interrupted=True), first


def latest_root(mirror: Storage | str | Path) -> tuple[Root, str, int, bytes, int]:
    """Walk ``root.json`` → ``N+1.root.json`` … verifying each step (expiry ignored).

    ``mirror`` is a storage, or the path of a mirror directory.

    Returns:
        (latest root, its file name, its length, the bytes of root.json, root.json's version)

    Raises:
        RepositoryError: a missing or invalid root.
    """
    storage = _storage(mirror)
    reader, first = _open(storage)
    first_version = reader.state.root.version
    try:
        reader.walk_roots()
    except TiupError as exc:
        raise _damaged(storage.location, exc) from exc
    st = reader.state
    return st.root, st.root_source, len(st.root_raw), first, first_version


def read_state(mirror: Storage | str | Path) -> MirrorState:
    """Read and verify the current state of a mirror (expiry ignored).

    ``mirror`` is a storage, or the path of a mirror directory.

    Raises:
        RepositoryError: a file is missing, malformed, or fails its signature or hash check.
    """
    storage = _storage(mirror)
    reader, first = _open(storage)
    first_version = reader.state.root.version
    try:
        reader.walk_roots()
        reader.refresh()
    except TiupError as exc:
        raise _damaged(storage.location, exc) from exc
    st = reader.state
    assert st.timestamp is not None and st.snapshot is not None and st.index is not None
    return MirrorState(storage.location, reader, st.root, st.root_source, len(st.root_raw), first,
                       first_version, st.timestamp, st.snapshot, st.index, st.index_source,
                       interrupted=not st.snapshot_matches_timestamp())
