"""Shared plumbing of the client commands: profile, mirror, updater, warnings, tables,
downloads."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from tiup.cli import output

if TYPE_CHECKING:
    from tiup.client.profile import Profile
    from tiup.client.updater import Updater
    from tiup.transport.base import Fetcher


def profile() -> Profile:
    from tiup.client.profile import Profile

    return Profile()


def effective_mirror(prof: Profile) -> str:
    """The mirror this run uses (:meth:`Profile.effective_mirror`), with the notice of
    :func:`notice_env_mirror`.

    Raises:
        TiupError: ``tiup.toml`` cannot be read.
    """
    address = prof.effective_mirror()
    notice_env_mirror(prof)
    return address


def notice_env_mirror(prof: Profile) -> None:
    """Once per run, on stderr: ``TIUP_MIRRORS`` names another mirror than ``tiup.toml``.

    Go TiUP warns too, then rewrites ``tiup.toml`` (TiUP #651); here the variable
    applies to this run only, and the notice says so.
    """
    from tiup.errors import TiupError
    from tiup.transport.address import normalise_address

    from_env = prof.env.get("TIUP_MIRRORS")
    if not from_env:
        return
    try:
        configured = prof.configured_mirror()
    except TiupError:
        return  # the command reports it where it reads the file
    if configured is None or normalise_address(configured) == normalise_address(from_env):
        return
    if output.once("TIUP_MIRRORS"):
        output.warn(f"both the mirror of tiup.toml ({configured}) and TIUP_MIRRORS ({from_env}) "
                    f"are set: using TIUP_MIRRORS for this run only; tiup.toml is not changed "
                    f"(run `tiup mirror set {from_env}` to make it the default)")


def open_updater(prof: Profile, command: str, address: str | None = None,
                 fetcher: Fetcher | None = None) -> Updater:
    """An updater for the effective mirror (or ``address``, read through ``fetcher`` if
    given), honouring offline mode."""
    from tiup import clock
    from tiup.client.updater import Updater

    return Updater(prof, address or effective_mirror(prof), clock.now(), offline=prof.offline,
                   command=command, fetcher=fetcher)


def flush_warnings(updater: Updater) -> None:
    """Print (once) the warnings the updater collected, on stderr."""
    for text in updater.warnings:
        output.warn(text)
    updater.warnings.clear()


class Downloads:
    """The tarball downloads of one command: a progress bar (or a log line) each, and
    the totals for the command's summary line."""

    def __init__(self, address: str):
        self.address = address.rstrip("/")
        self.count = 0
        self.bytes = 0

    @contextlib.contextmanager
    def _one(self, description: str, total: int) -> Iterator[Callable[[int, int], None]]:
        name = description.rpartition(" ")[2]  # the installer says "download <file name>"
        done = [0]

        def update(now: int, size: int) -> None:
            done[0] = now
            shown(now, size)

        with output.download_progress(f"{self.address}/{name}", name, total) as shown:
            try:
                yield update
            finally:
                self.count += 1
                self.bytes += done[0]

    def factory(self) -> Callable[[str, int], contextlib.AbstractContextManager[
            Callable[[int, int], None]]]:
        """What :func:`tiup.client.installer.install` takes as ``progress``."""
        return self._one


def print_table(rows: list[list[str]]) -> None:
    """TiUP's table (:func:`tiup.cli.listing.table_lines`) on stdout."""
    from tiup.cli.listing import table_lines

    for line in table_lines(rows):
        output.out(line)
