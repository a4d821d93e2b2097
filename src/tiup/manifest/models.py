"""The manifest model: one class per TiUP manifest type, pure and byte-faithful.

Each class has ``from_dict`` (validating member names and types) and
``to_dict`` (every member TiUP writes, plus any unknown members that were
read, so a manifest round-trips). No I/O and no clock reads: times are
arguments. The signed bytes of a manifest are produced by
:func:`tiup.manifest.envelope.signed_bytes`, never by callers.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from tiup.errors import InvalidNameError, ManifestError
from tiup.manifest import names
from tiup.manifest.canonical import encode_canonical
from tiup.manifest.timefmt import format_time, parse_time

SPEC_VERSION = "0.1.0"
ROLE_TYPES = ("root", "index", "snapshot", "timestamp")
MANIFEST_TYPES = ("root", "index", "component", "snapshot", "timestamp")
#: Go's ``uint`` is 64 bits; larger numbers cannot be read by TiUP.
MAX_UINT = 2**64 - 1

JSON = dict[str, Any]
#: Deepest nesting kept in members tiup does not know (TiUP's own members are < 8 deep).
MAX_UNKNOWN_DEPTH = 32


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a large manifest is built.

    Parsing the official mirror's biggest manifest allocates ~200,000 containers; each
    allocation burst re-runs the collector over everything allocated so far (≈ 15 % of
    the parse) although the new objects hold no cycles. Reference counting still frees
    everything as usual; the collector resumes (if it was on) when the block ends.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _name(check: Any, value: object, where: str) -> Any:
    """Apply a :mod:`tiup.manifest.names` rule; a failure is a ManifestError naming ``where``."""
    try:
        return check(value)
    except InvalidNameError as exc:
        raise ManifestError(f"{where}: {exc.message}", hint=exc.hint) from exc


def _check_depth(value: object, where: str) -> None:
    """Refuse members nested deeper than MAX_UNKNOWN_DEPTH (checked without recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_UNKNOWN_DEPTH:
            raise ManifestError(f"{where}: a member is nested more than {MAX_UNKNOWN_DEPTH} "
                                "levels deep")
        stack.extend((child, depth + 1) for child in children)


@functools.cache
def _lowered(known: tuple[str, ...]) -> dict[str, str]:
    """Lower-cased member name → member name, once per model class."""
    return {k.lower(): k for k in known}


class _Reader:
    """Reads the members of one JSON object, checking names and types."""

    def __init__(self, obj: object, where: str, known: tuple[str, ...]):
        if not isinstance(obj, dict):
            raise ManifestError(f"{where}: expected an object, got {type(obj).__name__}")
        self.obj: dict[str, Any] = obj
        self.where = where
        lowered = _lowered(known)
        for name in obj:
            canon = lowered.get(name.lower())
            if canon is not None and canon != name:
                raise ManifestError(
                    f"{where}: member {name!r} differs from {canon!r} only in case",
                    hint="member names are case-sensitive in tiup (Go TiUP would mix them up)",
                )
        self.known = known

    def rest(self) -> dict[str, Any]:
        """Members this model does not know, kept as read (after a depth check)."""
        out = {k: v for k, v in self.obj.items() if k not in self.known}
        if out:
            _check_depth(out, self.where)
        return out

    def absent(self) -> frozenset[str]:
        """Known members missing from the object (older data); kept absent when written."""
        return frozenset(k for k in self.known if k not in self.obj)


    def has(self, name: str) -> bool:
        return name in self.obj

    def text(self, name: str, default: str = "") -> str:
        value = self.obj.get(name, default)
        if value is None:
            return default
        if not isinstance(value, str):
            raise ManifestError(f"{self.where}: member {name!r} must be a string")
        return value

    def integer(self, name: str, default: int = 0) -> int:
        value = self.obj.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ManifestError(
                f"{self.where}: member {name!r} must be an integer, got {value!r}"
            )
        if value < 0 or value > MAX_UINT:
            raise ManifestError(f"{self.where}: member {name!r} is out of range: {value}")
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.obj.get(name, default)
        if not isinstance(value, bool):
            raise ManifestError(f"{self.where}: member {name!r} must be true or false")
        return value

    def mapping(self, name: str) -> dict[str, Any]:
        value = self.obj.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ManifestError(f"{self.where}: member {name!r} must be an object")
        return value

    def raw(self, name: str) -> Any:
        return self.obj.get(name)


def _drop_absent(out: JSON, absent: frozenset[str]) -> JSON:
    """Leave out members that were absent when read and still hold their zero value."""
    for name in absent:
        if name in out and out[name] in (None, "", 0, False, {}, []):
            del out[name]
    return out


# --------------------------------------------------------------------------- keys


@dataclass
class KeyInfo:
    """A key object as stored in manifests and key files.

    ``keyval`` holds ``public`` (PKIX PEM) in manifests, or ``private`` in
    private key files. Unknown members (the 2020 ``keyid_hash_algorithms``)
    are kept because they are part of the stored object's hash.
    """

    keytype: str
    scheme: str
    keyval: dict[str, str]
    unrecognized: dict[str, Any] = field(default_factory=dict)
    absent: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    FIELDS: ClassVar[tuple[str, ...]] = ("keytype", "keyval", "scheme")

    @classmethod
    def from_dict(cls, obj: object, where: str = "key") -> KeyInfo:
        """Raises ManifestError."""
        r = _Reader(obj, where, cls.FIELDS)
        keyval = r.mapping("keyval")
        for k, v in keyval.items():
            if not isinstance(v, str):
                raise ManifestError(f"{where}: keyval member {k!r} must be a string")
        return cls(r.text("keytype"), r.text("scheme"), dict(keyval), r.rest(), r.absent())

    def to_dict(self) -> JSON:
        out: JSON = dict(self.unrecognized)
        out.update(keytype=self.keytype, keyval=dict(self.keyval), scheme=self.scheme)
        return _drop_absent(out, self.absent)

    @property
    def public(self) -> str:
        return self.keyval.get("public", "")

    @property
    def is_private(self) -> bool:
        return bool(self.keyval.get("private"))

    def stored_id(self) -> str:
        """sha256 of the canonical stored object: the id roots and indexes must use."""
        return hashlib.sha256(encode_canonical(self.to_dict())).hexdigest()


def public_key_id(keytype: str, scheme: str, public: str) -> str:
    """The key id of a public key: sha256 of canonical ``{keytype, keyval:{public}, scheme}``."""
    obj = {"keytype": keytype, "keyval": {"public": public}, "scheme": scheme}
    return hashlib.sha256(encode_canonical(obj)).hexdigest()


def _keys(obj: Mapping[str, Any], where: str) -> dict[str, KeyInfo]:
    out: dict[str, KeyInfo] = {}
    for keyid, info in obj.items():
        out[keyid] = KeyInfo.from_dict(info, f"{where} key {keyid[:16]}")
    return out


# ------------------------------------------------------------------------ signed


@dataclass
class Signed:
    """Members common to every manifest type."""

    TYPE: ClassVar[str] = ""
    FIELDS: ClassVar[tuple[str, ...]] = ("_type", "spec_version", "expires", "version")

    expires: str
    version: int
    spec_version: str = SPEC_VERSION
    unrecognized: dict[str, Any] = field(default_factory=dict)
    absent: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def expires_at(self) -> datetime:
        """The expiry instant. Raises ManifestError if ``expires`` is malformed."""
        return parse_time(self.expires, where=f"{self.TYPE} manifest")

    def is_expired(self, now: datetime) -> bool:
        """True if expired at ``now``. Raises ManifestError if ``expires`` is malformed."""
        return self.expires_at() < now

    def set_expires(self, moment: datetime) -> None:
        self.expires = format_time(moment)

    def _common(self) -> JSON:
        out: JSON = dict(self.unrecognized)
        out.update(
            _type=self.TYPE,
            expires=self.expires,
            spec_version=self.spec_version,
            version=self.version,
        )
        return out

    def to_dict(self) -> JSON:
        raise NotImplementedError

    @staticmethod
    def _reader(obj: object, cls: type[Signed], where: str) -> _Reader:
        r = _Reader(obj, where, cls.FIELDS)
        kind = r.raw("_type")
        if kind != cls.TYPE:
            raise ManifestError(f"{where}: expected _type {cls.TYPE!r}, got {kind!r}")
        return r


@dataclass
class Role:
    """One role of a root manifest: its keys, threshold and URL."""

    keys: dict[str, KeyInfo]
    threshold: int
    url: str
    unrecognized: dict[str, Any] = field(default_factory=dict)
    absent: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    FIELDS: ClassVar[tuple[str, ...]] = ("keys", "threshold", "url")

    @classmethod
    def from_dict(cls, obj: object, where: str) -> Role:
        r = _Reader(obj, where, cls.FIELDS)
        url = r.text("url")
        if url:
            _name(names.file_url, url, where)
        return cls(
            _keys(r.mapping("keys"), where),
            r.integer("threshold"),
            url,
            r.rest(),
            r.absent(),
        )

    def to_dict(self) -> JSON:
        out: JSON = dict(self.unrecognized)
        out.update(
            keys={k: v.to_dict() for k, v in self.keys.items()},
            threshold=self.threshold,
            url=self.url,
        )
        return _drop_absent(out, self.absent)


@dataclass
class Root(Signed):
    """``root.json``: the keys, thresholds and urls of the four roles."""

    TYPE: ClassVar[str] = "root"
    FIELDS: ClassVar[tuple[str, ...]] = (*Signed.FIELDS, "roles")

    roles: dict[str, Role] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, obj: object, where: str = "root.json") -> Root:
        """Raises ManifestError."""
        r = cls._reader(obj, cls, where)
        roles = {
            name: Role.from_dict(role, f"{where} role {name}")
            for name, role in r.mapping("roles").items()
        }
        return cls(
            expires=r.text("expires"),
            version=r.integer("version"),
            spec_version=r.text("spec_version"),
            unrecognized=r.rest(),
            absent=r.absent(),
            roles=roles,
        )

    def to_dict(self) -> JSON:
        out = self._common()
        out["roles"] = {k: v.to_dict() for k, v in self.roles.items()}
        return _drop_absent(out, self.absent)


