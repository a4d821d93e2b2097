"""The ``tiup`` and ``tiup-server`` entry points (after :mod:`tiup.cli.entry`'s fast path).

The CLI is thin: parse, call the library, render, map errors to exit codes
(:mod:`tiup.cli.errors`). Commands are loaded lazily (:mod:`tiup.cli.group`,
:mod:`tiup.cli.registry`), and heavy imports (crypto, HTTP, rich) happen
inside the commands, so ``tiup mirror --help`` loads click and no command
module. (``tiup --version`` and the root help never get here: the entry
point answers them.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from tiup.cli import errors, output
from tiup.cli.group import LazyGroup
from tiup.cli.registry import ROOT_COMMANDS, ROOT_HELP, ROOT_OPTIONS, version_line

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
_OPTION_HELP = dict(ROOT_OPTIONS)


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(version_line())
    ctx.exit(0)


def _installed(prefix: str) -> list[str]:
    """Names of the components installed in ``$TIUP_HOME`` that start with ``prefix``."""
    import os

    from tiup.client.homefast import home_dir

    try:
        names = os.listdir(os.path.join(home_dir(os.environ), "components"))
    except OSError:
        return []
    return sorted(n for n in names if n.startswith(prefix) and not n.startswith("."))


def _complete_installed(_ctx: click.Context, _param: click.Parameter, incomplete: str
                        ) -> list[str]:
    return _installed(incomplete)


class RootGroup(LazyGroup):
    """The root: its commands, and for completion the installed components too.

    ``tiup <component> ...`` never reaches click when it runs (:func:`dispatch`);
    completing its arguments completes file names (TiUP asks the component itself).
    """

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        from click.shell_completion import CompletionItem

        items = super().shell_complete(ctx, incomplete)
        if not incomplete.startswith("-"):
            items += [CompletionItem(name, help="installed component")
                      for name in _installed(incomplete) if name not in self.table]
        return items

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if ctx.resilient_parsing and name and not name.startswith("-") and \
                self.get_command(ctx, name) is None:
            return name, _component(name), args[1:]
        return super().resolve_command(ctx, args)


def _component(name: str) -> click.Command:
    """What completion sees for ``tiup <component> ...``: any arguments, file names."""
    return click.Command(name, add_help_option=False,
                         params=[click.Argument(["args"], nargs=-1, type=click.Path())],
                         context_settings={"ignore_unknown_options": True})


# The option help texts are also in registry.ROOT_OPTIONS (for the fast `tiup --help`).
# The driver flags are read by tiup.cli.driver before click runs: here they are only
# shown and completed (never passed to click by dispatch).
@click.group(cls=RootGroup, table=ROOT_COMMANDS, context_settings=CONTEXT,
             invoke_without_command=True, help=ROOT_HELP)
@click.option("-v", "--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_version, help=_OPTION_HELP["-v, --version"])
@click.option("--binary", metavar="<component>[:version]", expose_value=False,
              shell_complete=_complete_installed,
              help=_OPTION_HELP["--binary <component>[:version]"])
@click.option("--binpath", metavar="PATH", type=click.Path(), expose_value=False,
              help=_OPTION_HELP["--binpath PATH"])
@click.option("-T", "--tag", metavar="TAG", expose_value=False,
              help=_OPTION_HELP["-T, --tag TAG"])
@click.option("--offline", is_flag=True, expose_value=False, help=_OPTION_HELP["--offline"])
@click.option("--force-pull", is_flag=True, expose_value=False,
              help=_OPTION_HELP["--force-pull"])
@click.option("--verbose", is_flag=True, help=_OPTION_HELP["--verbose"])
@click.option("--no-progress", is_flag=True, help=_OPTION_HELP["--no-progress"])
@click.pass_context
def cli(ctx: click.Context, verbose: bool, no_progress: bool) -> None:
    output.set_options(progress=not no_progress, verbose=verbose)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def _complete_topic(ctx: click.Context, _param: click.Parameter, incomplete: str
                    ) -> list[CompletionItem]:
    """``tiup help mirror cl<TAB>``: the subcommands of the command named so far."""
    command: click.Command = cli
    where = ctx.parent or ctx
    for name in ctx.params.get("names") or ():
        sub = command.get_command(where, name) if isinstance(command, click.Group) else None
        if sub is None:
            return []
        where, command = click.Context(sub, info_name=name, parent=where), sub
    if not isinstance(command, click.Group):
        return []
    return [item for item in command.shell_complete(where, incomplete)
            if not str(item.value).startswith("-")]


@click.command("help")
@click.argument("names", nargs=-1, metavar="[COMMAND [SUBCOMMAND]...]",
                shell_complete=_complete_topic)
@click.pass_context
def help_cmd(ctx: click.Context, names: tuple[str, ...]) -> int | None:
    """Help about any command (`tiup help mirror clone`), or the help of an installed
    component (its own --help)."""
    from tiup.errors import UsageError

    root = ctx.parent
    assert root is not None
    command: click.Command = cli
    where = root
    for i, name in enumerate(names):
        if not isinstance(command, click.Group):
            break  # like TiUP: the words after a command are ignored
        sub = command.get_command(where, name)
        if sub is None and command is cli:
            from tiup.cli.commands.run import component_help

            code = component_help(name)
            if code is not None:
                return code
            click.echo(root.get_help())
            return 0
        if sub is None:
            parent = " ".join(["tiup", *names[:i]])
            raise UsageError(f"unknown help topic `{' '.join(names[:i + 1])}`",
                             hint=f"`{parent} --help` lists its commands")
        where = click.Context(sub, info_name=name, parent=where)
        command = sub
    click.echo(command.get_help(where))
    return 0


def dispatch(argv: list[str]) -> object:
    """Route ``tiup`` arguments: driver flags, then a subcommand (click) or a component.

    Click never sees a component's arguments: they pass through verbatim.
    """
    import os

    from tiup.cli.driver import CLICK_WORDS, scan
    from tiup.errors import UsageError

    d = scan(argv)
    output.new_run()
    if d.error:
        raise UsageError(d.error)
    output.set_options(progress=not d.no_progress, verbose=d.verbose)
    if d.offline:
        os.environ["TIUP_OFFLINE"] = "1"
    if d.binary is not None:
        from tiup.cli.commands.run import print_binary

        return print_binary(d)
    word = d.word
    if word is None or word in ROOT_COMMANDS or word in CLICK_WORDS or word.startswith("-"):
        args = [*d.click_prefix(), *([word] if word else []), *d.raw_rest]
        return cli.main(args=args, standalone_mode=False, prog_name="tiup")
    from tiup.cli.commands.run import run_component

    return run_component(d)


def main() -> None:
    """Entry point of the ``tiup`` command (after :mod:`tiup.cli.entry`'s fast path)."""
    import sys

    errors.run(lambda: dispatch(sys.argv[1:]))


def server_main() -> None:
    """Entry point of the ``tiup-server`` command (the mirror server)."""
    from tiup.cli.commands.serve import serve_standalone

    errors.run(lambda: serve_standalone.main(standalone_mode=False, prog_name="tiup-server"))
