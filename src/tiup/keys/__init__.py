"""Keys: generation, TiUP key files, and signers/verifiers behind one interface.

Key types are found through one dispatch table keyed by ``(keytype, scheme)``:

* ``rsa`` / ``rsassa-pss-sha256`` — what TiUP uses everywhere: RSA-2048,
  PSS with SHA-256 and MGF1-SHA-256; signing with the maximum salt (222 bytes,
  as Go's ``SignPSS`` does), verification with automatic salt detection.
* ``ed25519`` / ``ed25519`` — supported here for tools that want it; Go TiUP
  rejects it, so the trust layer refuses it inside TiUP manifests.

Key files follow TiUP's on-disk form exactly (``format.md`` §7): the private
PEM says ``PRIVATE KEY`` but holds a PKCS#1 body; files are canonical JSON
plus one newline, created with mode 0600.

Loading an RSA private key normally runs OpenSSL's key check (primality of
``p`` and ``q`` and the CRT values: about 45 ms a key). A writer's key ring
loads with ``check=False`` instead (``docs/adr/0006-unchecked-signing-keys.md``):
what the check guards against is a key whose signatures are wrong, and
:meth:`RSAPrivateKey.sign` verifies every signature it makes against the key's
public half before returning it (about 0.05 ms), so no signature by a damaged
key ever leaves this module.
"""

from __future__ import annotations

import base64
import binascii
import os
from abc import ABC, abstractmethod
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from tiup.errors import KeyFormatError, UnsupportedKeyError
from tiup.fsutil import atomic_write
from tiup.manifest.canonical import encode_canonical
from tiup.manifest.envelope import Signature, parse_json
from tiup.manifest.models import KeyInfo, public_key_id

RSA_BITS = 2048
RSA_EXPONENT = 65537
RSA_TYPE = ("rsa", "rsassa-pss-sha256")
ED25519_TYPE = ("ed25519", "ed25519")

_PSS_SIGN = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
_PSS_VERIFY = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)


class PublicKey(ABC):
    """A verifier. ``keyid`` is TiUP's ``KeyInfo.ID()``: the hash of the Go-formatted key."""

    keytype: str
    scheme: str

    @abstractmethod
    def public_value(self) -> str:
        """The ``keyval.public`` string exactly as TiUP would write it."""

    @abstractmethod
    def verify(self, payload: bytes, signature: bytes) -> bool:
        """True if ``signature`` is valid over ``payload``; never raises for a bad signature."""

    @abstractmethod
    def identity(self) -> Hashable:
        """The key's public numbers: one key counts once toward a threshold however stored."""

    def keyinfo(self) -> KeyInfo:
        return KeyInfo(self.keytype, self.scheme, {"public": self.public_value()})

    @property
    def keyid(self) -> str:
        return public_key_id(self.keytype, self.scheme, self.public_value())


class PrivateKey(ABC):
    """A signer holding its public half."""

    public: PublicKey

    @abstractmethod
    def sign(self, payload: bytes) -> bytes:
        """The raw signature over ``payload``."""

    @abstractmethod
    def private_value(self) -> str:
        """The ``keyval.private`` string exactly as TiUP writes it."""

    @property
    def keyid(self) -> str:
        return self.public.keyid

    def keyinfo(self) -> KeyInfo:
        return KeyInfo(self.public.keytype, self.public.scheme, {"private": self.private_value()})

    def signature(self, payload: bytes) -> Signature:
        """A manifest signature entry (keyid + standard base64) over ``payload``.

        Raises:
            KeyFormatError: the signature does not verify (a damaged RSA key).
        """
        return Signature(self.keyid, base64.b64encode(self.sign(payload)).decode("ascii"))


# ------------------------------------------------------------------------- RSA