@dataclass
class Owner:
    """An owner in the index: the keys that sign its components, and their threshold."""

    keys: dict[str, KeyInfo]
    name: str
    #: None when the member is absent (pre-2020 data); readers treat that as 1.
    threshold: int | None
    unrecognized: dict[str, Any] = field(default_factory=dict)
    absent: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    FIELDS: ClassVar[tuple[str, ...]] = ("keys", "name", "threshold")

    @classmethod
    def from_dict(cls, obj: object, where: str) -> Owner:
        r = _Reader(obj, where, cls.FIELDS)
        threshold = r.integer("threshold") if r.has("threshold") else None
        return cls(
            _keys(r.mapping("keys"), where), r.text("name"), threshold, r.rest(), r.absent()
        )

    @property
    def effective_threshold(self) -> int:
        return 1 if self.threshold is None else self.threshold

    def to_dict(self) -> JSON:
        out: JSON = dict(self.unrecognized)
        out.update(
            keys={k: v.to_dict() for k, v in self.keys.items()},
            name=self.name,
            threshold=(
                self.threshold if "threshold" in self.absent else self.effective_threshold
            ),
        )
        return _drop_absent(out, self.absent)


@dataclass
class ComponentItem:
    """A component in the index: its owner, manifest url and flags."""

    owner: str
    url: str
    yanked: bool = False
    hidden: bool = False
    standalone: bool = False
    unrecognized: dict[str, Any] = field(default_factory=dict)
    absent: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    FIELDS: ClassVar[tuple[str, ...]] = ("hidden", "owner", "standalone", "url", "yanked")

    @classmethod
    def from_dict(cls, obj: object, where: str) -> ComponentItem:
        r = _Reader(obj, where, cls.FIELDS)
        owner = r.text("owner")
        if owner:
            _name(names.owner_name, owner, where)
        return cls(
            owner=owner,
            url=r.text("url"),
            yanked=r.flag("yanked"),
            hidden=r.flag("hidden"),
            standalone=r.flag("standalone"),
            unrecognized=r.rest(),
            absent=r.absent(),
        )

    def to_dict(self) -> JSON:
        out: JSON = dict(self.unrecognized)
        out.update(
            hidden=self.hidden,
            owner=self.owner,
            standalone=self.standalone,
            url=self.url,
            yanked=self.yanked,
        )
        return _drop_absent(out, self.absent)


