"""The bootstrap files of a clone: ``tiup-<os>-<arch>.tar.gz`` and ``local_install.sh``.

Each selected platform gets ``tiup-<os>-<arch>.tar.gz``, the file
``local_install.sh`` installs ``tiup`` from (``behavior.md`` §12.6): a copy of the
verified tarball of the newest stable ``tiup`` the clone holds for that platform, or,
only if it holds none, the source's own bootstrap file, downloaded unverified (with a
warning). In a bucket, the copy is made on the server after the commit, and
``local_install.sh`` (which installs from a directory) is not written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from tiup.errors import FetchError, InvalidNameError, RepositoryError, TiupError
from tiup.fsutil import atomic_write
from tiup.hashing import FileInfo
from tiup.manifest import versions as V
from tiup.manifest.models import Component, VersionItem
from tiup.manifest.names import bootstrap_name, check_item_url
from tiup.repository.clone.fetch import WORK_DIR, FetchResult
from tiup.repository.clone.plan import CloneOptions, CloneReport
from tiup.repository.store import Store
from tiup.transport.base import Fetcher, is_absent

if TYPE_CHECKING:
    from tiup.repository.s3_storage import S3Storage

LOCAL_INSTALL = "local_install.sh"
#: the source's bootstrap tarball (unverified fallback) may be at most this large
BOOTSTRAP_CAP = 512 * 1024 * 1024


def tarball_of(comp_id: str, plat: str, ver: str, item: VersionItem) -> str | None:
    """The file name of a source item's tarball, or None unless its url is the one rule
    (``/<id>-<version>-<os>-<arch>.tar.gz``) allows: a clone writes only such names."""
    try:
        return check_item_url(comp_id, plat, ver, item.url)
    except InvalidNameError:
        return None


def write_bootstrap(store: Store, has_tiup: bool, fetched: FetchResult, opts: CloneOptions,
                    report: CloneReport, fetcher: Fetcher) -> bool:
    """``tiup-<os>-<arch>.tar.gz`` per selected platform (``behavior.md`` §12.6).

    A copy of the verified tarball of the newest stable ``tiup`` cloned for that
    platform; only if none was cloned, the source's own bootstrap file, downloaded
    unverified (with a warning); a source without it is skipped (a note).
    """
    comp = store.component("tiup") if has_tiup else None
    changed = False
    for plat, boot, name in bootstrap_sources(comp, opts, fetched.verified):
        dest = store.directory / boot
        if name is not None:
            source = store.directory / name
        else:
            downloaded = _download_bootstrap(fetcher, boot, store.directory, report)
            if downloaded is None:
                continue
            source = downloaded
            report.warnings.append(_unverified(boot, plat))
        try:
            same = dest.stat().st_size == source.stat().st_size and _same_file(dest, source)
        except OSError:
            same = False
        if not same:
            store.stage_tarball(boot, source)
            changed = True
        report.bootstrap.append(boot)
    return changed


def bootstrap_sources(comp: Component | None, opts: CloneOptions,
                      verified: Mapping[str, FileInfo]) -> list[tuple[str, str, str | None]]:
    """(platform, ``tiup-<os>-<arch>.tar.gz``, the tarball of the newest stable ``tiup``
    cloned for it if it is among the ``verified`` ones, else None) per selected
    platform."""
    out: list[tuple[str, str, str | None]] = []
    for plat in opts.platforms:
        vs = {v: it for v, it in comp.platforms.get(plat, {}).items()
              if not it.yanked} if comp is not None else {}
        latest = V.latest_stable(vs)
        name = tarball_of("tiup", plat, latest, vs[latest]) if latest is not None else None
        os_name, _, arch = plat.partition("/")
        out.append((plat, bootstrap_name(os_name, arch),
                    name if name is not None and name in verified else None))
    return out


def write_bucket_bootstrap(storage: S3Storage, comp: Component | None, opts: CloneOptions,
                           verified: Mapping[str, FileInfo], report: CloneReport,
                           fetcher: Fetcher, spool: Path) -> None:
    """The bootstrap files of a clone into a bucket, after its commit (no manifest names
    them): a server-side copy of the verified ``tiup`` tarball in the bucket (``verified``:
    uploaded by this run, or held since an earlier one, by name), or
    the source's own file (unverified, with a warning), each only if the bucket does not
    hold those bytes yet. A file that cannot be written is a failed file of the clone (the
    next run writes it)."""
    for plat, boot, name in bootstrap_sources(comp, opts, verified):
        try:
            if name is not None:
                storage.copy_within(name, boot, verified[name])
            else:
                downloaded = _download_bootstrap(fetcher, boot, spool, report)
                if downloaded is None:
                    continue
                report.warnings.append(_unverified(boot, plat))
                try:
                    storage.replace_file(boot, downloaded, FileInfo.of_file(downloaded))
                finally:
                    downloaded.unlink(missing_ok=True)
        except (TiupError, OSError) as exc:
            reason = exc.message if isinstance(exc, TiupError) else str(exc)
            report.failed.append((f"/{boot}", reason))
            continue
        report.bootstrap.append(boot)


def _unverified(boot: str, plat: str) -> str:
    return (f"{boot} is the source's own file, downloaded without verification: no "
            f"verified `tiup` component was cloned for {plat} (clone `--tiup latest` to "
            "get a verified copy)")


def _download_bootstrap(fetcher: Fetcher, boot: str, target: Path,
                        report: CloneReport) -> Path | None:
    """The source's ``boot`` file in the clone's work directory, or None (noted)."""
    path = target / WORK_DIR / boot
    try:
        fetcher.download(boot, path, expected_length=BOOTSTRAP_CAP)
    except FetchError as exc:
        if is_absent(exc):  # a 404, or an object store's 403 for a missing object
            report.notes.append(f"TiUP doesn't have {boot[5:-7].replace('-', '/')}, skipped")
        else:
            report.failed.append((f"/{boot}", exc.reason))  # one short summary line
        return None
    return path


def _same_file(a: Path, b: Path) -> bool:
    return FileInfo.of_file(a).sha256 == FileInfo.of_file(b).sha256


def write_local_install(target: Path) -> None:
    path = target / LOCAL_INSTALL
    # The script is a file of this package (readable and checkable as a shell script):
    # host checks, then the steps of Go TiUP's local_install.sh (behavior.md §10.3).
    data = Path(__file__).with_name(LOCAL_INSTALL).read_bytes()
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    try:
        atomic_write(path, data, 0o755)
    except OSError as exc:
        raise RepositoryError(f"cannot write {path}: {exc.strerror}", file=str(path)) from exc
