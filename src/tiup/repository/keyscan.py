"""Find private key files lying inside a directory tree (e.g. a published mirror)."""

from __future__ import annotations

import os
import stat

#: Key files are small; anything larger is not looked at.
_MAX_KEY_FILE = 16 * 1024


def private_keys_under(base: str) -> list[str]:
    """Paths (relative to ``base``) of files under ``base`` that hold private keys.

    Only small regular ``.json`` files are read; tarballs are never opened.
    Unreadable files are skipped, and so are FIFOs and devices (opened without
    blocking, checked with ``fstat``, never read).
    """
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if not d.startswith("_tmp")]
        for fname in filenames:
            if not fname.endswith(".json"):
                continue
            path = os.path.join(dirpath, fname)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_KEY_FILE:
                    continue
                data = os.read(fd, _MAX_KEY_FILE)
            except OSError:
                continue
            finally:
                os.close(fd)
            if (b'"private"' in data and b"PRIVATE KEY" in data) or b'"keyval":{"private"' in data:
                found.append(os.path.relpath(path, base))
    return sorted(found)
