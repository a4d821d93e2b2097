"""The ``tiup`` and ``tiup-server`` entry points.

The CLI is thin: parse, call the library, render, map errors to exit codes
(:mod:`tiup.cli.errors`). Heavy imports (crypto, HTTP) happen inside the
commands, so ``tiup --help`` stays fast.
"""

from __future__ import annotations

import click

from tiup import TIUP_COMPAT_VERSION, __version__
from tiup.cli import errors, output
from tiup.cli.group import OrderedGroup
from tiup.cli.mirror import mirror
from tiup.cli.package import package

ROOT_ORDER = (
    "install", "list", "uninstall", "update", "status", "clean", "mirror", "package",
    "env", "history", "link", "unlink", "help",
)

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"{__version__} tiup (Python; compatible with TiUP {TIUP_COMPAT_VERSION})")
    ctx.exit(0)


@click.group(cls=OrderedGroup, order=ROOT_ORDER, context_settings=CONTEXT,
             invoke_without_command=True)
@click.option("-v", "--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_version, help="Print the version of tiup.")
@click.option("--verbose", is_flag=True, help="Show tracebacks and timing details on errors.")
@click.option("--no-progress", is_flag=True, help="Never draw progress bars.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, no_progress: bool) -> None:
    """TiUP is a command-line component management tool that can help to download and install
    TiDB platform components to the local system. You can run a specific version of a
    component via "tiup <component>[:version]".

    This is tiup in Python: fully compatible with Go TiUP's mirrors, keys and
    $TIUP_HOME, with a private-mirror system that verifies every byte.
    """
    output.set_options(progress=not no_progress, verbose=verbose)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


cli.add_command(mirror)
cli.add_command(package)


@click.command("help")
@click.argument("name", required=False)
@click.pass_context
def help_cmd(ctx: click.Context, name: str | None) -> int | None:
    """Help about any command, or the help of an installed component."""
    root = ctx.parent
    assert root is not None
    if name and name in cli.commands:
        sub = cli.commands[name]
        with click.Context(sub, info_name=name, parent=root) as sub_ctx:
            click.echo(sub.get_help(sub_ctx))
        return 0
    if name:
        from tiup.cli.run_cmd import component_help

        code = component_help(name)
        if code is not None:
            return code
    click.echo(root.get_help())
    return 0


def _register_client() -> None:
    from tiup.cli.info_cmds import clean, env, list_cmd, status
    from tiup.cli.install_cmds import install, uninstall, update

    for command in (install, list_cmd, uninstall, update, status, clean, env, help_cmd):
        cli.add_command(command)


_register_client()


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
        from tiup.cli.run_cmd import print_binary

        return print_binary(d)
    word = d.word
    if word is None or word in cli.commands or word in CLICK_WORDS or word.startswith("-"):
        args = [*d.click_prefix(), *([word] if word else []), *d.raw_rest]
        return cli.main(args=args, standalone_mode=False, prog_name="tiup")
    from tiup.cli.run_cmd import run_component

    return run_component(d)


def main() -> None:
    """Entry point of the ``tiup`` command (after :mod:`tiup.cli.entry`'s fast path)."""
    import sys

    errors.run(lambda: dispatch(sys.argv[1:]))


def server_main() -> None:
    """Entry point of the ``tiup-server`` command (the mirror server)."""
    from tiup.cli.mirror_serve import serve_standalone

    errors.run(lambda: serve_standalone.main(standalone_mode=False, prog_name="tiup-server"))
