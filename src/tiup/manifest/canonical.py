"""Canonical JSON, byte-compatible with ``canonicaljson-go`` v1.0.3 ``Marshal``.

TiUP signs and hashes manifests in the canonical form produced by
github.com/gibson042/canonicaljson-go v1.0.3. This module produces exactly the
same bytes from plain Python values:

* no insignificant whitespace;
* object members sorted by the code points of their names (for the names this
  module can encode that is the same order as Go's byte-wise order of the
  UTF-8/WTF-8 names);
* strings as raw UTF-8 with minimal escaping: ``"`` -> ``\\"``, ``\\`` ->
  ``\\\\``, U+0008/9/A/C/D -> ``\\b \\t \\n \\f \\r``, every other U+0000-U+001F
  -> ``\\u00XX`` with uppercase hex, a lone surrogate -> ``\\uDXXX`` (uppercase);
  nothing else is escaped (``<``, ``>``, ``&``, ``/``, DEL, U+2028/U+2029 and all
  non-ASCII stay literal);
* integers in plain decimal; a float is printed from its shortest round-trip
  decimal digits (the digits ``repr`` / Go's ``strconv.FormatFloat(f, 'E', -1,
  64)`` give): if those digits denote an integer it is written as an integer
  padded with zeros (``1048576.0`` -> ``1048576``, ``1e21`` -> ``1`` and 21
  zeros, ``2.0**60`` -> ``1152921504606847000``, ``-0.0`` -> ``0``), otherwise
  as ``d.dddE<exp>`` with a capital ``E``, no ``+``, no leading zeros in the
  exponent and at least one fractional digit (``0.25`` -> ``2.5E-1``, ``2.5`` ->
  ``2.5E0``, ``1e-05`` -> ``1.0E-5``);
* ``true``, ``false``, ``null`` literally; NaN and the infinities are rejected.

Strings. A Go string is a byte string; canonicaljson-go rejects ill-formed
UTF-8 except the "WTF-8" encoding of a lone surrogate, which it escapes as
``\\uDXXX``, and it rejects a WTF-8 high surrogate immediately followed by a
WTF-8 low surrogate (that would be a smuggled surrogate pair). A Python ``str``
is a sequence of code points, so the equivalent rules are: every surrogate code
point (U+D800-U+DFFF, including the U+DC80-U+DCFF range that the
``surrogateescape`` error handler produces) that is not part of a high+low pair
is escaped as ``\\uDXXX``, and a high surrogate immediately followed by a low
surrogate raises :class:`CanonicalJSONError`. Python ``str`` cannot hold any
other ill-formed UTF-8; ``bytes`` values are not accepted at all.

Speed. Values without floats and with only exactly-typed ``dict``/``list``/
``tuple``/``str``/``int``/``bool``/``None`` are serialised by the C
accelerated :func:`json.dumps` (which gives identical bytes, after upper-casing
its ``\\u00xx`` escapes); everything else goes through a recursive encoder.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from tiup.errors import CanonicalJSONError

__all__ = ["CanonicalJSONError", "decode_json_strict", "encode_canonical", "format_float"]


# --------------------------------------------------------------------------- strings

# Characters a canonical JSON string must escape: C0 controls, quote, backslash
# and surrogate code points (which have no UTF-8 encoding).
_NEEDS_ESCAPE = re.compile('[\x00-\x1f"\\\\\ud800-\udfff]')
# A high surrogate directly followed by a low one: canonicaljson-go refuses the
# WTF-8 form of this (it would be read back as one supplementary character).
_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")

_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}
_ESCAPES: dict[str, str] = {chr(c): f"\\u{c:04X}" for c in range(0x20)}
_ESCAPES.update(_SHORT_ESCAPES)


def _escape_match(match: re.Match[str]) -> str:
    char = match.group()
    escaped = _ESCAPES.get(char)
    if escaped is None:  # a lone surrogate
        escaped = f"\\u{ord(char):04X}"
    return escaped


def _encode_str(text: str) -> str:
    """Return ``text`` as a canonical JSON string literal (still a ``str``).

    Raises:
        _EncodeError: ``text`` holds a high surrogate directly followed by a
            low surrogate.
    """
    if _NEEDS_ESCAPE.search(text) is None:
        return '"' + text + '"'
    pair = _SURROGATE_PAIR.search(text)
    if pair is not None:
        high, low = pair.group()[0], pair.group()[1]
        raise _EncodeError(
            f"string holds the surrogate pair U+{ord(high):04X} U+{ord(low):04X} as two "
            "code points; canonical JSON cannot represent it (canonicaljson-go rejects it)"
        )
    return '"' + _NEEDS_ESCAPE.sub(_escape_match, text) + '"'


# json.dumps(ensure_ascii=False) escapes C0 controls other than \b\t\n\f\r as
# lowercase \u00xx. Every backslash in its output starts an escape, so matching
# "\\\\" as a unit keeps the scan aligned; only \u00xx escapes are rewritten.
_JSON_ESCAPE = re.compile(r"\\(?:\\|u00[0-9a-f]{2})")


def _upper_escape(match: re.Match[str]) -> str:
    escape = match.group()
    return escape if escape == "\\\\" else "\\u" + escape[2:].upper()


# --------------------------------------------------------------------------- numbers


def format_float(number: float) -> str:
    """Return the canonical JSON text of a finite float (see module docstring).

    Raises:
        CanonicalJSONError: ``number`` is NaN or infinite.
    """
    try:
        return _format_float(number)
    except _EncodeError as exc:
        raise CanonicalJSONError(exc.message) from None


def _format_float(number: float) -> str:
    if not math.isfinite(number):
        raise _EncodeError(f"{number!r} cannot be encoded: NaN and Infinity are not JSON")
    if number == 0:
        return "0"  # also -0.0
    text = float.__repr__(number)  # shortest round-trip digits, like Go's 'E', -1
    sign = ""
    if text[0] == "-":
        sign = "-"
        text = text[1:]
    mantissa, _, exponent = text.partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    digits = int_part + frac_part
    # value == 0.<digits> * 10**point
    point = len(int_part) + (int(exponent) if exponent else 0)
    significant = digits.lstrip("0")
    point -= len(digits) - len(significant)
    significant = significant.rstrip("0")
    if len(significant) <= point:  # integral: no exponent, pad with zeros
        return sign + significant + "0" * (point - len(significant))
    if len(significant) == 1:
        significant += "0"
    return f"{sign}{significant[0]}.{significant[1:]}E{point - 1}"


# --------------------------------------------------------------------------- encoder


class _EncodeError(Exception):
    """Internal: an encoding failure, with the path to the bad value built on unwind."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []

    def public(self) -> CanonicalJSONError:
        where = "$" + "".join(reversed(self.path))
        return CanonicalJSONError(f"{self.message} (at {where})")


