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

A verified tarball can still be hostile (its owner signed it), so the archive
is bounded too (:class:`~tiup.settings.ExtractLimits`, passed in; the installer
passes the environment's), and every bound fails *before* the
offending bytes are written or even decompressed:

* a path has at most 128 levels, each name at most 255 bytes, the whole path
  (and a link target) at most 2048 bytes; a ~2100-level path once crashed
  ``os.makedirs`` with a ``RecursionError``;
* the uncompressed tar stream (headers and data) is capped at
  ``TIUP_MAX_EXTRACT_BYTES`` (default 8 GiB): a member whose declared size
  would cross the cap is refused when its header is read, and the
  decompressing reader itself refuses to go past it (so oversized pax or
  long-name headers cannot fill memory either);
* at most ``TIUP_MAX_EXTRACT_MEMBERS`` members (default 100000).

Nothing is extracted until every header has passed; a failure leaves at most
a partial staging directory, which the installer discards.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import posixpath
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

from tiup.errors import InstallError
from tiup.settings import BYTES_ENV, MEMBERS_ENV, ExtractLimits

#: Path bounds (not configurable: no real component comes near them).
MAX_DEPTH = 128
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 2048


def _short(name: str, limit: int = 60) -> str:
    """A member name fit for a one-line message."""
    return repr(name if len(name) <= limit else name[:limit] + "...")

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
        f"unsafe entry {_short(name)} in {tarball}: {why}",
        file=tarball,
        hint="the tarball was not extracted; report it to the mirror's owner",
    )


def _clean_name(tarball: str, name: str) -> str:
    if not name or "\0" in name:
        raise _bad(tarball, name, "empty or invalid name")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise _bad(tarball, name, "absolute path")
    size = len(name.encode("utf-8", "surrogateescape"))
    if size > MAX_PATH_BYTES:
        raise _bad(tarball, name, f"path too long ({size} bytes, limit {MAX_PATH_BYTES})")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise _bad(tarball, name, "'..' in path")
    if len(parts) > MAX_DEPTH:
        raise _bad(tarball, name, f"path too deep ({len(parts)} levels, limit {MAX_DEPTH})")
    for part in parts:
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise _bad(tarball, name, f"a name in the path is longer than {MAX_NAME_BYTES} bytes")
    return "/".join(parts)


