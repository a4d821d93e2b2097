"""Validated names: component ids, owner ids, versions and platforms.

Names become file names in a mirror (``<id>-<version>-<os>-<arch>.tar.gz``,
``N.<id>.json``) and directories in ``$TIUP_HOME``. Code that builds paths
accepts only these validated types, so ``../x`` or ``a/b`` can never reach
the file system.
"""

from __future__ import annotations

import re
from typing import NewType

from tiup.errors import InvalidNameError

ComponentId = NewType("ComponentId", str)
OwnerId = NewType("OwnerId", str)
VersionStr = NewType("VersionStr", str)

#: Role names share the key namespace with owner ids in Go TiUP.
ROLE_NAMES = frozenset({"root", "index", "snapshot", "timestamp"})

#: The platforms ``tiup mirror publish`` accepts (``format.md`` §1.2).
PUBLISH_PLATFORMS = ("any/any", "linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64")

_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
_VERSION = re.compile(r"[A-Za-z0-9_.+\-]{1,128}")
_PLATFORM_PART = re.compile(r"[a-z0-9_]{1,32}")


def _check(kind: str, value: str, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value) or value in (".", ".."):
        raise InvalidNameError(
            f"invalid {kind} {value!r}: use letters, digits, '_', '.' and '-' "
            "(not starting with '.' or '-', no '/')",
            hint=f"choose a {kind} that is a plain file name, such as 'hello'",
        )
    if value.startswith((".", "-")) or ".." in value:
        raise InvalidNameError(
            f"invalid {kind} {value!r}: must not start with '.' or '-', or contain '..'"
        )
    return value


def component_id(value: str) -> ComponentId:
    """Validate a component id. Raises InvalidNameError."""
    return ComponentId(_check("component name", value, _ID))


def owner_id(value: str) -> OwnerId:
    """Validate an owner id; role names are refused. Raises InvalidNameError."""
    checked = _check("owner id", value, _ID)
    if checked in ROLE_NAMES:
        raise InvalidNameError(
            f"owner id {value!r} shadows a role",
            hint="owner ids must not be root, index, snapshot or timestamp",
        )
    return OwnerId(checked)


def version_str(value: str) -> VersionStr:
    """Validate a version string used in file names. Raises InvalidNameError."""
    return VersionStr(_check("version", value, _VERSION))


def platform(os_name: str, arch: str) -> str:
    """Return ``os/arch`` after validating both parts. Raises InvalidNameError."""
    for part, what in ((os_name, "os"), (arch, "arch")):
        if not isinstance(part, str) or not _PLATFORM_PART.fullmatch(part):
            raise InvalidNameError(f"invalid {what} {part!r}")
    return f"{os_name}/{arch}"


def split_platform(key: str) -> tuple[str, str]:
    """Split a platform key ``os/arch``. Raises InvalidNameError."""
    os_name, sep, arch = key.partition("/")
    if not sep:
        raise InvalidNameError(f"invalid platform {key!r}: expected os/arch")
    platform(os_name, arch)
    return os_name, arch


def tarball_name(comp: ComponentId, version: VersionStr, os_name: str, arch: str) -> str:
    """The mirror file name of a component tarball: ``<id>-<version>-<os>-<arch>.tar.gz``."""
    platform(os_name, arch)
    return f"{comp}-{version}-{os_name}-{arch}.tar.gz"


def versioned_url(url: str, version: int) -> str:
    """Insert ``<version>.`` after the last ``/``: ``/tidb.json`` + 62 → ``/62.tidb.json``."""
    head, _, tail = url.rpartition("/")
    return f"{head}/{version}.{tail}"
