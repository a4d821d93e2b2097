"""Keys on PKCS#11 tokens (HSMs, smart cards, SoftHSM): ``pkcs11:`` URIs (RFC 7512).

A ``pkcs11:`` URI is accepted wherever a private key file is (``-k``, ``--add-key``,
``--root-key``, ``tiup mirror sign -k``). :func:`parse_uri` validates it once, where it
enters; :func:`token_key` opens the token and returns a :class:`TokenPrivateKey`, a
:class:`~tiup.keys.PrivateKey` whose private half never leaves the token.

Signatures are TiUP's (``format.md`` §6): RSA-PSS, SHA-256, MGF1-SHA-256 over the
canonical bytes, made by the token with ``CKM_SHA256_RSA_PKCS_PSS`` and the largest salt
the key allows (``emLen - hLen - 2``: 222 bytes for RSA-2048, as Go's ``SignPSS``); a
token that refuses it signs with a salt of the hash length (32), which every verifier
accepts too (``docs/adr/0010-pkcs11-signing.md``). The public half is read from the
token (modulus, exponent) and the key id computed from it exactly as for a key file;
every signature is verified against that public half before it is returned (ADR 0006).

The binding (python-pkcs11) is imported only here, and this module only when a
``pkcs11:`` key is used: start-up never pays for it. One module is loaded and one
session a token opened per process, lazily, and closed at exit (:func:`close_all`).

The PIN comes from ``pin-source=`` (a file), ``pin-value=`` (tests; a warning is given),
or the prompt the caller installed with :func:`configure` (the CLI asks on a terminal).
It is never put in a message, a log or an exception.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiup.errors import KeyFormatError, TokenError
from tiup.keys import PrivateKey, RSAPublicKey

#: RFC 7512 path attributes (``;``-separated) and query attributes (``&``-separated).
PATH_ATTRS = frozenset({"token", "manufacturer", "serial", "model", "library-manufacturer",
                        "library-description", "library-version", "object", "type", "id",
                        "slot-manufacturer", "slot-description", "slot-id"})
QUERY_ATTRS = frozenset({"pin-source", "pin-value", "module-name", "module-path"})
#: characters allowed unescaped in a value (RFC 3986 unreserved and the RFC 7512 extras)
_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
                   ":[]@!$'()*+,=/|")
_HEX = frozenset("0123456789abcdefABCDEF")
RSA_BITS = 2048
#: listings of a module's tokens tried before a CKR_GENERAL_ERROR is reported
LIST_ATTEMPTS = 5
_MAX_URI = 4096

Prompt = Callable[[str], str]
Warn = Callable[[str], None]


def _bad(uri_hint: str, why: str) -> TokenError:
    return TokenError(f"invalid PKCS#11 URI: {why}", code="uri",
                      hint=f"write it as {uri_hint}")


_FORM = "'pkcs11:token=LABEL;object=LABEL' (RFC 7512, values %-encoded)"


def _decode(raw: str, name: str) -> bytes:
    """Percent-decode one attribute value (validated: bad escapes, stray characters)."""
    out = bytearray()
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "%":
            pair = raw[i + 1:i + 3]
            if len(pair) != 2 or not set(pair) <= _HEX:
                raise _bad(_FORM, f"attribute {name!r} has a malformed %-escape")
            out.append(int(pair, 16))
            i += 3
            continue
        if ch not in _PLAIN and not (ch == " " and name in ("token", "object")):
            shown = "a character" if name == "pin-value" else (
                repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}")
            raise _bad(_FORM, f"attribute {name!r} holds {shown} that must be %-encoded")
        out += ch.encode("ascii")
        i += 1
    return bytes(out)


@dataclass(frozen=True)
class Pkcs11URI:
    """A parsed ``pkcs11:`` URI; ``text`` with any ``pin-value`` hidden is :meth:`safe`."""

    attrs: dict[str, bytes] = field(default_factory=dict, repr=False)
    text: str = field(default="", repr=False)

    def __repr__(self) -> str:
        return f"Pkcs11URI({self.safe()!r})"  # never the PIN, even in a debugger or a log

    def get(self, name: str) -> str | None:
        value = self.attrs.get(name)
        return None if value is None else value.decode("utf-8")

    @property
    def object_id(self) -> bytes | None:
        return self.attrs.get("id")

    def safe(self) -> str:
        """The URI as shown to people: the PIN value replaced by ``******``."""
        return redact_uri(self.text)

    def selector(self) -> str:
        """``token=…;object=…`` (no module, no PIN): how the key is named in messages."""
        parts = [f"{n}={self.get(n) if n != 'id' else (self.object_id or b'').hex()}"
                 for n in ("token", "serial", "slot-id", "object", "id") if n in self.attrs]
        return "pkcs11:" + ";".join(parts)


def redact_uri(text: str) -> str:
    """``text`` with the value of every ``pin-value=`` hidden (for messages and history)."""
    out = []
    for sep_part in _split_keep(text):
        if sep_part.lower().startswith("pin-value="):
            out.append("pin-value=******")
        else:
            out.append(sep_part)
    return "".join(out)


def _split_keep(text: str) -> list[str]:
    parts: list[str] = []
    cur = ""
    for ch in text:
        if ch in ";?&":
            parts += [cur, ch]
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def is_uri(text: str) -> bool:
    return text[:7].lower() == "pkcs11:"


def parse_uri(text: str) -> Pkcs11URI:
    """Validate and parse a ``pkcs11:`` URI (RFC 7512).

    Query attributes (``pin-source``, ``pin-value``, ``module-path``, ``module-name``) may
    also be written in the path, as many tools print them. Unknown, empty-named and
    duplicate attributes, malformed %-escapes, unescaped reserved characters, a ``type``
    other than ``private``, a ``slot-id`` that is not a number and text attributes that
    are not UTF-8 are refused. The key object must be named (``object=`` or ``id=``).

    Raises:
        TokenError: code ``uri``; the message never repeats a ``pin-value``.
    """
    if not is_uri(text):
        raise _bad(_FORM, "it does not start with 'pkcs11:'")
    if len(text) > _MAX_URI:
        raise _bad(_FORM, f"it is longer than {_MAX_URI} characters")
    body = text[7:]
    path, _, query = body.partition("?")
    if "?" in query:
        raise _bad(_FORM, "it has more than one '?'")
    attrs: dict[str, bytes] = {}
    for chunk, seps, allowed in ((path, ";", PATH_ATTRS | QUERY_ATTRS),
                                 (query, "&", QUERY_ATTRS)):
        if not chunk:
            continue
        for item in chunk.split(seps):
            if not item:
                continue  # a trailing ';' is harmless
            name, eq, raw = item.partition("=")
            name = name.lower()
            if not eq or not name:
                raise _bad(_FORM, f"attribute {len(attrs) + 1} is not name=value")
            if name not in allowed:
                where = "query" if seps == "&" else "path"
                raise _bad(_FORM, f"unknown {where} attribute {name!r}")
            if name in attrs:
                raise _bad(_FORM, f"attribute {name!r} is given twice")
            attrs[name] = _decode(raw, name)
    for name, value in attrs.items():
        if name != "id":
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _bad(_FORM, f"attribute {name!r} is not UTF-8 text") from exc
    if "type" in attrs and attrs["type"] != b"private":
        raise _bad(_FORM, "type must be 'private' (the key that signs)")
    if "slot-id" in attrs and not attrs["slot-id"].isdigit():
        raise _bad(_FORM, "slot-id must be a decimal number")
    if not attrs.get("object") and not attrs.get("id"):
        raise _bad(_FORM, "it names no key object (object=LABEL or id=%XX...)")
    if "pin-source" in attrs and "pin-value" in attrs:
        raise _bad(_FORM, "give pin-source or pin-value, not both")
    return Pkcs11URI(attrs, text)


# ------------------------------------------------------------------ configuration


@dataclass
class _Config:
    default_module: str | None = None
    prompt: Prompt | None = None
    warn: Warn | None = None
    warned: set[str] = field(default_factory=set)


_config = _Config()
_lock = threading.RLock()
#: module path → loaded library; (module path, slot id, login) → open session
_libs: dict[str, Any] = {}
_sessions: dict[tuple[str, int, bool], Any] = {}


def configure(*, default_module: str | None = None, prompt: Prompt | None = None,
              warn: Warn | None = None) -> None:
    """The module of URIs that name none (``TIUP_PKCS11_MODULE``), how to ask for a PIN
    (the CLI: on a terminal) and how to warn (``pin-value=``)."""
    _config.default_module = default_module
    _config.prompt = prompt
    _config.warn = warn


def _module_path(uri: Pkcs11URI) -> str:
    path = uri.get("module-path") or _config.default_module
    if path is None:
        from tiup.settings import current

        path = current().pkcs11_module
    if not path:
        raise TokenError(f"no PKCS#11 module for {uri.selector()}", code="module",
                         hint="set TIUP_PKCS11_MODULE=/path/to/module.so or add "
                              "module-path=/path/to/module.so to the URI")
    return path


def _library(path: str) -> Any:
    lib = _libs.get(path)
    if lib is not None:
        if not lib.initialized:  # after finalize_all (e.g. in a forked server worker)
            try:
                lib.initialize()
            except Exception as exc:
                raise _device(exc, f"initialising PKCS#11 module {path}") from exc
        return lib
    try:
        import pkcs11
    except ImportError as exc:
        raise TokenError("the PKCS#11 binding (python-pkcs11) is not installed",
                         code="binding", hint="pip install python-pkcs11") from exc
    if not Path(path).is_file():
        raise TokenError(f"PKCS#11 module {path} not found", code="module",
                         hint="install the token's PKCS#11 module (SoftHSM2: "
                              "/usr/lib/softhsm/libsofthsm2.so) and set TIUP_PKCS11_MODULE "
                              "or module-path= to it")
    if _libs:  # python-pkcs11 loads one module per process
        raise TokenError(f"cannot use PKCS#11 module {path}: this command already uses "
                         f"{next(iter(_libs))}", code="module",
                         hint="give every pkcs11: key of one command the same module")
    try:
        lib = pkcs11.lib(path)
    except (RuntimeError, OSError) as exc:  # dlopen failure or C_Initialize error
        why = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise TokenError(f"cannot load PKCS#11 module {path}: {why}", code="module",
                         hint="check that it is a PKCS#11 module for this machine "
                              "(its configuration, e.g. SOFTHSM2_CONF, must be readable)"
                         ) from exc
    _libs[path] = lib
    return lib


def _find_token(lib: Any, uri: Pkcs11URI, module: str) -> Any:
    """The one initialised token the URI names. A listing that fails with
    ``CKR_GENERAL_ERROR`` is tried again, up to :data:`LIST_ATTEMPTS` times: SoftHSM2
    answers so now and then while another process logs in to a token of its directory
    (the workers of ``tiup mirror serve --workers N`` all start at once)."""
    from pkcs11.exceptions import GeneralError

    for attempt in range(LIST_ATTEMPTS):
        try:
            return _find_token_once(lib, uri, module)
        except TokenError as exc:
            if attempt + 1 == LIST_ATTEMPTS or not isinstance(exc.__cause__, GeneralError):
                raise
        time.sleep(0.01 * 2 ** attempt)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _find_token_once(lib: Any, uri: Pkcs11URI, module: str) -> Any:
    from pkcs11 import TokenFlag
    from pkcs11.exceptions import PKCS11Error

    want = {n: uri.get(n) for n in ("token", "serial", "manufacturer", "model")
            if n in uri.attrs}
    slot_id = int(uri.get("slot-id") or -1) if "slot-id" in uri.attrs else None
    seen: list[str] = []
    matches = []
    try:
        slots = lib.get_slots(token_present=True)
        for slot in slots:
            if slot_id is not None and slot.slot_id != slot_id:
                continue
            token = slot.get_token()
            if not token.flags & TokenFlag.TOKEN_INITIALIZED:
                if slot_id is not None or (want and all(
                        _token_field(token, n) == v for n, v in want.items())):
                    raise TokenError(
                        f"the token in slot {slot.slot_id} of {module} is not initialised",
                        code="token-uninitialised",
                        hint="initialise it first (SoftHSM2: softhsm2-util --init-token)")
                continue
            seen.append(token.label)
            if all(_token_field(token, n) == v for n, v in want.items()):
                matches.append(token)
    except PKCS11Error as exc:
        raise _device(exc, f"listing the tokens of {module}") from exc
    if not matches:
        what = ", ".join(f"{n}={v}" for n, v in want.items()) or \
            (f"slot-id={slot_id}" if slot_id is not None else "any token")
        if slot_id is not None and want:
            what += f" in slot {slot_id}"
        present = ", ".join(repr(s) for s in seen) or "none"
        raise TokenError(f"token not present: no initialised token with {what} in {module} "
                         f"(tokens present: {present})", code="token-absent",
                         hint="insert the token, or fix token= in the URI")
    if len(matches) > 1:
        raise TokenError(f"{len(matches)} tokens match {uri.selector()} in {module}",
                         code="token-ambiguous", hint="add serial= or slot-id= to the URI")
    return matches[0]


def _token_field(token: Any, name: str) -> str:
    if name == "token":
        return str(token.label)
    if name == "serial":
        serial = token.serial
        return serial.decode("ascii", "replace").strip() if isinstance(serial, bytes) \
            else str(serial)
    if name == "manufacturer":
        return str(token.manufacturer_id)
    return str(token.model)


def _device(exc: Exception, doing: str) -> TokenError:
    return TokenError(f"the PKCS#11 token failed while {doing}: {type(exc).__name__}",
                      code="device", hint="check the token and its module")


def _pin(uri: Pkcs11URI, label: str) -> str:
    value = uri.get("pin-value")
    if value is not None:
        key = uri.selector()
        if _config.warn is not None and key not in _config.warned:
            _config.warned.add(key)
            _config.warn(f"{key}: the PIN is given in the URI (pin-value=); use pin-source=FILE "
                         "or the prompt outside tests")
        return value
    source = uri.get("pin-source")
    if source is not None:
        file = source[5:] if source.startswith("file:") else source
        if file.startswith("//"):
            file = file[2:] if file.startswith("///") else file  # file:///x → /x
            file = "/" + file.lstrip("/")
        try:
            return Path(file).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
            raise TokenError(f"cannot read the PIN file {file} of {uri.selector()}: {why}",
                             code="pin-needed", hint="point pin-source= at a readable file"
                             ) from exc
    if _config.prompt is None:
        raise TokenError(f"token {label!r} needs a PIN for {uri.selector()}", code="pin-needed",
                         hint="run on a terminal to be asked, or add pin-source=FILE to the URI")
    return _config.prompt(f"PIN of token {label!r}: ")


def _session(uri: Pkcs11URI, *, login: bool, rw: bool = False) -> tuple[Any, str]:
    """An open session on the URI's token (one per token per process), and the module."""
    from pkcs11 import TokenFlag
    from pkcs11.exceptions import PinIncorrect, PinLenRange, PinLocked, PKCS11Error

    module = _module_path(uri)
    with _lock:
        lib = _library(module)
        try:
            token = _find_token(lib, uri, module)
        except TokenError as exc:
            # A module lists the tokens it saw when it was initialised (SoftHSM2 does):
            # a token inserted or created since needs C_Finalize/C_Initialize, which is
            # safe only while no session of this process is open on the module.
            if exc.code != "token-absent" or any(k[0] == module for k in _sessions):
                raise
            try:
                lib.reinitialize()
            except Exception as err:
                raise exc from err
            token = _find_token(lib, uri, module)
        key = (module, int(token.slot.slot_id), login or rw)
        session = _sessions.get(key)
        if session is not None and (not rw or session.rw):
            return session, module
        if session is not None:  # read-only but logged in: a new login needs it closed
            _close(_sessions.pop(key))
        pin = _pin(uri, token.label) if login or rw else None
        try:
            session = token.open(rw=rw, user_pin=pin)
        except (PinIncorrect, PinLenRange) as exc:
            raise TokenError(f"wrong PIN for token {token.label!r} ({uri.selector()})"
                             f"{_tries_left(token)}", code="pin-incorrect",
                             hint="check pin-source= / the PIN you typed; the token locks "
                                  "after too many wrong PINs") from exc
        except PinLocked as exc:
            raise TokenError(f"the PIN of token {token.label!r} is locked", code="pin-locked",
                             hint="the token's security officer must unlock it "
                                  "(SoftHSM2: softhsm2-util --init-pin, or re-initialise)"
                             ) from exc
        except PKCS11Error as exc:
            raise _device(exc, f"opening a session on token {token.label!r}") from exc
        finally:
            pin = None
        if session is not None:
            _sessions[key] = session
            if token.flags & TokenFlag.USER_PIN_TO_BE_CHANGED and _config.warn is not None:
                _config.warn(f"token {token.label!r} asks for its PIN to be changed")
        return session, module


