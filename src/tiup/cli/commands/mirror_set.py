"""``tiup mirror set`` and ``tiup mirror show`` (``behavior.md`` §6.7, §6.8, §12.2)."""

from __future__ import annotations

import click

from tiup.cli import output


@click.command("show", short_help="Show the mirror address")
def show() -> int:
    """Show the mirror address in use (TIUP_MIRRORS, else tiup.toml, else the default)."""
    from tiup.cli.clientctx import effective_mirror
    from tiup.client.profile import Profile

    output.out(effective_mirror(Profile()))
    return 0


@click.command("set", short_help="Set mirror address")
@click.argument("address", required=False, metavar="<mirror-addr>")
@click.option("-r", "--root", "root", metavar="FILE|URL",
              help="Specify the path of `root.json`.")
@click.option("--reset", is_flag=True, help="Reset to the default mirror.")
@click.option("--silent", is_flag=True, help="Skip non-error messages.")
@click.pass_context
def set_cmd(ctx: click.Context, address: str | None, root: str | None, reset: bool,
            silent: bool) -> int:
    """Set mirror address, will replace the root certificate.

    The mirror can be a local directory or an HTTP(S) URL. Its root.json (or
    --root) must be validly signed by its own keys; it becomes the trust
    anchor of the mirror, and the manifest cache is cleared.

    \b
      tiup mirror set /shared_data/tiup
      tiup mirror set https://tiup-mirror.example.com/
      tiup mirror set --reset
    """
    from tiup.client.mirrorset import set_mirror
    from tiup.client.profile import Profile
    from tiup.errors import TiupError

    if not reset and not address:
        click.echo(ctx.get_help())
        return 0
    if reset and address:
        raise click.UsageError("--reset takes no address")
    if address and address.startswith("s3://"):
        from tiup.errors import UsageError

        raise UsageError(f"clients read a mirror in a bucket over HTTP(S), not {address}",
                         hint="tiup mirror set https://<endpoint>/<bucket>/<prefix> (or the "
                              "cache in front of it); write commands take --repo s3://...")
    try:
        result = set_mirror(Profile(), None if reset else address, root)
    except TiupError as exc:
        raise TiupError(f"Failed to set mirror: {exc.message}", file=exc.file,
                        hint=exc.hint) from exc
    if result.pinned is not None and result.root_source.startswith("http://"):
        output.info(f"WARN: Trusting component distribution key via insecure Internet: "
                    f"{result.root_source}")
        output.info(f"      To revoke TiUP's trust, remove this file: {result.pinned}")
    if not silent:
        output.out(f"Successfully set mirror to {result.address}")
    return 0
