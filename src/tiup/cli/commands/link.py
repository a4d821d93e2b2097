"""``tiup link`` and ``tiup unlink`` (experimental in TiUP; ``behavior.md`` §5.9, §12.13).

``link`` puts a symbolic link to an installed version's binary in
``$TIUP_HOME/bin`` (put that directory on ``PATH`` to run it without ``tiup``),
with TiUP's messages and its ``.old`` backup of a file it replaces. ``unlink``
removes such a link, and only a symbolic link pointing into
``components/<component>/``: never another file (TiUP removes whatever has the
binary's name), and it still works after the component was uninstalled.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from tiup.cli import output
from tiup.cli.clientctx import open_updater, profile
from tiup.client.profile import Profile
from tiup.errors import TiupError


def _binary(prof: Profile, comp: str, wanted: str) -> Path:
    """The binary of the installed version TiUP would run (§4); no download.

    Raises:
        InstallError: not installed (the message says which ``tiup install`` to run).
        DamagedInstallError: the selected version's files are gone.
    """
    from tiup.cli.commands.run import installed_binary
    from tiup.client.resolve import not_installed_error

    updater = open_updater(prof, "tiup link")
    try:
        found = installed_binary(prof, updater, comp, wanted)
    finally:
        updater.close()
    if found is None:
        raise not_installed_error(comp, wanted)
    return found[1].absolute()


def _check_name(prof: Profile, name: str) -> None:
    """``$TIUP_HOME/bin`` also holds tiup and its trust anchors: a component never
    replaces them."""
    if name == "tiup" or name.endswith(".json") or name.endswith(".old"):
        raise TiupError(f"refusing to link {name} into {prof.bin_dir}: tiup keeps its own "
                        f"files under that name there", code="reserved-name")


@click.command("link")
@click.argument("specs", nargs=-1, metavar="<component>[:version]")
@click.pass_context
def link(ctx: click.Context, specs: tuple[str, ...]) -> int:
    """[experimental] Link component binary to $TIUP_HOME/bin/.

    The installed version TiUP would run (the latest installed, or VERSION) is
    linked as $TIUP_HOME/bin/<binary name>; a file already there is kept as
    <name>.old until the link is in place.
    """
    from tiup.client.resolve import parse_spec

    if len(specs) != 1:
        click.echo(ctx.get_help())
        return 0
    comp, wanted = parse_spec(specs[0])
    prof = profile()
    binary = _binary(prof, comp, wanted)
    name = binary.name
    _check_name(prof, name)
    prof.bin_dir.mkdir(parents=True, exist_ok=True)
    target = prof.bin_dir / name
    backup = prof.bin_dir / f"{name}.old"
    if target.is_dir() and not target.is_symlink():
        raise TiupError(f"{target} is a directory: not replaced by a link",
                        hint="move it away, then run `tiup link` again")
    existed = os.path.lexists(target)
    if existed:
        try:
            os.replace(target, backup)
        except OSError:
            output.out(f"Backup of `{target}` to `{backup}` failed.")
            raise
    output.out(f"package {comp} provides these executables: {name}")
    try:
        os.symlink(binary, target)
    except OSError:
        if existed:
            os.replace(backup, target)
        raise
    if existed:
        os.remove(backup)
    return 0


def _links(prof: Profile, comp: str, wanted: str) -> list[Path]:
    """The symbolic links in ``$TIUP_HOME/bin`` that point into ``components/<comp>/``
    (into a version directory matching ``wanted``, if given)."""
    from tiup.client.resolve import version_candidates

    base = prof.components_dir / comp
    roots = [base / v for v in version_candidates(wanted)] if wanted else [base]
    found: list[Path] = []
    try:
        entries = sorted(prof.bin_dir.iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.is_symlink():
            continue
        pointed = Path(os.path.normpath(prof.bin_dir / os.readlink(entry)))
        real = Path(os.path.realpath(entry))
        for root in roots:
            if pointed.is_relative_to(root) or real.is_relative_to(os.path.realpath(root)):
                found.append(entry)
                break
    return found


@click.command("unlink")
@click.argument("specs", nargs=-1, metavar="<component>[:version]")
@click.option("-y", "--yes", is_flag=True, help="Remove the link without asking.")
@click.pass_context
def unlink(ctx: click.Context, specs: tuple[str, ...], yes: bool) -> int:
    """[experimental] Unlink component binary in $TIUP_HOME/bin/.

    Removes the symbolic links `tiup link` made to the component (to VERSION
    only, if given), after asking. Other files are never removed.
    """
    from tiup.cli.prompt import confirm_or_abort
    from tiup.client.resolve import parse_spec

    if len(specs) != 1:
        click.echo(ctx.get_help())
        return 0
    comp, wanted = parse_spec(specs[0])
    prof = profile()
    links = _links(prof, comp, wanted)
    if not links:
        what = f"{comp}:{wanted}" if wanted else comp
        raise TiupError(f"no link to component `{what}` in {prof.bin_dir}",
                        hint=f"`tiup link {what}` makes one", code="no-link")
    for target in links:
        if not yes:
            confirm_or_abort(f"{target} will be removed.\n Do you want to continue? [y/N]:")
        os.remove(target)
    return 0