def _tries_left(token: Any) -> str:
    from pkcs11 import TokenFlag

    try:
        flags = token.slot.get_token().flags  # read again: the failed login changed them
    except Exception:  # a token removed meanwhile: nothing more to say
        return ""
    if flags & TokenFlag.USER_PIN_LOCKED:
        return "; the PIN is now locked"
    if flags & TokenFlag.USER_PIN_FINAL_TRY:
        return "; one try is left before the PIN locks"
    if flags & TokenFlag.USER_PIN_COUNT_LOW:
        return "; few tries are left before the PIN locks"
    return ""


def _close(session: Any) -> None:
    with contextlib.suppress(Exception):  # closing at exit: nothing to report to
        session.close()


def close_all() -> None:
    """Close every session this process opened (logging out); at exit, and between tests."""
    with _lock:
        for session in _sessions.values():
            _close(session)
        _sessions.clear()


def finalize_all() -> None:
    """Close every session and finalise every module (``C_Finalize``): a process about to
    fork children that use tokens (the server's workers) calls it, since PKCS#11 state
    must not cross a fork; the next use initialises the module again."""
    with _lock:
        close_all()
        for lib in _libs.values():
            with contextlib.suppress(Exception):
                if lib.initialized:
                    lib.finalize()


atexit.register(close_all)


