"""Private keys available to a writer, and the choice of signers.

Keys come from key directories (``<mirror>/keys``, ``--key-dir``,
``$TIUP_HOME/keys``) and from explicit ``-k`` files. An explicit file that
cannot be read is an error; a bad file inside a directory is skipped with a
warning naming it (``behavior.md`` §12.13: one bad file must not break every
command). Signers for a role are chosen as TiUP chooses them (``format.md``
§13): every key the latest root lists for that role must be present.

Keys are loaded without OpenSSL's RSA key check (``check=False``: about 45 ms
saved on each key, seven in a mirror's usual key directories): a key ring's keys
only sign, and every signature is verified against the key's public half before
it is returned (:mod:`tiup.keys`); a store also verifies each manifest it writes
against the keys the root or the index declares. The argument is
``docs/adr/0006-unchecked-signing-keys.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tiup.errors import MissingKeyError, TiupError
from tiup.keys import PrivateKey, load_key_file, private_key
from tiup.manifest.models import KeyInfo

#: Key files are small; anything larger in a key directory is not a key.
_MAX_KEY_FILE = 64 * 1024


@dataclass
class KeyRing:
    """Private keys by key id, with where they were looked for."""

    keys: dict[str, PrivateKey] = field(default_factory=dict)
    #: Where each key came from (for messages).
    origin: dict[str, str] = field(default_factory=dict)
    #: Directories and files searched, in order.
    searched: list[str] = field(default_factory=list)
    #: Files skipped, with the reason.
    warnings: list[str] = field(default_factory=list)
    #: Key ids of the keys given explicitly with ``-k``, in order.
    explicit: list[str] = field(default_factory=list)

    def add(self, key: PrivateKey, origin: str) -> None:
        if key.keyid not in self.keys:
            self.keys[key.keyid] = key
            self.origin[key.keyid] = origin

    def get(self, keyid: str) -> PrivateKey | None:
        return self.keys.get(keyid)

    def where(self) -> str:
        return ", ".join(self.searched) if self.searched else "nowhere (no key directory exists)"

    def role_signers(self, role: str, keys: Mapping[str, KeyInfo], source: str
                     ) -> list[PrivateKey]:
        """Every key of a role (TiUP's rule: all of them must be present).

        Raises:
            MissingKeyError: naming the missing key id, the role and the places searched.
        """
        out: list[PrivateKey] = []
        for keyid in sorted(keys):
            key = self.keys.get(keyid)
            if key is None:
                raise MissingKeyError(
                    f"the private key {keyid} of role {role} (declared in {source}) is missing;"
                    f" searched {self.where()}",
                    hint="put the mirror's key files in <mirror>/keys or pass --key-dir DIR",
                )
            out.append(key)
        return out

    def threshold_signers(self, what: str, keys: Mapping[str, KeyInfo], threshold: int,
                          *, prefer: Iterable[str] = ()) -> list[PrivateKey]:
        """At least ``threshold`` available keys among ``keys`` (explicit ones first).

        Raises:
            MissingKeyError: fewer than ``threshold`` of the keys are available.
        """
        order = [k for k in prefer if k in keys] + [k for k in self.explicit if k in keys]
        order += sorted(k for k in keys if k in self.keys)
        chosen: list[PrivateKey] = []
        for keyid in dict.fromkeys(order):
            key = self.keys.get(keyid)
            if key is not None:
                chosen.append(key)
            if len(chosen) >= threshold:
                return chosen
        missing = ", ".join(sorted(k for k in keys if k not in self.keys)) or "none"
        raise MissingKeyError(
            f"{what} needs {threshold} signature(s) but only {len(chosen)} of its private keys "
            f"were found (missing key ids: {missing}); searched {self.where()}",
            hint="pass the owner's key file with -k/--key",
        )


def _load_dir(ring: KeyRing, directory: Path) -> None:
    ring.searched.append(str(directory))
    try:
        entries = sorted(directory.iterdir())
    except FileNotFoundError:
        return
    except OSError as exc:
        ring.warnings.append(f"cannot list key directory {directory}: {exc.strerror}")
        return
    for path in entries:
        if path.name.startswith(".") or not path.is_file():
            continue
        try:
            if path.stat().st_size > _MAX_KEY_FILE:
                ring.warnings.append(f"{path} is too large to be a key file; skipped")
                continue
            info = load_key_file(path)
            if not info.is_private:
                continue
            ring.add(private_key(info, str(path), check=False), str(path))
        except (TiupError, OSError) as exc:
            msg = exc.message if isinstance(exc, TiupError) else str(exc)
            ring.warnings.append(f"skipping {path}: {msg}")


def explicit_key(path: Path | str) -> PrivateKey:
    """The signer of a ``-k`` argument: a key file, or a ``pkcs11:`` URI (a key on a token;
    :mod:`tiup.keys.pkcs11`, imported only then).

    Raises:
        KeyFormatError, UnsupportedKeyError: unreadable or not a private key.
        TokenError: the token key cannot be used.
    """
    if isinstance(path, str) and path[:7].lower() == "pkcs11:":
        from tiup.keys.pkcs11 import token_key

        return token_key(path)
    return private_key(load_key_file(path), str(path), check=False)


def load_keyring(dirs: Iterable[Path], files: Iterable[Path | str] = ()) -> KeyRing:
    """Load explicit keys (files, or ``pkcs11:`` URIs given as ``str``), then every private
    key in the directories (missing ones skipped).

    Raises:
        KeyFormatError, UnsupportedKeyError: an explicit file is unreadable or not a private key.
        TokenError: an explicit token key cannot be used.
    """
    ring = KeyRing()
    for path in files:
        key = explicit_key(path)
        shown = getattr(key, "where", None) if isinstance(path, str) and \
            path[:7].lower() == "pkcs11:" else None
        origin = shown or str(path)
        ring.searched.append(origin)
        ring.add(key, origin)
        if key.keyid not in ring.explicit:
            ring.explicit.append(key.keyid)
    seen: set[Path] = set()
    for directory in dirs:
        resolved = directory.expanduser().resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        _load_dir(ring, resolved)
    return ring
