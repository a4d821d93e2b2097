"""PKCS#11 keys from the command line: ``pkcs11:`` URIs where key files are accepted.

:func:`setup` is called by a command only when one of its key arguments is a
``pkcs11:`` URI: it imports :mod:`tiup.keys.pkcs11` (and with it the binding), names the
module of ``TIUP_PKCS11_MODULE`` (through :mod:`tiup.settings`), installs the terminal
PIN prompt (no echo; never printed or logged) and the ``pin-value=`` warning.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from tiup.cli import output


def is_uri(value: str) -> bool:
    return value[:7].lower() == "pkcs11:"


def _prompt(text: str) -> str:
    from tiup.errors import TokenError

    if not sys.stdin.isatty():
        raise TokenError(f"a PIN is needed ({text.rstrip(': ')}) and there is no terminal to "
                         "ask it on", code="pin-needed",
                         hint="add pin-source=FILE to the URI (a file holding the PIN)")
    import getpass

    return getpass.getpass(text)


def setup(values: Iterable[str]) -> bool:
    """Configure PKCS#11 support if any of ``values`` is a ``pkcs11:`` URI; True if one is
    (else nothing is imported)."""
    if not any(is_uri(v) for v in values):
        return False
    from tiup.keys import pkcs11
    from tiup.settings import current

    pkcs11.configure(default_module=current().pkcs11_module, prompt=_prompt, warn=output.warn)
    return True
