"""Atomic, verified installs (``behavior.md`` §12.4).

1. download the tarball into ``$TIUP_HOME/staging/downloads/<sha256>.part``
   (capped at the manifest's ``length``; resumable);
2. verify its length, sha256 and sha512 against the verified manifest;
3. extract it with :mod:`tiup.client.extract` into
   ``$TIUP_HOME/staging/install-<random>/`` and check the entry exists;
4. rename that directory to ``components/<id>/<version>/`` (the commit), then
   write the install record ``installed/<id>/<version>.json``.

An interrupted install leaves only staging files, which the next install
removes; nothing under ``components/`` appears before the rename. Installs
are serialised per ``$TIUP_HOME`` with a lock file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tiup import hashing
from tiup.client.extract import entry_exists, safe_extract
from tiup.client.profile import Profile
from tiup.client.updater import Updater
from tiup.errors import InstallError, IntegrityError, TiupError
from tiup.fsutil import atomic_write, fsync_dir
from tiup.hashing import FileInfo
from tiup.manifest.canonical import encode_canonical
from tiup.manifest.models import VersionItem
from tiup.manifest.names import component_id, version_str
from tiup.manifest.timefmt import format_time
from tiup.settings import Settings

RECORD_FIELDS = ("component", "version", "entry", "url", "sha256", "sha512", "length",
                 "mirror", "installed_at")

ProgressFactory = Callable[
    [str, int], contextlib.AbstractContextManager[Callable[[int, int], None]]]


@dataclass
class InstallRecord:
    component: str
    version: str
    entry: str
    url: str
    sha256: str
    sha512: str
    length: int
    mirror: str
    installed_at: str

    def to_bytes(self) -> bytes:
        return encode_canonical({f: getattr(self, f) for f in RECORD_FIELDS})


def read_record(profile: Profile, comp: str, version: str) -> InstallRecord | None:
    """The install record, or None if absent or unreadable."""
    try:
        obj = json.loads(profile.record_path(comp, version).read_bytes())
        return InstallRecord(**{f: obj[f] for f in RECORD_FIELDS})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def installed_versions(profile: Profile, comp: str) -> list[str]:
    """Non-empty version directories under ``components/<id>/`` (TiUP's notion)."""
    return profile.installed_versions(comp)


def recorded_versions(profile: Profile, comp: str) -> list[str]:
    """Versions with an install record (their files may have been damaged since)."""
    try:
        names = os.listdir(profile.installed_dir / comp)
    except OSError:
        return []
    return sorted(n[: -len(".json")] for n in names
                  if n.endswith(".json") and not n.startswith("."))


def damage(profile: Profile, comp: str, version: str) -> str | None:
    """Why a recorded install cannot run: its directory or its entry is gone.

    None when the install is sound, or has no record (not ours to judge).
    """
    record = read_record(profile, comp, version)
    if record is None:
        return None
    path = profile.component_dir(comp, version)
    if not path.is_dir():
        return f"its directory {path} is missing"
    if not entry_exists(path, record.entry):
        return f"its entry {record.entry} is missing or not a file"
    return None


def installed_components(profile: Profile) -> list[str]:
    try:
        return sorted(p.name for p in profile.components_dir.iterdir() if p.is_dir())
    except OSError:
        return []


@contextlib.contextmanager
def home_lock(profile: Profile) -> Iterator[None]:
    """Serialise installs and cache cleanups per ``$TIUP_HOME``."""
    profile.staging_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(profile.staging_dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def clean_staging(profile: Profile) -> None:
    """Remove leftovers of interrupted installs (caller holds :func:`home_lock`)."""
    with contextlib.suppress(OSError):
        for path in profile.staging_dir.iterdir():
            if path.name.startswith(("install-", "trash-")):
                shutil.rmtree(path, ignore_errors=True)


def verify_tarball(path: Path, item: VersionItem) -> None:
    """Length, sha256 and sha512 (when listed) must match the verified item.

    Raises:
        IntegrityError: naming the URL and the expected and actual values.
        OSError: the file cannot be read.
    """
    hashing.check(item.url, FileInfo.of_file(path), item, where="its manifest",
                  hint="the mirror's tarball does not match its signed manifest")


def is_installed(profile: Profile, comp: str, version: str, entry: str | None = None) -> bool:
    """Installed = a version dir with a record and the record's entry present, or (TiUP's,
    without a record) with ``entry`` present. A damaged install (:func:`damage`) is not."""
    path = profile.component_dir(comp, version)
    record = read_record(profile, comp, version)
    if record is not None:
        return entry_exists(path, record.entry)
    if entry is None:
        return False
    return entry_exists(path, entry)


def install(profile: Profile, updater: Updater, comp: str, version: str, item: VersionItem,
            now: datetime, *, force: bool = False,
            progress: ProgressFactory | None = None, settings: Settings | None = None) -> Path:
    """Download, verify, extract and commit one component version.

    ``settings`` gives the extraction limits and ``keep_source_target``; default the
    updater's (:attr:`Updater.settings`).

    Returns:
        The installed directory ``components/<id>/<version>``.

    Raises:
        IntegrityError: the tarball does not match the verified manifest.
        InstallError: unsafe archive, an archive over the extraction limits
            (``TIUP_MAX_EXTRACT_BYTES``, ``TIUP_MAX_EXTRACT_MEMBERS``), missing
            entry, or a file-system failure; nothing is left under ``components/``.
        UsageError: no ``settings`` were passed and an environment variable is malformed.
        FetchError, OfflineError: the tarball could not be downloaded.
    """
    version_str(version)
    # a malformed setting fails before any download
    settings = settings if settings is not None else updater.settings
    limits = settings.extract
    target = profile.component_dir(comp, version)
    with home_lock(profile):
        clean_staging(profile)
        if not force and is_installed(profile, comp, version, item.entry):
            return target
        profile.downloads_dir.mkdir(parents=True, exist_ok=True)
        key = (item.sha256 or hashlib.sha256(item.url.encode()).hexdigest()).lower()
        tarball = profile.downloads_dir / f"{key}.tar.gz"
        part = profile.downloads_dir / f"{key}.part"
        try:
            _download_verified(updater, item, tarball, part, progress)
            staging = profile.staging_dir / f"install-{secrets.token_hex(6)}"
            staging.mkdir(mode=0o755)
            try:
                safe_extract(tarball, staging, limits)
                if not entry_exists(staging, item.entry):
                    raise InstallError(
                        f"entry {item.entry} not found in {item.url.lstrip('/')}",
                        file=item.url,
                        hint="the component was published with a wrong entry",
                    )
                _commit(profile, staging, target, force)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        finally:
            if settings.keep_source_target and tarball.exists() and target.is_dir():
                shutil.copy2(tarball, target / item.url.rsplit("/", 1)[-1])
            with contextlib.suppress(OSError):
                tarball.unlink()
        record = InstallRecord(comp, version, item.entry, item.url, item.sha256, item.sha512,
                               item.length, updater.state.ident, format_time(now))
        atomic_write(profile.record_path(comp, version), record.to_bytes(), 0o644)
    return target


def _download_verified(updater: Updater, item: VersionItem, tarball: Path, part: Path,
                       progress: ProgressFactory | None) -> None:
    name = item.url.rsplit("/", 1)[-1]
    for attempt in (1, 2):
        bar = progress(f"download {name}", item.length) if progress else contextlib.nullcontext(
            None)
        with bar as update:
            updater.download(item.url, tarball, item.length, update, part)
        try:
            verify_tarball(tarball, item)
            return
        except IntegrityError:
            with contextlib.suppress(OSError):
                tarball.unlink()
            with contextlib.suppress(OSError):
                part.unlink()
            if attempt == 2:
                raise


def _commit(profile: Profile, staging: Path, target: Path, force: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    trash: Path | None = None
    if target.exists():
        # an old copy (forced reinstall, or a leftover without record): move it aside first
        trash = profile.staging_dir / f"trash-{secrets.token_hex(6)}"
        os.replace(target, trash)
    with contextlib.suppress(OSError):
        profile.record_path(target.parent.name, target.name).unlink()
    try:
        os.replace(staging, target)
    except OSError as exc:
        raise InstallError(f"cannot move the new files to {target}: {exc.strerror}") from exc
    fsync_dir(target.parent)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def uninstall_version(profile: Profile, comp: str, version: str) -> Path:
    """Remove one version (record first, so a crash never leaves a record without files).

    Raises:
        InvalidNameError: ``comp`` or ``version`` is not a safe name (never a path).
        TiupError: the directory cannot be removed.
    """
    path = profile.component_dir(component_id(comp), version_str(version))
    with home_lock(profile):
        with contextlib.suppress(OSError):
            profile.record_path(comp, version).unlink()
        trash = profile.staging_dir / f"trash-{secrets.token_hex(6)}"
        try:
            os.replace(path, trash)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise TiupError(f"cannot remove {path}: {exc.strerror}") from exc
        shutil.rmtree(trash, ignore_errors=True)
    return path


def uninstall_component(profile: Profile, comp: str) -> Path:
    """Remove every version of a component and its records.

    Raises:
        InvalidNameError: ``comp`` is not a safe name (never a path).
    """
    path = profile.component_dir(component_id(comp))
    with home_lock(profile):
        shutil.rmtree(profile.installed_dir / comp, ignore_errors=True)
        trash = profile.staging_dir / f"trash-{secrets.token_hex(6)}"
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)
    return path
