"""What every benchmark shares: its section of docs/benchmarks.md, the machine line, and
the previous implementation's source tree to compare with."""

from __future__ import annotations

import io
import os
import platform
import re
import subprocess
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"


def write_section(name: str, text: str, *, keep_subsections: bool = False,
                  after: str | None = None) -> None:
    """Replace the ``## name`` section of docs/benchmarks.md with ``text`` (its heading
    added when ``text`` has none). ``keep_subsections`` keeps the old section's
    hand-written ``### `` subsections after the new text. A section not there yet goes
    after the ``## after`` section, else at the end."""
    heading = f"## {name}\n"
    section = text.strip() + "\n"
    if not section.startswith(heading):
        section = heading + "\n" + section
    doc = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    old = re.search(rf"\n## {re.escape(name)}\n.*?(?=\n## |\Z)", doc, flags=re.S)
    if old is not None:
        kept = old.group(0).find("\n### ") if keep_subsections else -1
        if kept >= 0:
            section += old.group(0)[kept:].rstrip("\n") + "\n"
        doc = doc[:old.start()] + "\n" + section + doc[old.end():]
    else:
        prev = re.search(rf"\n## {re.escape(after)}\n.*?(?=\n## |\Z)", doc,
                         flags=re.S) if after else None
        at = prev.end() if prev is not None else len(doc)
        doc = doc[:at].rstrip("\n") + "\n\n" + section + doc[at:]
    DOC.write_text(doc.rstrip("\n") + "\n")


def machine() -> str:
    """Cores, CPU model, memory, kernel and Python of this machine, for a results line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{os.cpu_count()} cores ({cpu}){mem}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def source_tree(rev: str, into: Path) -> Path:
    """``git archive <rev> src`` unpacked in ``into``; returns its ``src`` (the tree a
    benchmark compares the working tree with, in the same run)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], check=True,
                             capture_output=True).stdout
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"
