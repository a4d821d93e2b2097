"""Crash-safe file writes shared by the client cache and the repository store.

A file is written to a temporary name in the same directory, flushed and
fsynced, then renamed over its final name, so a reader sees the old bytes or
the new bytes, never a torn file. Temporary names start with ``.tmp-`` so
leftovers of a crash are recognisable and never served.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

TMP_PREFIX = ".tmp-"


def tmp_name(final: Path) -> Path:
    """A fresh temporary path next to ``final``."""
    return final.parent / f"{TMP_PREFIX}{secrets.token_hex(6)}-{final.name}"


def fsync_dir(path: Path) -> None:
    """fsync a directory so renames inside it survive a crash (best effort on odd filesystems)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes, mode: int = 0o644, *,
                 overwrite: bool = True, sync_dir: bool = True) -> None:
    """Write ``data`` to ``path`` atomically; the file has ``mode`` before any byte is written.

    Without ``overwrite`` an existing file is never replaced.

    Raises:
        FileExistsError: the file exists and ``overwrite`` is false.
        OSError: the write failed; nothing is left behind.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(final)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if overwrite:
            os.replace(tmp, final)
        else:
            os.link(tmp, final)  # refuses to replace an existing file
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    if sync_dir:
        fsync_dir(final.parent)
