"""Keys: TiUP's key-file form, signing with the maximum PSS salt, clear errors."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tiup import keys
from tiup.errors import KeyFormatError, UnsupportedKeyError
from tiup.manifest.canonical import encode_canonical
from tiup.manifest.models import KeyInfo


@pytest.fixture(scope="module")
def rsa_key() -> keys.PrivateKey:
    return keys.generate()


def test_generate_save_load_round_trip(tmp_path: Path, rsa_key: keys.PrivateKey) -> None:
    path = tmp_path / "keys" / "private.json"
    keys.save_private_key(path, rsa_key)
    loaded = keys.load_private_key(path)
    assert loaded.keyid == rsa_key.keyid
    payload = b"payload"
    assert rsa_key.public.verify(payload, loaded.sign(payload))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_written_file_has_tiup_form(tmp_path: Path, rsa_key: keys.PrivateKey) -> None:
    path = tmp_path / "private.json"
    keys.save_private_key(path, rsa_key)
    data = path.read_bytes()
    obj = json.loads(data)
    # canonical JSON plus exactly one newline, members keytype, keyval, scheme
    assert data == encode_canonical(obj) + b"\n"
    assert list(obj) == ["keytype", "keyval", "scheme"]
    assert obj["keytype"] == "rsa" and obj["scheme"] == "rsassa-pss-sha256"
    pem: str = obj["keyval"]["private"]
    lines = pem.split("\n")
    assert lines[0] == "-----BEGIN PRIVATE KEY-----"
    assert lines[-2] == "-----END PRIVATE KEY-----" and lines[-1] == ""
    assert all(len(line) <= 64 for line in lines[1:-2])
    der = base64.b64decode("".join(lines[1:-2]))
    # PKCS#1 RSAPrivateKey: SEQUENCE { INTEGER 0, INTEGER n, ... }: the second
    # element is an INTEGER (0x02); PKCS#8 would have a SEQUENCE (0x30) there.
    assert der[0] == 0x30
    body = 4 if der[1] == 0x82 else 3 if der[1] == 0x81 else 2
    assert der[body : body + 3] == b"\x02\x01\x00"
    assert der[body + 3] == 0x02
    # load_pem_private_key refuses this exact text (label and body disagree), as spec'd.
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(pem.encode(), password=None)


def test_loads_key_file_written_by_tiup(tmp_path: Path) -> None:
    """A key file built by hand in TiUP's on-disk form (PKCS#1 under PRIVATE KEY) loads."""
    raw = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = raw.private_bytes(serialization.Encoding.DER,
                            serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    b64 = base64.b64encode(der).decode()
    body = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    pem = "-----BEGIN PRIVATE KEY-----\n" + body + "\n-----END PRIVATE KEY-----\n"
    path = tmp_path / "tiup.json"
    path.write_text(json.dumps({"keytype": "rsa", "keyval": {"private": pem},
                                "scheme": "rsassa-pss-sha256"}, separators=(",", ":")) + "\n")
    key = keys.load_private_key(path)
    public_pem = raw.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key.public.public_value() == public_pem.decode()
    assert keys.keyinfo_file_bytes(key.keyinfo()) == path.read_bytes()


def test_signature_uses_maximum_salt(rsa_key: keys.PrivateKey) -> None:
    payload = b'{"_type":"timestamp"}'
    sig = rsa_key.sign(payload)
    assert len(sig) == 256
    raw = keys.private_key(rsa_key.keyinfo())
    pub = raw.public._key  # type: ignore[attr-defined]
    # Go's VerifyPSS auto-detects; a verifier fixed at 222 bytes (TiUP's salt) accepts it...
    pub.verify(sig, payload, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=222),
               hashes.SHA256())
    # ...and one fixed at the 32-byte digest length does not.
    with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidSignature
        pub.verify(sig, payload, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                   hashes.SHA256())


def test_tampered_payload_and_wrong_key_fail(rsa_key: keys.PrivateKey) -> None:
    other = keys.generate()
    sig = rsa_key.sign(b"data")
    assert rsa_key.public.verify(b"data", sig)
    assert not rsa_key.public.verify(b"datA", sig)
    assert not other.public.verify(b"data", sig)
    assert not rsa_key.public.verify(b"data", sig[:-1] + bytes([sig[-1] ^ 1]))


def test_keyid_matches_stored_form(rsa_key: keys.PrivateKey) -> None:
    info = rsa_key.public.keyinfo()
    assert info.stored_id() == rsa_key.keyid
    assert info.public.endswith("-----END PUBLIC KEY-----\n")


def test_ed25519_behind_same_interface(tmp_path: Path) -> None:
    key = keys.generate("ed25519")
    path = tmp_path / "ed.json"
    keys.save_private_key(path, key)
    loaded = keys.load_private_key(path)
    assert loaded.keyid == key.keyid
    assert key.public.verify(b"x", loaded.sign(b"x"))
    assert keys.public_key(key.public.keyinfo()).identity() == key.public.identity()


@pytest.mark.parametrize(
    ("content", "error", "fragment"),
    [
        (b"{not json", KeyFormatError, "not valid JSON"),
        (b'{"keytype":"rsa","keyval":{"private":"-----BEGIN PRIVATE KEY-----\\n@@@\\n'
         b'-----END PRIVATE KEY-----\\n"},"scheme":"rsassa-pss-sha256"}', KeyFormatError,
         "base64"),
        (b'{"keytype":"dsa","keyval":{"private":"x"},"scheme":"dsa"}', UnsupportedKeyError,
         "unsupported key type"),
        (b'{"keytype":"rsa","keyval":{"public":"x"},"scheme":"rsassa-pss-sha256"}',
         KeyFormatError, "private key is needed"),
        (b'{"keytype":"rsa","keyval":{"private":"-----BEGIN PRIVATE KEY-----\\nAAAA\\n'
         b'-----END PRIVATE KEY-----\\n"},"scheme":"rsassa-pss-sha256"}', KeyFormatError,
         "cannot parse"),
    ],
    ids=["malformed-json", "bad-base64", "unknown-type", "public-only", "bad-der"],
)
def test_bad_key_files_fail_clearly(tmp_path: Path, content: bytes, error: type[Exception],
                                    fragment: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(error) as info:
        keys.load_private_key(path)
    assert fragment in str(info.value)


def test_missing_key_file_says_where(tmp_path: Path) -> None:
    with pytest.raises(KeyFormatError) as info:
        keys.load_private_key(tmp_path / "nope.json")
    assert "nope.json" in info.value.message and info.value.hint


def test_refuses_to_overwrite(tmp_path: Path, rsa_key: keys.PrivateKey) -> None:
    path = tmp_path / "k.json"
    keys.save_private_key(path, rsa_key)
    with pytest.raises(FileExistsError):
        keys.save_private_key(path, keys.generate("ed25519"))
    assert keys.load_private_key(path).keyid == rsa_key.keyid
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]


def test_public_key_from_private_info(rsa_key: keys.PrivateKey) -> None:
    assert keys.public_key(rsa_key.keyinfo()).keyid == rsa_key.keyid
    with pytest.raises(UnsupportedKeyError):
        keys.public_key(KeyInfo("ecdsa", "ecdsa-sha2-nistp256", {"public": "x"}))
