"""A click group that imports a command's module only when the command is used.

:class:`LazyGroup` is given a table of :mod:`tiup.cli.registry`: a name maps
to ``"module:attribute"`` and a short help. Listing the commands (``--help``)
reads only the table; resolving a name (to run it, or to show its own help)
imports its module then. So ``tiup --help`` loads no command module, and
``tiup mirror publish`` loads the publish module but not clone's or serve's.
Shell completion (``tiup completion``) lists the commands from the table too,
and imports a command's module only to complete that command's own options.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem


class LazyGroup(click.Group):
    """Commands from ``table`` (name → (target, short help, cut)), listed in its order."""

    def __init__(self, *args: Any, table: Mapping[str, tuple[str, str, bool]],
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.table = table

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.table, *sorted(n for n in self.commands if n not in self.table)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is not None:
            return command
        entry = self.table.get(cmd_name)
        if entry is None:
            return None
        from importlib import import_module

        module, _, attribute = entry[0].partition(":")
        command = getattr(import_module(module), attribute)
        if not isinstance(command, click.Command) or command.name != cmd_name:
            raise RuntimeError(f"{entry[0]} is not the click command {cmd_name!r}")
        if not entry[2] and command.short_help is None:
            command.short_help = entry[1]  # the table is where a whole short help is written
        self.commands[cmd_name] = command
        return command

    def listed(self, name: str) -> click.Command:
        """What ``--help`` lists for ``name``: the loaded command, else its stand-in."""
        loaded = self.commands.get(name)
        return loaded if loaded is not None else stand_in(name, self.table[name])

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's own layout (``Group.format_commands``), from the table."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = [(n, self.listed(n).get_short_help_str(limit)) for n in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """The commands starting with ``incomplete`` (from the table: nothing is imported),
        then the group's own options."""
        from click.shell_completion import CompletionItem

        items = [CompletionItem(name, help=self.listed(name).get_short_help_str())
                 for name in self.list_commands(ctx)
                 if name.startswith(incomplete) and not self.listed(name).hidden]
        return items + click.Command.shell_complete(self, ctx, incomplete)


def stand_in(name: str, entry: tuple[str, str, bool]) -> click.Command:
    """A command that only carries the table's short help, for listing without importing.

    Its ``get_short_help_str`` is the real command's at every width: click cuts a
    docstring's first sentence to fit (``cut``), and shows a ``short_help=`` whole.
    """
    _target, text, cut = entry
    return click.Command(name, help=text) if cut else click.Command(name, short_help=text)
