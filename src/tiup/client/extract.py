"""Safe extraction of component tarballs (``behavior.md`` §12.4 step 3).

Every member is checked before anything is written:

* names must be relative, without a ``..`` component, and stay inside the
  destination once resolved;
* symbolic links: relative targets that stay inside the tree only;
* hard links: only to an earlier regular file of the same archive;
* device nodes, FIFOs and anything else that is not a file, directory or link
  are rejected;
* setuid, setgid and sticky bits are dropped, ownership is never restored,
  and permissions from the header are masked by the umask.

The standard library's ``tarfile.data_filter`` is applied on top of these
checks as a second line of defence.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
from collections.abc import Callable
from pathlib import Path

from tiup.errors import InstallError

_UMASK: int | None = None


def _umask() -> int:
    global _UMASK
    if _UMASK is None:
        current = os.umask(0)
        os.umask(current)
        _UMASK = current
    return _UMASK


def _bad(tarball: str, name: str, why: str) -> InstallError:
    return InstallError(
        f"unsafe entry {name!r} in {tarball}: {why}",
        file=tarball,
        hint="the tarball was not extracted; report it to the mirror's owner",
    )


def _clean_name(tarball: str, name: str) -> str:
    if not name or "\0" in name:
        raise _bad(tarball, name, "empty or invalid name")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise _bad(tarball, name, "absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise _bad(tarball, name, "'..' in path")
    return "/".join(parts)


def check_member(member: tarfile.TarInfo, tarball: str, seen_files: set[str]) -> str:
    """Validate one member; returns its normalised name. Raises InstallError."""
    name = _clean_name(tarball, member.name)
    if member.isdir():
        return name
    if not name:
        raise _bad(tarball, member.name, "names the destination itself")
    if member.issym():
        target = member.linkname
        if not target or target.startswith("/"):
            raise _bad(tarball, member.name, f"symlink to absolute path {target!r}")
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
        if joined == ".." or joined.startswith("../") or joined.startswith("/"):
            raise _bad(tarball, member.name, f"symlink {target!r} points outside the component")
        return name
    if member.islnk():
        target = _clean_name(tarball, member.linkname)
        if target not in seen_files:
            raise _bad(tarball, member.name,
                       f"hard link to {member.linkname!r}, which is not an earlier file")
        return name
    if member.isreg():
        seen_files.add(name)
        return name
    kind = ("device node" if member.ischr() or member.isblk()
            else "FIFO" if member.isfifo() else "special file")
    raise _bad(tarball, member.name, kind)


def _filter(tarball: str, dest: str, seen: set[str]
            ) -> Callable[[tarfile.TarInfo, str], tarfile.TarInfo]:
    def apply(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
        check_member(member, tarball, seen)
        try:
            safe = tarfile.data_filter(member, dest)
        except tarfile.FilterError as exc:
            raise _bad(tarball, member.name, str(exc)) from exc
        mode = member.mode & 0o777 & ~_umask()
        if member.isreg():
            mode |= 0o600
        elif member.isdir():
            mode |= 0o700
        return safe.replace(mode=mode, uid=None, gid=None, uname=None,  # type: ignore[arg-type]
                            gname=None, deep=False)  # type: ignore[arg-type]

    return apply


def safe_extract(tarball: Path, dest: Path) -> list[str]:
    """Extract a gzip tarball into the existing, empty directory ``dest``.

    Returns:
        The normalised names of the regular files extracted.

    Raises:
        InstallError: the archive is unreadable or has an unsafe member
            (nothing outside ``dest`` is ever written; ``dest`` may hold a
            partial tree, which the caller discards).
    """
    where = tarball.name
    seen: set[str] = set()
    try:
        with tarfile.open(tarball, "r:*") as tar:
            members = tar.getmembers()
            precheck: set[str] = set()
            for member in members:
                check_member(member, where, precheck)
            tar.extractall(dest, members=members,  # noqa: S202 - filtered, pre-checked
                           filter=_filter(where, str(dest), seen))
    except InstallError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise InstallError(f"cannot extract {where}: {exc}", file=str(tarball)) from exc
    return sorted(seen)


def entry_exists(root: Path, entry: str) -> bool:
    """True if ``entry`` is a file inside ``root`` (an in-tree link to one counts)."""
    try:
        name = _clean_name("tarball", entry)
    except InstallError:
        return False
    path = root / name
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return False
    base = root.resolve()
    return resolved.is_file() and (resolved == base or base in resolved.parents)
