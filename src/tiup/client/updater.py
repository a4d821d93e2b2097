"""The client update flow (``format.md`` §12): fetch, verify, cache.

An :class:`Updater` serves one mirror address. It reads the trust anchor of
that address (``bin/root.json`` for the configured mirror, ``mirrors/<sha16>/``
for any other, ``behavior.md`` §12.2), then feeds bytes from the transport to
:class:`~tiup.trust.TrustedState` in the order the rules require::

    timestamp.json (cap 1024) → snapshot.json (cap from the timestamp)
      → N.index.json → N.<id>.json on demand (caps from the snapshot)

The root chain (``N+1.root.json`` until not found) is walked only when the
timestamp fails its signature or expiry check, or when the snapshot names a
newer root, so a no-op update is a single request for ``timestamp.json``.

Cached manifests are written byte-for-byte as downloaded, atomically, and
only after verification. A cached file is used only if it verifies again
(signature, version as the snapshot names, expiry); otherwise it is ignored
and fetched anew, so a tampered or expired cache is never trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from tiup import trust
from tiup.client import verified
from tiup.client.profile import MirrorState, Profile
from tiup.errors import (
    ExpiredError,
    OfflineError,
    SignatureError,
    TiupError,
    VerificationError,
)
from tiup.fsutil import atomic_write, fsync_dir
from tiup.manifest.envelope import parse_envelope
from tiup.manifest.models import Component, Index, Root, Snapshot, Timestamp
from tiup.reader import MirrorReader
from tiup.settings import Settings, current
from tiup.transport import Fetcher, open_fetcher
from tiup.transport.chunks import Chunks
from tiup.transport.resume import Progress

M = TypeVar("M", Index, Component)
#: Code of an ExpiredError that names its mirror and what to do (not to be wrapped again).
NAMED = "expired-explained"


class CountingFetcher(Fetcher):
    """Wraps a fetcher and counts requests and bytes (for the no-op-update budget)."""

    def __init__(self, inner: Fetcher):
        self.inner = inner
        self.address = inner.address
        self.requests = 0
        self.bytes = 0
        self.log: list[str] = []

    def fetch(self, resource: str, max_size: int | None) -> bytes:
        self.requests += 1
        self.log.append(resource)
        data = self.inner.fetch(resource, max_size)
        self.bytes += len(data)
        return data

    def stream(self, resource: str, max_size: int | None, offset: int = 0
               ) -> AbstractContextManager[Iterator[bytes]]:
        self.requests += 1
        self.log.append(resource)
        return self.inner.stream(resource, max_size, offset)

    def stream_range(self, resource: str, max_size: int | None, offset: int = 0, *,
                     if_range: str | None = None) -> AbstractContextManager[Chunks]:
        self.requests += 1
        self.log.append(resource)
        return self.inner.stream_range(resource, max_size, offset, if_range=if_range)

    def download(self, resource: str, dest: Path, *, expected_length: int | None = None,
                 part_path: Path | None = None, progress: Progress | None = None) -> None:
        self.requests += 1
        self.log.append(resource)
        before = part_path.stat().st_size if part_path is not None and part_path.exists() else 0
        self.inner.download(resource, dest, expected_length=expected_length,
                            part_path=part_path, progress=progress)
        with contextlib.suppress(OSError):
            self.bytes += max(0, dest.stat().st_size - before)

    def location(self, resource: str) -> str:
        return self.inner.location(resource)

    def list_files(self) -> list[str] | None:
        return self.inner.list_files()

    def count_bytes(self, n: int) -> None:
        self.bytes += n

    def local_path(self) -> str | None:
        return self.inner.local_path()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> object:
        # settings of the wrapped transport (retry policy, speed rule, clock...)
        return getattr(self.inner, name)


class _HomeCache:
    """The :class:`~tiup.reader.ManifestCache` of one mirror in ``$TIUP_HOME``."""

    #: cache files that are not component manifests
    FIXED = frozenset({"root.json", "timestamp.json", "snapshot.json", "index.json"})

    def __init__(self, state: MirrorState):
        self.dir = state.manifests_dir
        self.anchor = state.root_path
        #: verification records not yet in ``.verified.json`` (all under one anchor):
        #: a first ``tiup list`` caches ~150 manifests, and the record is written once
        #: (:meth:`flush`) instead of once per file. A lost batch only means one more
        #: verification later, as for any lost record update.
        self._pending: dict[str, str] = {}
        self._pending_anchor: str | None = None
        #: component manifests renamed into place since the directory was last fsynced
        self._unsynced = False

    def read(self, name: str) -> bytes | None:
        try:
            return (self.dir / name).read_bytes()
        except OSError:
            return None

    def write(self, name: str, data: bytes) -> None:
        """Keep bytes the reader just verified, and record that they were verified (on
        :meth:`flush`)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        # Every file is fsynced before its rename (a cached copy is never torn). The
        # renames of component manifests are made durable together by one directory
        # fsync in flush() (a first `tiup list` caches ~150 of them); the files rollback
        # checks start from (roots, timestamp, snapshot, index) at once, as before.
        at_once = name in self.FIXED or name.endswith(".root.json")
        atomic_write(self.dir / name, data, 0o644, sync_dir=at_once)
        self._unsynced = self._unsynced or not at_once
        anchor = verified.anchor_digest(self.anchor)
        if anchor != self._pending_anchor:
            self.flush()  # as if each write had been recorded at once, in order
            self._pending_anchor = anchor
        self._pending[name] = hashlib.sha256(data).hexdigest()

    def flush(self) -> None:
        """Make the cached files' renames durable; write the pending verification records
        (best effort)."""
        if self._unsynced:
            self._unsynced = False
            fsync_dir(self.dir)
        pending, self._pending = self._pending, {}
        verified.remember_digests(self.dir, pending, self._pending_anchor)

    def drop(self, name: str) -> None:
        self.flush()
        verified.forget(self.dir, name)
        with contextlib.suppress(OSError):
            (self.dir / name).unlink()

    def source(self, name: str) -> str:
        return str(self.dir / name)

    def prune(self, index: Index) -> None:
        if not self.dir.is_dir():
            return
        for path in self.dir.glob("*.json"):
            name = path.name
            # pathlib's "*" matches dotfiles too: another process's ".tmp-*" write in
            # progress (several tiup runs may share one $TIUP_HOME) must be left alone.
            if name in self.FIXED or name.startswith(".") or name.split(".")[0].isdigit():
                continue
            if name[: -len(".json")] not in index.components:
                self.drop(name)


