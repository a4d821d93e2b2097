"""``tiup list``, ``status``, ``clean``, ``env`` (``behavior.md`` §5.3, §5.6-§5.8, §12.13)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click

from tiup.cli import output
from tiup.cli.clientctx import flush_warnings, open_updater, print_table, profile

ENV_LIST = (
    "TIUP_HOME", "TIUP_WORK_DIR", "TIUP_USER_INPUT_VERSION", "TIUP_VERSION",
    "TIUP_TELEMETRY_STATUS", "TIUP_TELEMETRY_UUID", "TIUP_TELEMETRY_EVENT_UUID",
    "TIUP_TELEMETRY_SECRET", "TIUP_INSTANCE_DATA_DIR", "TIUP_COMPONENT_DATA_DIR",
    "TIUP_COMPONENT_INSTALL_DIR", "TIUP_SSHPASS_PROMPT", "TIUP_NATIVE_SSH", "TIUP_SSH_PATH",
    "TIUP_SCP_PATH", "TIUP_KEEP_SOURCE_TARGET", "TIUP_MIRROR_SYNC_SCRIPT", "TIUP_LOG_PATH",
    "TIUP_CLUSTER_DEBUG", "TIUP_TAG",
)


@click.command("list")
@click.argument("component", required=False)
@click.option("--all", "all_", is_flag=True, help="Show all components include hidden ones.")
@click.option("--installed", is_flag=True, help="List installed components only.")
@click.option("--verbose", is_flag=True, help="Show detailed component information.")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON on stdout.")
def list_cmd(component: str | None, all_: bool, installed: bool, verbose: bool,
             as_json: bool) -> int:
    """List the available TiDB components if you don't specify any component name, or list
    the available versions of a specific component. Display a list of local caches by
    default. Use the --installed flag to hide components or versions which have not been
    installed.

    \b
      # Refresh and list all available components
      tiup list
      # List all installed components
      tiup list --installed
      # List all installed versions of TiDB
      tiup list tidb --installed
    """
    from tiup.cli.listing import component_rows, list_lines
    from tiup.client.resolve import component_arg
    from tiup.errors import FetchError, TiupError
    from tiup.manifest.models import Component

    if component is not None:
        component = component_arg(component)
    prof = profile()
    updater = open_updater(prof, "tiup list")
    use_cache = installed or prof.offline
    try:
        if use_cache:
            index = updater.cached_index()
            if index is None and not installed:
                updater.refresh()  # a local mirror stays usable offline
                index = updater.index
        else:
            try:
                updater.refresh()
                index = updater.index
            except FetchError as exc:
                # The mirror is down: show the verified cache, as Go TiUP does (§12.9).
                index = updater.cached_index()
                if index is None:
                    raise FetchError(exc.message, file=exc.file, hint=(
                        f"{exc.hint + '; ' if exc.hint else ''}no cached list of "
                        f"{updater.address} to show instead")) from exc
                output.warn(f"cannot refresh metadata from {updater.address}: {exc.message}; "
                            "showing the cached list")
                use_cache = True
        flush_warnings(updater)
        if index is None:
            raise TiupError("unreachable: index.json not found in manifests directory",
                            hint="run `tiup list` online once, or `tiup mirror set <mirror>`")
        if component:
            return _list_versions(updater, component, installed, as_json, use_cache)
        if not use_cache:
            updater.prefetch_components(
                c for c, item in index.components.items()
                if not item.yanked and (all_ or not item.hidden))

        def manifest(comp_id: str) -> Component | None:
            if use_cache:
                return updater.cached_component(comp_id)
            try:
                return updater.component(comp_id)
            except TiupError as exc:
                output.info(f"Warn: Update component manifest failed, err_msg=[{exc}]")
                return None

        rows = component_rows(index, manifest, prof.installed_versions, all_=all_,
                              installed=installed)
    finally:
        updater.close()
    output.out_lines(list_lines(rows, verbose=verbose, as_json=as_json))
    return 0


def _list_versions(updater: object, comp: str, installed_only: bool, as_json: bool,
                   use_cache: bool) -> int:
    from tiup.cli.listing import table_lines
    from tiup.client.updater import Updater
    from tiup.errors import TiupError
    from tiup.manifest.versions import sort_versions

    assert isinstance(updater, Updater)
    try:
        manifest = updater.cached_component(comp) if use_cache else updater.component(comp)
    except TiupError as exc:
        raise TiupError(f"failed to fetch component: {exc.message}", hint=exc.hint) from exc
    if manifest is None:
        raise TiupError(f"failed to fetch component: {comp} is not in the local cache")
    have = set(updater.profile.installed_versions(comp))
    versions: dict[str, dict[str, Any]] = {}
    for plat, ver, item in manifest.items():
        if item.yanked or not item.entry:
            continue
        row = versions.setdefault(ver, {"version": ver, "released": item.released,
                                        "platforms": [], "installed": ver in have})
        row["platforms"].append(plat)
    order = sort_versions(versions)
    rows = [versions[v] for v in order]
    for r in rows:
        r["platforms"].sort()
    if manifest.nightly and manifest.nightly in versions:
        night = dict(versions[manifest.nightly])
        night["version"] = f"nightly -> {manifest.nightly}"
        rows.insert(0, night)
    if installed_only:
        rows = [r for r in rows if r["installed"]]
    if as_json:
        output.out(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    table = [["Version", "Installed", "Release", "Platforms"]]
    table += [[str(r["version"]), "YES" if r["installed"] else "", str(r["released"]),
               ",".join(r["platforms"])] for r in rows]
    output.out_lines([f"Available versions for {comp}:", *table_lines(table)])
    return 0


# ---------------------------------------------------------------- status/clean
def _read_meta(path: Path) -> dict[str, object] | None:
    try:
        meta = json.loads((path / "tiup_process_meta").read_bytes())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


@click.command("status")
def status() -> int:
    """Show the status of the instances started by `tiup <component>` (never deletes)."""
    from tiup.client.runner import pid_alive  # here: `tiup list` does not need it

    prof = profile()
    rows = [["Name", "Component", "PID", "Status", "Created Time", "Directory", "Binary",
             "Args"]]
    try:
        dirs = sorted(p for p in prof.data_dir.iterdir() if p.is_dir())
    except OSError:
        dirs = []
    for path in dirs:
        meta = _read_meta(path)
        if meta is None:
            continue
        args = meta.get("args")
        rows.append([path.name, str(meta.get("component", "")), str(meta.get("pid", "")),
                     "RUNNING" if pid_alive(meta.get("pid")) else "TERM",
                     str(meta.get("created_time", "")), str(meta.get("dir", path)),
                     str(meta.get("exec", "")),
                     " ".join(args) if isinstance(args, list) else ""])
    print_table(rows)
    return 0


@click.command("clean")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Clean all data of instances.")
@click.pass_context
def clean(ctx: click.Context, names: tuple[str, ...], all_: bool) -> int:
    """Clean the data directories of instances (`tiup status` lists them).

    A directory of a running instance is never removed; a directory without
    metadata is removed only when it is older than one minute.
    """
    prof = profile()
    if not names and not all_:
        click.echo(ctx.get_help())
        return 0
    try:
        dirs = sorted(p for p in prof.data_dir.iterdir() if p.is_dir())
    except OSError:
        dirs = []
    from tiup.client.runner import pid_alive

    wanted = set(names)
    for path in dirs:
        if not all_ and path.name not in wanted:
            continue
        meta = _read_meta(path)
        if meta is None:
            if time.time() - path.stat().st_mtime < 60:
                output.info(f"Can't clean directory due to missing meta file: {path}")
                continue
        elif pid_alive(meta.get("pid")):
            output.info(f"Instance `{path.name}` is still running (pid {meta.get('pid')}); "
                        "not cleaned")
            continue
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        comp = meta.get("component", "") if meta else ""
        output.out(f"Clean instance of `{comp}`, directory: {path}")
    return 0


@click.command("env")
@click.argument("names", nargs=-1)
def env(names: tuple[str, ...]) -> int:
    """Show the list of system environment variable that related to TiUP."""
    if names:
        for name in names:
            output.out(os.environ.get(name, ""))
        return 0
    for name in ENV_LIST:
        output.out(f'{name}="{os.environ.get(name, "")}"')
    return 0
