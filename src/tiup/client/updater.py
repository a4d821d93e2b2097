"""The client update flow (``format.md`` §12): fetch, verify, cache.

An :class:`Updater` serves one mirror address. It reads the trust anchor of
that address (``bin/root.json`` for the configured mirror, ``mirrors/<sha16>/``
for any other, ``behavior.md`` §12.2), then feeds bytes from the transport to
:class:`~tiup.client.trust.TrustedState` in the order the rules require::

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
import json
import shutil
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path

from tiup.client import trust
from tiup.client.profile import MirrorState, Profile
from tiup.errors import (
    ExpiredError,
    FetchError,
    IntegrityError,
    NotFoundError,
    RollbackError,
    SignatureError,
    SizeLimitError,
    TiupError,
    VerificationError,
)
from tiup.fsutil import atomic_write
from tiup.manifest.models import Component, Index, Root, Snapshot, Timestamp
from tiup.manifest.names import versioned_url
from tiup.transport import Fetcher, open_fetcher

#: Warn when trusted metadata expires within this many days (TIUP_EXPIRY_WARN_DAYS).
DEFAULT_WARN_DAYS = 7


class OfflineError(FetchError):
    """The network is needed but offline mode is on."""


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

    def count_bytes(self, n: int) -> None:
        self.bytes += n

    def local_path(self) -> str | None:
        return self.inner.local_path()

    def close(self) -> None:
        self.inner.close()


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
    """

    def __init__(self, profile: Profile, address: str, now: datetime, *, offline: bool = False,
                 command: str = "this command", fetcher: Fetcher | None = None):
        self.profile = profile
        self.address = address
        self.state: MirrorState = profile.mirror_state(address)
        self.now = now
        self.offline = offline
        self.command = command
        self._fetcher: CountingFetcher | None = CountingFetcher(fetcher) if fetcher else None
        self._trusted: trust.TrustedState | None = None
        self._refreshed = False
        self._ts_bytes: bytes | None = None
        self.warnings: list[str] = []
        self._warned: set[str] = set()
        #: manifests downloaded ahead by :meth:`prefetch_components`, not yet verified
        self._prefetched: dict[str, bytes] = {}

    # ------------------------------------------------------------ plumbing
    @property
    def fetcher(self) -> CountingFetcher:
        """The (counting) fetcher of the mirror, opened on first use.

        Raises:
            FetchError: the address cannot be opened.
            OfflineError: offline mode is on and the mirror is not a local directory.
        """
        if self._fetcher is None:
            self._fetcher = CountingFetcher(open_fetcher(self.address))
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
        if self._fetcher is not None:
            self._fetcher.close()

    def _cache(self, name: str) -> Path:
        return self.state.manifests_dir / name

    def _read_cache(self, name: str) -> bytes | None:
        try:
            return self._cache(name).read_bytes()
        except OSError:
            return None

    def _write_cache(self, name: str, data: bytes) -> None:
        self.state.manifests_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self._cache(name), data, 0o644)

    def _drop_cache(self, name: str) -> None:
        with contextlib.suppress(OSError):
            self._cache(name).unlink()

    def _fetch(self, resource: str, cap: int | None) -> bytes:
        data = self._prefetched.pop(resource, None)
        if data is not None:
            return data
        return self.fetcher.fetch(resource, cap)

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
            data = self._fetch("root.json", trust.MAX_ROOT_SIZE)
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
        """The trusted state, starting from the cached latest root or the anchor.

        Raises:
            VerificationError: no usable trusted root.
        """
        if self._trusted is not None:
            return self._trusted
        anchor, source = self._anchor_bytes()
        state = trust.TrustedState(anchor, self.now, source)
        cached = self._read_cache("root.json")
        if cached is not None:
            try:
                candidate = trust.TrustedState(cached, self.now, str(self._cache("root.json")))
                if candidate.root.version > state.root.version:
                    state = self._walk_cached_roots(state)
            except TiupError:
                self._drop_cache("root.json")
        self._trusted = state
        return state

    def _walk_cached_roots(self, state: trust.TrustedState) -> trust.TrustedState:
        """Re-verify the cached chain ``N.root.json`` from the anchor (never trust it blindly)."""
        while True:
            nxt = state.root.version + 1
            data = self._read_cache(f"{nxt}.root.json")
            if data is None:
                return state
            try:
                state.update_root(data, str(self._cache(f"{nxt}.root.json")))
            except TiupError:
                self._drop_cache(f"{nxt}.root.json")
                return state

    def walk_roots(self) -> bool:
        """Fetch ``N+1.root.json`` until the mirror has none. True if the root changed.

        Raises:
            VerificationError: a next root does not verify, or the final root expired.
            FetchError: the mirror failed other than "not found".
        """
        state = self.trusted()
        start = state.root.version
        latest: bytes | None = None
        while True:
            name = f"{state.root.version + 1}.root.json"
            try:
                data = self._fetch(name, trust.MAX_ROOT_SIZE)
            except NotFoundError:
                break
            state.update_root(data, name)
            self._write_cache(name, data)
            latest = data
        if latest is not None:
            self._write_cache("root.json", latest)
        try:
            state.check_root_fresh()
        except ExpiredError as exc:
            raise ExpiredError(
                f"{state.root_source} of mirror {self.address} expired at "
                f"{state.root.expires} and no newer root is published",
                file=state.root_source,
                hint="ask the mirror's administrator to rotate the root (tiup mirror rotate)",
            ) from exc
        return state.root.version != start

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
        state = self.trusted()
        self._load_cached_timestamp(state)
        if self._ts_bytes is None:
            self._ts_bytes = self._fetch("timestamp.json", trust.MAX_TIMESTAMP_SIZE)
        try:
            state.update_timestamp(self._ts_bytes)
        except (SignatureError, ExpiredError):
            try:
                self.walk_roots()
                state.update_timestamp(self._ts_bytes)
            except SignatureError as exc:
                changed = self._root_changed()
                if changed is None:
                    raise
                raise changed from exc
        for attempt in range(4):
            try:
                self._update_snapshot(state)
            except (IntegrityError, SizeLimitError):
                # A writer replaced snapshot.json between our two reads, or a cache in
                # front of the mirror lags: read timestamp.json again and retry; a
                # snapshot that really does not match keeps failing and is refused.
                if attempt == 3:
                    raise
                self._ts_bytes = self._fetch("timestamp.json", trust.MAX_TIMESTAMP_SIZE)
                state.update_timestamp(self._ts_bytes)
                continue
            if not state.root_behind_snapshot():
                break
            self.walk_roots()
            state.update_timestamp(self._ts_bytes)
        else:
            raise VerificationError(
                f"snapshot.json of {self.address} names a root version that is not published",
                file="snapshot.json",
            )
        self._update_index(state)
        self._refreshed = True
        self._check_expiry_warnings()

    @contextlib.contextmanager
    def _naming_mirror(self) -> Iterator[None]:
        """Expiry errors name the mirror and say what to do (``behavior.md`` §12.8, §12.9)."""
        try:
            yield
        except ExpiredError as exc:
            if exc.hint and "--offline" in exc.hint:
                raise
            message = exc.message
            if self.address not in message:
                message = f"{message} (mirror {self.address})"
            admin = exc.hint or (f"ask the administrator of mirror {self.address} to renew it "
                                 f"({_renew_command(exc.file)})")
            raise ExpiredError(
                message, file=exc.file,
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
            data = self._fetch("root.json", trust.MAX_ROOT_SIZE)
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

    def _load_cached_timestamp(self, state: trust.TrustedState) -> None:
        data = self._read_cache("timestamp.json")
        if data is None:
            return
        try:
            state.update_timestamp(data, str(self._cache("timestamp.json")), allow_expired=True)
        except TiupError:
            state.timestamp = None
            self._drop_cache("timestamp.json")

    def _update_snapshot(self, state: trust.TrustedState) -> None:
        assert state.timestamp is not None and state.timestamp.snapshot_meta is not None
        meta = state.timestamp.snapshot_meta
        cached = self._read_cache("snapshot.json")
        if cached is not None and hashlib.sha256(cached).hexdigest() == meta.hashes.get(
            "sha256", ""
        ).lower():
            try:
                state.update_snapshot(cached, str(self._cache("snapshot.json")))
                self._save_timestamp()
                return
            except TiupError:
                self._drop_cache("snapshot.json")
        data = self._fetch("snapshot.json", meta.length)
        state.update_snapshot(data)
        self._write_cache("snapshot.json", data)
        self._save_timestamp()

    def _save_timestamp(self) -> None:
        assert self._ts_bytes is not None
        if self._read_cache("timestamp.json") != self._ts_bytes:
            self._write_cache("timestamp.json", self._ts_bytes)

    def _cached_version(self, name: str, keys: trust.RoleKeys, cls: type[Index] | type[Component]
                        ) -> int | None:
        """The version of a cached manifest whose signature still verifies (else None)."""
        data = self._read_cache(name)
        if data is None:
            return None
        try:
            env, model = trust.load(data, name, cls)
            trust.verify_signatures(env, keys, None)
        except TiupError:
            return None
        return model.version

    def _refuse_older(self, name: str, keys: trust.RoleKeys,
                      cls: type[Index] | type[Component], version: int, what: str) -> None:
        """A cache that no longer verifies may still prove the snapshot rolled back.

        Raises:
            RollbackError: the cached copy is validly signed and newer than ``version``.
        """
        held = self._cached_version(name, keys, cls)
        if held is not None and held > version:
            raise RollbackError(
                f"snapshot.json of {self.address} names {what} version {version}, "
                f"older than the trusted version {held}",
                file="snapshot.json",
            )

    def _update_index(self, state: trust.TrustedState) -> None:
        version, length = state.expected_index()
        keys = trust.role_keys(state.root, "index", state.root_source)
        cached = self._read_cache("index.json")
        if cached is not None:
            try:
                state.update_index(cached, str(self._cache("index.json")))
                return
            except TiupError:
                self._refuse_older("index.json", keys, Index, version, "index")
        name = versioned_url(state.index_url(), version).lstrip("/")
        data = self._fetch(name, length)
        state.update_index(data, name)
        self._write_cache("index.json", data)
        self._prune_component_cache(state.index)

    def _prune_component_cache(self, index: Index | None) -> None:
        if index is None or not self.state.manifests_dir.is_dir():
            return
        fixed = {"root.json", "timestamp.json", "snapshot.json", "index.json"}
        for path in self.state.manifests_dir.glob("*.json"):
            name = path.name
            # pathlib's "*" matches dotfiles too: another process's ".tmp-*" write in
            # progress (several tiup runs may share one $TIUP_HOME) must be left alone.
            if name in fixed or name.startswith(".") or name.split(".")[0].isdigit():
                continue
            if name[: -len(".json")] not in index.components:
                self._drop_cache(name)

    # ---------------------------------------------------------- components
    @property
    def index(self) -> Index:
        """The verified index (after :meth:`refresh`)."""
        state = self.trusted()
        if state.index is None:
            self.refresh()
        assert state.index is not None
        return state.index

    def component(self, comp_id: str) -> Component:
        """The verified component manifest, from the cache if it is current.

        Raises:
            VerificationError: unknown component, or the manifest fails the rules.
            FetchError: it could not be downloaded.
        """
        state = self.trusted()
        self.refresh()
        if comp_id in state.components:
            return state.components[comp_id]
        with self._naming_mirror():
            return self._component(state, comp_id)

    def _component(self, state: trust.TrustedState, comp_id: str) -> Component:
        url, version, length = state.component_entry(comp_id)
        cache_name = f"{comp_id}.json"
        cached = self._read_cache(cache_name)
        if cached is not None:
            try:
                return state.update_component(comp_id, cached, str(self._cache(cache_name)))
            except TiupError:
                assert state.index is not None
                owner = state.index.components[comp_id].owner
                keys = trust.owner_keys(state.index, owner, state.index_source)
                self._refuse_older(cache_name, keys, Component, version, comp_id)
        name = versioned_url(url, version).lstrip("/")
        data = self._fetch(name, length)
        comp = state.update_component(comp_id, data, name)
        self._write_cache(cache_name, data)
        return comp

    def prefetch_components(self, comp_ids: Iterable[str], jobs: int = 8) -> None:
        """Download, ``jobs`` at a time, the manifests :meth:`component` will need.

        Only bytes are fetched here (with the snapshot's caps); each is verified when
        :meth:`component` takes it. Components whose cache is current are skipped, and
        failures are left for :meth:`component` to report.
        """
        state = self.trusted()
        self.refresh()
        wanted: list[tuple[str, int]] = []
        for comp_id in comp_ids:
            if comp_id in state.components:
                continue
            try:
                url, version, length = state.component_entry(comp_id)
            except TiupError:
                continue
            cached = self._read_cache(f"{comp_id}.json")
            if cached is not None and _declared_version(cached) == version:
                continue
            wanted.append((versioned_url(url, version).lstrip("/"), length))
        if len(wanted) < 2:
            return
        fetcher = self.fetcher

        def get(item: tuple[str, int]) -> tuple[str, bytes | None]:
            try:
                return item[0], fetcher.fetch(item[0], item[1])
            except TiupError:
                return item[0], None

        with ThreadPoolExecutor(max_workers=min(jobs, len(wanted))) as pool:
            for name, data in pool.map(get, wanted):
                if data is not None:
                    self._prefetched[name] = data

    def cached_component(self, comp_id: str, *, ignore_expiry: bool = True) -> Component | None:
        """The cached component manifest if its owner's signature verifies; no network.

        Used to run installed components offline: expiry is ignored, signatures
        are not (§12.9). Returns None if there is no usable cached copy.
        """
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

    # -------------------------------------------------------------- tarballs
    def download(self, url: str, dest: Path, length: int,
                 progress: Callable[[int, int], None] | None = None,
                 part: Path | None = None) -> None:
        """Download a tarball into ``dest`` (capped at ``length``), resuming ``part``.

        The caller verifies hashes. Raises FetchError, SizeLimitError, OfflineError.
        """
        fetcher = self.fetcher
        resource = url.lstrip("/")
        before = part.stat().st_size if part is not None and part.exists() else 0
        report = None if progress is None else (lambda done: progress(done, length))
        fetcher.requests += 1
        fetcher.log.append(resource)
        fetcher.inner.download(resource, dest, expected_length=length, part_path=part,
                               progress=report)
        fetcher.count_bytes(max(0, dest.stat().st_size - before))

    # -------------------------------------------------------------- warnings
    def _check_expiry_warnings(self) -> None:
        import os

        raw = os.environ.get("TIUP_EXPIRY_WARN_DAYS", "")
        try:
            days = int(raw) if raw else DEFAULT_WARN_DAYS
        except ValueError:
            days = DEFAULT_WARN_DAYS
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
        import os

        raw = os.environ.get("TIUP_EXPIRY_WARN_DAYS", "")
        days = int(raw) if raw.isdigit() else DEFAULT_WARN_DAYS
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


def _declared_version(data: bytes) -> int | None:
    """The ``signed.version`` a manifest claims (unverified: only to skip a download)."""
    try:
        obj = json.loads(data)
        version = obj["signed"]["version"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    return version if isinstance(version, int) else None
