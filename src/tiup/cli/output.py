"""Output discipline: data to stdout, messages and progress to stderr.

Colour is used only on a terminal and never when ``NO_COLOR`` is set;
progress bars only when stderr is a terminal and progress is not turned off
(``--no-progress`` or ``TIUP_NO_PROGRESS=1``). Without a bar, a download leaves
one line on stderr when it ends, in Go TiUP's form (``download <url> 4.50 MiB /
4.50 MiB``), so a log shows every download. Sizes are in binary units (KiB, MiB,
GiB) everywhere: :func:`human_bytes`.

TiUP's informational messages (its ``log.Infof``: "Private key has been
written to ...", "Published ...") go to stdout (:func:`say`), so scripts keep
them; warnings and errors go to stderr.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

_state = {"progress": True, "verbose": False}
#: what :func:`once` has seen in this run
_seen: set[str] = set()


def new_run() -> None:
    """Start of a ``tiup`` run (the dispatch): forget what :func:`once` has seen."""
    _seen.clear()


def once(key: str) -> bool:
    """True the first time ``key`` is asked for in this run: for one-per-run notices."""
    if key in _seen:
        return False
    _seen.add(key)
    return True


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


def out_lines(lines: list[str]) -> None:
    """Lines of data on stdout, written (and flushed) in one go: a listing of 20,000
    versions is one write, not 20,000 writes and flushes."""
    if lines:
        click.echo("\n".join(lines))


def say(text: str) -> None:
    """An informational message Go TiUP prints on stdout (``log.Infof``, ``fmt.Printf``):
    on stdout, so scripts that read it keep working."""
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


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 tarball``, ``2 tarballs`` (``plural``: when it is not ``noun + "s"``)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def human_bytes(n: int | float) -> str:
    """A size as Go TiUP prints it: ``512 B``, ``1.50 KiB``, ``4.50 MiB``, ``2.00 GiB``."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def download_line(url: str, done: int, total: int) -> str:
    """What a download leaves in a log: Go TiUP's non-terminal progress text."""
    if total > 0:
        return f"download {url} {human_bytes(done)} / {human_bytes(total)}"
    return f"download {url} {human_bytes(done)}"


def progress_columns(width: int) -> list[Any]:
    """Rich columns of a byte progress bar that fit ``width`` columns (60 stays readable):
    the description cut with an ellipsis, a bar that shrinks, done/total and speed in
    binary units, and the time left when there is room."""
    from rich.progress import BarColumn, DownloadColumn, ProgressColumn, TextColumn
    from rich.table import Column
    from rich.text import Text

    class Speed(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            shown = "? MiB/s" if speed is None else f"{human_bytes(speed)}/s"
            return Text(shown.rjust(12), style="progress.data.speed")

    eta = width >= 80
    # done/total (at most 17 cells), speed (12), the time left (7) and the gaps between
    # columns are fixed; the description gets up to 30 cells, then the bar grows
    fixed = 17 + 12 + (8 if eta else 0) + 3
    bar = max(6, min(40, width - fixed - 30))
    columns: list[Any] = [
        TextColumn("{task.description}", table_column=Column(
            no_wrap=True, overflow="ellipsis", max_width=max(12, width - fixed - bar))),
        BarColumn(bar_width=bar, table_column=Column(no_wrap=True, min_width=bar)),
        DownloadColumn(binary_units=True, table_column=Column(no_wrap=True)),
        Speed(table_column=Column(no_wrap=True)),
    ]
    if eta:
        from rich.progress import TimeRemainingColumn

        columns.append(TimeRemainingColumn())
    return columns


#: off a terminal, long work (at least this many bytes) leaves a line per tenth done
LOG_PROGRESS_MIN = 64 << 20


def progress_line(description: str, done: int, total: int) -> str:
    """What a long piece of work leaves in a log: ``<description> 40% (X / Y)``."""
    return f"{description} {done * 100 // total}% ({human_bytes(done)} / {human_bytes(total)})"


def _log_progress(description: str) -> Callable[[int, int], None]:
    """``update(done, total)`` printing :func:`progress_line` on stderr each time another
    tenth of a total of at least :data:`LOG_PROGRESS_MIN` bytes is done."""
    shown = [0]

    def update(done: int, total: int) -> None:
        if total < LOG_PROGRESS_MIN or done <= 0:
            return
        tenth = min(10, done * 10 // total)
        if tenth > shown[0]:
            shown[0] = tenth
            info(progress_line(description, done, total))

    return update


@contextmanager
def byte_progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar over bytes; yields ``update(done, total)``. Off a terminal (a pipe,
    a log) a line per tenth of long work (:func:`_log_progress`); nothing with
    ``--no-progress`` / ``TIUP_NO_PROGRESS``."""
    if not progress_enabled():
        if _state["progress"] and os.environ.get("TIUP_NO_PROGRESS", "") not in ("1", "true"):
            yield _log_progress(description)
        else:
            yield lambda done, total: None
        return
    from rich.progress import Progress

    console = stderr_console()
    with Progress(*progress_columns(console.width), console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@contextmanager
def download_progress(url: str, name: str, total: int) -> Iterator[Callable[[int, int], None]]:
    """The progress of one download; yields ``update(done, total)``.

    On a terminal: a bar showing ``name``. Otherwise (a pipe, a log, ``--no-progress``):
    the line of :func:`download_line` on stderr when the download ends, also when it
    fails.
    """
    if progress_enabled():
        with byte_progress(name) as update:
            update(0, total)
            yield update
        return
    seen = [0, total]

    def remember(done: int, size: int) -> None:
        seen[0], seen[1] = done, size or seen[1]

    try:
        yield remember
    finally:
        info(download_line(url, seen[0], seen[1]))