def _objects(session: Any, uri: Pkcs11URI, object_class: Any) -> list[Any]:
    from pkcs11 import Attribute

    template: dict[Any, Any] = {Attribute.CLASS: object_class}
    if uri.get("object") is not None:
        template[Attribute.LABEL] = uri.get("object")
    if uri.object_id is not None:
        template[Attribute.ID] = uri.object_id
    return list(session.get_objects(template))


# ------------------------------------------------------------------------ signing


def _max_salt(bits: int) -> int:
    """The largest PSS salt for SHA-256 and a ``bits``-bit modulus (Go's SignPSS)."""
    em_len = (bits - 1 + 7) // 8
    return em_len - 32 - 2


class TokenPrivateKey(PrivateKey):
    """Sign with a private key that stays on its token (see :func:`token_key`)."""

    public: RSAPublicKey

    def __init__(self, uri: Pkcs11URI, key: Any, public: RSAPublicKey, module: str, bits: int):
        self.uri, self._key, self.public, self.module = uri, key, public, module
        self.where = uri.selector()
        self.bits = bits
        #: the salt the token accepted (None: not signed yet); see the ADR 0010
        self.salt: int | None = None
        self._prehash = False

    def sign(self, payload: bytes) -> bytes:
        """The token's RSA-PSS signature, verified against the public half before return.

        Raises:
            TokenError: code ``mechanism`` (the token cannot make RSA-PSS-SHA256
                signatures), ``device`` (the token failed).
            KeyFormatError: the token's signature does not verify (ADR 0006).
        """
        from pkcs11 import MGF, Mechanism
        from pkcs11.exceptions import (
            FunctionNotSupported,
            MechanismInvalid,
            MechanismParamInvalid,
            PKCS11Error,
        )

        salts = [self.salt] if self.salt is not None else [_max_salt(self.bits), 32]
        with _lock:
            for salt in salts:
                param = (Mechanism.SHA256, MGF.SHA256, salt)
                try:
                    if self._prehash:
                        signature = self._key.sign(hashlib.sha256(payload).digest(),
                                                   mechanism=Mechanism.RSA_PKCS_PSS,
                                                   mechanism_param=param)
                    else:
                        signature = self._key.sign(payload,
                                                   mechanism=Mechanism.SHA256_RSA_PKCS_PSS,
                                                   mechanism_param=param)
                except (MechanismInvalid, MechanismParamInvalid, FunctionNotSupported):
                    continue
                except PKCS11Error as exc:
                    raise _device(exc, f"signing with {self.where}") from exc
                self.salt = salt
                break
            else:
                raise TokenError(
                    f"the token of {self.where} does not support RSA-PSS with SHA-256 "
                    "(CKM_SHA256_RSA_PKCS_PSS), the mechanism TiUP signatures need",
                    code="mechanism",
                    hint="use a token (or firmware) that supports RSA-PSS, or a key file")
        if not self.public.verify(payload, signature):
            raise KeyFormatError(
                f"{self.where}: a signature made by the token does not verify against the "
                "key's public half", file=self.where,
                hint="the token returned a wrong signature: check the token")
        return bytes(signature)

    def private_value(self) -> str:
        """Raises KeyFormatError: the private half never leaves the token."""
        raise KeyFormatError(f"{self.where}: the private key stays on its token and cannot be "
                             "written to a file", file=self.where,
                             hint="keep using the key through its pkcs11: URI")