@dataclass
class Index(Signed):
    """``index.json``: the components, their owners and the default components."""

    TYPE: ClassVar[str] = "index"
    FIELDS: ClassVar[tuple[str, ...]] = (
        *Signed.FIELDS,
        "components",
        "default_components",
        "owners",
    )

    components: dict[str, ComponentItem] = field(default_factory=dict)
    default_components: list[str] | None = field(default_factory=list)
    owners: dict[str, Owner] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, obj: object, where: str = "index.json") -> Index:
        """Raises ManifestError."""
        r = cls._reader(obj, cls, where)
        default = r.raw("default_components")
        if default is not None and (
            not isinstance(default, list) or not all(isinstance(x, str) for x in default)
        ):
            raise ManifestError(f"{where}: default_components must be a list of strings")
        for comp in default or ():
            _name(names.component_id, comp, f"{where} default_components")
        components: dict[str, ComponentItem] = {}
        for k, v in r.mapping("components").items():
            at = f"{where} component {k!r}"
            _name(names.component_id, k, at)
            item = ComponentItem.from_dict(v, at)
            if item.url != f"/{k}.json":
                raise ManifestError(f"{at}: url is {item.url!r}, expected '/{k}.json'")
            components[k] = item
        owners: dict[str, Owner] = {}
        for k, v in r.mapping("owners").items():
            _name(names.owner_name, k, f"{where} owner {k!r}")
            owners[k] = Owner.from_dict(v, f"{where} owner {k}")
        return cls(
            expires=r.text("expires"),
            version=r.integer("version"),
            spec_version=r.text("spec_version"),
            unrecognized=r.rest(),
            absent=r.absent(),
            components=components,
            default_components=None if default is None else list(default),
            owners=owners,
        )

    def to_dict(self) -> JSON:
        out = self._common()
        out.update(
            components={k: v.to_dict() for k, v in self.components.items()},
            default_components=self.default_components,
            owners={k: v.to_dict() for k, v in self.owners.items()},
        )
        return _drop_absent(out, self.absent)


