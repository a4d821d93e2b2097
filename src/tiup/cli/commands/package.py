"""``tiup package``: build a component tarball ready for ``tiup mirror publish``."""

from __future__ import annotations

from pathlib import Path

import click

from tiup.cli import output


@click.command("package", short_help="Package a tiup component")
@click.argument("targets", nargs=-1)
@click.option("--name", default="", help="Name of the component (required).")
@click.option("--release", default="", help="Version of the component (required).")
@click.option("--entry", default="", help="Executable inside the package (checked if given).")
@click.option("-C", "directory", default=None, metavar="DIR",
              help="Change to DIR before adding the targets (as tar -C).")
@click.option("--os", "os_name", default=None, help="Target OS (default: this machine's).")
@click.option("--arch", default=None, help="Target architecture (default: this machine's).")
@click.option("--desc", default="", help="Accepted for compatibility; ignored.")
@click.option("--standalone", is_flag=True, help="Accepted for compatibility; ignored.")
@click.option("--hide", is_flag=True, help="Accepted for compatibility; ignored.")
@click.pass_context
def package(ctx: click.Context, targets: tuple[str, ...], name: str, release: str, entry: str,
            directory: str | None, os_name: str | None, arch: str | None, desc: str,
            standalone: bool, hide: bool) -> int:
    """Package TARGETS into package/<name>-<release>-<os>-<arch>.tar.gz.

    \b
    Example:
      tiup package hello --entry hello --name hello --release v0.0.1
    """
    from tiup.cli.commands.mirror_publish import default_arch, default_os
    from tiup.errors import TiupError
    from tiup.manifest.names import component_id, tarball_name, version_str
    from tiup.repository.package import build_package

    if not targets:
        click.echo(ctx.get_help())
        return 0
    missing = [f'"{n}"' for n, v in (("name", name), ("release", release)) if not v]
    if missing:
        output.error(f"required flag(s) {', '.join(missing)} not set")
        raise TiupError(f"Packaging component failed: required flag(s) {', '.join(missing)} "
                        "not set")
    file = tarball_name(component_id(name), version_str(release), os_name or default_os(),
                        arch or default_arch())
    out = Path("package") / file
    shown = ["tar", "-czf", str(out)] + (["-C", directory] if directory else []) + list(targets)
    output.out("[" + " ".join(shown) + "]")
    try:
        names = build_package(list(targets), out, Path(directory) if directory else None)
    except TiupError as exc:
        raise TiupError(f"Packaging component failed: {exc.message}") from exc
    if entry and entry.lstrip("./") not in {n.lstrip("./") for n in names}:
        output.warn(f"entry {entry} is not in {out}; `tiup mirror publish` will refuse it")
    return 0
