"""Find private key files lying inside a directory tree (e.g. a published mirror)."""

from __future__ import annotations

import os

#: Key files are small; anything larger is not looked at.
_MAX_KEY_FILE = 16 * 1024


def private_keys_under(base: str) -> list[str]:
    """Paths (relative to ``base``) of files under ``base`` that hold private keys.

    Only small ``.json`` files are read; tarballs are never opened. Unreadable
    files are skipped.
    """
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if not d.startswith("_tmp")]
        for fname in filenames:
            if not fname.endswith(".json"):
                continue
            path = os.path.join(dirpath, fname)
            try:
                if os.path.getsize(path) > _MAX_KEY_FILE:
                    continue
                with open(path, "rb") as fh:
                    data = fh.read(_MAX_KEY_FILE)
            except OSError:
                continue
            if (b'"private"' in data and b"PRIVATE KEY" in data) or b'"keyval":{"private"' in data:
                found.append(os.path.relpath(path, base))
    return sorted(found)