def _pem(label: str, der: bytes) -> str:
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def _pem_body(text: str, where: str) -> bytes:
    lines = [ln.strip() for ln in text.strip().splitlines()]
    if len(lines) < 3 or not lines[0].startswith("-----BEGIN ") or not lines[-1].startswith(
        "-----END "
    ):
        raise KeyFormatError(f"{where}: not a PEM block", file=where)
    try:
        return base64.b64decode("".join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyFormatError(f"{where}: PEM body is not valid base64", file=where) from exc


class RSAPublicKey(PublicKey):
    keytype, scheme = RSA_TYPE

    def __init__(self, key: rsa.RSAPublicKey):
        self._key = key

    def public_value(self) -> str:
        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def verify(self, payload: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(signature, payload, _PSS_VERIFY, hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        return True

    def identity(self) -> Hashable:
        numbers = self._key.public_numbers()
        return ("rsa", numbers.n, numbers.e)

    @classmethod
    def from_value(cls, value: str, where: str) -> RSAPublicKey:
        try:
            key = serialization.load_pem_public_key(value.encode("ascii"))
        except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
            raise KeyFormatError(
                f"{where}: cannot parse RSA public key: {exc}", file=where
            ) from exc
        if not isinstance(key, rsa.RSAPublicKey):
            raise UnsupportedKeyError(f"{where}: key is not an RSA public key", file=where)
        return cls(key)


class RSAPrivateKey(PrivateKey):
    """An RSA signer; ``where`` names the key (its file) in errors."""

    def __init__(self, key: rsa.RSAPrivateKey, where: str = "key"):
        self._key = key
        self.where = where
        self.public = RSAPublicKey(key.public_key())

    def sign(self, payload: bytes) -> bytes:
        """The PSS signature over ``payload``, verified against the public half first.

        The verification (one public-key operation, e = 65537) is what makes loading
        without OpenSSL's key check safe (module docstring): a damaged private value
        (or a fault during the CRT computation) gives a signature that does not verify,
        and it is refused here instead of being written or sent anywhere.

        Raises:
            KeyFormatError: the signature does not verify: the key is damaged.
        """
        signature = self._key.sign(payload, _PSS_SIGN, hashes.SHA256())
        if not self.public.verify(payload, signature):
            raise KeyFormatError(
                f"{self.where}: a signature made with this private key does not verify "
                "against its public key; the key is damaged", file=self.where,
                hint="restore the key file from a backup")
        return signature

    def private_value(self) -> str:
        der = self._key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1, as Go reads it
            serialization.NoEncryption(),
        )
        return _pem("PRIVATE KEY", der)

    @classmethod
    def from_value(cls, value: str, where: str, *, check: bool = True) -> RSAPrivateKey:
        """Parse a private PEM value; ``check=False`` skips OpenSSL's key check (module
        docstring: every signature is verified instead).

        Raises:
            KeyFormatError, UnsupportedKeyError: not a (valid) RSA private key.
        """
        der = _pem_body(value, where)
        try:
            # Accepts the PKCS#1 body TiUP writes under a PKCS#8 label (and PKCS#8 too).
            key = serialization.load_der_private_key(
                der, password=None, unsafe_skip_rsa_key_validation=not check)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KeyFormatError(
                f"{where}: cannot parse RSA private key: {exc}", file=where
            ) from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise UnsupportedKeyError(f"{where}: key is not an RSA private key", file=where)
        return cls(key, where)

    @classmethod
    def generate(cls) -> RSAPrivateKey:
        return cls(rsa.generate_private_key(public_exponent=RSA_EXPONENT, key_size=RSA_BITS))


# --------------------------------------------------------------------- ed25519


class Ed25519PublicKey(PublicKey):
    keytype, scheme = ED25519_TYPE

    def __init__(self, key: ed25519.Ed25519PublicKey):
        self._key = key

    def _raw(self) -> bytes:
        return self._key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def public_value(self) -> str:
        return self._raw().hex()

    def verify(self, payload: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(signature, payload)
        except InvalidSignature:
            return False
        return True

    def identity(self) -> Hashable:
        return ("ed25519", self._raw())

    @classmethod
    def from_value(cls, value: str, where: str) -> Ed25519PublicKey:
        try:
            return cls(ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(value)))
        except ValueError as exc:
            raise KeyFormatError(f"{where}: cannot parse ed25519 public key", file=where) from exc


class Ed25519PrivateKey(PrivateKey):
    def __init__(self, key: ed25519.Ed25519PrivateKey):
        self._key = key
        self.public = Ed25519PublicKey(key.public_key())

    def sign(self, payload: bytes) -> bytes:
        return self._key.sign(payload)

    def private_value(self) -> str:
        return self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        ).hex()

    @classmethod
    def from_value(cls, value: str, where: str, *, check: bool = True) -> Ed25519PrivateKey:
        """Raises KeyFormatError (``check`` is for RSA: an ed25519 key has no costly check)."""
        try:
            return cls(ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(value)))
        except ValueError as exc:
            raise KeyFormatError(f"{where}: cannot parse ed25519 private key", file=where) from exc

    @classmethod
    def generate(cls) -> Ed25519PrivateKey:
        return cls(ed25519.Ed25519PrivateKey.generate())


#: (keytype, scheme) → (public class, private class)
_TYPES: dict[tuple[str, str], tuple[Any, Any]] = {
    RSA_TYPE: (RSAPublicKey, RSAPrivateKey),
    ED25519_TYPE: (Ed25519PublicKey, Ed25519PrivateKey),
}


def _classes(info: KeyInfo, where: str) -> tuple[Any, Any]:
    classes = _TYPES.get((info.keytype, info.scheme))
    if classes is None:
        raise UnsupportedKeyError(
            f"unsupported key type {info.keytype!r} with scheme {info.scheme!r} in {where}",
            file=where,
        )
    return classes