def check_member(member: tarfile.TarInfo, tarball: str, seen_files: set[str]) -> str:
    """Validate one member; returns its normalised name. Raises InstallError."""
    name = _clean_name(tarball, member.name)
    if member.isdir():
        return name
    if not name:
        raise _bad(tarball, member.name, "names the destination itself")
    if member.issparse():
        raise _bad(tarball, member.name, "sparse file")
    if member.issym():
        target = member.linkname
        if not target or target.startswith("/"):
            raise _bad(tarball, member.name, f"symlink to absolute path {_short(target)}")
        if len(target.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
            raise _bad(tarball, member.name, f"symlink target longer than {MAX_PATH_BYTES} bytes")
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
        if joined == ".." or joined.startswith("../") or joined.startswith("/"):
            raise _bad(tarball, member.name,
                       f"symlink {_short(target)} points outside the component")
        return name
    if member.islnk():
        target = _clean_name(tarball, member.linkname)
        if target not in seen_files:
            raise _bad(tarball, member.name,
                       f"hard link to {_short(member.linkname)}, which is not an earlier file")
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


def _extract_unfiltered(tar: tarfile.TarFile, members: list[tarfile.TarInfo], where: str,
                        dest: Path, seen: set[str]) -> None:
    """What ``tarfile.data_filter`` does, for a Python without it: each (pre-checked)
    member is checked again as it is written, so that no path, through a link extracted
    before it, resolves outside ``dest``; permissions are those of a data filter, the
    owner is this user."""
    import copy

    root = os.path.realpath(dest)

    def inside(path: str) -> bool:
        return path == root or path.startswith(root + os.sep)

    for member in members:
        name = check_member(member, where, seen)
        path = os.path.realpath(os.path.join(root, name))
        if not inside(path):
            raise _bad(where, member.name, "its path leads outside the component")
        if member.issym() and not inside(os.path.realpath(
                os.path.join(os.path.dirname(path), member.linkname))):
            raise _bad(where, member.name, "symlink points outside the component")
        safe = copy.copy(member)
        mode = member.mode & 0o777 & ~_umask()
        safe.mode = mode | (0o600 if member.isreg() else 0o700 if member.isdir() else 0)
        safe.uid, safe.gid, safe.uname, safe.gname = os.getuid(), os.getgid(), "", ""
        tar.extract(safe, dest, numeric_owner=True)


class _Stream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...
    def seek(self, offset: int, whence: int = 0, /) -> int: ...
    def tell(self) -> int: ...
    def close(self) -> None: ...


class _CappedReader:
    """A decompressed, seekable view of a tarball that refuses to go past ``cap`` bytes.

    Reads are shortened so that crossing the cap is noticed after at most one
    byte too many, and seeks beyond it are refused before any decompression:
    a gzip bomb costs at most ``cap`` bytes of work, never memory or disk.
    """

    def __init__(self, inner: _Stream, cap: int | None, tarball: str):
        self.inner = inner
        self.cap = cap
        self.tarball = tarball

    def _over(self) -> InstallError:
        return too_large(self.tarball, self.cap or 0)

    def read(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        if self.cap is not None:
            room = self.cap - self.inner.tell() + 1
            size = room if size < 0 else min(size, room)
        data = self.inner.read(size)
        if self.cap is not None and self.inner.tell() > self.cap:
            raise self._over()
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        target = offset if whence == os.SEEK_SET else (
            self.inner.tell() + offset if whence == os.SEEK_CUR else None)
        if self.cap is not None and target is not None and target > self.cap:
            raise self._over()
        return self.inner.seek(offset, whence)

    def tell(self) -> int:
        return self.inner.tell()


def too_large(tarball: str, cap: int) -> InstallError:
    return InstallError(
        f"{tarball} expands to more than {cap} bytes (limit {BYTES_ENV}={cap})",
        file=tarball,
        hint=f"the tarball was not extracted; if the component really is that large, "
             f"raise {BYTES_ENV}",
    )


def _decompressed(raw: IO[bytes]) -> _Stream:
    magic = raw.read(6)
    raw.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if magic[:3] == b"BZh":
        return bz2.BZ2File(raw, "rb")
    if magic == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(raw, "rb")
    return raw


def _checked_members(tar: tarfile.TarFile, where: str, limits: ExtractLimits
                     ) -> list[tarfile.TarInfo]:
    """Read and check every header, stopping at the first one over a bound."""
    members: list[tarfile.TarInfo] = []
    files: set[str] = set()
    while (member := tar.next()) is not None:
        if limits.max_members is not None and len(members) >= limits.max_members:
            raise InstallError(
                f"{where} has more than {limits.max_members} members "
                f"(limit {MEMBERS_ENV}={limits.max_members})",
                file=where,
                hint=f"the tarball was not extracted; if the component really has that many "
                     f"files, raise {MEMBERS_ENV}",
            )
        if limits.max_bytes is not None and member.offset_data + member.size > limits.max_bytes:
            raise too_large(where, limits.max_bytes)
        check_member(member, where, files)
        members.append(member)
    return members


def safe_extract(tarball: Path, dest: Path, limits: ExtractLimits | None = None) -> list[str]:
    """Extract a (gzip) tarball into the existing, empty directory ``dest``.

    Args:
        limits: the bounds; default the built-in ones (``ExtractLimits()``).

    Returns:
        The normalised names of the regular files extracted.

    Raises:
        InstallError: the archive is unreadable, has an unsafe member, or is over
            a bound (nothing outside ``dest`` is ever written; ``dest`` may hold a
            partial tree, which the caller discards).
    """
    limits = ExtractLimits() if limits is None else limits
    where = tarball.name
    seen: set[str] = set()
    try:
        with open(tarball, "rb") as raw:
            stream = _decompressed(raw)
            try:
                capped = _CappedReader(stream, limits.max_bytes, where)
                with tarfile.open(fileobj=capped, mode="r:") as tar:  # type: ignore[call-overload]
                    members = _checked_members(tar, where, limits)
                    if hasattr(tarfile, "data_filter"):
                        tar.extractall(dest, members=members,  # noqa: S202 - pre-checked
                                       filter=_filter(where, str(dest), seen))
                    else:  # Python < 3.11.4 (Debian 12's /usr/bin/python3 is 3.11.2)
                        _extract_unfiltered(tar, members, where, dest, seen)
            finally:
                stream.close()
    except InstallError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error, lzma.LZMAError,
            RecursionError, MemoryError) as exc:
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
