"""Upload sessions of the publish API, kept on disk so every worker process sees them.

A client uploads a tarball to ``/api/v1/tarball/<sid>`` and then posts the
manifest to ``/api/v1/component/<sid>/<name>``; the two requests may reach
different granian worker processes, so a session is two files in the shared
upload directory:

- ``<sid>.tarball``: the uploaded bytes (written as ``.part-<sid>-<random>``
  while streaming, hashed on the way, then renamed);
- ``<sid>.json``: its file name, length, sha256 and sha512.

A session expires ``ttl`` seconds after its upload finished (file mtime); the
files are deleted after the publish that uses them, success or failure.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SID = re.compile(r"[A-Za-z0-9-]{1,64}")
#: A tarball name as clients send it (validated again by the store against the manifest).
FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+\-]{0,254}")
PART_PREFIX = ".part-"


class UploadTooLarge(Exception):
    """The upload passed the size limit."""


@dataclass(frozen=True)
class Session:
    sid: str
    filename: str
    path: Path
    length: int
    sha256: str
    sha512: str


class Upload:
    """One tarball being received: write chunks, then :meth:`finish` or :meth:`abort`."""

    def __init__(self, store: SessionStore, sid: str, limit: int):
        self.store = store
        self.sid = sid
        self.limit = limit
        self.tmp = store.directory / f"{PART_PREFIX}{sid}-{secrets.token_hex(6)}"
        self._fh = open(self.tmp, "xb")  # noqa: SIM115 - closed in finish/abort
        self.length = 0
        self._h256 = hashlib.sha256()
        self._h512 = hashlib.sha512()

    def write(self, data: bytes) -> None:
        """Raises UploadTooLarge (past the limit) or OSError."""
        self.length += len(data)
        if self.length > self.limit:
            raise UploadTooLarge(f"the upload is larger than {self.limit} bytes")
        self._fh.write(data)
        self._h256.update(data)
        self._h512.update(data)

    def finish(self, filename: str) -> Session:
        """Close, then publish the session under its sid (replacing any older one).

        Raises:
            OSError: the file could not be written.
        """
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        session = Session(self.sid, filename, self.store.tarball_path(self.sid), self.length,
                          self._h256.hexdigest(), self._h512.hexdigest())
        os.replace(self.tmp, session.path)
        meta = {"filename": filename, "length": self.length, "sha256": session.sha256,
                "sha512": session.sha512}
        tmp_meta = self.store.directory / f"{PART_PREFIX}{self.sid}-{secrets.token_hex(6)}.json"
        tmp_meta.write_text(json.dumps(meta))
        os.replace(tmp_meta, self.store.meta_path(self.sid))
        return session

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink()


class SessionStore:
    """Sessions in ``directory``; ``clock`` is injectable for tests."""

    def __init__(self, directory: str | Path, ttl: float,
                 clock: Callable[[], float] = time.time):
        self.directory = Path(directory)
        self.ttl = ttl
        self.clock = clock

    def tarball_path(self, sid: str) -> Path:
        return self.directory / f"{sid}.tarball"

    def meta_path(self, sid: str) -> Path:
        return self.directory / f"{sid}.json"

    def begin(self, sid: str, limit: int) -> Upload:
        """Start receiving a tarball for ``sid`` (already validated). Raises OSError."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.expire()
        return Upload(self, sid, limit)

    def get(self, sid: str) -> Session | None:
        """The live session ``sid``, or None (never uploaded, expired, or damaged)."""
        meta = self.meta_path(sid)
        try:
            st = meta.stat()
            if self.clock() - st.st_mtime > self.ttl:
                self.delete(sid)
                return None
            raw = json.loads(meta.read_text())
            session = Session(sid, str(raw["filename"]), self.tarball_path(sid),
                              int(raw["length"]), str(raw["sha256"]), str(raw["sha512"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return session if session.path.is_file() else None

    def delete(self, sid: str) -> None:
        for path in (self.meta_path(sid), self.tarball_path(sid)):
            with contextlib.suppress(OSError):
                path.unlink()

    def expire(self) -> int:
        """Delete expired sessions and stale partial uploads; returns how many files went."""
        removed = 0
        now = self.clock()
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return 0
        for entry in entries:
            try:
                age = now - entry.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            # A partial upload still being written is touched by every chunk.
            if age > self.ttl and (entry.name.endswith((".json", ".tarball"))
                                   or entry.name.startswith(PART_PREFIX)):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed += 1
        return removed