def _rsa_public(modulus: bytes, exponent: bytes) -> tuple[RSAPublicKey, int]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    n = int.from_bytes(modulus, "big")
    numbers = rsa.RSAPublicNumbers(int.from_bytes(exponent, "big"), n)
    return RSAPublicKey(numbers.public_key()), n.bit_length()


def _check_rsa(obj: Any, uri: Pkcs11URI) -> None:
    from pkcs11 import Attribute, KeyType

    if obj[Attribute.KEY_TYPE] != KeyType.RSA:
        raise TokenError(f"{uri.selector()} is not an RSA key", code="key-type",
                         hint="TiUP signs with RSA-2048 keys: make one with "
                              "`tiup mirror genkey --pkcs11 URI`")


def _one(objects: list[Any], uri: Pkcs11URI, module: str, what: str) -> Any:
    if not objects:
        raise TokenError(f"object not found: no {what} {uri.selector()} on the token "
                         f"(module {module})", code="object-absent",
                         hint="check object=/id= (list them: pkcs11-tool --module MODULE "
                              "--list-objects --login)")
    if len(objects) > 1:
        raise TokenError(f"{len(objects)} {what}s match {uri.selector()}",
                         code="object-ambiguous", hint="name the key by both object= and id=")
    return objects[0]


def token_key(text: str) -> TokenPrivateKey:
    """The signer of a ``pkcs11:`` URI (a :class:`tiup.keys.PrivateKey`): logs in (PIN),
    finds the private key, reads its public half.

    Raises:
        TokenError: the URI, module, token, PIN or object is unusable (``code``).
    """
    from pkcs11 import Attribute, Mechanism, ObjectClass
    from pkcs11.exceptions import PKCS11Error

    uri = parse_uri(text)
    session, module = _session(uri, login=True)
    with _lock:
        try:
            obj = _one(_objects(session, uri, ObjectClass.PRIVATE_KEY), uri, module,
                       "private key")
            _check_rsa(obj, uri)
            public, bits = _rsa_public(obj[Attribute.MODULUS],
                                       obj[Attribute.PUBLIC_EXPONENT])
            mechanisms = session.token.slot.get_mechanisms()
        except PKCS11Error as exc:
            raise _device(exc, f"reading {uri.selector()}") from exc
    signer = TokenPrivateKey(uri, obj, public, module, bits)
    if Mechanism.SHA256_RSA_PKCS_PSS not in mechanisms:
        if Mechanism.RSA_PKCS_PSS not in mechanisms:
            raise TokenError(f"the token of {uri.selector()} does not support RSA-PSS "
                             "(CKM_SHA256_RSA_PKCS_PSS / CKM_RSA_PKCS_PSS), the mechanism "
                             "TiUP signatures need", code="mechanism",
                             hint="use a token that supports RSA-PSS, or a key file")
        signer._prehash = True
    return signer


