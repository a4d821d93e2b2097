"""``tiup mirror modify`` and ``renew``: change or re-sign published components."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from tiup.cli import output
from tiup.cli.commands.mirror_common import (
    key_option,
    mirror_target,
    open_writer,
    timeout_option,
    write_options,
)

if TYPE_CHECKING:
    from tiup.manifest.models import Index
    from tiup.repository.view import MirrorView


@click.command("modify", short_help="Modify published component")
@click.argument("spec", metavar="COMPONENT[:VERSION]")
@click.option("--yank/--no-yank", default=None,
              help="Yank (or un-yank) the component, or only VERSION if given.")
@click.option("--hide/--no-hide", default=None, help="Hide the component in `tiup list`.")
@click.option("--standalone/--no-standalone", default=None,
              help="Mark the component as runnable on its own.")
@click.option("--desc", default="", help="New description.")
@key_option
@timeout_option
@write_options
@click.pass_context
def modify(ctx: click.Context, spec: str, yank: bool | None, hide: bool | None,
           standalone: bool | None, desc: str, key_files: tuple[str, ...], timeout: float,
           key_dir: str | None, lock_timeout: float) -> int:
    """Modify a published component: description, flags, or yank one version.

    Works on a local mirror or an http(s):// mirror served by `tiup mirror serve`.

    \b
    Examples:
      tiup mirror modify hello --desc "Say hello"
      tiup mirror modify hello:v0.0.1 --yank
    """
    from tiup.errors import UsageError
    from tiup.repository.admin import modify as do_modify

    comp, _, version = spec.partition(":")
    if version and (hide is not None or standalone is not None):
        raise UsageError("--hide and --standalone apply to a whole component, not to "
                         f"{comp}:{version}")
    target = mirror_target(ctx)
    with open_writer(target, key_files, key_dir, timeout=timeout,
                     lock_timeout=lock_timeout) as writer:
        new = writer.run(lambda view: do_modify(
            view, writer.keyring, comp, version or None, yank=yank, hidden=hide,
            standalone=standalone, desc=desc))
    output.info(f"Modified {comp} (manifest version {new.version})")
    return 0


@click.command("renew", short_help="Renew the manifest of a published component.")
@click.argument("components", nargs=-1)
@click.option("--days", type=click.IntRange(1), default=None,
              help="Component (and --index) lifetime from now (default: the mirror's).")
@click.option("--index", "with_index", is_flag=True, help="Also re-sign the index.")
@click.option("--all", "all_components", is_flag=True, help="Renew every component.")
@key_option
@timeout_option
@write_options
@click.pass_context
def renew(ctx: click.Context, components: tuple[str, ...], days: int | None, with_index: bool,
          all_components: bool, key_files: tuple[str, ...], timeout: float,
          key_dir: str | None, lock_timeout: float) -> int:
    """Renew manifests; snapshot.json and timestamp.json are always re-signed.

    Name what to renew: COMPONENT..., --all or --index; to re-sign only
    snapshot.json and timestamp.json, name the mirror with `tiup mirror --repo
    DIR renew`. Works on a mirror that has already expired. On an http(s)://
    mirror the named components are renewed through the server (which re-signs
    snapshot and timestamp); --index needs the local mirror.

    \b
    Examples:
      tiup mirror --repo /data/mirror renew   # only snapshot and timestamp
      tiup mirror renew hello --days 730
      tiup mirror renew --all --index
    """
    from tiup.repository.admin import renew_component

    if not (components or all_components or with_index or (ctx.obj or {}).get("repo")):
        raise click.UsageError(
            "Missing argument 'COMPONENT...': name the components to renew (or --all, "
            "--index); to re-sign only snapshot.json and timestamp.json, name the mirror: "
            "`tiup mirror --repo DIR renew`", ctx=ctx)
    target = mirror_target(ctx)
    with open_writer(target, key_files, key_dir, timeout=timeout,
                     lock_timeout=lock_timeout) as writer:
        if with_index:
            writer.local_only("--index needs the mirror's index key: run it on the server's "
                              "mirror directory")
        if not (components or all_components):
            writer.local_only(f"name the components to renew on {target} (or --all)")

        def build(view: MirrorView) -> Index | None:
            names = sorted(view.index.components) if all_components else list(components)
            for name in names:
                comp = renew_component(view, writer.keyring, name, days)
                output.info(f"Renewed {name}: version {comp.version}, expires {comp.expires}")
            return view.renew_index(days) if with_index else None

        index = writer.run(build)
    if index is not None:
        output.info(f"Renewed the index: version {index.version}, expires {index.expires}")
    # (remotely, the server re-signed them with each manifest it took)
    output.info(f"Renewed snapshot.json and timestamp.json of {target}")
    return 0
