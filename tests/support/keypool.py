"""RSA keys for tests that do not care which key they get: fewer slow RSA operations.

Generating an RSA-2048 key takes tens of milliseconds of CPU, and so does loading one
(``cryptography`` checks the key's primes): the suite generates hundreds (every mirror
init makes six, every clone seven) and loads thousands (every write command loads the
mirror's whole key directory). While installed (see ``tests/conftest.py``), in this
process:

``tiup.keys.RSAPrivateKey.from_value`` parses each private key text once: the same text
gives the same key, so a later load of it reuses the parsed key (in a wrapper of its own);
a text that fails to parse is parsed, and fails, every time (a text first parsed without
the key check is parsed again, with it, the first time a check is asked for).

``tiup.keys.RSAPrivateKey.generate`` hands out keys from a pool instead of generating them:

* within one test, every key is different (the pool lends a key to one test at a time);
* a key lent to a test returns to the pool when the test ends, and later tests get it
  again: they run in their own temporary directories, so nothing of the earlier test can
  recognise it;
* a key taken outside a test (a module- or session-scoped fixture, a module constant) is
  never returned, so it stays different from every key a later test gets;
* numbered keys (``builders.key(n)``) are generated fresh, never from the pool.

Child processes (``tiup(..., subprocess=True)``, servers) generate real keys.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tiup.keys import RSAPrivateKey

_real_generate: Callable[[], RSAPrivateKey] = RSAPrivateKey.generate
_real_from_value: Callable[..., RSAPrivateKey] = RSAPrivateKey.from_value
#: private key text → parsed cryptography key (only texts that parsed)
_parsed: dict[str, Any] = {}
#: texts whose parse ran the key check
_checked: set[str] = set()


def _from_value(cls: type[RSAPrivateKey], value: str, where: str, *,
                check: bool = True) -> RSAPrivateKey:
    raw = _parsed.get(value)
    if raw is None or (check and value not in _checked):
        parsed = _real_from_value(value, where, check=check)  # raises as it always does
        _parsed[value] = parsed._key
        if check:
            _checked.add(value)
        return parsed
    return cls(raw, where)


def fresh_rsa_key() -> RSAPrivateKey:
    """A newly generated RSA key (never from the pool)."""
    return _real_generate()


class KeyPool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[Any] = []  # cryptography key objects
        self._lent: list[Any] | None = None  # lent to the running test
        self.generated = 0

    def take(self) -> RSAPrivateKey:
        with self._lock:
            raw = self._free.pop() if self._free else None
            if raw is None:
                self.generated += 1
        if raw is None:
            fresh = fresh_rsa_key()
            raw = fresh._key
            _parsed[fresh.private_value()] = raw  # what a save and a load give back
            _checked.add(fresh.private_value())
        with self._lock:
            if self._lent is not None:
                self._lent.append(raw)
        return RSAPrivateKey(raw)  # a wrapper of its own for every caller

    def begin_test(self) -> None:
        with self._lock:
            self._lent = []

    def end_test(self) -> None:
        with self._lock:
            if self._lent is not None:
                self._free.extend(reversed(self._lent))
            self._lent = None


POOL = KeyPool()


def install() -> None:
    """Make ``RSAPrivateKey.generate`` (and so ``tiup.keys.generate``) take from the pool,
    and ``RSAPrivateKey.from_value`` parse each text once."""
    RSAPrivateKey.generate = classmethod(lambda cls: POOL.take())  # type: ignore[assignment,method-assign]
    RSAPrivateKey.from_value = classmethod(_from_value)  # type: ignore[assignment,method-assign]