_PLAIN_SCALARS: frozenset[type] = frozenset({str, int, bool, type(None)})


def _is_plain(value: object) -> bool:
    """True if json.dumps gives canonical bytes for ``value`` (modulo escape case).

    That is: no floats, only exact ``str``/``int``/``bool``/``None`` scalars,
    ``str`` keys. A circular value recurses until :class:`RecursionError`.
    """
    scalars = _PLAIN_SCALARS
    if type(value) in scalars:
        return True
    if isinstance(value, dict):
        for key, item in value.items():
            if type(key) is not str:
                return False
            if type(item) not in scalars and not _is_plain(item):
                return False
        return True
    if isinstance(value, list | tuple):
        for item in value:  # noqa: SIM110 -- a plain loop is faster than all(<genexpr>)
            if type(item) not in scalars and not _is_plain(item):
                return False
        return True
    return False


def _encode_value(value: object, out: list[str], active: set[int]) -> None:
    """Append the canonical JSON text of ``value`` to ``out``.

    Raises:
        _EncodeError: ``value`` (or something inside it) cannot be encoded.
    """
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_encode_str(value))
    elif isinstance(value, int):
        try:
            out.append(int.__repr__(value))
        except ValueError as exc:  # beyond sys.get_int_max_str_digits()
            raise _EncodeError(f"integer cannot be converted to decimal: {exc}") from None
    elif isinstance(value, float):
        out.append(_format_float(value))
    elif isinstance(value, dict):
        _encode_dict(value, out, active)
    elif isinstance(value, list | tuple):
        _encode_list(value, out, active)
    else:
        raise _EncodeError(f"unsupported type {type(value).__name__!r}")


def _encode_dict(value: dict[Any, Any], out: list[str], active: set[int]) -> None:
    marker = id(value)
    if marker in active:
        raise _EncodeError("circular reference")
    for key in value:
        if not isinstance(key, str):
            raise _EncodeError(
                f"object key {key!r} has type {type(key).__name__}; only str keys are allowed"
            )
    active.add(marker)
    out.append("{")
    first = True
    for key in sorted(value):
        if first:
            first = False
        else:
            out.append(",")
        try:
            out.append(_encode_str(key))
            out.append(":")
            _encode_value(value[key], out, active)
        except _EncodeError as exc:
            exc.path.append(f"[{json.dumps(key)}]")
            raise
    out.append("}")
    active.discard(marker)


