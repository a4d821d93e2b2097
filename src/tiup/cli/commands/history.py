"""``tiup history`` and ``tiup history cleanup`` (``behavior.md`` §1.4, §5.10, §12.13).

Every ``tiup`` run is recorded by :mod:`tiup.cli.entry` in ``$TIUP_HOME/history``
(:mod:`tiup.client.history`, Go TiUP's files and format, so both implementations
show each other's runs). The output is Go's: a ``Date Command Code`` table and
the history directory, or one JSON object per line with ``--format json``.
"""

from __future__ import annotations

import click

from tiup.cli import output
from tiup.errors import UsageError

#: set when ``tiup history`` is parsed without a subcommand: ROWS may be given
_ROWS = "tiup.history.rows"


class HistoryGroup(click.Group):
    """``tiup history [ROWS] [OPTIONS]`` and ``tiup history cleanup [OPTIONS]``.

    The row count is a positional argument as in TiUP, next to a subcommand: the
    argument (and options after it) are parsed only when the first word is not
    ``cleanup``; otherwise the group has no ROWS (nor does ``cleanup``'s usage line).
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not (args and args[0] in self.commands):
            ctx.meta[_ROWS] = True
            ctx.allow_interspersed_args = True
        return super().parse_args(ctx, args)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        if ctx.meta.get(_ROWS):
            return params
        return [p for p in params if p.name != "rows"]

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[ROWS] [OPTIONS] | cleanup [OPTIONS]")


def _rows(value: str | None, limit: int | None, all_: bool) -> int | None:
    """How many records to show: None for all."""
    if all_:
        return None
    if limit is not None:
        return limit
    if value is None:
        return 100
    try:
        rows = int(value)
    except ValueError:
        raise UsageError(f"{value}: numeric argument required") from None
    if rows < 0:
        raise UsageError(f"{value}: the number of rows cannot be negative")
    return rows


def _complete_rows(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """Where ROWS may be typed, so may the subcommand."""
    group = ctx.command
    assert isinstance(group, click.Group)
    return [name for name in group.commands if name.startswith(incomplete)]


@click.group("history", cls=HistoryGroup, invoke_without_command=True)
@click.argument("rows", required=False, metavar="[ROWS]", shell_complete=_complete_rows)
@click.option("-n", "--limit", type=click.IntRange(0), default=None, metavar="N",
              help="Show the last N records (the same as ROWS).")
@click.option("--all", "all_", is_flag=True, help="Display all execution history.")
@click.option("--format", "fmt", type=click.Choice(["default", "json"]), default="default",
              show_default=True, help="The format of output.")
@click.pass_context
def history(ctx: click.Context, limit: int | None, all_: bool, fmt: str,
            rows: str | None = None) -> int:
    """Display the historical execution record of TiUP: the last ROWS runs (default
    100), oldest first.

    Every tiup command is recorded in $TIUP_HOME/history when it ends (except
    --version and --help), with passwords hidden; Go TiUP uses the same files.
    """
    if ctx.invoked_subcommand is not None:
        return 0
    from tiup.cli.listing import table_lines
    from tiup.client import history as records
    from tiup.client.profile import Profile

    home = Profile().home
    found = records.read(str(home), _rows(rows, limit, all_))
    if fmt == "json":
        for row in found:
            output.out(row.to_json())
        return 0
    table = [["Date", "Command", "Code"]]
    table += [[row.time.strftime("%Y-%m-%dT%H:%M:%S"), row.command, str(row.exit_code)]
              for row in found]
    for line in table_lines(table):
        output.out(line)
    output.out(f"history log save path: {home / records.DIR}")
    return 0


@history.command("cleanup", short_help="Delete old execution history")
@click.option("--retain-days", type=int, default=60, show_default=True,
              help="Number of days to keep history for deletion.")
@click.option("--all", "all_", is_flag=True, help="Delete all history.")
@click.option("-y", "--yes", is_flag=True, help="Skip all confirmations and assumes 'yes'.")
def cleanup(retain_days: int, all_: bool, yes: bool) -> int:
    """Delete the execution history older than --retain-days days (all of it with --all).

    Only older records are removed: each history file is rewritten with the
    records it keeps (TiUP deletes whole files by their modification time).
    """
    from datetime import datetime, timedelta

    from tiup import clock
    from tiup.cli.prompt import confirm_or_abort
    from tiup.client import history as records
    from tiup.client.profile import Profile

    if retain_days < 0:
        raise UsageError("retain-days cannot be less than 0")
    cutoff = clock.now() - timedelta(days=0 if all_ else retain_days)
    before: datetime | None = None if all_ else cutoff  # --all: every record, whatever its time
    if not yes:
        shown = cutoff.astimezone().strftime("%Y-%m-%dT%H:%M:%S")
        output.out(f"History logs before {shown} will be deleted!")
        confirm_or_abort("Do you want to continue? [y/N]:")
    removed = records.cleanup(str(Profile().home), before)
    output.out(f"Deleted {removed} history record(s).")
    return 0