@dataclass
class VersionItem:
    """One version of a component for one platform: its tarball and entry point."""

    url: str
    entry: str
    sha256: str
    sha512: str
    length: int
    released: str
    yanked: bool = False
    dependencies: dict[str, str] | None = None
    #: Hashes other than sha256/sha512, kept as read.
    other_hashes: dict[str, str] = field(default_factory=dict)
    unrecognized: dict[str, Any] = field(default_factory=dict)
    absent: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    FIELDS: ClassVar[tuple[str, ...]] = (
        "dependencies",
        "entry",
        "hashes",
        "length",
        "released",
        "url",
        "yanked",
    )

    @classmethod
    def from_dict(cls, obj: object, where: str) -> VersionItem:
        """Raises ManifestError."""
        item = cls._fast(obj, set())
        return item if item is not None else cls._from_dict_checked(obj, where)

    @classmethod
    def _fast(cls, obj: object, entries: set[str]) -> VersionItem | None:
        """The item as :meth:`_from_dict_checked` builds it, for the usual shape only: a
        ``dict`` holding only known members, each of exactly its JSON type and valid.
        None for anything else, and the checked reader then decides, with its messages
        (so this path never accepts what that one refuses, and never raises).

        ``entries``: entries already validated during this parse (most items of a
        manifest share one); valid entries are added to it.
        """
        if type(obj) is not dict or not obj.keys() <= _VERSION_ITEM_FIELDS:
            return None
        if len(obj) == _VERSION_ITEM_SIZE:  # every member present (as TiUP writes them)
            url, entry, released = obj["url"], obj["entry"], obj["released"]
            length, yanked, hashes = obj["length"], obj["yanked"], obj["hashes"]
            deps = obj["dependencies"]
        else:
            get = obj.get
            url, entry, released = get("url"), get("entry", ""), get("released", "")
            length, yanked, hashes = get("length", 0), get("yanked", False), get("hashes")
            deps = get("dependencies")
        if (type(url) is not str or type(entry) is not str or type(released) is not str
                or type(length) is not int or not 0 <= length <= MAX_UINT
                or type(yanked) is not bool or type(hashes) is not dict):
            return None
        for value in hashes.values():
            if type(value) is not str:
                return None
        if deps is not None:
            if type(deps) is not dict:
                return None
            for value in deps.values():
                if type(value) is not str:
                    return None
        try:
            names.file_url(url)
            if entry and entry not in entries:
                names.entry_path(entry)
                entries.add(entry)
        except InvalidNameError:
            return None
        if len(hashes) == 2 and "sha256" in hashes and "sha512" in hashes:
            sha256, sha512, other = hashes["sha256"], hashes["sha512"], {}
        else:
            sha256, sha512 = hashes.get("sha256", ""), hashes.get("sha512", "")
            other = {k: v for k, v in hashes.items() if k not in ("sha256", "sha512")}
        return cls(url, entry, sha256, sha512, length, released, yanked, deps, other, {},
                   _NONE_ABSENT if len(obj) == _VERSION_ITEM_SIZE
                   else _VERSION_ITEM_FIELDS.difference(obj))

    @classmethod
    def _from_dict_checked(cls, obj: object, where: str) -> VersionItem:
        """Any object, member by member, with every message. Raises ManifestError."""
        r = _Reader(obj, where, cls.FIELDS)
        hashes = r.mapping("hashes")
        for algo, value in hashes.items():
            if not isinstance(value, str):
                raise ManifestError(f"{where}: hash {algo!r} must be a string")
        deps = r.raw("dependencies")
        if deps is not None and (not isinstance(deps, dict)
                                 or not all(isinstance(v, str) for v in deps.values())):
            raise ManifestError(f"{where}: dependencies must map names to strings, or be null")
        url = r.text("url")
        entry = r.text("entry")
        try:
            names.file_url(url)
            if entry:
                names.entry_path(entry)
        except InvalidNameError as exc:
            raise ManifestError(f"{where}: {exc.message}", hint=exc.hint) from exc
        return cls(
            url=url,
            entry=entry,
            sha256=hashes.get("sha256", ""),
            sha512=hashes.get("sha512", ""),
            length=r.integer("length"),
            released=r.text("released"),
            yanked=r.flag("yanked"),
            dependencies=deps,
            other_hashes={k: v for k, v in hashes.items() if k not in ("sha256", "sha512")},
            unrecognized=r.rest(),
            absent=r.absent(),
        )

    def hashes(self) -> dict[str, str]:
        out = dict(self.other_hashes)
        if self.sha256:
            out["sha256"] = self.sha256
        if self.sha512:
            out["sha512"] = self.sha512
        return out

    def to_dict(self) -> JSON:
        out: JSON = dict(self.unrecognized)
        out.update(
            dependencies=self.dependencies,
            entry=self.entry,
            hashes=self.hashes(),
            length=self.length,
            released=self.released,
            url=self.url,
            yanked=self.yanked,
        )
        return _drop_absent(out, self.absent)


