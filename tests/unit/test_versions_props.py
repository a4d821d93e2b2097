"""Property tests: the version sort key orders exactly as the reference comparison.

:func:`tiup.manifest.versions.compare` (semver precedence, then the text) is the
reference; :func:`~tiup.manifest.versions.sort_key` replaced ``cmp_to_key(compare)`` in
``sort_versions`` (resolution, ``tiup list``, clone, prune). Random version sets mix
releases, ``v4``/``v4.0`` shorthands, pre-releases with numeric (leading zeros too) and
alphanumeric identifiers, nightlies, build metadata, non-semver legacy strings and
duplicates.
"""

from __future__ import annotations

import itertools
from functools import cmp_to_key

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tiup.manifest import versions as V

SETTINGS = settings(max_examples=400, deadline=None)

NUMBER = st.one_of(st.integers(0, 12).map(str), st.sampled_from(["0", "10", "99", "100",
                                                                 "18446744073709551616"]))
IDENT = st.one_of(
    st.integers(0, 20).map(str),
    st.sampled_from(["00", "01", "007", "1", "2", "10", "11"]),  # numeric, leading zeros
    st.sampled_from(["alpha", "beta", "rc", "nightly", "a", "A", "z", "-", "x-y", "0a",
                     "rc1", "Beta", "build", "pre-1"]),
    st.text(alphabet="abcXYZ019-", min_size=1, max_size=4),
)
PRE = st.lists(IDENT, min_size=1, max_size=4).map(".".join)
BUILD = st.lists(st.text(alphabet="abc019-", min_size=1, max_size=4), min_size=1,
                 max_size=3).map(".".join)


@st.composite
def semver_like(draw: st.DrawFn) -> str:
    major, minor, patch = draw(NUMBER), draw(NUMBER), draw(NUMBER)
    shape = draw(st.sampled_from(["full", "full", "full", "major", "minor"]))
    if shape == "major":
        return f"v{major}"
    if shape == "minor":
        return f"v{major}.{minor}"
    text = f"v{major}.{minor}.{patch}"
    if draw(st.booleans()):
        text += "-" + draw(PRE)
    if draw(st.integers(0, 3)) == 0:
        text += "+" + draw(BUILD)
    return text


LEGACY = st.one_of(
    st.sampled_from(["nightly", "master", "latest", "", "v", "1.0.0", "v01.0.0", "v1.00.0",
                     "v1.0.0-", "v1.0.0+", "v1.0.0-a..b", "v4.0.0-beta.2-nightly-20200101",
                     "v1.0-rc.1", "v1+build", "V1.0.0", "v1.0.0.0", "vx.y.z", "v-1.0.0",
                     "v1.0.0-rc.1+build.5", "v1.0.0-α", "v١.0.0", "v1٢.0.0"]),
    st.text(alphabet="v0123456789.-+abcnightly", max_size=14),
    st.text(max_size=6),
)
NIGHTLY = st.builds(lambda v, d: f"{v}-nightly-{d}", semver_like(),
                    st.integers(20200101, 20291231).map(str))
VERSION = st.one_of(semver_like(), semver_like(), NIGHTLY, LEGACY)
VERSION_SETS = st.lists(VERSION, max_size=40).flatmap(
    lambda vs: st.lists(st.sampled_from(vs), max_size=10).map(lambda dup: vs + dup)
    if vs else st.just(vs))


def reference_sort(versions: list[str]) -> list[str]:
    return sorted(versions, key=cmp_to_key(V.compare))


def reference_latest_stable(versions: list[str]) -> str | None:
    """``latest_stable`` as it was written over ``parse`` and ``compare``."""
    candidates = [v for v in versions if not V.is_nightly(v)]
    releases = [v for v in candidates if (p := V.parse(v)) is not None and not p.prerelease]
    pool = releases or [v for v in candidates if V.parse(v) is not None]
    return reference_sort(pool)[-1] if pool else None


@SETTINGS
@given(VERSION_SETS)
@example(["v1.0.0-01", "v1.0.0-1", "v1.0.0-001", "v1.0.0-1.a", "v1.0.0-1.0"])
@example(["v4", "v4.0", "v4.0.0", "v4.0.0+b", "v4.0.0-rc", "v3.99.99"])
@example(["v1.0.0-rc.10", "v1.0.0-rc.9", "v1.0.0-rc.a", "v1.0.0-rc", "v1.0.0-RC.1"])
def test_sort_key_orders_as_compare(versions: list[str]) -> None:
    assert V.sort_versions(versions) == reference_sort(versions)
    assert V.sort_versions(reversed(versions)) == reference_sort(versions)


@SETTINGS
@given(VERSION, VERSION)
def test_sort_key_agrees_with_compare_pairwise(a: str, b: str) -> None:
    ka, kb = V.sort_key(a), V.sort_key(b)
    assert ((ka > kb) - (ka < kb)) == V.compare(a, b)


@SETTINGS
@given(VERSION_SETS)
def test_latest_stable_and_validity_unchanged(versions: list[str]) -> None:
    assert V.latest_stable(versions) == reference_latest_stable(versions)
    for v in versions:
        assert V.is_valid(v) == (V.parse(v) is not None)


def test_known_order() -> None:
    """A hand-checked chain (semver precedence; invalid strings first, by text)."""
    chain = ["", "master", "v01.0.0", "v1.0.0-0", "v1.0.0-1", "v1.0.0-01a", "v1.0.0-alpha",
             "v1.0.0-alpha.1", "v1.0.0-alpha.beta", "v1.0.0-beta", "v1.0.0-beta.2",
             "v1.0.0-beta.11", "v1.0.0-rc.1", "v1", "v1.0", "v1.0.0", "v1.0.0+build",
             "v1.0.1", "v1.10.0", "v2.0.0-nightly-20200101", "v2.0.0"]
    for perm in itertools.islice(itertools.permutations(chain[:6]), 50):
        assert V.sort_versions([*perm, *chain[6:]]) == chain
    assert V.sort_versions(reversed(chain)) == chain == reference_sort(chain)
