"""The ``tiup`` and ``tiup-server`` entry points (after :mod:`tiup.cli.entry`'s fast path).

The CLI is thin: parse, call the library, render, map errors to exit codes
(:mod:`tiup.cli.errors`). Commands are loaded lazily (:mod:`tiup.cli.group`,
:mod:`tiup.cli.registry`), and heavy imports (crypto, HTTP, rich) happen
inside the commands, so ``tiup mirror --help`` loads click and no command
module. (``tiup --version`` and the root help never get here: the entry
point answers them.)
"""

from __future__ import annotations

import click

from tiup.cli import errors, output
from tiup.cli.group import LazyGroup
from tiup.cli.registry import ROOT_COMMANDS, ROOT_HELP, version_line

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(version_line())
    ctx.exit(0)


# The option help texts are also in registry.ROOT_OPTIONS (for the fast `tiup --help`).
@click.group(cls=LazyGroup, table=ROOT_COMMANDS, context_settings=CONTEXT,
             invoke_without_command=True, help=ROOT_HELP)
@click.option("-v", "--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_version, help="Print the version of tiup.")
@click.option("--verbose", is_flag=True, help="Show tracebacks and timing details on errors.")
@click.option("--no-progress", is_flag=True, help="Never draw progress bars.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, no_progress: bool) -> None:
    output.set_options(progress=not no_progress, verbose=verbose)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@click.command("help")
@click.argument("name", required=False)
@click.pass_context
def help_cmd(ctx: click.Context, name: str | None) -> int | None:
    """Help about any command, or the help of an installed component."""
    root = ctx.parent
    assert root is not None
    sub = cli.get_command(root, name) if name else None
    if name and sub is not None:
        with click.Context(sub, info_name=name, parent=root) as sub_ctx:
            click.echo(sub.get_help(sub_ctx))
        return 0
    if name:
        from tiup.cli.commands.run import component_help

        code = component_help(name)
        if code is not None:
            return code
    click.echo(root.get_help())
    return 0


def dispatch(argv: list[str]) -> object:
    """Route ``tiup`` arguments: driver flags, then a subcommand (click) or a component.

    Click never sees a component's arguments: they pass through verbatim.
    """
    import os

    from tiup.cli.driver import CLICK_WORDS, scan
    from tiup.errors import UsageError

    d = scan(argv)
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
