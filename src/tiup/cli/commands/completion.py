"""``tiup completion bash|zsh|fish``: click's shell-completion scripts (``behavior.md`` §5.11).

The script calls ``tiup`` back with ``_TIUP_COMPLETE`` set; :mod:`tiup.cli.entry`
sends such a call straight to click, whose machinery completes the commands and
options of the lazy groups (:meth:`tiup.cli.group.LazyGroup.shell_complete`: the
command names come from the registry, a command's module is imported only to
complete its own options) and the installed components
(:class:`tiup.cli.main.RootGroup`).
"""

from __future__ import annotations

import click

from tiup.cli import output

#: what click derives from the program name ``tiup``
COMPLETE_VAR = "_TIUP_COMPLETE"


def script(shell: str) -> str:
    """The completion script of ``shell`` (``bash``, ``zsh`` or ``fish``)."""
    from click.shell_completion import get_completion_class

    from tiup.cli.main import cli

    cls = get_completion_class(shell)
    assert cls is not None
    return cls(cli, {}, "tiup", COMPLETE_VAR).source()


@click.group("completion", invoke_without_command=True)
@click.pass_context
def completion(ctx: click.Context) -> int:
    """Generate the autocompletion script for tiup for the specified shell.

    See each sub-command's help for details on how to use the generated script.
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
    return 0


@completion.command("bash")
def bash() -> int:
    """Generate the autocompletion script for bash.

    It needs bash 4.4 or later. To load completions in your current shell session:

    \b
      source <(tiup completion bash)

    To load completions for every new session, execute once:

    \b
      tiup completion bash > ~/.local/share/bash-completion/completions/tiup
    """
    output.out(script("bash"))
    return 0


@completion.command("zsh")
def zsh() -> int:
    """Generate the autocompletion script for zsh.

    To load completions in your current shell session:

    \b
      source <(tiup completion zsh)

    To load completions for every new session, execute once (the directory must
    be in your $fpath, before `compinit` runs):

    \b
      tiup completion zsh > "${fpath[1]}/_tiup"
    """
    output.out(script("zsh"))
    return 0


@completion.command("fish")
def fish() -> int:
    """Generate the autocompletion script for fish.

    To load completions in your current shell session:

    \b
      tiup completion fish | source

    To load completions for every new session, execute once:

    \b
      tiup completion fish > ~/.config/fish/completions/tiup.fish
    """
    output.out(script("fish"))
    return 0
