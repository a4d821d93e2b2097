"""``tiup install``, ``tiup update``, ``tiup uninstall`` (``behavior.md`` §5.2, §5.4, §5.5)."""

from __future__ import annotations

import click

from tiup.cli import output
from tiup.cli.clientctx import Downloads, flush_warnings, open_updater, profile
from tiup.client.profile import Profile
from tiup.client.updater import Updater
from tiup.errors import InstallError, SelfUpdateError, TiupError, UsageError

NOT_FOUND = "The component `{c}` not found (may be deleted from repository); skipped"


def install_one(prof: Profile, updater: Updater, comp: str, wanted: str, *, force: bool,
                quiet_installed: bool = False, downloads: Downloads | None = None
                ) -> str | None:
    """Install ``comp:wanted``; returns the version installed (or already present).

    Each download shows a progress bar, or leaves a line on stderr (``downloads``
    counts them for a summary).

    Returns None (after printing the TiUP "skipped" message) for an unknown or
    yanked component, or a platform without a nightly.

    Raises:
        TiupError: verification, download or install failures.
    """
    from tiup import clock
    from tiup.client import installer
    from tiup.client.resolve import current_platform, resolve_remote

    updater.refresh()
    flush_warnings(updater)
    item_index = updater.index.components.get(comp)
    if item_index is None or item_index.yanked:
        output.out(NOT_FOUND.format(c=comp))
        return None
    manifest = updater.component(comp)
    updater.note_component_expiry(manifest)
    flush_warnings(updater)
    plat = current_platform()
    try:
        version, item = resolve_remote(manifest, wanted, plat)
    except InstallError as exc:
        if wanted == "nightly":
            output.out(f"{exc.message}; skipped")
            return None
        raise
    why = installer.damage(prof, comp, version)
    if why is not None and not force:
        output.warn(f"component `{comp}` version {version} is damaged ({why}); reinstalling it")
    elif not force and installer.is_installed(prof, comp, version, item.entry):
        if not quiet_installed:
            output.info(f"component {comp} version {version} is already installed")
        return version
    downloads = downloads or Downloads(updater.address)
    installer.install(prof, updater, comp, version, item, clock.now(), force=force,
                      progress=downloads.factory())
    return version


def install_specs(specs: list[str], *, force: bool, nightly: bool = False,
                  command: str = "install") -> int:
    """The install path shared by install and update; exit 1 if any spec failed."""
    from tiup.client.resolve import parse_specs

    parsed = parse_specs(specs)  # every argument checked before anything is done
    prof = profile()
    updater = open_updater(prof, f"tiup {command}")
    downloads = Downloads(updater.address)
    new: list[str] = []
    present: list[str] = []
    failed: list[str] = []
    try:
        for spec, (comp, wanted) in zip(specs, parsed, strict=True):
            if nightly and not wanted:
                wanted = "nightly"
            before = downloads.count
            try:
                version = install_one(prof, updater, comp, wanted, force=force,
                                      downloads=downloads)
            except UsageError:
                raise  # e.g. a malformed TIUP_* setting: the same for every spec
            except TiupError as exc:
                output.error(exc.message, exc.hint)
                failed.append(spec)
                continue
            if version is None:
                failed.append(spec)
            else:
                (new if downloads.count > before else present).append(f"{comp}:{version}")
    finally:
        updater.close()
    output.out(summary(new, present, failed, downloads))
    return 1 if failed else 0


def summary(new: list[str], present: list[str], failed: list[str], downloads: Downloads
            ) -> str:
    """The last line of ``install`` and ``update``: what was installed, what already was,
    what failed, and what was downloaded."""
    parts = [f"{what}: {', '.join(specs)}" for what, specs in (
        ("Installed", new), ("Already installed", present), ("Failed", failed)) if specs]
    files = "1 download" if downloads.count == 1 else f"{downloads.count} downloads"
    return f"{'; '.join(parts) or 'Nothing to install'} ({files}, " \
        f"{output.human_bytes(downloads.bytes)})"


