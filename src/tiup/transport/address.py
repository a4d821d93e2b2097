"""Mirror addresses: which transport serves one, and when two name the same mirror."""

from __future__ import annotations

from pathlib import Path


def is_http(address: str) -> bool:
    """True for ``http://`` and ``https://`` addresses."""
    return address.startswith(("http://", "https://"))


def is_s3(address: str) -> bool:
    """True for ``s3://BUCKET/PREFIX`` addresses (a mirror in object storage, written by
    publishers; clients read it over HTTP(S))."""
    return address.startswith("s3://")


def normalise_address(address: str) -> str:
    """Address identity: HTTP(S) without trailing ``/``; local paths absolute and resolved."""
    if is_http(address) or is_s3(address):
        return address.rstrip("/")
    return str(Path(address).expanduser().resolve())
