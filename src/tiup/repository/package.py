"""``tiup package``: build a component tarball with Python's ``tarfile`` (gzip).

Same flags, outputs and file name as TiUP (``behavior.md`` §10.1), but no
system ``tar`` is needed. Owners are reset to root (uid/gid 0, no names) so a
tarball does not leak the packager's account; permissions are kept.
"""

from __future__ import annotations

import contextlib
import os
import tarfile
from pathlib import Path

from tiup.errors import TiupError
from tiup.fsutil import tmp_name


def _reset_owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def build_package(targets: list[str], output: Path, base_dir: Path | None = None) -> list[str]:
    """Write ``output`` (gzip tar) holding ``targets`` (relative to ``base_dir``, like ``tar -C``).

    Returns:
        The member names written.

    Raises:
        TiupError: a target is missing or the archive cannot be written.
    """
    base = base_dir if base_dir is not None else Path.cwd()
    for target in targets:
        if not os.path.lexists(base / target):
            raise TiupError(f"package target: {target}: no such file or directory in {base}")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(output)
    names: list[str] = []
    try:
        with tarfile.open(tmp, mode="w:gz") as tar:
            for target in targets:
                tar.add(base / target, arcname=os.path.normpath(target), filter=_reset_owner)
            names = tar.getnames()
        os.replace(tmp, output)
    except OSError as exc:
        raise TiupError(f"package target: cannot write {output}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return names
