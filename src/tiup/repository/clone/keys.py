"""The keys of a clone: reused on re-runs, else fresh ones and a new, empty signed mirror.

A clone is signed with its own keys (``behavior.md`` §6.4 step 5): three
root keys, one index, one snapshot and one timestamp key, and the key of the
owner ``pingcap``, all written to ``<target>/keys`` as TiUP names them
(``<id16>-<role>.json``, ``<id16>-pingcap.json``). Every manifest lives 50
years; the lifetimes are recorded in ``<target>/.tiup-mirror.toml`` so later
writes (a re-run, ``tiup mirror publish`` into the clone) renew with them.

Publishing into the clone then needs no extra setup: the publisher's key
discovery searches ``<mirror>/keys``, where the ``pingcap`` owner key is.

A re-run reuses the keys when ``<target>/keys`` (or a key directory the user
names, for keys moved out of the published tree) still holds the private keys
of every role of the clone's latest root and of the ``pingcap`` owner (§12.6),
so clients that trust the clone keep trusting it (TiUP #1704); without them
the target is not taken for an earlier clone (:mod:`tiup.repository.clone.target`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from tiup.errors import MissingKeyError, TiupError
from tiup.keys import PrivateKey, generate, save_private_key
from tiup.manifest.models import Owner
from tiup.manifest.timefmt import format_time
from tiup.repository.files import write_failed
from tiup.repository.init import write_initial_mirror
from tiup.repository.keyring import KeyRing, load_keyring
from tiup.repository.lifetimes import Lifetimes
from tiup.repository.state import MirrorState
from tiup.repository.storage import Storage

OWNER = "pingcap"
OWNER_NAME = "PingCAP"
#: TiUP's clone signs everything for 50 years.
FIFTY_YEARS = 18262
CLONE_LIFETIMES = Lifetimes(root=FIFTY_YEARS, index=FIFTY_YEARS, component=FIFTY_YEARS,
                            snapshot=FIFTY_YEARS, timestamp=FIFTY_YEARS)
ROLES = ("root", "index", "snapshot", "timestamp")


@dataclass
class CloneKeys:
    """Freshly generated keys of a new clone."""

    root: list[PrivateKey]
    index: PrivateKey
    snapshot: PrivateKey
    timestamp: PrivateKey
    owner: PrivateKey
    #: the owner key was given (a token key, or a file kept elsewhere): it is not saved
    owner_given: bool = False

    @classmethod
    def generate(cls, threads: int = 2, owner: PrivateKey | None = None) -> CloneKeys:
        """Seven new RSA-2048 keys (six with a given ``owner`` key), made on ``threads``
        threads (generation releases the GIL: about 60 ms of CPU per key)."""
        with ThreadPoolExecutor(max_workers=max(1, threads),
                                thread_name_prefix="clone-keygen") as pool:
            keys = list(pool.map(lambda _n: generate(), range(6 if owner else 7)))
        return cls(keys[:3], keys[3], keys[4], keys[5], owner or keys[6],
                   owner_given=owner is not None)

    def by_role(self) -> dict[str, list[PrivateKey]]:
        return {"root": self.root, "index": [self.index], "snapshot": [self.snapshot],
                "timestamp": [self.timestamp]}

    def save(self, key_dir: Path) -> list[Path]:
        """Write every key as ``<id16>-<role>.json`` (0600). Raises RepositoryError."""
        files: list[Path] = []
        try:
            key_dir.mkdir(parents=True, exist_ok=True)
            owner = [] if self.owner_given else [(OWNER, [self.owner])]
            for role, keys in [*self.by_role().items(), *owner]:
                for key in keys:
                    path = key_dir / f"{key.keyid[:16]}-{role}.json"
                    save_private_key(path, key, overwrite=True)
                    files.append(path)
        except OSError as exc:
            raise write_failed(key_dir, "the clone's key files", exc) from exc
        return files

    def keyring(self) -> KeyRing:
        ring = KeyRing()
        for keys in [*self.by_role().values(), [self.owner]]:
            for key in keys:
                ring.add(key, "clone keys")
        return ring


def reusable_keyring(state: MirrorState, key_dirs: Sequence[Path],
                     keys: Sequence[PrivateKey] = ()) -> KeyRing | None:
    """The clone's key ring if ``key_dirs`` and ``keys`` (e.g. the ``pingcap`` key on a
    token) hold every role key and the ``pingcap`` key.

    Returns None (fresh keys needed) otherwise.
    """
    try:
        ring = load_keyring(key_dirs)
    except TiupError:
        return None
    for key in keys:
        ring.add(key, getattr(key, "where", "-k"))
    owner = state.index.owners.get(OWNER)
    if owner is None:
        return None
    try:
        for role in ROLES:
            ring.role_signers(role, state.root.roles[role].keys, state.root_name)
        ring.threshold_signers(f"owner {OWNER}", owner.keys, owner.effective_threshold)
    except (MissingKeyError, KeyError):
        return None
    return ring


def _expiry(now: datetime, days: int) -> str:
    return format_time(now + timedelta(days=days))


def write_new_mirror(storage: Storage, keys: CloneKeys, now: datetime,
                     lifetimes: Lifetimes = CLONE_LIFETIMES) -> list[str]:
    """Write an empty mirror signed by ``keys`` whose index has the owner ``pingcap``.

    The caller holds the storage's lock. Later root versions of an earlier clone
    (signed by other keys) are removed: they cannot follow the new root.

    Raises:
        RepositoryError: a write failed.
    """
    with contextlib.suppress(TiupError):
        for entry in storage.list():
            if re.fullmatch(r"[0-9]+\.root\.json", entry.name) and entry.name != "1.root.json":
                storage.delete(entry.name)
    owner = Owner({keys.owner.keyid: keys.owner.public.keyinfo()}, OWNER_NAME, 1)
    return write_initial_mirror(storage, keys.by_role(), lifetimes, now,
                                owners={OWNER: owner})
