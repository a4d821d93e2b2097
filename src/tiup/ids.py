"""Short identifiers made from numbers (a base module: no policy, no I/O)."""

from __future__ import annotations

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62(n: int) -> str:
    """``n`` (≥ 0) in base 62 with TiUP's digits ``0-9A-Za-z``: ``base62(61) == "z"``.

    TiUP names things with it from the time in milliseconds: a component instance's
    data directory tag and the signing server's ``/rotate/<id>`` URI.
    """
    out = ""
    while True:
        n, r = divmod(n, 62)
        out = _B62[r] + out
        if n == 0:
            return out
