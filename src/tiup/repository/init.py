"""``tiup mirror init``: a new, empty, valid repository.

Three root keys (threshold 3), one index, one snapshot and one timestamp key
are generated into the key directory (``<mirror>/keys`` by default, named
``<id16>-<role>.json`` as TiUP names them). The mirror gets ``root.json`` and
an identical ``1.root.json``, ``1.index.json``, ``snapshot.json``,
``timestamp.json`` and ``.tiup-mirror.toml`` with the chosen lifetimes,
written in the store's order under the mirror lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from tiup.errors import RepositoryError, UsageError
from tiup.hashing import FileInfo
from tiup.keys import PrivateKey, generate, save_private_key
from tiup.manifest.models import (
    FileMeta,
    HashedMeta,
    Index,
    Owner,
    Role,
    Root,
    Snapshot,
    Timestamp,
)
from tiup.repository.files import write_failed
from tiup.repository.lifetimes import CONFIG_NAME, Lifetimes
from tiup.repository.local_storage import LocalStorage
from tiup.repository.storage import Storage, Write
from tiup.repository.store import sign
from tiup.settings import Settings, current

ROOT_KEYS = 3


@dataclass
class InitResult:
    directory: Path | str
    key_dir: Path
    #: role → key files written
    key_files: dict[str, list[Path]] = field(default_factory=dict)
    created_directory: bool = False


def _expiry(now: datetime, days: int) -> str:
    from tiup.manifest.timefmt import format_time

    return format_time(now + timedelta(days=days))


def init_mirror(path: str | Path | Storage, now: datetime, *,
                key_dir: str | Path | None = None, lifetimes: Lifetimes | None = None,
                settings: Settings | None = None, root_keys: Sequence[PrivateKey] = (),
                root_threshold: int | None = None) -> InitResult:
    """Create an empty repository at ``path`` (a directory, created if missing,
    recursively; or a :class:`Storage` without directories, e.g. a bucket).

    ``settings`` gives the sync script run after the commit (default: the process's).
    ``root_keys`` (e.g. keys on PKCS#11 tokens) replace the three generated root keys
    (none is written to the key directory); ``root_threshold`` (default: every root
    key) must be between 1 and the number of root keys.

    Raises:
        RepositoryError: ``path`` is not an empty directory or storage, or a write failed.
        UsageError: a threshold out of range, or the same root key twice.
        UsageError: no ``settings`` were passed and an environment variable is malformed.
    """
    sync_script = (settings if settings is not None else current()).sync_script
    life = lifetimes or Lifetimes()
    given_roots = list(root_keys)
    if len({k.keyid for k in given_roots}) != len(given_roots):
        raise UsageError("the same root key is given twice",
                         hint="give each --root-key once; each holder's key is a separate key")
    n_roots = len(given_roots) or ROOT_KEYS
    if root_threshold is not None and not 1 <= root_threshold <= n_roots:
        raise UsageError(f"a root threshold of {root_threshold} cannot be met by {n_roots} "
                         "root key(s)", hint=f"choose a threshold from 1 to {n_roots}")
    thresholds = {"root": root_threshold} if root_threshold else None
    if isinstance(path, Storage):
        return _init_storage(path, now, key_dir, life, given_roots, thresholds)
    directory = Path(path).expanduser().absolute()
    created = False
    if directory.exists():
        if not directory.is_dir():
            raise RepositoryError(f"the target path '{directory}' is not a directory")
        if any(directory.iterdir()):
            raise RepositoryError(f"the target path '{directory}' is not an empty directory",
                                  hint="choose a new or empty directory")
    else:
        try:
            directory.mkdir(parents=True)
        except OSError as exc:
            raise write_failed(directory, "the directory", exc) from exc
        created = True
    keys_path = Path(key_dir).expanduser().absolute() if key_dir else directory / "keys"
    result = InitResult(directory, keys_path, created_directory=created)
    keys = _new_keys(given_roots)
    _save_keys(keys, keys_path, result, skip_roots=bool(given_roots))
    storage = LocalStorage(directory, sync_script=sync_script)
    storage.acquire(0)
    try:
        write_initial_mirror(storage, keys, life, now, thresholds=thresholds)
    finally:
        storage.release()
    return result


def _new_keys(given_roots: Sequence[PrivateKey] = ()) -> dict[str, list[PrivateKey]]:
    return {
        "root": list(given_roots) or [generate() for _ in range(ROOT_KEYS)],
        "index": [generate()], "snapshot": [generate()], "timestamp": [generate()],
    }


def _save_keys(keys: Mapping[str, Sequence[PrivateKey]], keys_path: Path,
               result: InitResult, *, skip_roots: bool = False) -> None:
    """Write the private key files (not the root keys given on tokens: ``skip_roots``)."""
    try:
        keys_path.mkdir(parents=True, exist_ok=True)
        for role, role_keys in keys.items():
            if role == "root" and skip_roots:
                continue  # on their tokens
            for key in role_keys:
                file = keys_path / f"{key.keyid[:16]}-{role}.json"
                save_private_key(file, key)
                result.key_files.setdefault(role, []).append(file)
    except OSError as exc:
        raise write_failed(keys_path, "the key files", exc) from exc


def _init_storage(storage: Storage, now: datetime, key_dir: str | Path | None,
                  life: Lifetimes, given_roots: Sequence[PrivateKey],
                  thresholds: Mapping[str, int] | None) -> InitResult:
    """A new mirror in a storage without directories (a bucket): it must hold no mirror
    file yet; the private keys go to ``key_dir`` on this machine, never into the bucket.
    Every file is created only if absent, so two racing inits cannot mix their files."""
    if key_dir is None:
        raise RepositoryError(f"mirror {storage.location} needs a key directory on this "
                              "machine", hint="pass --key-dir DIR")
    present = storage.list("")
    if present:
        raise RepositoryError(
            f"{storage.location} is not empty (it holds {present[0].name})",
            file=storage.location, hint="choose a new bucket or prefix")
    keys_path = Path(key_dir).expanduser().absolute()
    result = InitResult(storage.location, keys_path)
    keys = _new_keys(given_roots)
    _save_keys(keys, keys_path, result, skip_roots=bool(given_roots))
    write_initial_mirror(storage, keys, life, now, thresholds=thresholds)
    return result


def write_initial_mirror(storage: Storage, keys: Mapping[str, Sequence[PrivateKey]],
                         life: Lifetimes, now: datetime, *,
                         owners: dict[str, Owner] | None = None,
                         thresholds: Mapping[str, int] | None = None) -> list[str]:
    """Sign and write version 1 of a mirror: root (also as 1.root.json), index, snapshot,
    timestamp and the lifetimes file, in the store's order, replacing whatever files of
    those names are there. The caller holds the storage's lock.

    ``keys`` maps each role to its keys; a role's threshold is ``thresholds[role]``, else
    its key count. Every key of ``keys["root"]`` signs the root.

    Raises:
        RepositoryError: a write failed (nothing half-written is left visible).
    """
    root = Root(expires=_expiry(now, life.root), version=1, roles={
        role: Role({k.keyid: k.public.keyinfo() for k in role_keys},
                   (thresholds or {}).get(role) or len(role_keys), f"/{role}.json")
        for role, role_keys in keys.items()
    })
    root_data = sign(root, list(keys["root"]))
    index = Index(expires=_expiry(now, life.index), version=1, components={},
                  default_components=[], owners=dict(owners or {}))
    index_data = sign(index, list(keys["index"]))
    snap = Snapshot(expires=_expiry(now, life.snapshot), version=0, meta={
        "/root.json": FileMeta(1, len(root_data)),
        "/index.json": FileMeta(1, len(index_data)),
    })
    snap_data = sign(snap, list(keys["snapshot"]))
    info = FileInfo.of_bytes(snap_data)
    ts = Timestamp(expires=_expiry(now, life.timestamp), version=1, meta={
        "/snapshot.json": HashedMeta({"sha256": info.sha256, "sha512": info.sha512},
                                     info.length)})
    ts_data = sign(ts, list(keys["timestamp"]))
    staging = storage.begin()
    try:
        first = {"root.json": root_data, "1.root.json": root_data,
                 "1.index.json": index_data, CONFIG_NAME: life.to_toml()}
        for name, data in first.items():
            staging.put_bytes(name, data)
        staging.put_bytes("snapshot.json", snap_data)
        staging.put_bytes("timestamp.json", ts_data)
        return staging.commit([[Write.put(n) for n in first], [Write.put("snapshot.json")],
                               [Write.put("timestamp.json")]])
    finally:
        staging.discard()