def token_public_key(text: str) -> RSAPublicKey:
    """The public key (a :class:`tiup.keys.PublicKey`) of a ``pkcs11:`` URI, read without
    logging in when the token holds a public key object for it, else from the private key.

    Raises:
        TokenError: as :func:`token_key`.
    """
    from pkcs11 import Attribute, ObjectClass
    from pkcs11.exceptions import PKCS11Error

    uri = parse_uri(text)
    session, _module = _session(uri, login=False)
    with _lock:
        try:
            objs = _objects(session, uri, ObjectClass.PUBLIC_KEY)
            if len(objs) == 1:
                _check_rsa(objs[0], uri)
                return _rsa_public(objs[0][Attribute.MODULUS],
                                   objs[0][Attribute.PUBLIC_EXPONENT])[0]
        except PKCS11Error as exc:
            raise _device(exc, f"reading {uri.selector()}") from exc
    return token_key(text).public


def generate_on_token(text: str) -> TokenPrivateKey:
    """Generate an RSA-2048 key pair on the URI's token (private half sensitive and not
    extractable, labelled ``object=``, with ``id=`` or a random 8-byte id) and return its
    signer. An existing key of that label or id is never replaced.

    Raises:
        TokenError: as :func:`token_key`; code ``object-exists``; ``mechanism`` when the
            token cannot generate RSA keys.
    """
    import os

    from pkcs11 import Attribute, KeyType, MechanismFlag, ObjectClass
    from pkcs11.exceptions import MechanismInvalid, PKCS11Error, TemplateInconsistent

    uri = parse_uri(text)
    session, _module = _session(uri, login=True, rw=True)
    label = uri.get("object")
    key_id = uri.object_id or os.urandom(8)
    with _lock:
        try:
            for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
                existing = _objects(session, uri, cls)
                if existing:
                    raise TokenError(f"{uri.selector()} already exists on the token",
                                     code="object-exists",
                                     hint="choose another object= label, or use the existing "
                                          "key with -k URI (show it: genkey --pkcs11 URI -p)")
            common: dict[Any, Any] = {Attribute.TOKEN: True}
            if label is not None:
                common[Attribute.LABEL] = label
            session.generate_keypair(
                KeyType.RSA, RSA_BITS, id=key_id, label=label, store=True,
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                public_template={**common, Attribute.VERIFY: True, Attribute.ENCRYPT: False,
                                 Attribute.WRAP: False},
                private_template={**common, Attribute.SIGN: True, Attribute.PRIVATE: True,
                                  Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                                  Attribute.DECRYPT: False, Attribute.UNWRAP: False})
        except (MechanismInvalid, TemplateInconsistent) as exc:
            raise TokenError(f"the token of {uri.selector()} cannot generate an RSA-{RSA_BITS} "
                             "signing key", code="mechanism",
                             hint="generate the key with the token's own tools") from exc
        except PKCS11Error as exc:
            raise _device(exc, f"generating a key pair for {uri.selector()}") from exc
    if uri.object_id is None:
        # sign with exactly the pair just made, whatever else carries the label
        from urllib.parse import quote_from_bytes

        text = f"{text.split('?', 1)[0]};id={quote_from_bytes(key_id, safe='')}" + (
            f"?{text.split('?', 1)[1]}" if "?" in text else "")
    return token_key(text)


__all__ = ["Pkcs11URI", "TokenPrivateKey", "close_all", "configure", "finalize_all",
           "generate_on_token",
           "is_uri", "parse_uri", "redact_uri", "token_key", "token_public_key"]
