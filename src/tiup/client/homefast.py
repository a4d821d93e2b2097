"""The few ``$TIUP_HOME`` facts the fast run path needs, with nothing but ``os``.

``tiup <installed component>`` must start quickly (``bench/startup.py``), so
this module avoids even ``pathlib`` and ``re``; :mod:`tiup.client.profile`
builds the full profile on top of it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

DEFAULT_MIRROR = "https://tiup-mirrors.pingcap.com/"


def home_dir(env: Mapping[str, str]) -> str:
    """``$TIUP_HOME``, else ``~/.tiup``."""
    value = env.get("TIUP_HOME")
    return os.path.expanduser(value) if value else os.path.expanduser("~/.tiup")


def simple_mirror_config(data: bytes) -> str | None:
    """The value of a ``tiup.toml`` that is exactly ``mirror = "<plain string>"``, else None.

    Anything else (comments, escapes, other keys) returns None and is parsed
    with ``tomllib`` by the caller.
    """
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    key, eq, value = text.partition("=")
    value = value.strip()
    if not eq or key.strip() != "mirror" or len(value) < 2 or value[0] != '"' \
            or value[-1] != '"':
        return None
    inner = value[1:-1]
    if '"' in inner or "\\" in inner or any(ord(c) < 0x20 for c in inner):
        return None
    return inner


def quick_mirror(home: str, env: Mapping[str, str]) -> str | None:
    """The effective mirror when it is cheap to know (TIUP_MIRRORS, a simple or absent
    ``tiup.toml``); None when ``tiup.toml`` needs the full parser."""
    from_env = env.get("TIUP_MIRRORS")
    if from_env:
        return from_env
    try:
        with open(os.path.join(home, "tiup.toml"), "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return DEFAULT_MIRROR
    except OSError:
        return None
    if not data.strip():
        return DEFAULT_MIRROR
    value = simple_mirror_config(data)
    if value is None:
        return None
    return value or DEFAULT_MIRROR
