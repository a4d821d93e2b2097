"""Property tests for tiup.manifest.canonical (encode_canonical / decode_json_strict)."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tiup.manifest.canonical import (
    CanonicalJSONError,
    decode_json_strict,
    encode_canonical,
)
from tiup.manifest.canonical import _encode_recursive as encode_recursive

SETTINGS = settings(max_examples=200, deadline=None)

# Text with C0 controls, quotes, backslashes, HTML-ish and non-ASCII characters
# (no surrogates: those are covered separately).
TEXT = st.text(
    alphabet=st.one_of(
        st.characters(max_codepoint=0x7F),
        st.sampled_from('\x00\x08\x09\x0a\x0b\x0c\x0d\x1f\x7f"\\/<>&\u2028\u2029é日😀'),
        st.characters(codec="utf-8"),  # every code point but surrogates
    ),
    max_size=12,
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(TEXT, children, max_size=5),
    ),
    max_leaves=25,
)
# Values without floats take encode_canonical's json.dumps fast path.
PLAIN_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), TEXT),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(TEXT, children, max_size=5),
    ),
    max_leaves=25,
)

SHORT = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\"}


def reference_string(text: str) -> bytes:
    """Character-by-character statement of the canonical string rule."""
    out = []
    for char in text:
        if char in SHORT:
            out.append(SHORT[char])
        elif ord(char) < 0x20 or 0xD800 <= ord(char) <= 0xDFFF:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return ('"' + "".join(out) + '"').encode("utf-8")


def same_json(original: Any, decoded: Any) -> bool:
    """Equality after a JSON round trip; floats compare by value.

    An integral float is written as an integer of its shortest digits (2.0**60 ->
    1152921504606847000), so it is compared after conversion back to float.
    """
    if isinstance(original, bool) or original is None:
        return decoded is original
    if isinstance(original, float):
        return (
            isinstance(decoded, int | float)
            and not isinstance(decoded, bool)
            and float(decoded) == original
        )
    if isinstance(original, int):
        return type(decoded) is int and decoded == original
    if isinstance(original, str):
        return isinstance(decoded, str) and decoded == original
    if isinstance(original, list):
        return (
            isinstance(decoded, list)
            and len(decoded) == len(original)
            and all(same_json(a, b) for a, b in zip(original, decoded, strict=True))
        )
    assert isinstance(original, dict)
    return (
        isinstance(decoded, dict)
        and decoded.keys() == original.keys()
        and all(same_json(v, decoded[k]) for k, v in original.items())
    )


def walk_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in walk_strings(item)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *walk_strings(v)]]
    return []


@SETTINGS
@given(JSON_VALUES)
def test_round_trip_by_value(value: Any) -> None:
    encoded = encode_canonical(value)
    assert same_json(value, json.loads(encoded))
    assert same_json(value, decode_json_strict(encoded))


@SETTINGS
@given(JSON_VALUES)
def test_idempotent_through_decode(value: Any) -> None:
    encoded = encode_canonical(value)
    assert encode_canonical(json.loads(encoded)) == encoded
    assert encode_canonical(decode_json_strict(encoded)) == encoded


@SETTINGS
@given(JSON_VALUES)
def test_fast_path_matches_recursive_encoder(value: Any) -> None:
    assert encode_canonical(value) == encode_recursive(value)


@SETTINGS
@given(PLAIN_VALUES)
def test_plain_values_fast_path_matches_recursive_encoder(value: Any) -> None:
    assert encode_canonical(value) == encode_recursive(value)


@SETTINGS
@given(JSON_VALUES)
def test_no_whitespace_outside_strings(value: Any) -> None:
    encoded = encode_canonical(value)
    strings = walk_strings(value)
    if not any(" " in s for s in strings):
        assert b" " not in encoded
    # a newline inside a string is always escaped, so raw \n, \r, \t never appear
    assert b"\n" not in encoded
    assert b"\r" not in encoded
    assert b"\t" not in encoded
    # and no byte below 0x20 at all
    assert all(byte >= 0x20 for byte in encoded)


@SETTINGS
@given(TEXT)
def test_string_escaping(text: str) -> None:
    encoded = encode_canonical(text)
    assert encoded == reference_string(text)
    assert encode_canonical([text]) == b"[" + encoded + b"]"
    for char in "&<>/\x7f\u2028\u2029":
        if char in text:
            assert char.encode() in encoded
    if not any(ord(c) < 0x20 or c == "\\" for c in text):
        assert b"\\u" not in encoded  # non-ASCII is never \u-escaped
    for char in text:
        if ord(char) > 0x7F:
            assert char.encode() in encoded  # literal UTF-8
    for code in range(0x20):
        if chr(code) in text and chr(code) not in "\b\t\n\f\r":
            assert f"\\u{code:04X}".encode() in encoded


@SETTINGS
@given(st.lists(st.one_of(TEXT, st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))))
def test_lone_surrogates_escaped_and_pairs_rejected(parts: list[str]) -> None:
    text = "".join(parts)
    has_pair = any(
        "\ud800" <= a <= "\udbff" and "\udc00" <= b <= "\udfff" for a, b in itertools.pairwise(text)
    )
    if has_pair:
        try:
            encode_canonical(text)
        except CanonicalJSONError:
            pass
        else:
            raise AssertionError("surrogate pair accepted")
    else:
        encoded = encode_canonical(text)
        assert encoded == reference_string(text)
        assert json.loads(encoded) == text
        assert encode_canonical({text: text}) == b"{" + encoded + b":" + encoded + b"}"


def keys_sorted(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    names = [name for name, _ in pairs]
    assert names == sorted(names)
    # code point order == byte order of the UTF-8 names
    assert [n.encode() for n in names] == sorted(n.encode() for n in names)
    assert len(set(names)) == len(names)
    return pairs


@SETTINGS
@given(JSON_VALUES)
def test_keys_sorted(value: Any) -> None:
    json.loads(encode_canonical(value), object_pairs_hook=keys_sorted)


@SETTINGS
@given(st.dictionaries(TEXT, st.integers(), min_size=2, max_size=10))
def test_key_order_ignores_insertion_order(mapping: dict[str, int]) -> None:
    reversed_mapping = dict(reversed(list(mapping.items())))
    assert encode_canonical(mapping) == encode_canonical(reversed_mapping)


@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_format_shape(number: float) -> None:
    text = encode_canonical(number).decode()
    assert float(text) == number or (number == 0 and text == "0")
    if "E" in text:
        mantissa, exponent = text.split("E")
        assert "." in mantissa and mantissa.lstrip("-")[0] in "123456789"
        assert not mantissa.endswith("0") or mantissa.lstrip("-")[1:] == ".0"
        assert exponent == str(int(exponent)) and "+" not in exponent
    else:
        assert text == str(int(text))
        assert math.isclose(number, int(text), rel_tol=1e-15)


@SETTINGS
@given(st.dictionaries(TEXT, st.integers(), min_size=1, max_size=5), st.data())
def test_decode_rejects_duplicates(mapping: dict[str, int], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(mapping)))
    body = encode_canonical(mapping)
    duplicated = body[:-1] + b"," + encode_canonical(name) + b":0}"
    try:
        decode_json_strict(duplicated)
    except CanonicalJSONError as exc:
        assert "duplicate" in str(exc)
        assert json.dumps(name) in str(exc)
    else:
        raise AssertionError("duplicate member accepted")
    assert decode_json_strict(body) == mapping
