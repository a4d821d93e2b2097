"""Upload sessions of the publish API, kept on disk so every worker process sees them.

A client uploads a tarball to ``/api/v1/tarball/<sid>`` and then posts the
manifest to ``/api/v1/component/<sid>/<name>``; the two requests may reach
different granian worker processes, so a session lives as files in the
shared upload directory:

- ``.part-<sid>-<random>``: a tarball being received (hashed on the way);
- ``.part-<sid>-<random>.res``: its reservation, JSON ``{"client", "reserved"}``;
- ``<sid>.tarball`` and ``<sid>.json`` (file name, length, sha256, sha512,
  client) once the upload finished.

Quotas. Anyone who can reach the server may upload, so what is staged is
bounded (:class:`Quota`): bytes and sessions, for all clients together and
per client address (an IPv6 client by its /64). The accounting is a scan of
the directory under an exclusive ``flock`` of the directory itself, so it
holds across worker processes and keeps no counter that a crashed worker
could leave wrong: a session counts once, its bytes as the larger of its
reservation and its size on disk. An upload reserves what its
``Content-Length`` declares before a byte of the body is read (without one,
it grows its reservation while streaming, :data:`GROW` bytes ahead), and
gives it back when aborted. Over a quota, :class:`StagingFull` (bytes → 507)
or :class:`TooManySessions` (→ 429) is raised and nothing is kept.

Expiry. Every scan deletes sessions idle for ``ttl`` seconds: since the last
chunk written, the upload finished, or a component POST claimed it
(:meth:`SessionStore.get`). A component POST deletes the session it used,
success or failure, so only uploads never followed by one wait for the TTL.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tiup.errors import StagingFull, TooManySessions, UploadExpired, UploadTooLarge
from tiup.hashing import Hasher

SID = re.compile(r"[A-Za-z0-9-]{1,64}")
PART_PREFIX = ".part-"
RES_SUFFIX = ".res"
#: Reservation step of an upload that declared no length.
GROW = 8 << 20
#: "No limit" for a :class:`Quota` field.
UNLIMITED = 1 << 62


@dataclass(frozen=True)
class Quota:
    """Bounds on what is staged at once; sessions count from upload start to consumption."""

    max_staged: int = UNLIMITED
    max_client_staged: int = UNLIMITED
    max_sessions: int = UNLIMITED
    max_client_sessions: int = UNLIMITED


@dataclass(frozen=True)
class Session:
    sid: str
    filename: str
    path: Path
    length: int
    sha256: str
    sha512: str


def client_key(peer: str) -> str:
    """The quota key of a peer address ``host:port`` (granian's ``scope.client``).

    IPv4 (also IPv4-mapped IPv6) by address; IPv6 by its /64, the block one host
    usually gets. Behind a reverse proxy every client is the proxy: bound it there.
    """
    host = peer
    if peer.startswith("["):
        host = peer[1:].partition("]")[0]
    elif peer.count(":") == 1:
        host = peer.partition(":")[0]
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        try:  # a bare IPv6 address followed by ":port"
            addr = ipaddress.ip_address(peer.rpartition(":")[0])
        except ValueError:
            return peer
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{addr}/64", strict=False))
    return str(addr)


@dataclass
class _Usage:
    staged: int = 0
    sessions: int = 0
    clients: dict[str, tuple[int, int]] = field(default_factory=dict)  # → (bytes, sessions)
    charges: dict[str, int] = field(default_factory=dict)  # partial upload name → bytes
    removed: int = 0

    def add(self, client: str | None, size: int, sessions: int) -> None:
        self.staged += size
        self.sessions += sessions
        if client is not None:
            old = self.clients.get(client, (0, 0))
            self.clients[client] = (old[0] + size, old[1] + sessions)


class Upload:
    """One tarball being received: write chunks, then :meth:`finish` or :meth:`abort`.

    Created by :meth:`SessionStore.begin`, which has reserved ``reserved`` bytes for it.
    """

    def __init__(self, store: SessionStore, sid: str, limit: int, client: str, reserved: int):
        self.store = store
        self.sid = sid
        self.limit = limit
        self.client = client
        self.reserved = reserved
        self.tmp = store.directory / f"{PART_PREFIX}{sid}-{secrets.token_hex(6)}"
        self.res = self.tmp.with_name(self.tmp.name + RES_SUFFIX)
        self._fh = open(self.tmp, "xb")  # noqa: SIM115 - closed in finish/abort
        self.length = 0
        self._hasher = Hasher()

    def write(self, data: bytes) -> None:
        """Raises UploadTooLarge (past the limit), StagingFull (no room to grow the
        reservation), UploadExpired, or OSError."""
        length = self.length + len(data)
        if length > self.limit:
            raise UploadTooLarge(f"the upload is larger than {self.limit} bytes")
        if length > self.reserved:
            self.store._grow(self, length, min(self.limit, length + GROW))
        self.length = length
        self._fh.write(data)
        self._hasher.update(data)

    def finish(self, filename: str) -> Session:
        """Close, then publish the session under its sid (replacing any older one).

        Raises:
            UploadExpired: the partial file was removed meanwhile (idle past the TTL).
            OSError: the file could not be written.
        """
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        return self.store._finish(self, filename)

    def abort(self) -> None:
        """Close and delete the partial file, giving its reservation back. Never raises."""
        with contextlib.suppress(OSError), self.store._locked():
            self._discard()

    def _discard(self) -> None:
        """:meth:`abort` for a caller that already holds the store's lock."""
        with contextlib.suppress(OSError):
            self._fh.close()
        _unlink(self.tmp, self.res)


class SessionStore:
    """Sessions in ``directory``; ``clock`` is injectable for tests."""

    def __init__(self, directory: str | Path, ttl: float,
                 clock: Callable[[], float] = time.time, quota: Quota | None = None):
        self.directory = Path(directory)
        self.ttl = ttl
        self.clock = clock
        self.quota = quota or Quota()

    def tarball_path(self, sid: str) -> Path:
        return self.directory / f"{sid}.tarball"

    def meta_path(self, sid: str) -> Path:
        return self.directory / f"{sid}.json"

    def begin(self, sid: str, limit: int, client: str = "", declared: int | None = None
              ) -> Upload:
        """Start receiving a tarball for ``sid`` (already validated) from ``client``.

        ``declared`` is the most the body can hold (from ``Content-Length``); it is
        reserved now, so an upload that cannot fit is refused before it is read.

        Raises:
            TooManySessions: the server or this client holds the most sessions allowed.
            StagingFull: the reservation does not fit in a byte quota or on the disk.
            OSError: the upload directory is unusable.
        """
        want = min(limit, declared) if declared is not None else 0
        with self._locked():
            usage = self._scan(self.clock())
            self._check(usage, client, want, new_session=True)
            upload = Upload(self, sid, limit, client, want)
            try:
                self._write_reservation(upload)
            except OSError:
                upload._discard()  # not abort(): a second flock here would wait for ours
                raise
        return upload

    def get(self, sid: str) -> Session | None:
        """The live session ``sid``, or None (never uploaded, expired, or damaged).

        A session found is claimed: its idle time starts again, so it cannot expire
        while the component POST that asked for it is being published.
        """
        with self._locked():
            now = self.clock()
            self._scan(now)
            meta, path = self.meta_path(sid), self.tarball_path(sid)
            try:
                raw = json.loads(meta.read_bytes())
                session = Session(sid, str(raw["filename"]), path, int(raw["length"]),
                                  str(raw["sha256"]), str(raw["sha512"]))
                if not path.is_file():
                    return None
                for p in (meta, path):
                    os.utime(p, (now, now))
            except (OSError, ValueError, KeyError, TypeError):
                return None
        return session

    def delete(self, sid: str) -> None:
        """Forget ``sid`` and delete its files. Never raises."""
        with contextlib.suppress(OSError), self._locked():
            _unlink(self.meta_path(sid), self.tarball_path(sid))

    def usage(self) -> tuple[int, int]:
        """(sessions, bytes) staged now, all clients together (for the metrics); expired
        sessions are deleted on the way, as by every scan. Never raises."""
        try:
            with self._locked():
                usage = self._scan(self.clock())
        except OSError:
            return 0, 0
        return usage.sessions, usage.staged

    def expire(self) -> int:
        """Delete expired sessions and stale partial uploads; returns how many files went."""
        try:
            with self._locked():
                return self._scan(self.clock()).removed
        except OSError:
            return 0

    # ------------------------------------------------------------ internals
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the directory's exclusive flock (shared by every worker process).

        Raises:
            OSError: the directory cannot be created or opened.
        """
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _scan(self, now: float) -> _Usage:
        """What is staged, per client; deletes what expired on the way (lock held)."""
        usage = _Usage()
        try:
            entries = {e.name: e for e in os.scandir(self.directory)}
        except OSError:
            return usage

        def stat(name: str) -> tuple[float, int]:
            entry = entries.get(name)
            if entry is None:
                return 0.0, 0
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                return 0.0, 0
            return st.st_mtime, st.st_size

        def expired(*names: str) -> bool:
            if now - max(stat(n)[0] for n in names) <= self.ttl:
                return False
            for n in names:
                if n in entries:
                    with contextlib.suppress(OSError):
                        os.unlink(self.directory / n)
                        usage.removed += 1
            return True

        for name in entries:
            if name.startswith(PART_PREFIX):
                if name.endswith(RES_SUFFIX):  # an upload in progress
                    data = name[: -len(RES_SUFFIX)]
                    if expired(name, data):
                        continue
                    raw = _read_json(self.directory / name)
                    client = str(raw.get("client", ""))
                    reserved = raw.get("reserved", 0)
                    charge = max(reserved if isinstance(reserved, int) else 0, stat(data)[1])
                    usage.add(client, charge, 1)
                    usage.charges[data] = charge
                elif name + RES_SUFFIX not in entries and not expired(name):
                    usage.add(None, stat(name)[1], 0)  # a crashed worker's leftover
            elif name.endswith(".tarball"):
                meta = name[: -len(".tarball")] + ".json"
                if not expired(name, meta):
                    client = str(_read_json(self.directory / meta).get("client", ""))
                    usage.add(client, stat(name)[1], 1)
            elif name.endswith(".json") and name[: -len(".json")] + ".tarball" not in entries:
                expired(name)
        return usage

    def _check(self, usage: _Usage, client: str, want: int, *, new_session: bool,
               mine: int = 0) -> None:
        """Raise if ``want`` bytes (replacing ``mine`` already counted) do not fit."""
        q = self.quota
        c_bytes, c_sessions = usage.clients.get(client, (0, 0))
        wait = f"uploads not followed by a manifest expire after {self.ttl:g} s"
        if new_session and usage.sessions >= q.max_sessions:
            raise TooManySessions(f"the server holds {usage.sessions} upload sessions, its "
                                  f"limit; try again later ({wait})")
        if new_session and c_sessions >= q.max_client_sessions:
            raise TooManySessions(f"{client or 'this client'} holds {c_sessions} upload "
                                  f"sessions, the limit per client; publish or wait ({wait})")
        if usage.staged - mine + want > q.max_staged:
            raise StagingFull(f"the server cannot stage {want} more bytes: "
                              f"{usage.staged - mine} of {q.max_staged} are in use; try "
                              f"again later ({wait})")
        if c_bytes - mine + want > q.max_client_staged:
            raise StagingFull(f"{client or 'this client'} cannot stage {want} more bytes: "
                              f"{c_bytes - mine} of {q.max_client_staged} per client are in "
                              f"use ({wait})")
        st = os.statvfs(self.directory)
        free = st.f_bavail * st.f_frsize
        if want - mine > free:
            raise StagingFull(f"the server's upload disk has {free} bytes free, not enough "
                              f"for {want} bytes")

    def _write_reservation(self, upload: Upload) -> None:
        upload.res.write_text(json.dumps({"client": upload.client,
                                          "reserved": upload.reserved}))

    def _grow(self, upload: Upload, needed: int, wanted: int) -> None:
        """Reserve ``wanted`` bytes for ``upload`` (at least ``needed``).

        Raises:
            StagingFull: not even ``needed`` fits.
            UploadExpired: the upload was removed as idle.
            OSError: the reservation cannot be written.
        """
        with self._locked():
            usage = self._scan(self.clock())
            mine = usage.charges.get(upload.tmp.name)
            if mine is None:
                raise UploadExpired(f"upload of session {upload.sid} sat idle past "
                                    f"{self.ttl:g} s and was removed")
            reserved = wanted
            try:
                self._check(usage, upload.client, wanted, new_session=False, mine=mine)
            except StagingFull:
                reserved = needed
                self._check(usage, upload.client, needed, new_session=False, mine=mine)
            upload.reserved = reserved
            self._write_reservation(upload)

    def _finish(self, upload: Upload, filename: str) -> Session:
        info = upload._hasher.info()
        session = Session(upload.sid, filename, self.tarball_path(upload.sid), upload.length,
                          info.sha256, info.sha512)
        meta = {"filename": filename, "length": upload.length, "sha256": session.sha256,
                "sha512": session.sha512, "client": upload.client}
        with self._locked():
            if not upload.res.exists():
                _unlink(upload.tmp)
                raise UploadExpired(f"upload of session {upload.sid} sat idle past "
                                    f"{self.ttl:g} s and was removed")
            tmp_meta = self.directory / f"{PART_PREFIX}{upload.sid}-{secrets.token_hex(6)}.json"
            tmp_meta.write_text(json.dumps(meta))
            os.replace(upload.tmp, session.path)
            os.replace(tmp_meta, self.meta_path(upload.sid))
            _unlink(upload.res)
        return session


def _read_json(path: Path) -> dict[str, object]:
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _unlink(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()
