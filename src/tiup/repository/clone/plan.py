"""Which versions a ``tiup mirror clone`` takes: pure selection logic, no I/O.

Rules (``behavior.md`` §6.4 and §12.6):

* ``--full`` takes every non-yanked version of the selected platforms.
* ``--<component> v1,v2`` (per-component values) replace the global versions
  for that component. Values are normalised like global versions (``v`` prefix;
  ``all``, ``latest``, ``nightly`` in any case):
  ``all`` → every version; ``latest`` → the platform's latest stable;
  ``nightly`` → the manifest's nightly where it exists; an exact version →
  where present (skipped with a note elsewhere; an error only if it exists on
  none of the selected platforms); with ``--prefix`` a value selects itself and
  every version continuing it with ``.`` or ``-``.
* Global versions (positional): ``nightly``, ``latest``, or a version; a version
  missing on a platform falls back to that platform's latest stable, as TiUP does.
* Without ``--full`` and without any version, nothing but metadata is cloned.
* Yanked components and versions are never selected; platforms not selected
  are left out; ``any/any`` is always considered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tiup.errors import RepositoryError, UsageError
from tiup.manifest import versions as V
from tiup.manifest.models import Component, VersionItem

ANY = "any/any"
DEFAULT_OSES = ("linux", "darwin")
DEFAULT_ARCHS = ("amd64", "arm64")
KEYWORDS = ("all", "latest", "nightly")


@dataclass
class CloneOptions:
    full: bool = False
    oses: tuple[str, ...] = DEFAULT_OSES
    archs: tuple[str, ...] = DEFAULT_ARCHS
    prefix: bool = False
    global_versions: tuple[str, ...] = ()
    component_versions: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def platforms(self) -> list[str]:
        return [f"{o}/{a}" for o in self.oses for a in self.archs]

    @property
    def metadata_only(self) -> bool:
        return not self.full and not self.global_versions and not self.component_versions


@dataclass
class Selection:
    """What to take of one component: platform → selected versions, plus notes for the user."""

    component: str
    platforms: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(self.platforms.values())

    def count(self) -> int:
        return sum(len(v) for v in self.platforms.values())


def normalise_version(value: str, *, what: str = "version") -> str:
    """Normalise a version given on the command line.

    Keywords pass through in lower case; other values get a ``v`` prefix if
    missing and must be semantic versions (``v4`` and ``v4.0`` are valid).

    Raises:
        UsageError: not a keyword and not a semantic version.
    """
    text = value.strip()
    if text.lower() in KEYWORDS:
        return text.lower()
    text = V.normalise(text)
    if not V.is_valid(text):
        raise UsageError(f"{what} {value} is not a valid SemVer string",
                         hint="use versions like v8.5.1, or all, latest, nightly")
    return text


def split_values(values: Iterable[str]) -> tuple[str, ...]:
    """Flatten repeatable, comma-separated option values."""
    out: list[str] = []
    for v in values:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return tuple(out)


def _available(comp: Component, plat: str) -> dict[str, VersionItem]:
    """Non-yanked versions with an entry on exactly ``plat``."""
    return {v: i for v, i in comp.platforms.get(plat, {}).items() if i.entry and not i.yanked}


def _matches_prefix(version: str, prefix: str) -> bool:
    return version == prefix or version.startswith((prefix + ".", prefix + "-"))


def select(comp: Component, opts: CloneOptions) -> Selection:
    """Decide which versions of ``comp`` to clone.

    Raises:
        RepositoryError: an exact per-component version exists on none of the
            selected platforms.
    """
    sel = Selection(comp.id)
    if opts.metadata_only:
        return sel
    wanted = [p for p in opts.platforms if p in comp.platforms]
    if ANY in comp.platforms:
        wanted.append(ANY)
    per_component = opts.component_versions.get(comp.id)
    found_exact: dict[str, bool] = {}
    for plat in wanted:
        available = _available(comp, plat)
        chosen: set[str] = set()
        if opts.full:
            chosen.update(available)
        elif per_component is not None:
            for value in per_component:
                chosen.update(_pick(comp, plat, available, value, opts.prefix, sel, found_exact))
        else:
            for value in opts.global_versions:
                chosen.update(_pick_global(comp, plat, available, value, opts.prefix, sel))
        if chosen:
            sel.platforms[plat] = V.sort_versions(chosen)
    missing = [v for v, ok in found_exact.items() if not ok]
    if missing:
        where = ", ".join(wanted) or ", ".join(opts.platforms)
        offered = V.sort_versions({v for p in wanted for v in _available(comp, p)
                                   if not V.is_nightly(v)})[::-1]
        hint = (f"{comp.id} has {abbreviate(offered)} there" if offered else
                f"{comp.id} has builds only for {abbreviate(_platforms_of(comp))}")
        raise RepositoryError(
            f"version {', '.join(missing)} of {comp.id} not found on any of {where}",
            hint=hint + f"; run `tiup list {comp.id}` to see every version")
    return sel


def abbreviate(items: Sequence[str], shown: int = 6) -> str:
    """``a, b, c (and 12 more)``: a short list for one-line messages."""
    head = ", ".join(items[:shown]) or "nothing"
    more = len(items) - shown
    return head + (f" (and {more} more)" if more > 0 else "")


def _platforms_of(comp: Component) -> list[str]:
    return sorted(p for p in comp.platforms if _available(comp, p))


def _offered(comp: Component, opts: CloneOptions) -> set[str]:
    """Versions of ``comp`` a clone with these platforms could take."""
    plats = [*opts.platforms, ANY]
    return {v for p in plats for v in _available(comp, p)}


def _asked(opts: CloneOptions) -> str:
    parts = list(opts.global_versions)
    parts += [f"--{c} {','.join(vs)}" for c, vs in sorted(opts.component_versions.items())]
    return " ".join(parts) or "--full"


def check_selection(opts: CloneOptions, sources: Mapping[str, Component],
                    selections: Mapping[str, Selection]) -> None:
    """Refuse a clone whose selection matches nothing (``behavior.md`` §12.6).

    Checked before anything is written: no component has a build for the
    selected platforms; a global version (or ``--prefix`` value) that no
    component has there (TiUP would silently take every component's latest
    instead: a typo cloned gigabytes); or nothing selected at all.

    Raises:
        RepositoryError: naming what was asked and (abbreviated) what exists.
    """
    if opts.metadata_only:
        return
    where = ", ".join(opts.platforms)
    offered: set[str] = set()
    for comp in sources.values():
        offered |= _offered(comp, opts)
    if not offered:
        plats = sorted({p for c in sources.values() for p in _platforms_of(c)})
        raise RepositoryError(
            f"nothing to clone for {where}: no component of the mirror has a build there",
            hint=(f"the mirror has builds for {abbreviate(plats)}; choose them with --os/--arch"
                  if plats else "the mirror has no component to clone"))
    newest = V.sort_versions(v for v in offered if not V.is_nightly(v))[::-1]
    for value in opts.global_versions:
        if value in KEYWORDS:
            continue
        if not any(_matches_prefix(v, value) if opts.prefix else v == value for v in offered):
            what = (f"no version starting with {value} in any component" if opts.prefix
                    else f"version {value} not found in any component")
            raise RepositoryError(
                f"{what} for {where}",
                hint=f"versions there include {abbreviate(newest)}; run `tiup list <component>` "
                     "for a component's versions")
    if all(sel.empty for sel in selections.values()):
        named = [c for c in opts.component_versions if c in sources] or sorted(sources)
        have = "; ".join(f"{c}: {abbreviate(_platforms_of(sources[c]), 4)}" for c in named[:4])
        raise RepositoryError(f"nothing to clone: {_asked(opts)} matches no version for {where}",
                              hint=f"builds available: {have}")


def _pick(comp: Component, plat: str, available: dict[str, VersionItem], value: str,
          prefix: bool, sel: Selection, found: dict[str, bool]) -> set[str]:
    if value == "all":
        return set(available)
    if value == "latest":
        latest = V.latest_stable(available)
        return {latest} if latest else set()
    if value == "nightly":
        return {comp.nightly} if comp.nightly in available else set()
    if prefix:
        hits = {v for v in available if _matches_prefix(v, value)}
    else:
        hits = {value} if value in available else set()
    found[value] = found.get(value, False) or bool(hits)
    if not hits:
        sel.notes.append(f"{comp.id} {plat}: {value} not available, skipped")
    return hits


def _pick_global(comp: Component, plat: str, available: dict[str, VersionItem], value: str,
                 prefix: bool, sel: Selection) -> set[str]:
    if value == "nightly":
        return {comp.nightly} if comp.nightly in available else set()
    latest = V.latest_stable(available)
    if value == "latest":
        return {latest} if latest else set()
    hits = ({v for v in available if _matches_prefix(v, value)} if prefix
            else {value} & set(available))
    if hits:
        return hits
    if latest:
        sel.notes.append(f"{comp.id} {plat} {value} not found, using {latest} instead.")
        return {latest}
    return set()


def cloned_manifest(src: Component, sel: Selection, *, full: bool,
                    platforms: Iterable[str]) -> Component:
    """The component manifest the clone publishes (unsigned; version and expiry set later).

    Non-full clones list only the selected versions; ``--full`` also keeps
    yanked entries (as yanked) of the selected platforms. The nightly pointer
    survives when its version was cloned anywhere (TiUP #2522).
    """
    keep_platforms = set(platforms) | {ANY}
    out: dict[str, dict[str, VersionItem]] = {}
    for plat, versions in src.platforms.items():
        if plat not in keep_platforms:
            continue
        chosen = set(sel.platforms.get(plat, []))
        items = {
            v: replace(item)
            for v, item in versions.items()
            if v in chosen or (full and item.yanked)
        }
        if items:
            out[plat] = items
    cloned_versions = {v for vs in sel.platforms.values() for v in vs}
    nightly = src.nightly if src.nightly in cloned_versions else ""
    return replace(src, platforms=out, nightly=nightly, unrecognized={},
                   absent=frozenset())

@dataclass
class CloneReport:
    """What a clone did, for the CLI to print."""

    target: Path
    source: str
    metadata_only: bool = False
    #: components present in the clone with versions selected by this run
    components: list[str] = field(default_factory=list)
    versions: int = 0
    downloaded: int = 0
    downloaded_bytes: int = 0
    present: int = 0
    resumed: int = 0
    #: (location, reason) per file that could not be fetched
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: components left out (nothing selected, or every file failed)
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reused_keys: bool = False
    key_files: list[Path] = field(default_factory=list)
    #: the bucket cloned into (``s3://...``), where the target is not a directory
    storage: str = ""
    updated: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    bootstrap: list[str] = field(default_factory=list)