@click.command("install", context_settings={"ignore_unknown_options": False})
@click.argument("specs", nargs=-1, metavar="<component1>[:version] [component2...N]")
@click.option("--force", is_flag=True, help="If the specified version was already installed, "
              "force a reinstallation.")
@click.pass_context
def install(ctx: click.Context, specs: tuple[str, ...], force: bool) -> int:
    """Install a specific version of a component. The component can be specified by <component>
    or <component>:<version>. The latest stable version will be installed if there is no
    version specified.

    You can install multiple components at once, or install multiple versions of the same
    component:

    \b
      tiup install tidb:v3.0.5 tikv pd
      tiup install tidb:v3.0.5 tidb:v3.0.8 tikv:v3.0.9
    """
    if not specs:
        click.echo(ctx.get_help())
        return 0
    return install_specs(list(specs), force=force)


@click.command("update")
@click.argument("specs", nargs=-1, metavar="[component1][:version] [component2..N]")
@click.option("--all", "all_", is_flag=True, help="Update all installed components.")
@click.option("--nightly", is_flag=True, help="Update the components to nightly version.")
@click.option("--force", is_flag=True, help="Force update a component to the latest version.")
@click.option("--self", "self_", is_flag=True, help="Update tiup to the latest version.")
@click.pass_context
def update(ctx: click.Context, specs: tuple[str, ...], all_: bool, nightly: bool, force: bool,
           self_: bool) -> int:
    """Update some components to the latest version. Use `--nightly` to update to the latest
    nightly version. Use `--all` to update all components installed locally. Use
    `<component>:<version>` to update to the specified version. Components will be ignored
    if the latest version has already been installed locally, but you can use `--force`
    to update them anyway.
    """
    if (not specs and not (all_ or force or self_)) or (specs and all_):
        click.echo(ctx.get_help())
        return 0
    if self_:
        code = update_self()
        if not (specs or all_):
            return code
    targets = list(specs) or _installed_names(profile())
    if not targets:
        output.info("No component is installed.")
        return 0
    code = install_specs(targets, force=force, nightly=nightly, command="update")
    if code == 0:
        output.out("Updated successfully!")
    return code


def update_self() -> int:
    """``tiup update --self``: the newest ``tiup`` of the mirror, installed and verified
    like any component, replaces the running self-contained tiup (``client.selfupdate``)."""
    import os
    from pathlib import Path

    import tiup
    from tiup.client import installer
    from tiup.client.selfupdate import build_of, prune_runtimes, replace_self, same_file

    if tiup.LAUNCHER is None:
        raise SelfUpdateError(
            "this tiup runs from a Python installation (pip or a virtualenv), not from the "
            "self-contained build a mirror carries: `tiup update --self` cannot replace it",
            hint="upgrade it the way it was installed (e.g. pip install -U), or install the "
                 "mirror's tiup with its local_install.sh", code="not-self-contained")
    current = Path(tiup.LAUNCHER)
    prof = profile()
    updater = open_updater(prof, "tiup update")
    try:
        version = install_one(prof, updater, "tiup", "", force=False, quiet_installed=True)
    finally:
        updater.close()
    record = installer.read_record(prof, "tiup", version) if version else None
    if version is None or record is None:
        raise SelfUpdateError(
            f"mirror {updater.address} has no installable `tiup` for this platform",
            hint="publish one (scripts/build-dist, then tiup mirror publish tiup ...)",
            code="no-tiup")
    new = prof.component_dir("tiup", version) / record.entry
    if same_file(current, new):
        output.out(f"tiup is already the newest version in the mirror ({version})")
        return 0
    from tiup import __version__ as old

    old_build = build_of(current)
    replace_self(current, new, version, os.environ)
    output.out(f"Updated successfully! {current} was v{old}, is now {version}")
    # the unpacked files of builds older than the previous one go (the previous one may
    # still be running elsewhere)
    keep = {b for b in (old_build, build_of(current)) if b}
    if keep:
        prune_runtimes(prof.home / "runtime", keep)
    return 0


