"""The fast parsing paths give exactly what the checked paths give: the same model, or the
same error (message and hint).

- ``VersionItem._fast`` (the usual item shape) against ``VersionItem._from_dict_checked``
  (member by member), and ``Component.from_dict`` against the loop it replaced;
- ``parse_canonical_envelope`` (no duplicate-member hook when the bytes are exactly
  canonical) against ``parse_envelope`` followed by ``check_canonical``.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tiup.errors import InvalidNameError, ManifestError
from tiup.manifest import names
from tiup.manifest.canonical import encode_canonical
from tiup.manifest.envelope import (
    Envelope,
    check_canonical,
    parse_canonical_envelope,
    parse_envelope,
)
from tiup.manifest.models import Component, VersionItem

SETTINGS = settings(max_examples=300, deadline=None)

GOOD_ITEM: dict[str, Any] = {
    "dependencies": None, "entry": "bin/hello", "hashes": {"sha256": "ab" * 32,
                                                           "sha512": "cd" * 64},
    "length": 1234, "released": "2026-01-01T00:00:00Z", "url": "/hello-v1.0.0-linux-amd64.tar.gz",
    "yanked": False,
}
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-3, 2**64 + 1),
                   st.sampled_from([1.5, 0.0, "", "x", "/a.tar.gz", "../x", "a/../b",
                                    "/", "/x\x00", "bin/sh", "/abs/path", "ok"]))
VALUE = st.one_of(SCALAR, st.lists(SCALAR, max_size=2),
                  st.dictionaries(st.sampled_from(["sha256", "sha512", "md5", "x"]),
                                  SCALAR, max_size=3))
MEMBER = st.sampled_from([*GOOD_ITEM, "URL", "Entry", "extra", "yanKed", "nested"])


def outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        value = fn(*args)
    except ManifestError as exc:
        return ("error", (type(exc).__name__, exc.message, exc.hint, exc.code))
    return ("ok", value)


def item_state(item: VersionItem) -> tuple[Any, ...]:
    return (item, item.absent, item.unrecognized, item.other_hashes)


@st.composite
def item_dicts(draw: st.DrawFn) -> object:
    obj = dict(GOOD_ITEM)
    for name in draw(st.lists(MEMBER, max_size=3)):
        if draw(st.booleans()):
            obj[name] = draw(VALUE)
        else:
            obj.pop(name, None)
    return obj if draw(st.integers(0, 20)) else draw(VALUE)


@SETTINGS
@given(item_dicts())
@example(dict(GOOD_ITEM))
@example({k: v for k, v in GOOD_ITEM.items() if k != "dependencies"})
@example({**GOOD_ITEM, "length": True})
@example({**GOOD_ITEM, "length": 2**64})
@example({**GOOD_ITEM, "entry": "../x"})
@example({**GOOD_ITEM, "URL": "/x"})
@example({**GOOD_ITEM, "hashes": {"sha256": "a", "md5": "b"}})
@example({**GOOD_ITEM, "dependencies": {"a": 1}})
def test_version_item_fast_path_is_the_checked_path(obj: object) -> None:
    checked = outcome(VersionItem._from_dict_checked, obj, "w")
    fast = VersionItem._fast(obj, set())
    if fast is not None:
        assert checked[0] == "ok"
        assert item_state(fast) == item_state(checked[1])
    public = outcome(VersionItem.from_dict, obj, "w")
    assert public[0] == checked[0]
    if public[0] == "ok":
        assert item_state(public[1]) == item_state(checked[1])
    else:
        assert public == checked


def reference_component(obj: dict[str, Any], where: str) -> Component:
    """``Component.from_dict`` as it was: every item through the checked reader."""
    comp = Component.from_dict({**obj, "platforms": {}}, where)
    platforms: dict[str, dict[str, VersionItem]] = {}
    checked: set[str] = set()
    for plat, versions in (obj.get("platforms") or {}).items():
        try:
            names.split_platform(plat)
        except InvalidNameError as exc:
            raise ManifestError(f"{where} platform {plat!r}: {exc.message}",
                                hint=exc.hint) from exc
        if versions is None:
            versions = {}
        if not isinstance(versions, dict):
            raise ManifestError(f"{where}: platform {plat!r} must map versions to items")
        items: dict[str, VersionItem] = {}
        for ver, item in versions.items():
            if ver not in checked:
                try:
                    names.version_str(ver)
                except InvalidNameError as exc:
                    raise ManifestError(f"{where} {plat}: {exc.message}", hint=exc.hint) from exc
                checked.add(ver)
            items[ver] = VersionItem._from_dict_checked(item, f"{where} {plat} {ver}")
        platforms[plat] = items
    comp.platforms = platforms
    return comp


@SETTINGS
@given(st.dictionaries(st.sampled_from(["linux/amd64", "darwin/arm64", "Linux/x"]),
                       st.dictionaries(st.sampled_from(["v1.0.0", "v2", "../x", "v1.0.0-rc.1"]),
                                       item_dicts(), max_size=4), max_size=3))
def test_component_parse_is_the_checked_parse(platforms: dict[str, Any]) -> None:
    obj = {"_type": "component", "description": "d", "expires": "2030-01-01T00:00:00Z",
           "id": "hello", "nightly": "", "platforms": platforms, "spec_version": "0.1.0",
           "version": 1}
    got = outcome(Component.from_dict, obj, "c.json")
    want = outcome(reference_component, obj, "c.json")
    assert got[0] == want[0], (got, want)
    if got[0] == "ok":
        assert got[1] == want[1]
        for plat, versions in got[1].platforms.items():
            for ver, item in versions.items():
                assert item_state(item) == item_state(want[1].platforms[plat][ver])
    else:
        assert got == want


# ---------------------------------------------------------------- envelopes

SIGNED = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3),
              st.sampled_from([0.5, 1e400, "\ud800", "\x01"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text("ab\"", max_size=2), inner, max_size=3)),
    max_leaves=8,
)


@st.composite
def manifest_files(draw: st.DrawFn) -> bytes:
    signed = {"_type": "component", "x": draw(SIGNED)}
    sigs = [{"keyid": "k", "sig": "s"}]
    try:
        text = encode_canonical({"signatures": sigs, "signed": signed}).decode()
    except ManifestError:
        text = json.dumps({"signatures": sigs, "signed": signed})
    edit = draw(st.sampled_from(["none", "none", "dup", "dup-sig", "space", "newline",
                                 "extra", "order", "truncate"]))
    if edit == "dup":
        text = text.replace('{"_type":"component"', '{"_type":"component","_type":"component"')
    elif edit == "dup-sig":
        text = text.replace('{"keyid":"k"', '{"keyid":"k","keyid":"k"')
    elif edit == "space":
        text = text.replace(",", ", ", 1)
    elif edit == "newline":
        text += "\n"
    elif edit == "extra":
        text = text[:-1] + ',"z":1}'
    elif edit == "order":
        text = text.replace('"_type":"component","x":', '"x":0,"_type":"component","x":')
    elif edit == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode("utf-8", "surrogatepass")


def env_state(env: Envelope) -> tuple[Any, ...]:
    return (env.signatures, env.signed, env.signed_raw, env.source, env.extra_members)


def reference_canonical(data: bytes) -> tuple[Envelope, ManifestError | None]:
    env = parse_envelope(data, "m.json")
    try:
        check_canonical(env, data)
    except ManifestError as exc:
        return env, exc
    return env, None


@SETTINGS
@given(manifest_files())
def test_canonical_parse_keeps_every_check(data: bytes) -> None:
    got = outcome(parse_canonical_envelope, data, "m.json")
    want = outcome(reference_canonical, data)
    assert got[0] == want[0], (got, want)
    if got[0] == "error":
        assert got == want
        return
    (env, form), (ref_env, ref_form) = got[1], want[1]
    assert env_state(env) == env_state(ref_env)
    assert (form is None) == (ref_form is None)
    if form is not None and ref_form is not None:
        assert (type(form), form.message, form.code) == (type(ref_form), ref_form.message,
                                                         ref_form.code)


def test_a_duplicate_member_is_refused_by_both_parses() -> None:
    data = b'{"signatures":[],"signed":{"_type":"component","a":1,"a":1}}'
    for parse in (parse_envelope, parse_canonical_envelope):
        try:
            parse(data, "m.json")
        except ManifestError as exc:
            assert "duplicate member name 'a'" in exc.message
        else:
            raise AssertionError(f"{parse.__name__} accepted a duplicate member")
