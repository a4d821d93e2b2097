"""``tiup mirror``: manage a component repository."""

from __future__ import annotations

import click

from tiup.cli.group import OrderedGroup

#: TiUP's help order, then the commands this project adds.
MIRROR_ORDER = (
    "init", "sign", "genkey", "clone", "merge", "publish", "show", "set", "modify", "renew",
    "grant", "rotate", "transfer-owner", "verify", "prune", "serve",
)


@click.group(cls=OrderedGroup, order=MIRROR_ORDER)
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


@click.command("tiup-server", context_settings={"help_option_names": ["-h", "--help"]})
def serve_standalone() -> None:
    """Serve a mirror over HTTP (not available yet in this build)."""
    from tiup.errors import TiupError

    raise TiupError("tiup-server is not available yet")


def _register() -> None:
    from tiup.cli.verify import verify

    mirror.add_command(verify)
    from tiup.cli.mirror_set import set_cmd, show

    mirror.add_command(set_cmd)
    mirror.add_command(show)
    from tiup.cli.mirror_keys import genkey, sign
    from tiup.cli.mirror_maint import modify, renew, rotate, transfer_owner
    from tiup.cli.mirror_write import grant, init, publish

    for command in (init, sign, genkey, publish, modify, renew, grant, rotate, transfer_owner):
        mirror.add_command(command)


_register()
