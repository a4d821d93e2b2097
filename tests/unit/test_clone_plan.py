"""Clone selection: each flag combination of the guide's 克隆镜像 section picks what it should."""

from __future__ import annotations

import pytest

from tiup.errors import RepositoryError, UsageError
from tiup.manifest.models import Component, VersionItem
from tiup.repository.clone.plan import (
    CloneOptions,
    cloned_manifest,
    normalise_version,
    select,
    split_values,
)


def item(comp: str, ver: str, plat: str, yanked: bool = False) -> VersionItem:
    os_name, arch = plat.split("/")
    return VersionItem(url=f"/{comp}-{ver}-{os_name}-{arch}.tar.gz", entry=comp, sha256="0" * 64,
                       sha512="0" * 128, length=1, released="2030-01-01T00:00:00Z",
                       yanked=yanked)


def tidb() -> Component:
    plats: dict[str, dict[str, VersionItem]] = {}
    for plat in ("linux/amd64", "linux/arm64", "darwin/amd64"):
        plats[plat] = {v: item("tidb", v, plat) for v in
                       ("v7.5.0", "v7.5.1", "v7.50.0", "v8.5.0", "v8.5.1", "v9.0.0-beta.1")}
    plats["linux/amd64"]["v8.5.2"] = item("tidb", "v8.5.2", "linux/amd64", yanked=True)
    plats["linux/amd64"]["v8.6.0-nightly-20300101"] = item("tidb", "v8.6.0-nightly-20300101",
                                                             "linux/amd64")
    plats["darwin/amd64"].pop("v8.5.1")
    return Component(expires="2040-01-01T00:00:00Z", version=3, id="tidb", description="TiDB",
                     nightly="v8.6.0-nightly-20300101", platforms=plats)


def doc() -> Component:
    return Component(expires="2040-01-01T00:00:00Z", version=1, id="doc", description="docs",
                     platforms={"any/any": {"v1.0.0": item("doc", "v1.0.0", "any/any"),
                                            "v1.1.0": item("doc", "v1.1.0", "any/any")}})


CASES = [
    ("metadata only", CloneOptions(), {}),
    ("--full", CloneOptions(full=True, oses=("linux",), archs=("amd64",)),
     {"linux/amd64": ["v7.5.0", "v7.5.1", "v7.50.0", "v8.5.0", "v8.5.1",
                      "v8.6.0-nightly-20300101", "v9.0.0-beta.1"]}),
    ("global v8.5.1 falls back per platform", CloneOptions(global_versions=("v8.5.1",)),
     {"linux/amd64": ["v8.5.1"], "linux/arm64": ["v8.5.1"], "darwin/amd64": ["v8.5.0"]}),
    ("--tidb v8.5.1 (exact, skipped where absent)",
     CloneOptions(component_versions={"tidb": ("v8.5.1",)}),
     {"linux/amd64": ["v8.5.1"], "linux/arm64": ["v8.5.1"]}),
    ("--tidb all --os linux --arch amd64",
     CloneOptions(oses=("linux",), archs=("amd64",), component_versions={"tidb": ("all",)}),
     {"linux/amd64": ["v7.5.0", "v7.5.1", "v7.50.0", "v8.5.0", "v8.5.1",
                      "v8.6.0-nightly-20300101", "v9.0.0-beta.1"]}),
    ("--tidb latest --arch arm64",
     CloneOptions(archs=("arm64",), component_versions={"tidb": ("latest",)}),
     {"linux/arm64": ["v8.5.1"]}),
    ("--prefix --tidb v7.5", CloneOptions(prefix=True, oses=("linux",), archs=("amd64",),
                                          component_versions={"tidb": ("v7.5",)}),
     {"linux/amd64": ["v7.5.0", "v7.5.1"]}),
    ("--prefix global v8.5", CloneOptions(prefix=True, oses=("darwin",), archs=("amd64",),
                                          global_versions=("v8.5",)),
     {"darwin/amd64": ["v8.5.0"]}),
    ("nightly", CloneOptions(global_versions=("nightly",)),
     {"linux/amd64": ["v8.6.0-nightly-20300101"]}),
    ("yanked version never selected", CloneOptions(oses=("linux",), archs=("amd64",),
                                                   component_versions={"tidb": ("v8.5.2",)}),
     "error"),
    ("other component not named", CloneOptions(component_versions={"pd": ("v8.5.1",)}), {}),
]


@pytest.mark.parametrize(("name", "opts", "expected"), CASES, ids=[c[0] for c in CASES])
def test_selection(name: str, opts: CloneOptions, expected: object) -> None:
    if expected == "error":
        with pytest.raises(RepositoryError):
            select(tidb(), opts)
        return
    assert select(tidb(), opts).platforms == expected


def test_any_platform_always_considered() -> None:
    sel = select(doc(), CloneOptions(global_versions=("latest",), oses=("linux",)))
    assert sel.platforms == {"any/any": ["v1.1.0"]}


def test_notes_for_fallbacks() -> None:
    sel = select(tidb(), CloneOptions(component_versions={"tidb": ("v8.5.1",)}))
    assert "tidb darwin/amd64: v8.5.1 not available, skipped" in sel.notes
    sel = select(tidb(), CloneOptions(global_versions=("v8.5.1",)))
    assert "tidb darwin/amd64 v8.5.1 not found, using v8.5.0 instead." in sel.notes


def test_cloned_manifest_keeps_only_selection_and_nightly() -> None:
    src = tidb()
    opts = CloneOptions(oses=("linux",), archs=("amd64",),
                        component_versions={"tidb": ("v8.5.1", "nightly")})
    out = cloned_manifest(src, select(src, opts), full=False, platforms=opts.platforms)
    assert set(out.platforms) == {"linux/amd64"}
    assert sorted(out.platforms["linux/amd64"]) == ["v8.5.1", "v8.6.0-nightly-20300101"]
    assert out.nightly == "v8.6.0-nightly-20300101"
    # the nightly pointer is dropped when its version was not cloned (TiUP #2522 otherwise)
    opts2 = CloneOptions(oses=("linux",), archs=("amd64",), component_versions={"tidb": ("all",)})
    opts2.component_versions["tidb"] = ("v8.5.1",)
    out2 = cloned_manifest(src, select(src, opts2), full=False, platforms=opts2.platforms)
    assert out2.nightly == ""
    assert src.platforms["linux/amd64"]["v8.5.1"] is not out2.platforms["linux/amd64"]["v8.5.1"]


def test_full_clone_keeps_yanked_entries_as_yanked() -> None:
    src = tidb()
    opts = CloneOptions(full=True, oses=("linux",), archs=("amd64",))
    out = cloned_manifest(src, select(src, opts), full=True, platforms=opts.platforms)
    assert out.platforms["linux/amd64"]["v8.5.2"].yanked
    assert "linux/arm64" not in out.platforms


@pytest.mark.parametrize(("raw", "norm"), [("8.5.1", "v8.5.1"), ("v4", "v4"), ("v4.0", "v4.0"),
                                            ("LATEST", "latest"), ("Nightly", "nightly"),
                                            ("All", "all")])
def test_normalise_version(raw: str, norm: str) -> None:
    assert normalise_version(raw) == norm


def test_invalid_global_version() -> None:
    with pytest.raises(UsageError) as info:
        normalise_version("banana")
    assert "not a valid SemVer string" in info.value.message


def test_split_values() -> None:
    assert split_values(["v1,v2", "v3", " ,v4"]) == ("v1", "v2", "v3", "v4")