def offline_error(command: str, address: str) -> OfflineError:
    return OfflineError(
        f"{command} needs network access to {address}, but offline mode is on",
        hint="drop --offline / unset TIUP_OFFLINE, or use a local-directory mirror",
    )


class Updater:
    """Verified metadata of one mirror, refreshed from the mirror on demand.

    Args:
        profile: the ``$TIUP_HOME`` to cache into.
        address: the mirror address (directory or URL).
        now: the reference time for expiry.
        offline: forbid network access (local-directory mirrors stay usable).
        command: the command name, for the offline error message.
        settings: HTTP settings, expiry warnings (and, for the installer, extraction
            limits); default the process's (:func:`tiup.settings.current`, read when
            first needed).
    """

    def __init__(self, profile: Profile, address: str, now: datetime, *, offline: bool = False,
                 command: str = "this command", fetcher: Fetcher | None = None,
                 settings: Settings | None = None):
        self.profile = profile
        self.address = address
        self.state: MirrorState = profile.mirror_state(address)
        self.now = now
        self.offline = offline
        self.command = command
        self._fetcher: CountingFetcher | None = CountingFetcher(fetcher) if fetcher else None
        self._reader: MirrorReader | None = None
        self._home_cache = _HomeCache(self.state)
        self._refreshed = False
        self.warnings: list[str] = []
        self._warned: set[str] = set()
        self._settings = settings

    # ------------------------------------------------------------ plumbing
    @property
    def settings(self) -> Settings:
        """The settings passed in, else the process's.

        Raises:
            UsageError: none were passed and an environment variable is malformed.
        """
        if self._settings is None:
            self._settings = current()
        return self._settings

    @property
    def fetcher(self) -> CountingFetcher:
        """The (counting) fetcher of the mirror, opened on first use.

        Raises:
            FetchError: the address cannot be opened.
            OfflineError: offline mode is on and the mirror is not a local directory.
        """
        if self._fetcher is None:
            self._fetcher = CountingFetcher(open_fetcher(self.address, self.settings))
        if self.offline and self._fetcher.local_path() is None:
            raise offline_error(self.command, self.address)
        return self._fetcher

    @property
    def requests(self) -> int:
        return self._fetcher.requests if self._fetcher else 0

    @property
    def bytes_transferred(self) -> int:
        return self._fetcher.bytes if self._fetcher else 0

    def close(self) -> None:
        """Write what is pending in the cache's verification record; close the transport."""
        try:
            self._home_cache.flush()
        finally:
            if self._fetcher is not None:
                self._fetcher.close()

    def _cache(self, name: str) -> Path:
        return self.state.manifests_dir / name

    def _read_cache(self, name: str) -> bytes | None:
        return self._home_cache.read(name)

    # ----------------------------------------------------------------- root
    def _anchor_bytes(self) -> tuple[bytes, str]:
        path = self.state.root_path
        try:
            return path.read_bytes(), str(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise TiupError(f"cannot read trusted root {path}: {exc.strerror}") from exc
        if self.state.configured:
            raise VerificationError(
                f"no trusted root.json for mirror {self.address}; "
                f'run "tiup mirror set {self.address}"',
                file=str(path),
            )
        return self._bootstrap_anchor(), str(path)

    def _bootstrap_anchor(self) -> bytes:
        """First use of a mirror other than the configured one: pin or TOFU (§12.2)."""
        pin = self.profile.find_pin(self.address)
        if pin is not None:
            data = pin.read_bytes()
            source = str(pin)
        else:
            data = self.fetcher.fetch("root.json", trust.MAX_ROOT_SIZE)
            source = f"{self.address.rstrip('/')}/root.json"
        try:
            trust.verify_self_signed_root(data, source)
        except VerificationError as exc:
            raise VerificationError(
                f"root.json from {source} is not validly signed: {exc.message}", file=source
            ) from exc
        atomic_write(self.state.root_path, data, 0o644)
        if pin is None and self.fetcher.local_path() is None:
            atomic_write(self.profile.pin_path(self.address), data, 0o664)
            self.warnings.append(
                f"trusting the root of {self.address} on first use; it is pinned in "
                f"{self.profile.pin_path(self.address)}"
            )
        return data

    def trusted(self) -> trust.TrustedState:
        """The trusted state, starting from the anchor and the cached chain of newer roots.

        Raises:
            VerificationError: no usable trusted root.
        """
        return self.reader.state

    @property
    def reader(self) -> MirrorReader:
        """The verified walk of this mirror, with ``$TIUP_HOME``'s manifest cache.

        Raises:
            VerificationError: no usable trusted root.
        """
        if self._reader is None:
            anchor, source = self._anchor_bytes()
            state = trust.TrustedState(anchor, self.now, source)
            reader = MirrorReader(lambda: self.fetcher, state, cache=self._home_cache,
                                  address=self.address)
            reader.walk_cached_roots()
            self._reader = reader
        return self._reader

    def walk_roots(self) -> bool:
        """Fetch ``N+1.root.json`` until the mirror has none. True if the root changed.

        Raises:
            VerificationError: a next root does not verify, or the final root expired.
            FetchError: the mirror failed other than "not found".
        """
        changed = self.reader.walk_roots()
        self._check_root_fresh()
        return changed

    def _check_root_fresh(self) -> None:
        """Raises ExpiredError, naming the mirror, if the newest trusted root expired."""
        state = self.reader.state
        try:
            state.check_root_fresh()
        except ExpiredError as exc:
            raise ExpiredError(
                f"{state.root_source} of mirror {self.address} expired at "
                f"{state.root.expires} and no newer root is published",
                file=state.root_source, mirror=self.address,
                hint="ask the mirror's administrator to rotate the root (tiup mirror rotate)",
            ) from exc

    # -------------------------------------------------------- update flow
    def refresh(self) -> None:
        """Bring timestamp, snapshot and index up to date (once per Updater).

        Raises:
            VerificationError: any trust rule failed (nothing unverified is cached).
            FetchError: the mirror could not be read.
            OfflineError: offline mode forbids it.
        """
        if self._refreshed:
            return
        with self._naming_mirror():
            self._refresh()

    def _refresh(self) -> None:
        reader = self.reader
        try:
            reader.refresh()
        except SignatureError as exc:
            changed = self._root_changed()
            if changed is None:
                raise
            raise changed from exc
        except ExpiredError:
            self._check_root_fresh()  # an expired root is the cause: say so
            raise
        self._refreshed = True
        self._check_expiry_warnings()

    @contextlib.contextmanager
    def _naming_mirror(self) -> Iterator[None]:
        """Expiry errors name the mirror and say what to do (``behavior.md`` §12.8, §12.9)."""
        try:
            yield
        except ExpiredError as exc:
            if exc.mirror is not None and exc.code == NAMED:
                raise  # already explained by an inner call
            message = exc.message
            if exc.mirror is None:
                message = f"{message} (mirror {self.address})"
            admin = exc.hint or (f"ask the administrator of mirror {self.address} to renew it "
                                 f"({_renew_command(exc.expired_file)})")
            raise ExpiredError(
                message, file=exc.file, expired_file=exc.expired_file, mirror=self.address,
                code=NAMED,
                hint=f"{admin}; installed components still run with `tiup --offline <component>`",
            ) from exc

    def _chain_copy(self, version: int) -> bytes | None:
        """The signed bytes of root ``version`` of our own trusted chain, if we hold it."""
        state = self.trusted()
        if version == state.root.version:
            return state.root_env.signed_raw
        for path in (self.state.root_path, self._cache(f"{version}.root.json")):
            try:
                env, root = trust.load(path.read_bytes(), str(path), Root)
            except (OSError, TiupError):
                continue
            if root.version == version:
                return env.signed_raw
        return None

    def _root_changed(self) -> SignatureError | None:
        """Explain a signature failure caused by a mirror whose root was replaced.

        A mirror deleted and re-initialised at the same address signs with new keys;
        clients then see only "not enough signatures". If the mirror's ``root.json`` is
        validly signed by itself but is not a root of our trusted chain (same or older
        version with other content, or a newer one the chain does not reach), this
        returns an error saying what changed and how to trust the new root. Otherwise
        None: the original error stands. Nothing is trusted or written here.
        """
        state = self.trusted()
        try:
            data = self.fetcher.fetch("root.json", trust.MAX_ROOT_SIZE)
            env, theirs = trust.verify_self_signed_root(data, "root.json")
        except TiupError:
            return None
        if theirs.version <= state.root.version:
            ours = self._chain_copy(theirs.version)
            if ours is None or ours == env.signed_raw:
                return None
        return SignatureError(
            f"the root of mirror {self.address} does not chain from the trusted root: "
            f"trusted root ({trust.describe_root(state.root)}), the mirror's root.json "
            f"({trust.describe_root(theirs)}); the mirror was re-created or its keys replaced",
            file=state.root_source,
            hint=self._retrust_hint(),
        )

    def _retrust_hint(self) -> str:
        import shlex

        addr = shlex.quote(self.address)
        with_root = f"tiup mirror set {addr} --root <root.json>"
        local = self.fetcher.local_path() is not None
        pin = self.profile.find_pin(self.address)
        if not self.state.configured:
            olds = " ".join(shlex.quote(str(p)) for p in (self.state.root_path, pin) if p)
            return (f"only if you trust the new root: run `rm {olds}` to trust it on next use, "
                    f"or get its root.json from the mirror's administrator and run "
                    f"`{with_root}`")
        if local and pin is None:
            return (f"only if you trust the new root: run `tiup mirror set {addr}` (trusts the "
                    f"mirror's root.json as it is now), or `{with_root}` with a root.json "
                    "from the mirror's administrator")
        retofu = (f"; or `rm {shlex.quote(str(pin))}` then `tiup mirror set {addr}` to trust "
                  "what the mirror serves now") if pin else ""
        return (f"only if you trust the new root: get its root.json from the mirror's "
                f"administrator and run `{with_root}`{retofu}")

    # ---------------------------------------------------------- components
    @property
    def index(self) -> Index:
        """The verified index (after :meth:`refresh`)."""
        self.refresh()
        return self.reader.index

    def component(self, comp_id: str, *, allow_expired: bool = False) -> Component:
        """The verified component manifest, from the cache if it is current.

        ``allow_expired`` ignores the manifest's own expiry (a writer re-signs it).

        Raises:
            VerificationError: unknown component, or the manifest fails the rules.
            FetchError: it could not be downloaded.
        """
        self.refresh()
        with self._naming_mirror():
            return self.reader.component(comp_id, allow_expired=allow_expired)

    def prefetch_components(self, comp_ids: Iterable[str], jobs: int = 8) -> None:
        """Download, ``jobs`` at a time, the manifests :meth:`component` will need."""
        self.refresh()
        self.reader.prefetch_components(comp_ids, jobs)

    def cached_component(self, comp_id: str, *, ignore_expiry: bool = True) -> Component | None:
        """The cached component manifest if its owner's signature verifies; no network.

        Used to run installed components offline: expiry is ignored, signatures
        are not (§12.9). Returns None if there is no usable cached copy.
        """
        if ignore_expiry:
            fast = self._verified(f"{comp_id}.json", Component)
            if fast is not None and fast.id == comp_id and \
                    self._verified("index.json", Index) is not None:
                return fast
        data = self._read_cache(f"{comp_id}.json")
        index_data = self._read_cache("index.json")
        if data is None or index_data is None:
            return None
        try:
            state = self.trusted()
            env_i, index = trust.load(index_data, "index.json", Index)
            trust.verify_signatures(env_i, trust.role_keys(state.root, "index",
                                                           state.root_source), None)
            item = index.components.get(comp_id)
            if item is None:
                return None
            env_c, comp = trust.load(data, f"{comp_id}.json", Component)
            now = None if ignore_expiry else self.now
            trust.verify_signatures(env_c, trust.owner_keys(index, item.owner, "index.json"), now)
            if comp.id != comp_id:
                return None
            return comp
        except TiupError:
            return None

    def cached_index(self) -> Index | None:
        """The cached index if its signature verifies (expiry ignored); no network."""
        fast = self._verified("index.json", Index)
        if fast is not None:
            return fast
        data = self._read_cache("index.json")
        if data is None:
            return None
        try:
            state = self.trusted()
            env, index = trust.load(data, "index.json", Index)
            trust.verify_signatures(env, trust.role_keys(state.root, "index",
                                                         state.root_source), None)
            return index
        except TiupError:
            return None

    def _verified(self, name: str, cls: type[M]) -> M | None:
        """A cached manifest whose verification is on record (:mod:`tiup.client.verified`),
        parsed without checking signatures again; None otherwise."""
        self._home_cache.flush()
        data = verified.verified_bytes(self.state.manifests_dir, name,
                                       verified.anchor_digest(self.state.root_path))
        if data is None:
            return None
        try:
            return cls.from_dict(parse_envelope(data, name).signed, name)
        except TiupError:
            return None

    # -------------------------------------------------------------- tarballs
    def download(self, url: str, dest: Path, length: int,
                 progress: Callable[[int, int], None] | None = None,
                 part: Path | None = None) -> None:
        """Download a tarball into ``dest`` (capped at ``length``), resuming ``part``.

        The caller verifies hashes. Raises FetchError, SizeLimitError, OfflineError.
        """
        report = None if progress is None else (lambda done: progress(done, length))
        self.fetcher.download(url.lstrip("/"), dest, expected_length=length, part_path=part,
                              progress=report)

    # -------------------------------------------------------------- warnings
    def _check_expiry_warnings(self) -> None:
        days = self.settings.expiry_warn_days
        if days <= 0:
            return
        state = self.trusted()
        limit = self.now + timedelta(days=days)
        docs: list[tuple[str, str]] = [("root.json", state.root.expires)]
        if state.timestamp:
            docs.append(("timestamp.json", state.timestamp.expires))
        if state.snapshot:
            docs.append(("snapshot.json", state.snapshot.expires))
        if state.index:
            docs.append(("index.json", state.index.expires))
        for name, expires in docs:
            self._warn_expiry(name, expires, limit)

    def _warn_expiry(self, name: str, expires: str, limit: datetime) -> None:
        from tiup.manifest.timefmt import parse_time

        try:
            at = parse_time(expires)
        except TiupError:
            return
        if at < limit and name not in self._warned:
            self._warned.add(name)
            left = max(0, (at - self.now).days)
            self.warnings.append(
                f"{name} of mirror {self.address} expires at {expires} (in {left} days)"
            )

    def note_component_expiry(self, comp: Component) -> None:
        """Add an expiry warning for a component manifest the caller relies on."""
        days = self.settings.expiry_warn_days
        if days > 0:
            self._warn_expiry(f"{comp.id}.json", comp.expires, self.now + timedelta(days=days))


def _renew_command(file: str | None) -> str:
    """The publisher's command renewing ``file``: ``2.hello.json`` → ``tiup mirror --repo
    <mirror-dir> renew hello`` (root.json: a rotation with a later expiry)."""
    name = Path(file or "").name
    head, _, rest = name.partition(".")
    if head.isdigit():
        name = rest
    if name == "root.json":
        return "`tiup mirror --repo <mirror-dir> rotate --days N`"
    if name in ("", "timestamp.json", "snapshot.json"):
        return "`tiup mirror --repo <mirror-dir> renew`"
    if name == "index.json":
        return "`tiup mirror --repo <mirror-dir> renew --index`"
    return f"`tiup mirror --repo <mirror-dir> renew {name.removesuffix('.json')}`"


def reset_cache(state: MirrorState) -> None:
    """Delete the manifest cache of a mirror (``mirror set`` does this)."""
    shutil.rmtree(state.manifests_dir, ignore_errors=True)


__all__ = ["CountingFetcher", "OfflineError", "Snapshot", "Timestamp", "Updater", "reset_cache"]
