"""A record of the cached manifests that were verified, so offline reads need no RSA.

Every manifest the client caches in ``$TIUP_HOME`` (``manifests/`` of the configured
mirror, ``mirrors/<sha16>/manifests/`` of another) was verified before it was written
(:class:`tiup.reader.MirrorReader` writes only after the trust state took it). This
module keeps, next to those files, ``.verified.json``: the sha256 of each cached file as
it was verified, and the sha256 of the trust anchor it was verified under. Offline reads
(``tiup --offline list``, running an installed component with an unreachable mirror)
then compare digests instead of loading cryptography and checking signatures again.

Why this is as safe as re-verifying: the record lives in ``$TIUP_HOME`` beside the trust
anchor itself (``bin/root.json``) and the install records the runner already trusts; whoever
can change it can change those. It is only ever written with bytes that were just
verified; any file whose digest differs, or a record made under another anchor, falls
back to full verification. Network reads never use it.

Imports only the standard library (the fast paths use it before anything heavy).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

RECORD = ".verified.json"


def anchor_digest(anchor: Path) -> str | None:
    """sha256 of the trust anchor file, or None if it cannot be read."""
    try:
        return hashlib.sha256(anchor.read_bytes()).hexdigest()
    except OSError:
        return None


def _load(manifests: Path) -> dict[str, object]:
    try:
        with open(manifests / RECORD, "rb") as fh:
            data = json.load(fh)
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def verified_bytes(manifests: Path, name: str, anchor: str | None) -> bytes | None:
    """The cached ``name`` if the record says these exact bytes were verified under
    ``anchor`` (a digest from :func:`anchor_digest`); else None (verify them)."""
    if anchor is None:
        return None
    record = _load(manifests)
    files = record.get("files")
    if record.get("anchor") != anchor or not isinstance(files, dict):
        return None
    want = files.get(name)
    if not isinstance(want, str):
        return None
    try:
        data = (manifests / name).read_bytes()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == want else None


def remember(manifests: Path, name: str, data: bytes, anchor: str | None) -> None:
    """Record that ``data`` (just verified and cached as ``name``) is trusted under
    ``anchor``. Best effort: a lost update only means one more verification later."""
    remember_digests(manifests, {name: hashlib.sha256(data).hexdigest()}, anchor)


def remember_digests(manifests: Path, digests: dict[str, str], anchor: str | None) -> None:
    """:func:`remember` for several files at once (name → sha256 of the bytes verified
    and cached), with one read and one write of the record."""
    if anchor is None or not digests:
        return
    record = _load(manifests)
    files = record.get("files")
    if record.get("anchor") != anchor or not isinstance(files, dict):
        files = {}
    files.update(digests)
    _save(manifests, {"anchor": anchor, "files": files})


def forget(manifests: Path, name: str) -> None:
    """Drop ``name`` from the record (its cached file was removed or replaced)."""
    record = _load(manifests)
    files = record.get("files")
    if isinstance(files, dict) and files.pop(name, None) is not None:
        _save(manifests, record)


def _save(manifests: Path, record: dict[str, object]) -> None:
    from tiup.fsutil import atomic_write

    with contextlib.suppress(OSError):
        os.makedirs(manifests, exist_ok=True)
        atomic_write(manifests / RECORD, json.dumps(record, sort_keys=True).encode(), 0o644,
                     sync_dir=False)