_VERSION_ITEM_FIELDS = frozenset(VersionItem.FIELDS)
_VERSION_ITEM_SIZE = len(_VERSION_ITEM_FIELDS)
_NONE_ABSENT: frozenset[str] = frozenset()


@dataclass
class Component(Signed):
    """A component manifest: its versions per platform (``os/arch``)."""

    TYPE: ClassVar[str] = "component"
    FIELDS: ClassVar[tuple[str, ...]] = (
        *Signed.FIELDS,
        "description",
        "id",
        "nightly",
        "platforms",
    )

    id: str = ""
    description: str = ""
    nightly: str = ""
    platforms: dict[str, dict[str, VersionItem]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, obj: object, where: str = "component manifest") -> Component:
        """Raises ManifestError."""
        r = cls._reader(obj, cls, where)
        comp_id = r.text("id")
        _name(names.component_id, comp_id, f"{where} id")
        nightly = r.text("nightly")
        if nightly:
            _name(names.version_str, nightly, f"{where} nightly")
        platforms: dict[str, dict[str, VersionItem]] = {}
        # Versions repeat across platforms, entries across items: check each distinct
        # string once per parse.
        checked: set[str] = set()
        entries: set[str] = set()
        fast, version_str = VersionItem._fast, names.version_str
        for plat, versions in r.mapping("platforms").items():
            _name(names.split_platform, plat, f"{where} platform {plat!r}")
            if versions is None:
                versions = {}
            if not isinstance(versions, dict):
                raise ManifestError(f"{where}: platform {plat!r} must map versions to items")
            items: dict[str, VersionItem] = {}
            with paused_gc():
                for ver, item in versions.items():
                    if ver not in checked:
                        _name(version_str, ver, f"{where} {plat}")
                        checked.add(ver)
                    parsed = fast(item, entries)
                    if parsed is None:
                        parsed = VersionItem._from_dict_checked(item, f"{where} {plat} {ver}")
                    items[ver] = parsed
            platforms[plat] = items
        return cls(
            expires=r.text("expires"),
            version=r.integer("version"),
            spec_version=r.text("spec_version"),
            unrecognized=r.rest(),
            absent=r.absent(),
            id=comp_id,
            description=r.text("description"),
            nightly=nightly,
            platforms=platforms,
        )

    def to_dict(self) -> JSON:
        out = self._common()
        out.update(
            description=self.description,
            id=self.id,
            nightly=self.nightly,
            platforms={
                p: {v: item.to_dict() for v, item in versions.items()}
                for p, versions in self.platforms.items()
            },
        )
        return _drop_absent(out, self.absent)

    def items(self) -> Iterator[tuple[str, str, VersionItem]]:
        """Every (platform, version, item)."""
        for plat, versions in self.platforms.items():
            for ver, item in versions.items():
                yield plat, ver, item

    def versions_for(self, plat: str) -> dict[str, VersionItem] | None:
        """The version map for ``plat``, falling back to ``any/any``; None if unsupported.

        A version with an empty ``entry`` does not exist (``format.md`` §4.3).
        """
        versions = self.platforms.get(plat)
        if versions is None:
            versions = self.platforms.get("any/any")
        if versions is None:
            return None
        return {v: item for v, item in versions.items() if item.entry}


