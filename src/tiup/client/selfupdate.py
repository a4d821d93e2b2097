"""Replace the running tiup by another, verified one (``tiup update --self``).

The new ``tiup`` is the entry of the ``tiup`` component, installed (downloaded and
verified like any component) before this module is called. The replacement:

1. copies the new file next to the running one (``.tiup.new-<pid>``, flushed to disk);
2. keeps the running one as ``.tiup.old`` (a hard link: the same inode);
3. renames the new file over ``tiup`` (atomic: a reader sees the old or the new file);
4. runs ``tiup --version``: on exit 0 with the expected version, the backup goes;
   otherwise the backup is renamed back over ``tiup`` and the update is reported as
   rolled back.

Interrupted at any step, ``tiup`` is a complete file, the old or the new one; an
interruption after step 3 leaves ``.tiup.old`` next to it (the next update replaces it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tiup.errors import SelfUpdateError

BACKUP = ".tiup.old"
#: how long the new tiup may take to answer ``--version`` (its first run unpacks itself)
CHECK_TIMEOUT = 300.0


@dataclass
class Replaced:
    path: Path
    version: str
    answer: str


def same_file(a: Path, b: Path) -> bool:
    """True if both files have the same bytes."""
    try:
        if a.stat().st_size != b.stat().st_size:
            return False
        with a.open("rb") as fa, b.open("rb") as fb:
            while True:
                ca, cb = fa.read(1 << 20), fb.read(1 << 20)
                if ca != cb:
                    return False
                if not ca:
                    return True
    except OSError:
        return False


def replace_self(current: Path, new: Path, version: str, env: Mapping[str, str]) -> Replaced:
    """Put ``new`` in place of ``current`` and check it answers ``--version`` with
    ``version``; roll back if it does not.

    Raises:
        SelfUpdateError: ``replace-failed`` (nothing changed) or ``rolled-back``.
    """
    folder = current.parent
    tmp = folder / f".tiup.new-{os.getpid()}"
    backup = folder / BACKUP
    try:
        with new.open("rb") as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o755)  # noqa: S103 - an executable, like the one it replaces
        backup.unlink(missing_ok=True)
        try:
            os.link(current, backup)
        except OSError:
            shutil.copy2(current, backup)
        os.replace(tmp, current)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SelfUpdateError(
            f"cannot replace {current}: {exc.strerror or exc}", file=str(current),
            hint=f"make {folder} writable for this user and retry", code="replace-failed",
        ) from exc
    _fsync_dir(folder)
    ok, answer = _answers(current, version, env)
    if ok:
        backup.unlink(missing_ok=True)
        return Replaced(current, version, answer)
    try:
        os.replace(backup, current)
    except OSError as exc:
        raise SelfUpdateError(
            f"the new tiup {version} does not work ({answer}) and the previous one could "
            f"not be put back: {exc.strerror or exc}", file=str(current),
            hint=f"copy {backup} over {current} by hand", code="replace-failed") from exc
    _fsync_dir(folder)
    raise SelfUpdateError(
        f"the new tiup {version} did not answer `tiup --version` ({answer}); the previous "
        "tiup was put back", file=str(current),
        hint="report it to the mirror's administrator (the component `tiup` is broken)",
        code="rolled-back")


_RUNTIME = re.compile(r"([0-9a-f]{16})-\d+\.\d+")
_PROLOGUE_BUILD = re.compile(rb"/runtime/([0-9a-f]{16})\n")


def build_of(launcher: Path) -> str | None:
    """The build id a self-contained ``tiup`` file unpacks under, from its prologue."""
    try:
        with launcher.open("rb") as fh:
            head = fh.read(2048)
    except OSError:
        return None
    match = _PROLOGUE_BUILD.search(head)
    return match.group(1).decode() if match else None


def prune_runtimes(runtime: Path, keep: set[str]) -> list[Path]:
    """Remove the unpacked directories (``<build>-<python>``) of builds not in ``keep``;
    half-made ones (``.unpack-*``, maybe another tiup's first run) are left alone."""
    removed: list[Path] = []
    try:
        entries = list(runtime.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _RUNTIME.fullmatch(entry.name)
        if match and match.group(1) not in keep and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _answers(path: Path, version: str, env: Mapping[str, str]) -> tuple[bool, str]:
    """Whether ``path --version`` exits 0 and names ``version``; a short description."""
    try:
        proc = subprocess.run([str(path), "--version"], env=dict(env), capture_output=True,
                              text=True, errors="replace", timeout=CHECK_TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False, f"no answer in {CHECK_TIMEOUT:.0f} s"
    except OSError as exc:
        return False, f"cannot start it: {exc.strerror or exc}"
    text = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
    first = text[0][:200] if text else "no output"
    if proc.returncode != 0:
        return False, f"exit status {proc.returncode}: {first}"
    if version.removeprefix("v") not in proc.stdout:
        return False, f"it says {first!r}, not {version}"
    return True, first


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
