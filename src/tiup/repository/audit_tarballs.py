"""The tarball part of ``tiup mirror verify``: every file checked against every item naming it.

Several version items may name the same file (a hostile or hand-edited manifest, or
TiUP's ``any/any`` form beside a platform). A client installs whichever item it
resolves, so the file must match *each* of them: it is hashed once (length, sha256
and sha512 in one streaming pass, capped at the largest declared length) and the
result is compared with every item. Yanked items are not checked (clients never
install them); a file named only by yanked items may be absent.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

from tiup import hashing
from tiup.errors import FetchError, NotFoundError, SizeLimitError
from tiup.hashing import FileInfo, Hasher
from tiup.manifest.models import VersionItem
from tiup.transport.base import Fetcher

#: Reports one problem: (file, message).
Report = Callable[[str, str], None]
#: Called with (bytes hashed so far, total bytes to hash).
ProgressFn = Callable[[int, int], None]

#: where (``comp version platform``) → the item, for every item naming one file
Items = list[tuple[str, VersionItem]]


def group_by_file(items: Items) -> dict[str, Items]:
    """file name → the (where, item) pairs naming it, in manifest order."""
    groups: dict[str, Items] = {}
    for where, item in items:
        groups.setdefault(item.url.lstrip("/"), []).append((where, item))
    return groups


class TarballAudit:
    """Checks the tarballs of a mirror; problems go to ``error`` and ``note``.

    Attributes (after :meth:`run`):
        checked: files hashed; hashed_bytes: bytes hashed.
    """

    def __init__(self, fetcher: Fetcher, *, error: Report, note: Report, jobs: int = 4,
                 progress: ProgressFn | None = None):
        self.f = fetcher
        self.error = error
        self.note = note
        self.jobs = max(1, jobs)
        self.progress = progress
        self.checked = 0
        self.hashed_bytes = 0
        self._lock = threading.Lock()

    def run(self, items: Items, *, hash_files: bool = True) -> None:
        """Check every file named by ``items``: presence only, or length and hashes
        against each non-yanked item naming it. Never raises for a problem found."""
        todo: list[tuple[str, Items]] = []
        for name, group in group_by_file(items).items():
            live = [(where, item) for where, item in group if not item.yanked]
            if not live:
                if self._absent(name) is not None:
                    self.note(name, f"tarball of yanked version {group[0][0]} is absent")
                continue
            todo.append((name, live))
        if not hash_files:
            for name, live in todo:
                why = self._absent(name)
                if why is not None:
                    self.error(name, f"tarball {name} of {_wheres(live)} {why}")
            return
        total = sum(max(item.length for _w, item in live) for _n, live in todo)
        done = [0]

        def advance(n: int) -> None:
            with self._lock:
                done[0] += n
                if self.progress is not None:
                    self.progress(done[0], total)

        if self.progress is not None:
            self.progress(0, total)
        from concurrent.futures import ThreadPoolExecutor  # here: --skip-tarballs needs none

        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            list(pool.map(lambda task: self._one(task[0], task[1], advance), todo))

    def _absent(self, name: str) -> str | None:
        """None if the mirror has ``name``, else why not (for a message)."""
        try:
            return None if self.f.exists(name) else "is missing"
        except FetchError as exc:
            return f"cannot be checked: {exc.reason}"

    def _one(self, name: str, live: Items, advance: Callable[[int], None]) -> None:
        cap = max(item.length for _w, item in live)
        try:
            info = hash_stream(self.f, name, cap, advance)
        except NotFoundError:
            self.error(name, f"tarball {name} of {_wheres(live)} is missing")
            return
        except SizeLimitError:
            self.error(name, f"{name} is larger than the {cap} bytes its manifest declares "
                             f"({_wheres(live)})")
            return
        except FetchError as exc:
            self.error(name, exc.message)
            return
        with self._lock:
            self.checked += 1
            self.hashed_bytes += info.length
        for where, item in live:
            for wrong in hashing.mismatches(name, info, item, where=f"{where} in the manifest"):
                if wrong.missing:
                    continue  # reported with the manifest's other problems (audit.py)
                if wrong.kind == "length" and info.length > cap:
                    wrong = dataclasses.replace(wrong, actual=f"more than {cap}")
                self.error(name, str(wrong))


def _wheres(live: Items) -> str:
    return ", ".join(where for where, _item in live)


def hash_stream(fetcher: Fetcher, name: str, cap: int | None,
                advance: Callable[[int], None] | None = None) -> FileInfo:
    """Stream ``name`` once, computing its length, sha256 and sha512.

    At most ``cap`` + 1 bytes are read (one more than allowed shows a longer file
    without reading all of it); the transport refuses at once a file it knows is
    larger (HTTP ``Content-Length``, a local file's size).

    Raises:
        NotFoundError: no such file.
        SizeLimitError: the file is known to be larger than ``cap`` + 1 bytes.
        FetchError: any other failure to read it.
    """
    hasher = Hasher()
    limit = None if cap is None else cap + 1
    with fetcher.stream(name, limit) as chunks:
        for block in chunks:
            if limit is not None and hasher.length + len(block) > limit:
                block = block[: limit - hasher.length]
            hasher.update(block)
            if advance is not None:
                advance(len(block))
            if limit is not None and hasher.length >= limit:
                break
    return hasher.info()
