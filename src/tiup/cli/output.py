"""Output discipline: data to stdout, messages and progress to stderr.

Colour is used only on a terminal and never when ``NO_COLOR`` is set;
progress bars only when stderr is a terminal and progress is not turned off
(``--no-progress`` or ``TIUP_NO_PROGRESS=1``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.console import Console

_state = {"progress": True, "verbose": False}


def set_options(*, progress: bool | None = None, verbose: bool | None = None) -> None:
    if progress is not None:
        _state["progress"] = progress
    if verbose is not None:
        _state["verbose"] = verbose


def verbose() -> bool:
    return _state["verbose"] or os.environ.get("TIUP_VERBOSE", "") in ("1", "enable", "true")


def _color(stream: object) -> bool:
    return not os.environ.get("NO_COLOR") and bool(getattr(stream, "isatty", lambda: False)())


def out(text: str = "") -> None:
    """A line of data or result on stdout."""
    click.echo(text)


def info(text: str) -> None:
    """A progress or status message on stderr."""
    click.echo(text, err=True)


def warn(text: str) -> None:
    """``Warning: ...`` on stderr (yellow on a terminal)."""
    msg = f"Warning: {text}"
    click.echo(click.style(msg, fg="yellow") if _color(sys.stderr) else msg, err=True)


def error(text: str, hint: str | None = None) -> None:
    """``Error: ...`` on stderr (red on a terminal), then an optional hint."""
    msg = f"Error: {text}"
    click.echo(click.style(msg, fg="red") if _color(sys.stderr) else msg, err=True)
    if hint:
        click.echo(f"Hint: {hint}", err=True)


def progress_enabled() -> bool:
    if not _state["progress"] or os.environ.get("TIUP_NO_PROGRESS", "") in ("1", "true"):
        return False
    return sys.stderr.isatty()


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")))


@contextmanager
def byte_progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar over bytes; yields ``update(done, total)``. A no-op off a terminal."""
    if not progress_enabled():
        yield lambda done, total: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=stderr_console(),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
