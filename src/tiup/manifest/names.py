"""Validated names: component ids, owner ids, versions, platforms and file urls.

This is the one rule set for every name that comes from a manifest, a request
or the command line. Names become file names in a mirror
(``<id>-<version>-<os>-<arch>.tar.gz``, ``N.<id>.json``) and directories in
``$TIUP_HOME``. The manifest model checks every name when a manifest is
parsed, the CLI when an argument enters, the server when a request does; code
that builds paths accepts only values that passed these checks, so ``../x``,
``a/b`` or a NUL byte can never reach the file system.

Rules:

- component ids, owner ids: ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``, no ``..``;
  owner ids for new grants must not be role names;
- versions: ``[A-Za-z0-9_.+-]{1,128}``, not starting with ``.`` or ``-``, no ``..``;
- platforms: ``os/arch``, each ``[a-z0-9_]{1,32}`` (so ``-`` separates the parts
  of a tarball name unambiguously from the right);
- file urls in manifests (snapshot keys, role and component urls, version items):
  ``/`` and one safe file name, nothing else;
- what a writer stores: a version item of component ``c`` for platform ``os/arch``
  and version ``v`` has url ``/<c>-<v>-<os>-<arch>.tar.gz`` (``any/any`` gives
  ``-any-any``) and nothing else, so an upload can never land on a manifest name,
  ``keys/``, ``lock``, a dotfile, or (see :func:`tarball_claim_conflict`) another
  component's tarball.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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
_FILE = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9_.+\-]{0,254}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TARBALL = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9_.+\-]{0,254}\.tar\.gz")


_DIGEST = {64: re.compile(r"[0-9a-f]{64}"), 128: re.compile(r"[0-9a-f]{128}")}


def is_hex_digest(value: object, length: int) -> bool:
    """``value`` is a lower-case hex digest of ``length`` digits (64: sha256, 128: sha512)."""
    return isinstance(value, str) and _DIGEST[length].fullmatch(value) is not None


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


def owner_name(value: str) -> OwnerId:
    """Validate an owner id as read from a manifest. Raises InvalidNameError."""
    return OwnerId(_check("owner id", value, _ID))


def owner_id(value: str) -> OwnerId:
    """Validate a new owner id; role names are refused too. Raises InvalidNameError."""
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


def file_url(url: str, what: str = "url") -> str:
    """Validate a file url of a manifest: ``/`` and one safe file name. Raises InvalidNameError.

    Returns the url unchanged.
    """
    if (not isinstance(url, str) or not url.startswith("/") or not _FILE.fullmatch(url[1:])
            or ".." in url):
        raise InvalidNameError(
            f"invalid {what} {url!r}: a mirror file url is '/' and one plain file name",
            hint="the mirror's manifests are damaged or hostile; ask its administrator")
    return url


def tarball_url(comp: str, version: str, plat: str) -> str:
    """The only url a writer stores for a version item: ``/<c>-<v>-<os>-<arch>.tar.gz``.

    Raises:
        InvalidNameError: one of the parts is not a valid name.
    """
    os_name, arch = split_platform(plat)
    return "/" + tarball_name(component_id(comp), version_str(version), os_name, arch)


def check_item_url(comp: str, plat: str, version: str, url: str) -> str:
    """Check a version item's url is the one :func:`tarball_url` gives; return its file name.

    Raises:
        InvalidNameError: the url is anything else (``/root.json``, another
            component's tarball name, a path...).
    """
    want = tarball_url(comp, version, plat)
    if url != want:
        raise InvalidNameError(
            f"refusing version {version} of {comp} ({plat}): its url is {url!r}, "
            f"but a tarball of that version must be {want!r}",
            hint="build the manifest with `tiup mirror publish` (it names tarballs itself)")
    return want[1:]


def is_tarball_file(name: str) -> bool:
    """True if ``name`` may be stored as a tarball: one safe ``*.tar.gz`` file name (so
    never a manifest, ``lock``, ``keys/...`` or a dotfile)."""
    return isinstance(name, str) and _TARBALL.fullmatch(name) is not None and ".." not in name


def bootstrap_name(os_name: str, arch: str) -> str:
    """``tiup-<os>-<arch>.tar.gz``: the unversioned copy ``local_install.sh`` fetches."""
    platform(os_name, arch)
    return f"tiup-{os_name}-{arch}.tar.gz"


def bootstrap_platform(name: str) -> tuple[str, str] | None:
    """(os, arch) if ``name`` is :func:`bootstrap_name` of a valid platform, else None
    (never a versioned tarball name: one '-' short)."""
    parts = name.removesuffix(".tar.gz").split("-")
    if len(parts) != 3 or parts[0] != "tiup":
        return None
    try:
        return (parts[1], parts[2]) if bootstrap_name(parts[1], parts[2]) == name else None
    except InvalidNameError:
        return None


def tarball_claim_conflict(comp: str, version: str, others: Iterable[str]) -> str | None:
    """Another component whose tarball names ``comp``'s ``version`` could collide with.

    ``a`` version ``b-v1`` and ``a-b`` version ``v1`` both name
    ``a-b-v1-<os>-<arch>.tar.gz``; a new version whose ``<c>-<v>`` prefix begins
    with ``<other>-`` (for another component of the mirror) could overwrite, or
    squat, that component's tarballs, so writers refuse it. Returns the other
    component's id, or None.
    """
    stem = f"{comp}-{version}-"
    for other in others:
        if other != comp and len(other) > len(comp) and stem.startswith(other + "-"):
            return other
    return None


def entry_path(entry: str) -> str:
    """Validate a version item's ``entry``: empty (no such version) or a relative path
    inside the tarball (no ``..`` part, not absolute, no control character).
    Raises InvalidNameError."""
    if _FILE.fullmatch(entry) and entry != "..":
        return entry  # the usual case: a plain file name
    if (len(entry) > 4096 or entry.startswith("/") or ".." in entry.split("/")
            or _CONTROL.search(entry)):
        raise InvalidNameError(f"invalid entry {entry!r}: must be a relative path inside "
                               "the tarball, without '..'")
    return entry


def versioned_url(url: str, version: int) -> str:
    """Insert ``<version>.`` after the last ``/``: ``/tidb.json`` + 62 → ``/62.tidb.json``."""
    head, _, tail = url.rpartition("/")
    return f"{head}/{version}.{tail}"


# ------------------------------------------------------------ object storage (s3://)
#: S3's bucket rule (3-63 lowercase letters, digits, '.', '-'; starts and ends alphanumeric)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
#: one segment of a mirror's prefix inside a bucket
_PREFIX_PART = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9_.+=\-]{0,254}")
#: the name of a mirror file in a bucket, relative to the mirror's prefix: a plain file name
#: or ``.upload/<session>/<file>`` (a server's staged upload)
_OBJECT_PART = re.compile(r"[A-Za-z0-9_.+=\-]{1,255}")


def s3_address(address: str) -> tuple[str, str]:
    """Split ``s3://BUCKET[/PREFIX]`` into the bucket and the prefix (``""`` or
    ``a/b``, no leading or trailing ``/``), each checked against S3's and our rules.

    Raises:
        InvalidNameError: not such an address, or an unsafe bucket or prefix.
    """
    if not address.startswith("s3://"):
        raise InvalidNameError(f"{address!r} is not an s3://BUCKET/PREFIX address")
    rest = address[len("s3://"):]
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise InvalidNameError(
            f"invalid bucket name {bucket!r} in {address!r}: S3 bucket names are 3-63 "
            "lowercase letters, digits, '.' and '-'",
            hint="use tiup mirror ... s3://my-bucket/some/prefix")
    if prefix:
        for part in prefix.split("/"):
            if not _PREFIX_PART.fullmatch(part) or part in (".", "..") or ".." in part:
                raise InvalidNameError(
                    f"invalid prefix {prefix!r} in {address!r}: each '/'-separated part is "
                    "letters, digits, '_', '+', '=', '.' and '-', not starting with '.' or '-'",
                    hint="use a prefix such as 'tiup/prod'")
    return bucket, prefix


def object_name(name: str) -> str:
    """Validate the name of an object in a mirror's prefix (from a listing or a caller):
    ``/``-separated parts of safe characters, none ``.`` or ``..`` or empty.

    Raises:
        InvalidNameError: an unsafe name.
    """
    parts = name.split("/")
    if (len(name) > 1024 or len(parts) > 8
            or not all(_OBJECT_PART.fullmatch(p) and p not in (".", "..") for p in parts)):
        raise InvalidNameError(f"unsafe object name {name[:200]!r} in a bucket listing",
                               hint="only plain file names belong in a mirror's prefix")
    return name
