"""canonicaljson-go v1.0.3's own encoder test vectors, run against encode_canonical.

The data below is transcribed from ``encode_test.go`` of
github.com/gibson042/canonicaljson-go at tag v1.0.3 (only the input/expected
pairs; no Go code). Counts: 41 string vectors (``encodeStringTests``) and 168
number vectors (the 84 input literals of the ``floats`` table, each run through
the two distinct paths ``TestFloat`` exercises).

How Go inputs map to Python:

* String vectors: a Go ``string`` is a byte string. It is mapped to a Python
  ``str`` with ``bytes.decode("utf-8", "surrogatepass")``. That is the exact
  analogue of canonicaljson-go's rule: besides well-formed UTF-8 it accepts
  only "WTF-8" three-byte encodings of surrogates (``\\xed\\xa0\\x80`` is the lone
  surrogate U+D800, which ``surrogatepass`` turns into ``"\\ud800"``) and escapes
  them as ``\\uDXXX``. All 41 vectors are *successes* in Go (none of them is an
  error case): the "non-UTF-8" ones are WTF-8 lone surrogates, and they must
  encode to ``"\\uD800"`` etc. ``surrogateescape`` would be the wrong mapping:
  it would turn ``\\xed\\xa0\\x80`` into three code points U+DCED U+DCA0 U+DC80.
  Consequently the encoder does NOT reject U+DC80-U+DCFF: Go encodes the WTF-8
  form of those code points as ``\\uDC80``-``\\uDCFF`` like any other lone
  surrogate. The one surrogate case Go rejects, a WTF-8 high surrogate directly
  followed by a WTF-8 low surrogate, decodes under ``surrogatepass`` to a
  high+low pair of code points, and encode_canonical rejects exactly that
  (tested below, outside the 41). Other ill-formed UTF-8 (``\\xff``, truncated
  sequences), which Go rejects, cannot be held by a Python ``str`` at all
  (``surrogatepass`` refuses it), so it has no Python counterpart; ``bytes``
  values are rejected by the encoder as an unsupported type.
* Number vectors, path 1 (Go ``float64``, from ``strconv.ParseFloat(input)``):
  the Python ``float(input)``.
* Number vectors, path 2 (Go ``canonicaljson.Number(input)`` and
  ``json.Number(input)``, which share one code path, ``normalizeNumber`` on the
  literal): the value our strict decoder gives for the JSON number literal,
  ``decode_json_strict(input.encode())`` - an ``int`` for ``"25"``/``"250"``,
  a ``float`` otherwise. (Python has no arbitrary-precision JSON number type in
  this API, so the literal is carried by the decoded value.)

Tests after the vector tables (edge cases from reading ``encode.go``, and the
``TestEncodeKey``/``TestStringBytes`` data) are extra and not counted.
"""

from __future__ import annotations

import json
import math
import sys

import pytest

from tiup.manifest.canonical import (
    CanonicalJSONError,
    decode_json_strict,
    encode_canonical,
    format_float,
)
from tiup.manifest.canonical import _encode_recursive as encode_recursive


def go_string(raw: bytes) -> str:
    """Map the bytes of a Go string literal to the Python str it stands for."""
    return raw.decode("utf-8", "surrogatepass")


# (Go input bytes, expected Marshal output bytes): encodeStringTests, in order.
STRING_VECTORS: list[tuple[bytes, bytes]] = [
    (b"", b'""'),
    (b"\x00", rb'"\u0000"'),
    (b"\x01", rb'"\u0001"'),
    (b"\x02", rb'"\u0002"'),
    (b"\x03", rb'"\u0003"'),
    (b"\x04", rb'"\u0004"'),
    (b"\x05", rb'"\u0005"'),
    (b"\x06", rb'"\u0006"'),
    (b"\x07", rb'"\u0007"'),
    (b"\x08", rb'"\b"'),
    (b"\x09", rb'"\t"'),
    (b"\x0a", rb'"\n"'),
    (b"\x0b", rb'"\u000B"'),
    (b"\x0c", rb'"\f"'),
    (b"\x0d", rb'"\r"'),
    (b"\x0e", rb'"\u000E"'),
    (b"\x0f", rb'"\u000F"'),
    (b"\x10", rb'"\u0010"'),
    (b"\x11", rb'"\u0011"'),
    (b"\x12", rb'"\u0012"'),
    (b"\x13", rb'"\u0013"'),
    (b"\x14", rb'"\u0014"'),
    (b"\x15", rb'"\u0015"'),
    (b"\x16", rb'"\u0016"'),
    (b"\x17", rb'"\u0017"'),
    (b"\x18", rb'"\u0018"'),
    (b"\x19", rb'"\u0019"'),
    (b"\x1a", rb'"\u001A"'),
    (b"\x1b", rb'"\u001B"'),
    (b"\x1c", rb'"\u001C"'),
    (b"\x1d", rb'"\u001D"'),
    (b"\x1e", rb'"\u001E"'),
    (b"\x1f", rb'"\u001F"'),
    (b"\x7f", b'"\x7f"'),
    (b"\xe6\x97\xa5\xe6\x9c\xac", '"日本"'.encode()),
    (b"\xed\xa0\x80", rb'"\uD800"'),
    (b"\xed\xa0\x80a", rb'"\uD800a"'),
    (b"\xed\xbf\xbf", rb'"\uDFFF"'),
    (b"\xed\xbf\xbfa", rb'"\uDFFFa"'),
    (b"\xed\xbf\xbf\xed\xa0\x80", rb'"\uDFFF\uD800"'),
    (b"\xed\xbf\xbf\xed\xa0\x80a", rb'"\uDFFF\uD800a"'),
]

