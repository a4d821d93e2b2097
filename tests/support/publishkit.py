"""Helpers for the publisher-side tests: tarballs, mirrors, audits."""

from __future__ import annotations

import io
import shutil
import tarfile
from datetime import UTC, datetime
from pathlib import Path

from tiup.keys import generate, save_private_key
from tiup.repository.admin import grant
from tiup.repository.audit import audit_mirror
from tiup.repository.init import init_mirror
from tiup.repository.keyring import load_keyring
from tiup.repository.store import Store
from tiup.transport.local import LocalFetcher

#: Fixed clock for every write in these tests (TIUP_TEST_NOW).
NOW = datetime(2026, 1, 1, tzinfo=UTC)
NOW_TEXT = "2026-01-01T00:00:00Z"
ENV = {"TIUP_TEST_NOW": NOW_TEXT}


def make_tarball(path: Path, entry: str = "hello", body: bytes = b"#!/bin/sh\necho hello\n",
                 extra: dict[str, bytes] | None = None) -> Path:
    """A gzip tar holding an executable ``entry`` (and ``extra`` files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {entry: body, **(extra or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return path


def audit(mirror: Path, now: datetime = NOW) -> list[str]:
    """Error messages of ``tiup mirror verify`` on ``mirror`` (empty when valid)."""
    with LocalFetcher(str(mirror)) as fetcher:
        report = audit_mirror(fetcher, now)
    return [f"{f.file}: {f.message}" for f in report.errors]


def assert_valid(mirror: Path, now: datetime = NOW) -> None:
    errors = audit(mirror, now)
    assert errors == [], errors


def copy_mirror(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def mirror_owned_by_jdoe(mirror: Path, home: Path) -> Path:
    """A new mirror at ``mirror`` with owner jdoe, whose key is
    ``<home>/keys/private.json`` (where ``tiup mirror publish`` looks by default)."""
    key = generate()
    save_private_key(home / "keys" / "private.json", key)
    init_mirror(mirror, NOW)
    with Store(mirror, now=NOW, keyring=load_keyring([mirror / "keys"])) as store:
        grant(store, "jdoe", "J. Doe", [key.keyinfo()])
        store.commit()
    return mirror
