"""The rows and the text of ``tiup list``, without click: shared by the ``list`` command
and the fast path that answers ``tiup --offline list`` from the verified cache alone
(:func:`fast_list`, called by :mod:`tiup.cli.entry` before click or cryptography load)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tiup.cli.driver import DriverArgs
    from tiup.client.profile import Profile
    from tiup.manifest.models import Component, Index

Row = dict[str, Any]


def component_rows(index: Index, manifest: Callable[[str], Component | None],
                   installed_versions: Callable[[str], list[str]], *, all_: bool,
                   installed: bool) -> list[Row]:
    """One row per listed component: yanked ones never, hidden ones with ``all_`` (or
    installed), and with ``installed`` only those installed here."""
    rows: list[Row] = []
    for comp_id in sorted(index.components):
        item = index.components[comp_id]
        have = installed_versions(comp_id)
        if item.yanked or (installed and not have):
            continue
        if item.hidden and not (all_ or installed):
            continue
        comp = manifest(comp_id)
        if comp is None:
            continue
        platforms = sorted(p for p, vs in comp.platforms.items()
                           if any(not i.yanked and i.entry for i in vs.values()))
        rows.append({"name": comp_id, "owner": item.owner, "description": comp.description,
                     "installed": have, "platforms": platforms, "hidden": item.hidden})
    return rows


def table_lines(rows: list[list[str]]) -> list[str]:
    """TiUP's table: header, a row of dashes, columns two spaces apart, trailing spaces
    trimmed."""
    if not rows:
        return []
    header = rows[0]
    table = [header, ["-" * len(h) for h in header], *rows[1:]]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    # one format per table (``{:<w}`` pads like ``str.ljust``): 20,000 rows in one pass
    line = "  ".join(f"{{{i}:<{w}}}" for i, w in enumerate(widths)).format
    return [line(*row).rstrip() for row in table]


def list_lines(rows: list[Row], *, verbose: bool, as_json: bool) -> list[str]:
    """The text ``tiup list`` prints on stdout for ``rows``."""
    if as_json:
        return [json.dumps(rows, indent=2, ensure_ascii=False)]
    if verbose:
        table = [["Name", "Owner", "Installed", "Platforms", "Description"]]
        table += [[r["name"], r["owner"], ",".join(r["installed"]), ",".join(r["platforms"]),
                   r["description"]] for r in rows]
    else:
        table = [["Name", "Owner", "Description"]]
        table += [[str(r["name"]), str(r["owner"]), str(r["description"])] for r in rows]
    return ["Available components:", *table_lines(table)]


# ------------------------------------------------------------------ fast path

_FLAGS = {"--all": "all_", "--installed": "installed", "--verbose": "verbose",
          "--json": "as_json"}


def fast_list(d: DriverArgs) -> int | None:
    """Answer ``tiup --offline list [--all|--installed|--verbose|--json]`` (or with
    ``TIUP_OFFLINE=1``) from cached manifests whose verification is on record
    (:mod:`tiup.client.verified`); None when anything needs the full command."""
    if d.word != "list" or d.error or d.binary is not None or d.binpath is not None:
        return None
    opts = dict.fromkeys(_FLAGS.values(), False)
    for arg in d.raw_rest:
        if arg not in _FLAGS:
            return None  # a component name, --help, a typo: click handles it
        opts[_FLAGS[arg]] = True
    from pathlib import Path

    from tiup.client.homefast import home_dir

    offline = d.offline or os.environ.get("TIUP_OFFLINE", "") in ("1", "true", "enable")
    if not offline:
        return None
    from tiup.client.profile import Profile
    from tiup.errors import TiupError

    env = dict(os.environ, TIUP_OFFLINE="1")
    try:
        prof = Profile(Path(home_dir(env)), env=env)
        state = prof.mirror_state(prof.effective_mirror())
        if _env_mirror_differs(prof):
            return None  # the full command prints the TIUP_MIRRORS notice
    except TiupError:
        return None
    rows = cached_rows(state.manifests_dir, state.root_path, prof.installed_versions,
                       all_=opts["all_"], installed=opts["installed"])
    if rows is None:
        return None
    try:
        sys.stdout.write("\n".join(list_lines(rows, verbose=opts["verbose"],
                                              as_json=opts["as_json"])) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        return 1
    return 0


def _env_mirror_differs(prof: Profile) -> bool:
    """``TIUP_MIRRORS`` names another mirror than ``tiup.toml`` (the case the full
    command warns about once per run)."""
    from_env = prof.env.get("TIUP_MIRRORS")
    if not from_env:
        return False
    configured = prof.configured_mirror()
    if configured is None:
        return False
    from tiup.transport.address import normalise_address

    return normalise_address(configured) != normalise_address(from_env)


def cached_rows(manifests: os.PathLike[str], anchor: os.PathLike[str],
                installed_versions: Callable[[str], list[str]], *, all_: bool,
                installed: bool) -> list[Row] | None:
    """The rows from the verified cache, or None unless every manifest they need is
    on record as verified (the caller then verifies them the slow way)."""
    from pathlib import Path

    from tiup.client.verified import anchor_digest, verified_bytes
    from tiup.errors import TiupError
    from tiup.manifest.envelope import parse_envelope
    from tiup.manifest.models import Component, Index

    base, digest = Path(manifests), anchor_digest(Path(anchor))
    data = verified_bytes(base, "index.json", digest)
    if data is None:
        return None
    missing: list[str] = []

    def manifest(comp_id: str) -> Component | None:
        raw = verified_bytes(base, f"{comp_id}.json", digest)
        if raw is None:
            missing.append(comp_id)
            return None
        comp = Component.from_dict(parse_envelope(raw, f"{comp_id}.json").signed,
                                   f"{comp_id}.json")
        return comp if comp.id == comp_id else None

    try:
        index = Index.from_dict(parse_envelope(data, "index.json").signed, "index.json")
        rows = component_rows(index, manifest, installed_versions, all_=all_,
                              installed=installed)
    except TiupError:
        return None
    return None if missing else rows
