"""The signed envelope ``{"signatures": [...], "signed": {...}}``.

Readers keep the exact bytes of the ``signed`` value as they appear in the
file: signatures are verified over those bytes, never over a
re-serialisation (``format.md`` §6.3). Writers produce canonical JSON of the
whole envelope, so the raw span equals canonical(``signed``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tiup.errors import CanonicalFormError, ManifestError
from tiup.manifest.canonical import CanonicalJSONError, decode_json_strict, encode_canonical
from tiup.manifest.models import Signed, paused_gc, signed_from_dict

#: :class:`~tiup.errors.CanonicalFormError` code: the signed bytes are not canonical.
SIGNED_NOT_CANONICAL = "signed-not-canonical"


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: str

    def to_dict(self) -> dict[str, str]:
        return {"keyid": self.keyid, "sig": self.sig}


@dataclass
class Envelope:
    """A parsed manifest file.

    Attributes:
        signatures: as listed in the file (order kept).
        signed: the ``signed`` object as plain JSON values.
        signed_raw: the exact bytes of the ``signed`` value in the file.
        source: the file name or URL, for error messages.
    """

    signatures: list[Signature]
    signed: dict[str, Any]
    signed_raw: bytes
    source: str = ""
    extra_members: list[str] = field(default_factory=list)

    @property
    def type(self) -> str:
        kind = self.signed.get("_type")
        return kind if isinstance(kind, str) else ""

    def model(self) -> Signed:
        """The typed model of the ``signed`` part. Raises ManifestError."""
        return signed_from_dict(self.signed, self.source)


def _strict_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):  # a duplicate: name the first one
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise CanonicalJSONError(f"duplicate member name {key!r}")
            seen.add(key)
    return out


def _reject_constant(name: str) -> Any:
    raise CanonicalJSONError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(object_pairs_hook=_strict_pairs, parse_constant=_reject_constant)
#: Without the duplicate-member check: only for :func:`parse_canonical_envelope`, whose
#: byte-exact canonical comparison proves there is no duplicate.
_LAX_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_WS = " \t\n\r"
_scanstring: Any = json.decoder.scanstring  # type: ignore[attr-defined]


def parse_envelope(data: bytes, source: str) -> Envelope:
    """Parse a manifest file, keeping the raw bytes of ``signed``.

    Raises:
        ManifestError: not UTF-8 JSON, duplicate members, nested too deeply,
            missing or malformed ``signatures`` / ``signed``.
    """
    return _parse_envelope(data, source, _DECODER)


def parse_canonical_envelope(data: bytes, source: str
                             ) -> tuple[Envelope, ManifestError | None]:
    """:func:`parse_envelope` then :func:`check_canonical`, for readers that check both
    (``tiup mirror verify``): the envelope, and the error :func:`check_canonical` raises
    for it (None if the file is exactly canonical).

    A file equal byte for byte to the canonical encoding of what it parses to holds no
    duplicate member (the encoding writes each member once), so for such a file the
    duplicate check of :func:`parse_envelope` is redundant and skipped; any other file
    is parsed again with it. Errors are exactly those of the two functions.

    Raises:
        ManifestError: as :func:`parse_envelope`.
    """
    try:
        env = _parse_envelope(data, source, _LAX_DECODER)
    except ManifestError:
        env = parse_envelope(data, source)  # raises what the checked parse finds first
    try:
        check_canonical(env, data)
    except ManifestError as exc:
        return parse_envelope(data, source), exc
    return env, None


def _parse_envelope(data: bytes, source: str, decoder: json.JSONDecoder) -> Envelope:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{source} is not valid UTF-8: {exc}", file=source) from exc
    signatures: object = None
    signed: object = None
    signed_raw: bytes | None = None
    extras: list[str] = []
    seen: set[str] = set()
    try:
        i = _skip(text, 0)
        if text[i : i + 1] != "{":
            raise ManifestError(f"{source} is not a JSON object", file=source)
        i = _skip(text, i + 1)
        if text[i : i + 1] == "}":
            i += 1
        else:
            while True:
                if text[i : i + 1] != '"':
                    raise ValueError(f"expected a member name at offset {i}")
                name, i = _scanstring(text, i + 1)
                if name in seen:
                    raise CanonicalJSONError(f"duplicate member name {name!r}")
                seen.add(name)
                i = _skip(text, i)
                if text[i : i + 1] != ":":
                    raise ValueError(f"expected ':' at offset {i}")
                i = _skip(text, i + 1)
                with paused_gc():
                    value, end = decoder.raw_decode(text, i)
                if name == "signed":
                    # ASCII text (the usual manifest): offsets in text are offsets in
                    # data, so the bytes are sliced once, without a text copy first
                    # (a 7.6 MB manifest: 7.6 MB less at the parse's peak).
                    signed_raw = (bytes(data[i:end]) if len(text) == len(data)
                                  else text[i:end].encode("utf-8"))
                    signed = value
                elif name == "signatures":
                    signatures = value
                else:
                    extras.append(name)
                i = _skip(text, end)
                if text[i : i + 1] == ",":
                    i = _skip(text, i + 1)
                    continue
                if text[i : i + 1] == "}":
                    i += 1
                    break
                raise ValueError(f"expected ',' or '}}' at offset {i}")
        if _skip(text, i) != len(text):
            raise ValueError(f"unexpected data after the object at offset {i}")
    except ManifestError:
        raise
    except (ValueError, CanonicalJSONError) as exc:
        raise ManifestError(f"{source} is not valid JSON: {exc}", file=source) from exc
    except RecursionError:
        # The C scanner counts nesting against the interpreter's recursion limit.
        raise ManifestError(f"{source} is not a manifest: JSON nested too deeply",
                            file=source) from None
    if not isinstance(signed, dict) or signed_raw is None:
        raise ManifestError(f"{source} has no 'signed' object", file=source)
    if not isinstance(signatures, list):
        raise ManifestError(f"{source} has no 'signatures' list", file=source)
    sigs: list[Signature] = []
    for entry in signatures:
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("keyid"), str)
            or not isinstance(entry.get("sig"), str)
        ):
            raise ManifestError(
                f"{source}: each signature must be {{'keyid': str, 'sig': str}}", file=source
            )
        sigs.append(Signature(entry["keyid"], entry["sig"]))
    return Envelope(sigs, signed, signed_raw, source, extras)


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def parse_json(data: bytes, source: str) -> Any:
    """Strictly parse JSON bytes (no duplicate members, no NaN). Raises ManifestError."""
    try:
        return decode_json_strict(data)
    except CanonicalJSONError as exc:
        raise ManifestError(f"{source} is not valid JSON: {exc}", file=source) from exc


def signed_bytes(signed: Signed | dict[str, Any]) -> bytes:
    """The canonical bytes that are signed: canonical(``signed``)."""
    obj = signed.to_dict() if isinstance(signed, Signed) else signed
    return encode_canonical(obj)


def envelope_bytes(signatures: list[Signature], signed: Signed | dict[str, Any]) -> bytes:
    """The file bytes of a manifest: canonical JSON of the envelope, no trailing newline."""
    return signed_envelope_bytes(signatures, signed_bytes(signed))


def signed_envelope_bytes(signatures: list[Signature], signed_raw: bytes) -> bytes:
    """The file bytes of a manifest whose ``signed`` part is already canonical bytes.

    Canonical JSON of the envelope is ``{"signatures":[...],"signed":<signed_raw>}``
    (``"signatures"`` sorts before ``"signed"``; no whitespace), so the bytes that were
    signed are copied into the file as they are, never encoded a second time.
    ``signed_raw`` must be canonical JSON of an object (:func:`signed_bytes`).
    """
    sigs = encode_canonical([s.to_dict() for s in signatures])
    return b"".join((b'{"signatures":', sigs, b',"signed":', signed_raw, b"}"))


def check_canonical(env: Envelope, data: bytes) -> None:
    """Check the file is exactly canonical JSON of its envelope.

    Raises:
        CanonicalFormError: naming what differs (trailing newline, spacing, order, escapes);
            code :data:`SIGNED_NOT_CANONICAL` when the signed part itself differs (then
            Go TiUP cannot verify the signatures), else ``trailing-newline`` or
            ``envelope-not-canonical`` (harmless for verification).
    """
    expected = envelope_bytes(env.signatures, env.signed)
    if data == expected:
        return
    if data.rstrip(b"\n") == expected:
        raise CanonicalFormError(f"{env.source} ends with a newline", file=env.source,
                                 code="trailing-newline")
    if encode_canonical(env.signed) != env.signed_raw:
        raise CanonicalFormError(
            f"{env.source}: the signed part is not canonical JSON (spacing, member order or "
            "escapes differ), so Go TiUP cannot verify it",
            file=env.source, code=SIGNED_NOT_CANONICAL,
        )
    raise CanonicalFormError(f"{env.source} is not canonical JSON", file=env.source,
                             code="envelope-not-canonical")