@click.command("uninstall")
@click.argument("specs", nargs=-1, metavar="<component1>:<version>")
@click.option("--all", "all_", is_flag=True, help="Remove all components or versions.")
@click.option("--self", "self_", is_flag=True, help="Uninstall tiup and clean all local data.")
@click.pass_context
def uninstall(ctx: click.Context, specs: tuple[str, ...], all_: bool, self_: bool) -> int:
    """If you specify a version number, uninstall the specified version of the component. You
    must use --all explicitly if you want to remove all components or versions which are
    installed. You can uninstall multiple components or multiple versions of a component at
    once. The --self flag which is used to uninstall tiup.

    \b
      # Uninstall tiup
      tiup uninstall --self
      # Uninstall the specific version of a component
      tiup uninstall tidb:v3.0.10
      # Uninstall all versions of the specific component
      tiup uninstall tidb --all
      # Uninstall all installed components
      tiup uninstall --all
    """
    from tiup.client import installer
    from tiup.client.resolve import parse_specs

    parsed = parse_specs(specs)  # hello:../../x is a usage error before anything is removed
    prof = profile()
    if self_:
        return _uninstall_self(prof)
    if not specs:
        if not all_:
            click.echo(ctx.get_help())
            return 0
        for comp in _installed_names(prof):
            installer.uninstall_component(prof, comp)
        output.out("Uninstalled all components successfully!")
        return 0
    for spec, (comp, version) in zip(specs, parsed, strict=True):
        if ":" in spec and not version:
            raise UsageError(f"no version given in `{spec}`; use `tiup uninstall {comp} --all` "
                             "to remove every version")
        if not prof.component_dir(comp).is_dir():
            raise InstallError(f"component `{comp}` is not installed, please use "
                               f"`tiup list {comp}` to check")
        if not version:
            if not all_:
                output.out(f"Use `tiup uninstall {comp} --all` if you want to remove all "
                           "versions.")
                continue
            path = installer.uninstall_component(prof, comp)
            output.out(f"Removing directory {path}")
            output.out(f"Uninstalled component `{spec}` successfully!")
            continue
        if version == "nightly":
            chosen = [v for v in installer.installed_versions(prof, comp) if "nightly" in v]
        else:
            chosen = [version] if prof.component_dir(comp, version).is_dir() or \
                prof.record_path(comp, version).is_file() else []
        if not chosen:
            raise InstallError(f"component `{spec}` is not installed, please check")
        for v in chosen:
            path = installer.uninstall_version(prof, comp, v)
            output.out(f"Removing directory {path}")
        if not installer.installed_versions(prof, comp):
            installer.uninstall_component(prof, comp)
        output.out(f"Uninstalled component `{spec}` successfully!")
    return 0


def _installed_names(prof: Profile) -> list[str]:
    """Installed components whose directory name is a valid component id (others: a warning)."""
    from tiup.client.installer import installed_components
    from tiup.errors import InvalidNameError
    from tiup.manifest.names import component_id

    names: list[str] = []
    for name in installed_components(prof):
        try:
            names.append(component_id(name))
        except InvalidNameError:
            output.warn(f"skipping {prof.components_dir / name}: not a valid component name")
    return names


def _uninstall_self(prof: Profile) -> int:
    import shutil

    for path in (prof.storage_dir / "cluster" / "packages", prof.components_dir,
                 prof.manifests_dir, prof.home / "manifest", prof.bin_dir, prof.installed_dir,
                 prof.staging_dir, prof.mirrors_dir, prof.home / "runtime"):
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
            output.out(f"Remove directory '{path}' successfully!")
    output.out("Uninstalled TiUP successfully! (User data reserved, you can delete "
               f"'{prof.home}' manually if you confirm userdata useless)")
    return 0