# expected output -> Go input literals: the `floats` table of TestFloat.
FLOAT_TABLE: dict[str, list[str]] = {
    "2.5E-3": [
        "0.025e-1", "0.0250e-1", "0.02500e-1",
        "0.25e-2", "0.250e-2", "0.2500e-2",
    ],
    "2.5E-2": [
        "0.025e0", "0.0250e0", "0.02500e0",
        "0.025", "0.0250", "0.02500",
        "0.25e-1", "0.250e-1", "0.2500e-1",
        "2.5e-2", "2.50e-2", "2.500e-2",
    ],
    "2.5E-1": [
        "0.025e1", "0.0250e1", "0.02500e1",
        "0.25e0", "0.250e0", "0.2500e0",
        "0.25", "0.250", "0.2500",
        "2.5e-1", "2.50e-1", "2.500e-1",
        "25e-2", "25.0e-2", "25.00e-2",
    ],
    "2.5E0": [
        "0.025e2", "0.0250e2", "0.02500e2",
        "0.25e1", "0.250e1", "0.2500e1",
        "2.5e0", "2.50e0", "2.500e0",
        "2.5", "2.50", "2.500",
        "25e-1", "25.0e-1", "25.00e-1",
        "250e-2", "250.0e-2", "250.00e-2",
    ],
    "25": [
        "0.25e2", "0.250e2", "0.2500e2",
        "2.5e1", "2.50e1", "2.500e1",
        "25e0", "25.0e0", "25.00e0",
        "25", "25.0", "25.00",
        "250e-1", "250.0e-1", "250.00e-1",
    ],
    "250": [
        "2.5e2", "2.50e2", "2.500e2",
        "25e1", "25.0e1", "25.00e1",
        "250e0", "250.0e0", "250.00e0",
        "250", "250.0", "250.00",
    ],
    "2500": [
        "25e2", "25.0e2", "25.00e2",
        "250e1", "250.0e1", "250.00e1",
    ],
}  # fmt: skip

# (path, Go input literal, expected output): 84 literals x 2 paths.
NUMBER_VECTORS: list[tuple[str, str, str]] = [
    (path, literal, expected)
    for expected, literals in FLOAT_TABLE.items()
    for literal in literals
    for path in ("float64", "Number")
]


def test_vector_counts() -> None:
    literals = sum(len(v) for v in FLOAT_TABLE.values())
    print(f"canonicaljson-go vectors: {len(STRING_VECTORS)} string, {len(NUMBER_VECTORS)} number")
    assert len(STRING_VECTORS) == 41
    assert literals == 84
    assert len(NUMBER_VECTORS) == 168
    assert len({(p, lit) for p, lit, _ in NUMBER_VECTORS}) == 168


@pytest.mark.parametrize(("go_input", "expected"), STRING_VECTORS, ids=repr)
def test_string_vector(go_input: bytes, expected: bytes) -> None:
    text = go_string(go_input)
    assert encode_canonical(text) == expected
    assert encode_recursive(text) == expected
    # the same string as an object key and inside a container
    assert encode_canonical({text: [text]}) == b"{" + expected + b":[" + expected + b"]}"


@pytest.mark.parametrize(("path", "literal", "expected"), NUMBER_VECTORS, ids=str)
def test_number_vector(path: str, literal: str, expected: str) -> None:
    value = float(literal) if path == "float64" else decode_json_strict(literal.encode())
    assert encode_canonical(value) == expected.encode()
    assert encode_canonical([value, {"n": value}]) == f'[{expected},{{"n":{expected}}}]'.encode()


# ----------------------------------------------------------------- extra, not counted

# TestEncodeKey: its `named` map with MarshalIndent(named, "", " "); here compact.
NAMED_KEYS = [bytes([c]) for c in (*range(0x20), 0x7F)]
NAMED_EXPECTED_LINES = [
    rb'"\u0000": null', rb'"\u0001": null', rb'"\u0002": null', rb'"\u0003": null',
    rb'"\u0004": null', rb'"\u0005": null', rb'"\u0006": null', rb'"\u0007": null',
    rb'"\b": null', rb'"\t": null', rb'"\n": null', rb'"\u000B": null',
    rb'"\f": null', rb'"\r": null', rb'"\u000E": null', rb'"\u000F": null',
    rb'"\u0010": null', rb'"\u0011": null', rb'"\u0012": null', rb'"\u0013": null',
    rb'"\u0014": null', rb'"\u0015": null', rb'"\u0016": null', rb'"\u0017": null',
    rb'"\u0018": null', rb'"\u0019": null', rb'"\u001A": null', rb'"\u001B": null',
    rb'"\u001C": null', rb'"\u001D": null', rb'"\u001E": null', rb'"\u001F": null',
    b'"\x7f": null',
]  # fmt: skip


