"""Shared plumbing of the client commands: profile, updater, warnings, tables, installs."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from tiup.cli import output

if TYPE_CHECKING:
    from tiup.client.profile import Profile
    from tiup.client.updater import Updater


def profile() -> Profile:
    from tiup.client.profile import Profile

    return Profile()


def open_updater(prof: Profile, command: str, address: str | None = None) -> Updater:
    """An updater for the effective mirror (or ``address``), honouring offline mode."""
    from tiup import clock
    from tiup.client.updater import Updater

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
    """TiUP's table (:func:`tiup.cli.listing.table_lines`) on stdout."""
    from tiup.cli.listing import table_lines

    for line in table_lines(rows):
        output.out(line)