def public_key(info: KeyInfo, where: str = "key") -> PublicKey:
    """The verifier for a KeyInfo (public, or private whose public half is derived).

    Raises:
        UnsupportedKeyError: unknown key type or scheme.
        KeyFormatError: the key material does not parse.
    """
    pub_cls, _priv_cls = _classes(info, where)
    if info.is_private:
        return private_key(info, where).public
    if not info.public:
        raise KeyFormatError(f"{where}: key has neither a public nor a private value", file=where)
    result: PublicKey = pub_cls.from_value(info.public, where)
    return result


def private_key(info: KeyInfo, where: str = "key", *, check: bool = True) -> PrivateKey:
    """The signer for a private KeyInfo.

    ``check=False`` skips OpenSSL's RSA key check (about 45 ms a key): safe because
    every RSA signature is verified before it is returned (module docstring); keys
    that are loaded but never sign then cost nothing. Where a key is loaded to be
    shown or converted rather than to sign, keep the check.

    Raises:
        UnsupportedKeyError: unknown key type or scheme.
        KeyFormatError: not a private key, or the key material does not parse.
    """
    _pub_cls, priv_cls = _classes(info, where)
    value = info.keyval.get("private")
    if not value:
        raise KeyFormatError(
            f"{where} holds a public key, but a private key is needed to sign",
            file=where,
            hint="pass the private key file (tiup mirror genkey writes one)",
        )
    result: PrivateKey = priv_cls.from_value(value, where, check=check)
    return result


def generate(keytype: str = "rsa") -> PrivateKey:
    """A fresh key pair: RSA-2048 by default, or ``ed25519``.

    Raises:
        UnsupportedKeyError: unknown key type.
    """
    if keytype == "rsa":
        return RSAPrivateKey.generate()
    if keytype == "ed25519":
        return Ed25519PrivateKey.generate()
    raise UnsupportedKeyError(f"unsupported key type {keytype!r}")


# ---------------------------------------------------------------------- files


def keyinfo_file_bytes(info: KeyInfo) -> bytes:
    """Key-file bytes as Go writes them: canonical JSON plus one newline."""
    return encode_canonical(info.to_dict()) + b"\n"


def parse_key_bytes(data: bytes, where: str) -> KeyInfo:
    """Parse the bytes of a key file. Raises KeyFormatError."""
    from tiup.errors import ManifestError

    try:
        obj = parse_json(data, where)
        return KeyInfo.from_dict(obj, where)
    except ManifestError as exc:
        raise KeyFormatError(f"decode key {where}: {exc.message}", file=where) from exc


def load_key_file(path: str | os.PathLike[str]) -> KeyInfo:
    """Read a KeyInfo file (public or private).

    Raises:
        KeyFormatError: unreadable or malformed.
    """
    where = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyFormatError(
            f"cannot read key file {where}: {exc.strerror or exc}",
            file=where,
            hint="generate one with `tiup mirror genkey` or pass -k/--key",
        ) from exc
    return parse_key_bytes(data, where)


def load_private_key(path: str | os.PathLike[str]) -> PrivateKey:
    """Load a private key file. Raises KeyFormatError, UnsupportedKeyError."""
    return private_key(load_key_file(path), str(path))


def save_private_key(
    path: str | os.PathLike[str], key: PrivateKey, *, overwrite: bool = False
) -> None:
    """Write a private key file (mode 0600) in TiUP's form.

    Raises:
        FileExistsError: the file exists and ``overwrite`` is false.
        OSError: the write failed.
    """
    atomic_write(path, keyinfo_file_bytes(key.keyinfo()), 0o600, overwrite=overwrite)


def save_public_key(
    path: str | os.PathLike[str], key: PublicKey, *, overwrite: bool = False
) -> None:
    """Write a public KeyInfo file (mode 0644).

    Raises:
        FileExistsError: the file exists and ``overwrite`` is false.
        OSError: the write failed.
    """
    atomic_write(path, keyinfo_file_bytes(key.keyinfo()), 0o644, overwrite=overwrite)


def decode_signature(sig: str, where: str) -> bytes:
    """Decode a standard padded base64 signature. Raises KeyFormatError."""
    try:
        return base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyFormatError(f"malformed base64 signature in {where}", file=where) from exc


__all__ = [
    "ED25519_TYPE",
    "RSA_TYPE",
    "Ed25519PrivateKey",
    "Ed25519PublicKey",
    "PrivateKey",
    "PublicKey",
    "RSAPrivateKey",
    "RSAPublicKey",
    "decode_signature",
    "generate",
    "keyinfo_file_bytes",
    "load_key_file",
    "load_private_key",
    "parse_key_bytes",
    "private_key",
    "public_key",
    "save_private_key",
    "save_public_key",
]