@dataclass
class FileMeta:
    """A snapshot entry: the newest version of a file and its maximum length."""

    version: int
    length: int
    unrecognized: dict[str, Any] = field(default_factory=dict)
    absent: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    FIELDS: ClassVar[tuple[str, ...]] = ("length", "version")

    @classmethod
    def from_dict(cls, obj: object, where: str) -> FileMeta:
        r = _Reader(obj, where, cls.FIELDS)
        return cls(r.integer("version"), r.integer("length"), r.rest(), r.absent())

    def to_dict(self) -> JSON:
        out: JSON = dict(self.unrecognized)
        out.update(length=self.length, version=self.version)
        return _drop_absent(out, self.absent)


@dataclass
class Snapshot(Signed):
    """``snapshot.json``: the newest version and maximum length of every manifest."""

    TYPE: ClassVar[str] = "snapshot"
    FIELDS: ClassVar[tuple[str, ...]] = (*Signed.FIELDS, "meta")

    meta: dict[str, FileMeta] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, obj: object, where: str = "snapshot.json") -> Snapshot:
        """Raises ManifestError."""
        r = cls._reader(obj, cls, where)
        return cls(
            expires=r.text("expires"),
            version=r.integer("version"),
            spec_version=r.text("spec_version"),
            unrecognized=r.rest(),
            absent=r.absent(),
            meta={
                _name(names.file_url, k, f"{where} meta"): FileMeta.from_dict(
                    v, f"{where} meta {k}")
                for k, v in r.mapping("meta").items()
            },
        )

    def to_dict(self) -> JSON:
        out = self._common()
        out["meta"] = {k: v.to_dict() for k, v in self.meta.items()}
        return _drop_absent(out, self.absent)


