"""``tiup mirror``: manage a component repository (the subcommands load lazily)."""

from __future__ import annotations

import click

from tiup.cli.group import LazyGroup
from tiup.cli.registry import MIRROR_COMMANDS


class MirrorGroup(LazyGroup):
    """An unknown subcommand is an error (exit 1) with a hint; TiUP silently exits 0."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and not ctx.resilient_parsing and \
                self.get_command(ctx, name) is None:
            from difflib import get_close_matches

            from tiup.errors import TiupError

            close = get_close_matches(name, self.list_commands(ctx), n=1)
            hint = f"did you mean `tiup mirror {close[0]}`?" if close else None
            raise TiupError(f"unknown command {name!r} for `tiup mirror`",
                            hint=hint or "run `tiup mirror --help` to list the commands")
        return super().resolve_command(ctx, args)


@click.group(cls=MirrorGroup, table=MIRROR_COMMANDS, invoke_without_command=True)
@click.option("--repo", metavar="PATH", default=None,
              help="Path to the repository (default: the configured mirror).")
@click.pass_context
def mirror(ctx: click.Context, repo: str | None) -> None:
    """The `mirror` command is used to manage a component repository for TiUP, you can use
    it to create a private repository, or to add new component to an existing repository.
    The repository can be used either online or offline.
    It also provides some useful utilities to help manage keys, users, and versions
    of components or the repository itself.
    """
    ctx.ensure_object(dict)
    ctx.obj["repo"] = repo
    if ctx.invoked_subcommand is None:  # `tiup mirror` alone: its help, exit 0 (as TiUP)
        click.echo(ctx.get_help())
        ctx.exit(0)
