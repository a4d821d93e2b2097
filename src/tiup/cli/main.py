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


def main() -> None:
    """Entry point of the ``tiup`` command."""
    errors.run(lambda: cli.main(standalone_mode=False, prog_name="tiup"))


def server_main() -> None:
    """Entry point of the ``tiup-server`` command (the mirror server)."""
    from tiup.cli.mirror import serve_standalone

    errors.run(lambda: serve_standalone.main(standalone_mode=False, prog_name="tiup-server"))
