"""``tiup --help`` without click: the root help, laid out exactly as click lays it out.

Importing click alone costs about three times the start-up of Python itself,
so the root help (``tiup``, ``tiup -h``, ``tiup --help``, ``tiup help``) is
rendered here from :mod:`tiup.cli.registry` with the standard library only.
The layout follows click's ``HelpFormatter`` (usage line; the help text
wrapped at the terminal width, at most 100 columns; the options and the
commands as two-column lists; a docstring's first sentence cut to fit with
``...``). ``tests/test_cli_lazy.py`` renders the same help with click at
several widths and requires the same bytes, so the two cannot drift apart.
"""

from __future__ import annotations

import os
import sys
import textwrap

from tiup.cli.registry import ROOT_COMMANDS, ROOT_HELP, ROOT_OPTIONS

#: click's ``max_content_width`` for tiup (``tiup.cli.main.CONTEXT``).
MAX_WIDTH = 100
USAGE = "Usage: tiup [OPTIONS] [COMMAND] [ARGS]..."


class _Wrapper(textwrap.TextWrapper):
    """click's wrapper: a word too long for the line is cut at the width (not at a hyphen)."""

    def _handle_long_word(self, reversed_chunks: list[str], cur_line: list[str],
                          cur_len: int, width: int) -> None:
        space_left = max(width - cur_len, 1)
        if self.break_long_words:
            last = reversed_chunks[-1]
            cur_line.append(last[:space_left])
            reversed_chunks[-1] = last[space_left:]
        elif not cur_line:
            cur_line.append(reversed_chunks.pop())


def _columns() -> int:
    """``shutil.get_terminal_size().columns`` (without importing shutil)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 80
        columns = columns or 80
    return columns


def _wrap(text: str, width: int, indent: str = "") -> str:
    """click's ``wrap_text(..., preserve_paragraphs=True)`` for text without ``\\b`` blocks."""
    wrapper = _Wrapper(width, initial_indent=indent, subsequent_indent=indent,
                       replace_whitespace=False)
    paragraphs: list[str] = []
    lines: list[str] = []
    for line in [*text.expandtabs().splitlines(), ""]:
        if line:
            lines.append(line.lstrip() if not lines else line)
        elif lines:
            paragraphs.append(wrapper.fill(" ".join(lines)))
            lines = []
    return "\n\n".join(paragraphs)


def _short_help(text: str, limit: int) -> str:
    """click's default short help of a docstring whose first sentence is ``text``."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    if limit < 3:
        return "..."
    return textwrap.shorten(text, limit, placeholder="...", break_on_hyphens=False)


def _definitions(rows: list[tuple[str, str]], width: int, indent: int = 2) -> list[str]:
    """click's ``HelpFormatter.write_dl``."""
    first_col = min(max(len(a) for a, _b in rows), 30) + 2
    out = []
    for first, second in rows:
        line = " " * indent + first
        if not second:
            out.append(line)
            continue
        if len(first) <= first_col - 2:
            line += " " * (first_col - len(first))
        else:
            out.append(line)
            line = " " * (first_col + indent)
        text = _wrap(second, max(width - first_col - 2, 10)).splitlines() or [""]
        out.append(line + text[0])
        out.extend(" " * (first_col + indent) + t for t in text[1:])
    return out


def root_help() -> str:
    """The text of ``tiup --help`` (without the final newline)."""
    width = max(min(_columns(), MAX_WIDTH) - 2, 50)
    limit = width - 6 - max(len(n) for n in ROOT_COMMANDS)
    commands = [(name, _short_help(text, limit) if cut else text.strip())
                for name, (_target, text, cut) in ROOT_COMMANDS.items()]
    out = [USAGE, "", _wrap(ROOT_HELP, width, "  "), "", "Options:"]
    out += _definitions(list(ROOT_OPTIONS), width)
    out += ["", "Commands:"]
    out += _definitions(commands, width)
    return "\n".join(out)
