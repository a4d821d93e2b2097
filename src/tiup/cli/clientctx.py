"""Shared plumbing of the client commands: profile, updater, warnings, tables, installs."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from tiup.cli import output
from tiup.client.profile import Profile
from tiup.client.updater import Updater


def profile() -> Profile:
    return Profile()


def open_updater(prof: Profile, command: str, address: str | None = None) -> Updater:
    """An updater for the effective mirror (or ``address``), honouring offline mode."""
    from tiup import clock

    return Updater(prof, address or prof.effective_mirror(), clock.now(), offline=prof.offline,
                   command=command)


def flush_warnings(updater: Updater) -> None:
    """Print (once) the warnings the updater collected, on stderr."""
    for text in updater.warnings:
        output.warn(text)
    updater.warnings.clear()


@contextlib.contextmanager
def _bar(description: str, total: int) -> Iterator[Callable[[int, int], None]]:
    with output.byte_progress(description) as update:
        yield update


def progress_factory() -> Callable[[str, int], contextlib.AbstractContextManager[
        Callable[[int, int], None]]]:
    return _bar


def print_table(rows: list[list[str]]) -> None:
    """TiUP's table: header, a row of dashes, columns two spaces apart, trailing spaces trimmed."""
    if not rows:
        return
    header = rows[0]
    table = [header, ["-" * len(h) for h in header], *rows[1:]]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for row in table:
        line = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row))
        output.out(line.rstrip())
