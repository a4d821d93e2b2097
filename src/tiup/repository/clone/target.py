"""May ``tiup mirror clone`` write into its target directory?

TiUP (and this project before) signed anything already in the target anew:
cloning into a mirror made by ``tiup mirror init`` replaced its keys and
``root.json`` and dropped its own components from the index, with exit 0.
The target is now one of:

* **new**: missing, empty, or holding only what a clone leaves before its
  first ``root.json`` (``lock``, the clone's work directory, ``.tmp-*``) or a
  fresh file system's ``lost+found``: a fresh clone;
* **an earlier clone**: a mirror whose private keys of every role of its
  latest root and of the ``pingcap`` owner are found (``<target>/keys``, then
  the extra key directories): an incremental clone with those keys
  (``behavior.md`` §12.6); this is how a clone recognises its own earlier run;
* **another mirror** (keys not found, or not readable as a mirror), or **a
  directory with other files**: refused unless ``force``. With ``force`` a
  mirror is replaced (new keys); other files are left where they are (a clone
  never deletes files it did not write).

The check only reads, so a refused clone writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tiup.errors import RepositoryError, TiupError
from tiup.keys import PrivateKey
from tiup.repository.clone.fetch import WORK_DIR
from tiup.repository.clone.keys import reusable_keyring
from tiup.repository.keyring import KeyRing
from tiup.repository.state import MirrorState, read_state
from tiup.repository.storage import Storage

#: entries that do not make a directory "not empty" for a clone
_NEUTRAL = frozenset({"lock", WORK_DIR, "lost+found"})


@dataclass
class CloneTarget:
    """What the target holds, as far as the clone is concerned."""

    path: Path
    #: the earlier clone and its keys (an incremental run), else None
    previous: MirrorState | None = None
    ring: KeyRing | None = None
    #: a mirror that the clone replaces (with ``force``): the reason, for a warning
    replaced: str = ""
    #: files of the user's the clone writes next to (with ``force``)
    foreign_files: int = 0


def _count(names: list[str]) -> str:
    return f"{len(names)} entr{'y' if len(names) == 1 else 'ies'}"


def _entries(path: Path) -> list[str]:
    try:
        return [p.name for p in path.iterdir()]
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise RepositoryError(f"cannot clone into {path}: it is not a directory",
                              file=str(path)) from None
    except OSError as exc:
        raise RepositoryError(f"cannot read the clone target {path}: {exc.strerror}",
                              file=str(path)) from exc


def inspect_target(target: Path, key_dirs: Sequence[Path] = (), *,
                   force: bool = False, keys: Sequence[PrivateKey] = ()) -> CloneTarget:
    """Classify ``target`` (see the module docstring); only reads. ``keys``: private keys
    given explicitly (the ``pingcap`` owner key on a token), looked for with ``key_dirs``.

    Raises:
        RepositoryError: ``target`` is a file or unreadable; or it holds another mirror
            or other files and ``force`` is not set (nothing has been written).
    """
    out = CloneTarget(target)
    entries = _entries(target)
    names = [n for n in entries if n not in _NEUTRAL and not n.startswith(".tmp-")]
    if not names or (WORK_DIR in entries and "root.json" not in names):
        return out  # new, or a first clone that was interrupted: resume it
    if "root.json" not in names:
        if not force:
            raise RepositoryError(
                f"cannot clone into {target}: it is not empty ({_count(names)}, e.g. "
                f"{sorted(names)[0]}) and is not a mirror",
                file=str(target),
                hint="clone into a new or empty directory, or pass --force to write the clone "
                     "next to those files (none of them is deleted; files with the clone's "
                     "names are replaced)")
        out.foreign_files = len(names)
        return out
    dirs = [target / "keys", *key_dirs]
    try:
        state = read_state(target)
    except TiupError as exc:
        reason = f"it holds a mirror that cannot be read ({exc.message})"
    else:
        ring = reusable_keyring(state, dirs, keys)
        if ring is not None:
            out.previous, out.ring = state, ring
            return out
        owners = sorted(state.index.owners)
        reason = ("it holds a mirror that is not an earlier clone with its keys at hand "
                  f"(owners: {', '.join(owners) or 'none'}; the private keys of its roles and "
                  f"of owner `pingcap` are not all in {', '.join(str(d) for d in dirs)})")
    if not force:
        raise RepositoryError(
            f"refusing to clone into {target}: {reason}; the clone would replace its keys, "
            "root.json and index",
            file=str(target),
            hint="combine mirrors with `tiup mirror merge`; for a clone whose keys were moved, "
                 "pass --key-dir DIR; or pass --force to replace it with a new clone (clients "
                 "must then run `tiup mirror set` again)")
    out.replaced = reason
    return out


def inspect_storage_target(storage: Storage, key_dirs: Sequence[Path] = (), *,
                           force: bool = False,
                           keys: Sequence[PrivateKey] = ()) -> CloneTarget:
    """:func:`inspect_target` for a bucket: new (no object under the prefix), an earlier
    clone whose keys are in ``key_dirs``, or refused (``force``: replaced). ``path`` of
    the result is left for the caller (the local spool directory). Only reads.

    Raises:
        RepositoryError: as :func:`inspect_target`.
    """
    out = CloneTarget(Path())
    names = [e.name for e in storage.list("")]
    if not names:
        return out
    if "root.json" not in names:
        if not force:
            raise RepositoryError(
                f"cannot clone into {storage.location}: it is not empty ({_count(names)}, "
                f"e.g. {sorted(names)[0]}) and is not a mirror", file=storage.location,
                hint="clone into a new bucket or prefix, or pass --force")
        out.foreign_files = len(names)
        return out
    try:
        state = read_state(storage)
    except TiupError as exc:
        reason = f"it holds a mirror that cannot be read ({exc.message})"
    else:
        ring = reusable_keyring(state, list(key_dirs), keys)
        if ring is not None:
            out.previous, out.ring = state, ring
            return out
        reason = ("it holds a mirror that is not an earlier clone with its keys at hand "
                  f"(in {', '.join(str(d) for d in key_dirs)})")
    raise RepositoryError(
        f"refusing to clone into {storage.location}: {reason}", file=storage.location,
        hint="for a clone whose keys are elsewhere, pass --key-dir DIR; a mirror in a bucket "
             "is never replaced (not even with --force): clone into a new prefix")
