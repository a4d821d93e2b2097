"""The bundle on disk: a plain tar stream, its index, its member names, and its parts.

A bundle is one uncompressed POSIX tar (the tarballs in it are already gzip) whose
members come in this order, so an import can verify as it reads::

    bundle.json                          the bundle index (this module's BundleIndex)
    N.root.json …, root.json             the root chain from the target's root version on
    timestamp.json, snapshot.json
    N.index.json …                       versioned indexes newer than the target's
    N.<id>.json …                        versioned component manifests newer than the target's
    <id>-<version>-<os>-<arch>.tar.gz …  tarballs the target lacks
    tiup-<os>-<arch>.tar.gz              bootstrap copies (last)

Every member is a regular file at the top level whose name passes
:func:`member_kind` (built on :mod:`tiup.manifest.names`); anything else (a
directory, a link, a device, ``../x``, an unknown name) is refused before its bytes
are read. The index is **not** trusted: it lists each member's length and hashes so
that damage is found early and named, and says what the bundle was made from
(``since``); trust comes from the signed manifests alone (``importer.py``).

A bundle split with ``--part-size`` is ``<bundle>.001``, ``<bundle>.002`` … plus
``<bundle>.parts.json`` (each part's name, length and sha256, written last). The
parts are byte slices of the one tar stream; :class:`PartsReader` reads them in
order and checks each part's length and sha256 when it ends, before the first byte
of the next part is used.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

from tiup.errors import BundleError, InvalidNameError, TiupError
from tiup.fsutil import atomic_write
from tiup.manifest.canonical import decode_json_strict, encode_canonical
from tiup.manifest.names import component_id, is_hex_digest, is_tarball_file

FORMAT = "tiup-bundle/1"
PARTS_FORMAT = "tiup-bundle-parts/1"
INDEX_NAME = "bundle.json"
PARTS_SUFFIX = ".parts.json"
#: caps on what is read into memory before anything verifies it
MAX_INDEX_SIZE = 32 * 1024 * 1024
MAX_PARTS_SIZE = 4 * 1024 * 1024
MAX_MANIFEST_SIZE = 64 * 1024 * 1024
MAX_FILES = 200_000

_VERSIONED = re.compile(r"([1-9][0-9]{0,9})\.(.+)\.json")

#: member kinds, in the order they must appear in the stream
ROOT, TIMESTAMP, SNAPSHOT, MANIFEST, TARBALL = 0, 1, 2, 3, 4


def malformed(message: str, file: str | None = None, hint: str | None = None) -> BundleError:
    return BundleError(message, file=file, code="malformed",
                       hint=hint or "make the bundle again with `tiup mirror export`")


def member_kind(name: str) -> int:
    """The kind of a bundle member named ``name`` (validated here, once).

    Raises:
        BundleError: (``malformed``) a name no bundle carries.
    """
    if name in ("root.json",):
        return ROOT
    if name == "timestamp.json":
        return TIMESTAMP
    if name == "snapshot.json":
        return SNAPSHOT
    m = _VERSIONED.fullmatch(name)
    if m is not None:
        base = m.group(2)
        if base == "root":
            return ROOT
        try:
            component_id(base)
        except InvalidNameError as exc:
            raise malformed(f"bundle member {name!r} is not a mirror file name: {exc.message}",
                            name) from exc
        return MANIFEST
    if is_tarball_file(name) and "/" not in name:
        return TARBALL
    raise malformed(f"bundle member {name!r} is not a mirror file name", name)




def versioned_parts(name: str) -> tuple[int, str] | None:
    """(N, base) for ``N.<base>.json``, else None."""
    m = _VERSIONED.fullmatch(name)
    return (int(m.group(1)), m.group(2)) if m is not None else None


@dataclass(frozen=True)
class Member:
    """One file of a bundle, as its index declares it."""

    name: str
    length: int
    sha256: str
    sha512: str

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "length": self.length, "sha256": self.sha256,
                "sha512": self.sha512}


@dataclass(frozen=True)
class Since:
    """The target state a bundle was made for: its ``snapshot.json`` (by sha256) and, when
    known, the version of the ``timestamp.json`` that named it."""

    snapshot_sha256: str
    timestamp_version: int | None = None

    def describe(self) -> str:
        ts = (f"timestamp version {self.timestamp_version}" if self.timestamp_version
              else "a snapshot")
        return f"{ts} (snapshot sha256 {self.snapshot_sha256[:12]})"


@dataclass
class BundleIndex:
    """``bundle.json``: what the bundle holds and the states it goes from and to."""

    #: the mirror's identity: sha256 of its ``1.root.json`` (constant across rotations)
    mirror_id: str
    #: sha256 of the mirror's newest root.json bytes in this bundle (what import prints)
    root_sha256: str
    root_version: int
    timestamp_version: int
    snapshot_sha256: str
    since: Since | None
    files: list[Member] = field(default_factory=list)

    @property
    def full(self) -> bool:
        return self.since is None

    def total(self) -> int:
        return sum(m.length for m in self.files)

    def encode(self) -> bytes:
        since: object = None
        if self.since is not None:
            since = {"snapshot_sha256": self.since.snapshot_sha256,
                     "timestamp_version": self.since.timestamp_version or 0}
        return encode_canonical({
            "format": FORMAT, "mirror_id": self.mirror_id, "root_sha256": self.root_sha256,
            "root_version": self.root_version, "timestamp_version": self.timestamp_version,
            "snapshot_sha256": self.snapshot_sha256, "since": since,
            "files": [m.to_dict() for m in self.files]})

    @classmethod
    def decode(cls, data: bytes, source: str) -> BundleIndex:
        """Parse and validate an index (every name through :func:`member_kind`).

        Raises:
            BundleError: (``malformed``) not a bundle index of this format.
        """
        try:
            raw = decode_json_strict(data)
        except TiupError as exc:
            raise malformed(f"{source} is not a bundle index: {exc.message}", source) from exc
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise malformed(f"{source} is not a bundle index of format {FORMAT}", source)
        try:
            since_raw = raw["since"]
            since = None
            if since_raw is not None:
                since = Since(_hex(since_raw["snapshot_sha256"], 64),
                              _int(since_raw["timestamp_version"]) or None)
            files_raw = raw["files"]
            if not isinstance(files_raw, list) or len(files_raw) > MAX_FILES:
                raise ValueError("files")
            files = []
            seen: set[str] = set()
            for f in files_raw:
                name = f["name"]
                if not isinstance(name, str) or name in seen:
                    raise ValueError(f"file name {name!r}")
                member_kind(name)
                seen.add(name)
                files.append(Member(name, _int(f["length"]), _hex(f["sha256"], 64),
                                    _hex(f["sha512"], 128)))
            return cls(_hex(raw["mirror_id"], 64), _hex(raw["root_sha256"], 64),
                       _int(raw["root_version"]), _int(raw["timestamp_version"]),
                       _hex(raw["snapshot_sha256"], 64), since, files)
        except (KeyError, TypeError, ValueError) as exc:
            raise malformed(f"{source} is not a valid bundle index ({exc})", source) from exc


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"not a count: {value!r}")
    return value


def _hex(value: object, digits: int) -> str:
    if not is_hex_digest(value, digits):
        raise ValueError(f"not a hash: {value!r}")
    assert isinstance(value, str)
    return value


# ------------------------------------------------------------------------- parts
def parts_file(bundle: Path) -> Path:
    return bundle.with_name(bundle.name + PARTS_SUFFIX)


class PartWriter(io.RawIOBase):
    """A write-only stream cut into ``<bundle>.001`` … of ``part_size`` bytes; each part is
    written under a temporary name and renamed when complete; :meth:`finish` writes
    ``<bundle>.parts.json`` last. A run that dies leaves no ``.parts.json`` (no bundle)."""

    def __init__(self, bundle: Path, part_size: int):
        super().__init__()
        self.bundle = bundle
        self.part_size = part_size
        self.parts: list[tuple[str, int, str]] = []
        self._fh: BinaryIO | None = None
        self._tmp: Path | None = None
        self._len = 0
        self._hash = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def _open(self) -> None:
        name = f"{self.bundle.name}.{len(self.parts) + 1:03d}"
        self._tmp = self.bundle.with_name(f".tmp-{name}")
        self._fh = open(self._tmp, "wb")  # noqa: SIM115 - closed in _close_part
        self._len = 0
        self._hash = hashlib.sha256()

    def _close_part(self) -> None:
        assert self._fh is not None and self._tmp is not None
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        name = self._tmp.name.removeprefix(".tmp-")
        os.replace(self._tmp, self._tmp.with_name(name))
        self.parts.append((name, self._len, self._hash.hexdigest()))
        self._fh = None

    def write(self, data: bytes) -> int:  # type: ignore[override]
        view = memoryview(data)
        while view:
            if self._fh is None:
                self._open()
            assert self._fh is not None
            room = self.part_size - self._len
            chunk = view[:room]
            self._fh.write(chunk)
            self._hash.update(chunk)
            self._len += len(chunk)
            view = view[len(chunk):]
            if self._len >= self.part_size:
                self._close_part()
        return len(data)

    def finish(self) -> list[Path]:
        """Close the last part and write ``<bundle>.parts.json``; the files written."""
        if self._fh is not None:
            self._close_part()
        listing = encode_canonical({"format": PARTS_FORMAT, "parts": [
            {"name": n, "length": n_len, "sha256": h} for n, n_len, h in self.parts]})
        atomic_write(parts_file(self.bundle), listing, 0o644)
        return [self.bundle.with_name(n) for n, _l, _h in self.parts] + [parts_file(self.bundle)]

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)


def read_parts_list(listing: Path) -> list[tuple[Path, int, str]]:
    """The parts a ``.parts.json`` names, each checked to exist with its length.

    Raises:
        BundleError: (``malformed``) not a parts list, or a part missing or of the wrong size.
    """
    try:
        with open(listing, "rb") as fh:
            data = fh.read(MAX_PARTS_SIZE + 1)
    except OSError as exc:
        raise malformed(f"cannot read {listing}: {exc.strerror}", str(listing)) from exc
    try:
        if len(data) > MAX_PARTS_SIZE:
            raise ValueError("too large")
        raw = decode_json_strict(data)
        if not isinstance(raw, dict) or raw.get("format") != PARTS_FORMAT:
            raise ValueError(f"not format {PARTS_FORMAT}")
        base = listing.name.removesuffix(PARTS_SUFFIX)
        out = []
        for i, p in enumerate(raw["parts"], 1):
            if p["name"] != f"{base}.{i:03d}":
                raise ValueError(f"part {i} is named {p['name']!r}")
            out.append((listing.with_name(p["name"]), _int(p["length"]), _hex(p["sha256"], 64)))
    except (TiupError, KeyError, TypeError, ValueError) as exc:
        raise malformed(f"{listing} is not a valid parts list ({exc})", str(listing)) from exc
    for path, length, _h in out:
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise malformed(f"part {path.name} of the bundle is missing", str(path),
                            hint="copy every part of the bundle next to its .parts.json") from exc
        if size != length:
            raise BundleError(f"part {path.name} of the bundle is {size} bytes, not the "
                              f"{length} its parts list declares", file=str(path),
                              code="tampered", hint="copy that part again")
    return out


class PartsReader(io.RawIOBase):
    """The tar stream of a split bundle, read part after part; each part's length and
    sha256 are checked when it ends (:class:`~tiup.errors.BundleError` ``tampered``)."""

    def __init__(self, parts: list[tuple[Path, int, str]]):
        super().__init__()
        self._parts = parts
        self._i = -1
        self._fh: BinaryIO | None = None
        self._hash = hashlib.sha256()
        self._len = 0

    def readable(self) -> bool:
        return True

    def _next(self) -> bool:
        if self._fh is not None:
            self._fh.close()
            path, length, sha = self._parts[self._i]
            if self._len != length or self._hash.hexdigest() != sha:
                raise BundleError(f"part {path.name} of the bundle is damaged (its sha256 "
                                  "differs from its parts list)", file=str(path),
                                  code="tampered", hint="copy that part again")
            self._fh = None
        self._i += 1
        if self._i >= len(self._parts):
            return False
        self._fh = open(self._parts[self._i][0], "rb")  # noqa: SIM115 - closed in _next
        self._hash = hashlib.sha256()
        self._len = 0
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while True:
            if self._fh is None and not self._next():
                return 0
            assert self._fh is not None
            n = self._fh.readinto(buffer)  # type: ignore[attr-defined]
            if n:
                self._hash.update(buffer[:n])
                self._len += n
                return int(n)
            if not self._next():
                return 0

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        super().close()


def chunks(stream: IO[bytes], length: int, size: int = 1024 * 1024) -> Iterator[bytes]:
    """Exactly ``length`` bytes of ``stream``, in chunks. Raises BundleError if it ends early."""
    left = length
    while left:
        block = stream.read(min(size, left))
        if not block:
            raise malformed("the bundle ends in the middle of a file (truncated?)")
        left -= len(block)
        yield block