@dataclass
class HashedMeta:
    """The timestamp's entry for ``/snapshot.json``: hashes and maximum length."""

    hashes: dict[str, str]
    length: int
    unrecognized: dict[str, Any] = field(default_factory=dict)
    absent: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    FIELDS: ClassVar[tuple[str, ...]] = ("hashes", "length")

    @classmethod
    def from_dict(cls, obj: object, where: str) -> HashedMeta:
        r = _Reader(obj, where, cls.FIELDS)
        hashes = r.mapping("hashes")
        if not all(isinstance(v, str) for v in hashes.values()):
            raise ManifestError(f"{where}: hashes must be strings")
        return cls(dict(hashes), r.integer("length"), r.rest(), r.absent())

    def to_dict(self) -> JSON:
        out: JSON = dict(self.unrecognized)
        out.update(hashes=dict(self.hashes), length=self.length)
        return _drop_absent(out, self.absent)


@dataclass
class Timestamp(Signed):
    """``timestamp.json``: the hashes and length of ``snapshot.json``."""

    TYPE: ClassVar[str] = "timestamp"
    FIELDS: ClassVar[tuple[str, ...]] = (*Signed.FIELDS, "meta")

    meta: dict[str, HashedMeta] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, obj: object, where: str = "timestamp.json") -> Timestamp:
        """Raises ManifestError."""
        r = cls._reader(obj, cls, where)
        return cls(
            expires=r.text("expires"),
            version=r.integer("version"),
            spec_version=r.text("spec_version"),
            unrecognized=r.rest(),
            absent=r.absent(),
            meta={
                _name(names.file_url, k, f"{where} meta"): HashedMeta.from_dict(
                    v, f"{where} meta {k}")
                for k, v in r.mapping("meta").items()
            },
        )

    def to_dict(self) -> JSON:
        out = self._common()
        out["meta"] = {k: v.to_dict() for k, v in self.meta.items()}
        return _drop_absent(out, self.absent)

    @property
    def snapshot_meta(self) -> HashedMeta | None:
        return self.meta.get("/snapshot.json")


SignedT = TypeVar("SignedT", bound=Signed)

CLASSES: dict[str, type[Signed]] = {
    "root": Root,
    "index": Index,
    "component": Component,
    "snapshot": Snapshot,
    "timestamp": Timestamp,
}


def signed_from_dict(obj: object, where: str) -> Signed:
    """Build the model matching the object's own ``_type``. Raises ManifestError."""
    kind = obj.get("_type") if isinstance(obj, dict) else None
    cls = CLASSES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ManifestError(f"{where}: unknown manifest _type {kind!r}")
    return cls.from_dict(obj, where)  # type: ignore[attr-defined,no-any-return]