def test_encode_key_table() -> None:
    named = {go_string(k): None for k in reversed(NAMED_KEYS)}
    expected = b"{" + b",".join(line.replace(b": ", b":") for line in NAMED_EXPECTED_LINES) + b"}"
    assert encode_canonical(named) == expected
    assert encode_recursive(named) == expected


def test_all_code_points_like_go_string_bytes() -> None:
    # TestStringBytes' input: every code point, then the WTF-8 "\xed\xbf\xbf\xed\xa0\x80".
    text = "".join(map(chr, range(sys.maxunicode + 1))) + go_string(b"\xed\xbf\xbf\xed\xa0\x80")
    # U+DBFF directly followed by U+DC00 is a pair; Go (on bytes) rejects it, and so do we.
    with pytest.raises(CanonicalJSONError, match="surrogate pair"):
        encode_canonical(text)
    # Without surrogates every code point >= 0x20 except '"' and '\\' is literal.
    plain = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    out = encode_canonical(plain)
    expected_prefix = "".join(f"\\u{c:04X}" for c in range(0x20))
    for short, esc in (("0008", "b"), ("0009", "t"), ("000A", "n"), ("000C", "f"), ("000D", "r")):
        expected_prefix = expected_prefix.replace("\\u" + short, "\\" + esc)
    rest = plain[0x20:].replace("\\", "\\\\").replace('"', '\\"')
    assert out == ('"' + expected_prefix + rest + '"').encode()
    assert json.loads(out) == plain


@pytest.mark.parametrize(
    "go_input",
    [b"\xed\xa0\x80\xed\xb0\x80", b"\xed\xaf\xbf\xed\xbf\xbfa", b"x\xed\xa0\x80\xed\xb0\x80"],
)
def test_wtf8_surrogate_pair_rejected(go_input: bytes) -> None:
    with pytest.raises(CanonicalJSONError, match="surrogate pair"):
        encode_canonical(go_string(go_input))
    with pytest.raises(CanonicalJSONError, match="surrogate pair"):
        encode_canonical({"k": [go_string(go_input)]})


def test_invalid_utf8_has_no_str_form_and_bytes_are_rejected() -> None:
    for raw in (b"\xff", b"\xc3", b"a\x80b", b"\xf4\x90\x80\x80", b"\xc0\xaf"):
        with pytest.raises(UnicodeDecodeError):
            go_string(raw)
        with pytest.raises(CanonicalJSONError):
            encode_canonical(raw)
        with pytest.raises(CanonicalJSONError):
            decode_json_strict(b'"' + raw + b'"')


def test_surrogateescape_range_is_a_lone_surrogate_like_in_go() -> None:
    # Go: the WTF-8 bytes of U+DC80..U+DCFF encode as \uDC80..\uDCFF, not as errors.
    assert encode_canonical(go_string(b"\xed\xb2\x80")) == rb'"\uDC80"'
    assert encode_canonical(b"\xff".decode("utf-8", "surrogateescape")) == rb'"\uDCFF"'
    # a low surrogate followed by a high one is two lone surrogates
    assert encode_canonical("\udc00\ud800") == rb'"\uDC00\uD800"'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1048576.0, "1048576"),
        (-0.0, "0"),
        (0.0, "0"),
        (-2.5, "-2.5E0"),
        (1e21, "1" + "0" * 21),
        (1e23, "1" + "0" * 23),  # shortest digits "1E+23", padded
        (2.0**53, "9007199254740992"),
        (2.0**53 + 2, "9007199254740994"),
        (2.0**60, "1152921504606847000"),  # shortest digits, not the exact value
        (-(2.0**64), "-18446744073709552000"),
        (1.7976931348623157e308, "17976931348623157" + "0" * 292),
        (5e-324, "5.0E-324"),  # Go: "5E-324" from AppendFloat
        (1e-5, "1.0E-5"),
        (0.1, "1.0E-1"),
        (123.456, "1.23456E2"),
        (1.5e16, "15000000000000000"),
        (1e15 + 0.5, "1.0000000000000005E15"),
        (0.3, "3.0E-1"),
        (0.1 + 0.2, "3.0000000000000004E-1"),
    ],
    ids=repr,
)
def test_float_edge_cases(value: float, expected: str) -> None:
    assert format_float(value) == expected
    assert encode_canonical(value) == expected.encode()


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_rejected(value: float) -> None:
    with pytest.raises(CanonicalJSONError):
        encode_canonical(value)
    with pytest.raises(CanonicalJSONError):
        encode_canonical({"a": [1, value]})


def test_integers_and_literals() -> None:
    assert encode_canonical(2**64 + 1) == b"18446744073709551617"
    assert encode_canonical(-(2**63)) == b"-9223372036854775808"
    assert encode_canonical([True, False, None, 1, 0]) == b"[true,false,null,1,0]"
    assert encode_canonical({"t": True}) == b'{"t":true}'
    assert encode_canonical((1, "a")) == b'[1,"a"]'
