"""``tiup <component>[:version] [args...]`` and ``tiup --binary`` (``behavior.md`` §5.1, §12.9).

Selecting an installed version never needs the network: candidates are the
version directories with an install record (written only after verification),
plus directories Go TiUP installed that the cached component manifest (its
signature checked, expiry ignored) lists as non-yanked with an existing entry.
Only a missing version (or ``--force-pull``) leads to the mirror.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tiup.cli import output
from tiup.cli.clientctx import effective_mirror, open_updater, profile
from tiup.cli.driver import DriverArgs
from tiup.client.profile import Profile
from tiup.client.updater import Updater
from tiup.errors import DamagedInstallError as Damaged
from tiup.errors import InstallError, TiupError
from tiup.manifest.models import Component


def installed_binary(prof: Profile, updater: Updater | None, comp: str, wanted: str
                      ) -> tuple[str, Path] | None:
    """(version, binary) of the installed version to run, or None.

    Versions with an install record are candidates even when their files were
    damaged since, so a damaged version is never silently passed over for an
    older one.

    Raises:
        Damaged: the selected version's entry (or directory) is missing.
    """
    from tiup.client import installer
    from tiup.client.extract import entry_exists
    from tiup.client.resolve import pick_installed

    entries: dict[str, str] = {}
    cached: Component | None = None
    looked = False
    versions = set(installer.installed_versions(prof, comp))
    versions.update(installer.recorded_versions(prof, comp))
    for version in sorted(versions):
        record = installer.read_record(prof, comp, version)
        if record is not None:
            entries[version] = record.entry
            continue
        if updater is None:
            continue
        if not looked:
            cached, looked = updater.cached_component(comp), True
        if cached is None:
            continue
        for _plat, ver, item in cached.items():
            if ver == version and not item.yanked and item.entry and \
                    entry_exists(prof.component_dir(comp, version), item.entry):
                entries[version] = item.entry
                break
    chosen = pick_installed(sorted(entries), wanted)
    if chosen is None:
        return None
    why = installer.damage(prof, comp, chosen)
    if why is not None:
        raise Damaged(comp, chosen, why)
    return chosen, prof.component_dir(comp, chosen) / entries[chosen]


def _repair(prof: Profile, updater: Updater, damaged: Damaged) -> None:
    """Reinstall a damaged version from the mirror (its tarball verified as for any install).

    Raises:
        InstallError: the reinstall failed (offline, mirror down, version gone...),
            with the hint to run ``tiup install --force`` later.
    """
    from tiup.cli.commands.install import install_one

    comp, version = damaged.comp, damaged.version
    output.warn(f"{damaged.message}; reinstalling it from {updater.address}")
    try:
        got = install_one(prof, updater, comp, version, force=True, quiet_installed=True)
    except TiupError as exc:
        raise InstallError(
            f"{damaged.message} and could not be reinstalled: {exc.message}",
            file=damaged.file,
            hint=f"run `tiup install --force {comp}:{version}` when the mirror is reachable",
        ) from exc
    if got != version:
        raise InstallError(
            f"{damaged.message} and the mirror no longer offers it",
            file=damaged.file,
            hint=f"remove it with `tiup uninstall {comp}:{version}`, or install another "
                 f"version with `tiup install {comp}`",
        )


def print_binary(d: DriverArgs) -> int:
    """``tiup --binary <comp>[:ver]``: the path of an installed version; no download."""
    from tiup.client.resolve import not_installed_error, parse_spec

    assert d.binary is not None
    comp, wanted = parse_spec(d.binary)
    prof = profile()
    updater = open_updater(prof, "tiup --binary")
    found = installed_binary(prof, updater, comp, wanted)
    if found is None:
        raise not_installed_error(comp, wanted)
    output.out(str(found[1].resolve()))
    return 0


def run_component(d: DriverArgs) -> int:
    """Select (installing if needed) and run a component; returns its exit code.

    Raises:
        TiupError: the component cannot be installed or selected.
        OSError: the binary cannot be started.
    """
    from tiup.cli.commands.install import install_one
    from tiup.client.resolve import not_installed_error, parse_spec
    from tiup.client.runner import run_binary

    assert d.word is not None
    comp, wanted = parse_spec(d.word)
    prof = profile()
    updater = open_updater(prof, f"tiup {comp}")

    def announce(argv: str) -> None:
        output.info(f"Starting component `{comp}`: {argv}")

    if d.binpath:
        binary = Path(d.binpath).resolve()
        return run_binary(str(prof.home), prof.env, comp=comp, binary=str(binary),
                          args=d.rest, user_version=wanted, tag=d.tag,
                          mirror=effective_mirror(prof), announce=announce)
    try:
        found = None if d.force_pull else installed_binary(prof, updater, comp, wanted)
    except Damaged as damaged:
        try:
            _repair(prof, updater, damaged)
        finally:
            updater.close()
        found = installed_binary(prof, updater, comp, damaged.version)
    if found is None:
        shown = wanted if wanted else ""
        output.info(f"The component `{comp}` version {shown} is not installed; "
                    "downloading from repository.")
        try:
            version = install_one(prof, updater, comp, wanted, force=d.force_pull,
                                  quiet_installed=True)
        finally:
            updater.close()
        if version is None:
            raise not_installed_error(comp, wanted)
        found = installed_binary(prof, updater, comp, version)
        if found is None:
            raise not_installed_error(comp, wanted)
    _version, binary = found
    sys.stdout.flush()
    return run_binary(str(prof.home), prof.env, comp=comp, binary=str(binary), args=d.rest,
                      user_version=wanted, tag=d.tag, mirror=effective_mirror(prof),
                      announce=announce)


def component_help(comp: str) -> int | None:
    """``tiup help <component>``: the component's own ``--help`` if it is installed."""
    from tiup.cli.driver import scan

    d = scan([comp, "--help"])
    prof = profile()
    try:
        from tiup.client.resolve import parse_spec

        name, wanted = parse_spec(comp)
        if installed_binary(prof, None, name, wanted) is None:
            return None
    except Damaged:
        pass  # run_component repairs it
    except TiupError:
        return None
    return run_component(d)
