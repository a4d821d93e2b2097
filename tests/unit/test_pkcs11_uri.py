"""The ``pkcs11:`` URI parser (RFC 7512) is input validation: one clear error (code ``uri``)
for anything it does not accept, never the PIN in a message; and the history hides
``pin-value=``."""

from __future__ import annotations

import pytest

from tiup.client.history import redact
from tiup.errors import TokenError
from tiup.keys.pkcs11 import parse_uri, redact_uri


def test_attributes_are_percent_decoded_in_path_and_query() -> None:
    uri = parse_uri("pkcs11:token=My%20Token;object=tiup%2Downer;id=%01%ff;slot-id=7"
                    "?pin-source=file:/run/pin&module-path=/usr/lib/x.so")
    assert uri.get("token") == "My Token" and uri.get("object") == "tiup-owner"
    assert uri.object_id == b"\x01\xff" and uri.get("slot-id") == "7"
    assert uri.get("pin-source") == "file:/run/pin"
    assert uri.get("module-path") == "/usr/lib/x.so"
    assert uri.selector() == "pkcs11:token=My Token;slot-id=7;object=tiup-owner;id=01ff"
    # query attributes written in the path, as many tools print them, and a trailing ';'
    uri = parse_uri("PKCS11:token=t;object=o;pin-value=12;")
    assert uri.get("pin-value") == "12"
    assert parse_uri("pkcs11:token=a b;object=c d").get("token") == "a b"


@pytest.mark.parametrize(("text", "why"), [
    ("token=a;object=b", "does not start with 'pkcs11:'"),
    ("pkcs11:token=a;token=b;object=c", "attribute 'token' is given twice"),
    ("pkcs11:token=a;object=b?pin-source=x&pin-source=y", "attribute 'pin-source' is given twice"),
    ("pkcs11:token=a;Object=b;object=c", "attribute 'object' is given twice"),
    ("pkcs11:token=a;colour=blue;object=c", "unknown path attribute 'colour'"),
    ("pkcs11:token=a;object=b?token=c", "unknown query attribute 'token'"),
    ("pkcs11:token=a;object=%zz", "attribute 'object' has a malformed %-escape"),
    ("pkcs11:token=a;object=b%4", "attribute 'object' has a malformed %-escape"),
    ("pkcs11:token=a;object=b\x00", "attribute 'object' holds U+0000 that must be %-encoded"),
    ("pkcs11:token=a;object=b#c", "attribute 'object' holds '#' that must be %-encoded"),
    ("pkcs11:token=%ff;object=b", "attribute 'token' is not UTF-8 text"),
    ("pkcs11:token=a", "it names no key object"),
    ("pkcs11:token=a;object=", "it names no key object"),
    ("pkcs11:token=a;object=b;type=cert", "type must be 'private'"),
    ("pkcs11:slot-id=x1;object=b", "slot-id must be a decimal number"),
    ("pkcs11:token=a;object=b?x?y", "more than one '?'"),
    ("pkcs11:token;object=b", "attribute 1 is not name=value"),
    ("pkcs11:object=b?pin-source=f&pin-value=1", "give pin-source or pin-value, not both"),
    ("pkcs11:object=" + "a" * 5000, "longer than 4096 characters"),
])
def test_invalid_uris_are_one_clear_error(text: str, why: str) -> None:
    with pytest.raises(TokenError) as info:
        parse_uri(text)
    assert info.value.code == "uri"
    assert info.value.message.startswith("invalid PKCS#11 URI: ") and why in info.value.message
    assert "\n" not in info.value.message
    assert info.value.hint and "pkcs11:token=" in info.value.hint


@pytest.mark.parametrize("text", ["pkcs11:object=b;pin-value=s3cr#t",
                                  "pkcs11:object=b;pin-values3cr3t",
                                  "pkcs11:object=b;pin-value=s3cr%zz"])
def test_the_pin_is_never_in_a_parse_error(text: str) -> None:
    with pytest.raises(TokenError) as info:
        parse_uri(text)
    assert "s3cr" not in info.value.message and "s3cr" not in (info.value.hint or "")


def test_redaction_hides_every_pin_value() -> None:
    assert redact_uri("pkcs11:object=b;pin-value=1234;token=t?module-path=/m") == \
        "pkcs11:object=b;pin-value=******;token=t?module-path=/m"
    assert parse_uri("pkcs11:object=b?pin-value=99").safe() == "pkcs11:object=b?pin-value=******"
    args = ["mirror", "publish", "-k", "pkcs11:token=a;object=b?pin-value=1234&module-path=/x",
            "--key=pkcs11:token=a;PIN-VALUE=99;object=b", "-kpkcs11:pin-value=77"]
    shown = " ".join(redact(args))
    assert "1234" not in shown and "99" not in shown and "77" not in shown
    assert "pkcs11:token=a;object=b?pin-value=******&module-path=/x" in shown
    assert "--key=pkcs11:token=a;PIN-VALUE=******;object=b" in shown
    assert redact(["-k", "pkcs11:token=a;object=b"]) == ["-k", "pkcs11:token=a;object=b"]


def test_the_parsed_uri_never_shows_its_pin() -> None:
    uri = parse_uri("pkcs11:token=t;object=o?pin-value=2468")
    assert "2468" not in repr(uri) and "2468" not in str(uri) and "2468" not in uri.selector()
