"""Version resolution as TiUP does it (``behavior.md`` §4, §12.13).

* a spec ``comp[:version]`` splits at the first ``:``;
* versions match exactly, then with a ``v`` prefix (``5.2.2`` → ``v5.2.2``);
* ``nightly`` is the only alias; no version means the latest stable;
* the platform is the running one as ``GOOS/GOARCH``, falling back to ``any/any``.
"""

from __future__ import annotations

import platform as _platform
import sys

from tiup.errors import InstallError, InvalidNameError, UsageError
from tiup.manifest import versions as semver_order
from tiup.manifest.models import Component, VersionItem
from tiup.manifest.names import component_id, version_str

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def current_platform() -> str:
    """The running platform as a TiUP key, e.g. ``linux/amd64``."""
    os_name = "darwin" if sys.platform == "darwin" else sys.platform.split("-")[0]
    if os_name.startswith("linux"):
        os_name = "linux"
    machine = _platform.machine().lower()
    return f"{os_name}/{_ARCH.get(machine, machine)}"


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``comp[:version]`` as typed on the command line; both parts are validated.

    Both become path components under ``$TIUP_HOME`` (``components/<id>/<version>``),
    so they must pass the rules of :mod:`tiup.manifest.names` before anything
    else sees them: ``hello:../../x`` or ``hello:..`` never reaches the file system.
    An empty version (``comp`` or ``comp:``) means "no version".

    Raises:
        UsageError: empty component, or a component id or version that is not a safe name.
    """
    comp, _, version = spec.partition(":")
    if not comp:
        raise UsageError(f"invalid component spec {spec!r}: the component name is empty",
                         hint="write <component>[:<version>], e.g. hello:v1.0.0")
    try:
        checked = component_id(comp)
        if version:
            version_str(version)
    except InvalidNameError as exc:
        why = exc.message if len(exc.message) <= 200 else exc.message[:200] + "..."
        raise UsageError(f"invalid component spec {_shown(spec)}: {why}",
                         hint="write <component>[:<version>], e.g. hello:v1.0.0") from exc
    return checked, version


def component_arg(name: str) -> str:
    """A bare component name from the command line (``tiup list <component>``).

    Raises:
        UsageError: not a safe component id.
    """
    try:
        return component_id(name)
    except InvalidNameError as exc:
        why = exc.message if len(exc.message) <= 200 else exc.message[:200] + "..."
        raise UsageError(why, hint="give a component name such as hello") from exc


def parse_specs(specs: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """:func:`parse_spec` for every argument, before any of them is acted on.

    Raises:
        UsageError: the first invalid spec.
    """
    return [parse_spec(spec) for spec in specs]


def _shown(text: str, limit: int = 80) -> str:
    """``text`` quoted for an error line, cut to ``limit`` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def version_candidates(version: str) -> list[str]:
    """Exact first, then with the ``v`` prefix (§12.13)."""
    out = [version]
    prefixed = semver_order.normalise(version)
    if prefixed != version:
        out.append(prefixed)
    return out


def resolve_remote(comp: Component, version: str, plat: str) -> tuple[str, VersionItem]:
    """The version item to install for ``version`` ('' = latest stable, or ``nightly``).

    Raises:
        InstallError: platform unsupported, no stable/nightly version, unknown version.
    """
    available = comp.versions_for(plat)
    if available is None:
        raise InstallError(f"component {comp.id} doesn't support platform {plat}")
    live = {v: item for v, item in available.items() if not item.yanked}
    if version == "nightly":
        exact = comp.platforms.get(plat, {})
        item = exact.get(comp.nightly) if comp.nightly else None
        if item is None or item.yanked or not item.entry:
            raise InstallError(
                f"The component `{comp.id}` on platform {plat} does not have a nightly version"
            )
        return comp.nightly, item
    if not version:
        latest = semver_order.latest_stable(live)
        if latest is None:
            raise InstallError(f"component {comp.id} doesn't has a stable version")
        return latest, live[latest]
    for candidate in version_candidates(version):
        if candidate in live:
            return candidate, live[candidate]
    raise InstallError(
        f"version {version} on {plat} for component {comp.id} not found: unknown version",
        hint=f"see the available versions with `tiup list {comp.id}`",
    )


def pick_installed(installed: list[str], version: str) -> str | None:
    """Select among installed versions (§4, with the nightly logic fixed as §12.13).

    ``''`` → highest non-nightly stable, else highest non-nightly pre-release;
    ``nightly`` → the same among nightlies; anything else → exact, then ``v`` prefix.
    """
    if version and version != "nightly":
        for candidate in version_candidates(version):
            if candidate in installed:
                return candidate
        return None
    nightly = version == "nightly"
    pool = [v for v in installed if semver_order.is_nightly(v) == nightly]
    if not pool:
        return None
    if nightly:
        return semver_order.sort_versions(pool)[-1]
    return semver_order.latest_stable(pool) or semver_order.sort_versions(pool)[-1]


def not_installed_error(comp: str, version: str) -> InstallError:
    if version:
        return InstallError(
            f"use `tiup install {comp}:{version}` to install specified version: "
            "component not installed"
        )
    return InstallError(
        f"use `tiup install {comp}` to install component `{comp}` first: component not installed"
    )
