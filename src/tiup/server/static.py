"""Which files of a mirror may be served, and with which headers.

Only regular files directly in the mirror directory whose names do not start
with ``.`` are served (``behavior.md`` §12.10): never ``keys/`` or any other
subdirectory, ``lock``, ``.tmp-*``, ``.tiup-mirror.toml``, anything a symlink
leads to outside the mirror, or a file holding a private key. No listings.

Small files (manifests) are kept in memory, revalidated with one ``stat`` per
request, so the common request costs no file open.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

#: Files smaller than this are cached in memory.
SMALL_FILE = 256 * 1024
#: Never served even though they are top-level regular files.
PRIVATE_NAMES = frozenset({"lock", "commits"})
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+\-]{0,254}")
_VERSIONED = re.compile(r"\d+\.[^/]+\.json")
_NO_CACHE = frozenset({"timestamp.json", "snapshot.json", "root.json", "local_install.sh"})


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int
    mtime_ns: int
    inode: int
    etag: str
    last_modified: str
    cache_control: str
    content_type: str
    body: bytes | None  # set for small files

    @property
    def headers(self) -> list[tuple[str, str]]:
        """The headers every response for this file carries (a fresh list)."""
        return [("content-type", self.content_type), ("etag", self.etag),
                ("last-modified", self.last_modified), ("cache-control", self.cache_control),
                ("accept-ranges", "bytes")]


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def cache_control(name: str) -> str:
    """``no-cache`` for the files that change in place; long caching for immutable ones."""
    if name in _NO_CACHE or name.startswith("tiup-"):
        return "no-cache"
    if _VERSIONED.fullmatch(name):
        return "public, max-age=31536000, immutable"
    return "public, max-age=604800"


def content_type(name: str) -> str:
    if name.endswith(".json"):
        return "application/json"
    if name.endswith(".tar.gz"):
        return "application/gzip"
    if name.endswith(".sh"):
        return "text/x-shellscript"
    return "application/octet-stream"


class StaticFiles:
    """Resolves request paths to servable files of one mirror directory."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).resolve()
        self._cache: dict[str, FileInfo] = {}
        self._lock = threading.Lock()

    @staticmethod
    def servable_name(path: str) -> str | None:
        """The file name a request path may name (top level, not private), else None."""
        name = path[1:] if path.startswith("/") else path
        if not _NAME.fullmatch(name) or name in PRIVATE_NAMES or name.endswith(".part"):
            return None
        return name

    def lookup(self, path: str) -> FileInfo | None:
        """The file for a request path like ``/timestamp.json``, or None (→ 404)."""
        cached = self._cache.get(path)
        if cached is not None:  # only servable names are cached: revalidate with one stat
            try:
                st = os.stat(cached.path)
            except OSError:
                return None
            if (cached.mtime_ns == st.st_mtime_ns and cached.size == st.st_size
                    and cached.inode == st.st_ino):
                return cached
        name = self.servable_name(path)
        if name is None:
            return None
        full = os.path.join(self.root, name)
        try:
            st = os.stat(full)  # follows a symlink; checked below
        except OSError:
            return None
        if not _is_regular(st.st_mode):
            return None
        if os.path.islink(full):
            real = os.path.realpath(full)
            if os.path.dirname(real) != str(self.root):
                return None
        body = None
        if st.st_size <= SMALL_FILE:
            try:
                with open(full, "rb") as fh:
                    body = fh.read(SMALL_FILE + 1)
            except OSError:
                return None
            if len(body) != st.st_size:
                return None  # changed while reading: let the client retry
            if b"PRIVATE KEY" in body and b'"private"' in body:
                return None  # a private key file never leaves the machine
        tag = hashlib.sha256(f"{st.st_ino}-{st.st_size}-{st.st_mtime_ns}".encode()).hexdigest()
        info = FileInfo(
            path=full, size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino,
            etag=f'"{tag[:24]}"', last_modified=formatdate(st.st_mtime, usegmt=True),
            cache_control=cache_control(name), content_type=content_type(name), body=body,
        )
        if body is not None:
            with self._lock:
                if len(self._cache) > 4096:
                    self._cache.clear()
                self._cache[path] = info
        return info


def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


#: One ``bytes=first-last`` or ``bytes=-suffix`` range (ASCII digits only: ``\d`` would also
#: match other scripts' digits, which ``int`` accepts).
_RANGE = re.compile(r"[ \t]*bytes[ \t]*=[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*",
                    re.ASCII | re.IGNORECASE)
#: Numbers with more digits than this are larger than any file (2**63 has 19 digits); they are
#: never converted, so a 4300-digit position cannot hit Python's int-string limit.
_MAX_DIGITS = 19
_HUGE = 10**_MAX_DIGITS


def _position(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return _HUGE if len(digits) > _MAX_DIGITS else int(digits)


def _less(a: str, b: str) -> bool:
    """``int(a) < int(b)`` for digit strings of any length, without converting them."""
    a, b = a.lstrip("0"), b.lstrip("0")
    return (len(a), a) < (len(b), b)


def parse_range(header: str, size: int) -> ByteRange | bool | None:
    """The ``Range`` header as RFC 9110 §14 reads it, for a file of ``size`` bytes.

    Returns a :class:`ByteRange` (→ 206), ``None`` to ignore the header (→ 200 with the
    whole file: another unit, several ranges, ``last < first``, anything malformed), or
    ``False`` when the one range is unsatisfiable (→ 416 with ``Content-Range: bytes */size``:
    ``first`` at or past the end, or a zero-length suffix). Total: raises nothing for any
    header value, however long its numbers.
    """
    m = _RANGE.fullmatch(header)
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if not first:
        if not last:
            return None  # "bytes=-" is not a range
        n = _position(last)  # suffix range: the last n bytes
        if n == 0 or size == 0:
            return False
        return ByteRange(max(0, size - n), size - 1)
    if last and _less(last, first):
        return None  # an invalid range-spec: ignored, like any malformed header
    start = _position(first)
    if start >= size:
        return False
    end = min(_position(last), size - 1) if last else size - 1
    return ByteRange(start, end)


def not_modified(info: FileInfo, if_none_match: str | None, if_modified_since: str | None
                 ) -> bool:
    """True if the client's cached copy is current (→ 304)."""
    if if_none_match is not None:
        tags = {t.strip() for t in if_none_match.split(",")}
        return info.etag in tags or "*" in tags
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since).timestamp()
        except (TypeError, ValueError, OverflowError, OSError):
            return False  # an unusable date is ignored (a year of 20 digits overflows)
        return info.mtime_ns // 1_000_000_000 <= since
    return False


def if_range_matches(info: FileInfo, if_range: str | None) -> bool:
    """``If-Range`` holds (or is absent): the range may be honoured."""
    if not if_range:
        return True
    if if_range.startswith(('"', 'W/"')):
        return if_range == info.etag
    return if_range == info.last_modified