def _encode_list(value: list[Any] | tuple[Any, ...], out: list[str], active: set[int]) -> None:
    marker = id(value)
    if marker in active:
        raise _EncodeError("circular reference")
    active.add(marker)
    out.append("[")
    for index, item in enumerate(value):
        if index:
            out.append(",")
        try:
            _encode_value(item, out, active)
        except _EncodeError as exc:
            exc.path.append(f"[{index}]")
            raise
    out.append("]")
    active.discard(marker)


def _encode_recursive(value: object) -> bytes:
    """Canonical JSON bytes of ``value`` by the pure-Python encoder (no fast path).

    Raises:
        CanonicalJSONError: as :func:`encode_canonical`.
    """
    out: list[str] = []
    try:
        _encode_value(value, out, set())
    except _EncodeError as exc:
        raise exc.public() from None
    except RecursionError:
        raise CanonicalJSONError("value is nested too deeply to encode") from None
    # Every surrogate has been escaped, so strict UTF-8 encoding cannot fail.
    return "".join(out).encode("utf-8")


def encode_canonical(value: object) -> bytes:
    """Return the canonical JSON bytes of ``value``, as canonicaljson-go ``Marshal`` would.

    ``value`` is built from ``dict`` (``str`` keys), ``list``/``tuple``,
    ``str``, ``int``, ``float``, ``bool`` and ``None`` (subclasses of these
    are encoded as their base type). ``bool`` is never treated as an integer.

    Raises:
        CanonicalJSONError: a float is NaN or infinite; an object key is not a
            ``str``; a value has an unsupported type (``bytes``, ``set``,
            ``Decimal``, ...); a string holds a high surrogate directly followed
            by a low surrogate; an integer exceeds Python's int-to-decimal
            digit limit; the value is circular or nested too deeply. The message
            names the path of the offending value, e.g. ``$["a"][3]``.
    """
    try:
        plain = _is_plain(value)
    except RecursionError:  # circular or very deep: let the careful encoder decide
        plain = False
    if plain:
        try:
            text = json.dumps(
                value,
                sort_keys=True,
                separators=(",", ":"),
                ensure_ascii=False,
                allow_nan=False,
            )
        except (ValueError, RecursionError):
            return _encode_recursive(value)  # raises with a precise message
        if "\\u00" in text:
            text = _JSON_ESCAPE.sub(_upper_escape, text)
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            pass  # surrogates: the recursive encoder escapes or rejects them
    return _encode_recursive(value)


# --------------------------------------------------------------------------- decoder


def _pairs_to_dict(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise CanonicalJSONError(f"duplicate object member name {json.dumps(name)}")
            seen.add(name)
    return result


def _reject_constant(name: str) -> object:
    raise CanonicalJSONError(f"{name} is not a valid JSON number")


def _parse_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise CanonicalJSONError(f"number {text} is out of range for a float")
    return number


def decode_json_strict(data: bytes) -> object:
    """Parse JSON ``data`` like :func:`json.loads` (integers stay ``int``), strictly.

    Objects become ``dict``, arrays ``list``, numbers with a fraction or an
    exponent ``float``. Unlike :func:`json.loads`, the input must be UTF-8
    (no other encoding is sniffed) and no byte-order mark is accepted.

    Raises:
        CanonicalJSONError: ``data`` is not valid UTF-8; it is not well-formed
            JSON; an object has two members with the same name (the message
            names it); it contains a ``NaN``, ``Infinity`` or ``-Infinity``
            literal; a number overflows a float or has more digits than Python
            converts; or it is nested too deeply.
    """
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CanonicalJSONError(
            f"JSON is not valid UTF-8: byte 0x{data[exc.start]:02X} at offset {exc.start}"
        ) from None
    try:
        return json.loads(
            text,
            object_pairs_hook=_pairs_to_dict,
            parse_constant=_reject_constant,
            parse_float=_parse_float,
        )
    except CanonicalJSONError:
        raise
    except json.JSONDecodeError as exc:
        raise CanonicalJSONError(f"invalid JSON: {exc}") from None
    except ValueError as exc:  # e.g. an integer beyond sys.get_int_max_str_digits()
        raise CanonicalJSONError(f"invalid JSON number: {exc}") from None
    except RecursionError:
        raise CanonicalJSONError("JSON is nested too deeply") from None
