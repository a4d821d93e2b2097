"""What the write helpers need from a mirror: a local Store or a remote (HTTP) mirror.

:mod:`tiup.repository.publish` and :mod:`tiup.repository.admin` build and sign
component manifests (and the CLI next roots) against a :class:`MirrorView`; a
:class:`~tiup.repository.store.Store` stages and commits them, a
:class:`~tiup.repository.remote.RemoteMirror` sends them to a tiup-server. A
:class:`~tiup.repository.writer.MirrorWriter` hands one to a build function, inside one
transaction.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Protocol

from tiup.manifest.envelope import Envelope
from tiup.manifest.models import Component, Index, Root
from tiup.repository.lifetimes import Lifetimes
from tiup.repository.store import IndexFlags, SignedComponent


class MirrorView(Protocol):
    """The mirror as the write helpers see it."""

    @property
    def location(self) -> str:
        """Where the mirror is (directory or URL), for messages."""

    @property
    def now(self) -> datetime: ...
    @property
    def lifetimes(self) -> Lifetimes: ...
    @property
    def index(self) -> Index: ...

    @property
    def root(self) -> Root:
        """The latest verified root (expiry ignored)."""

    @property
    def root_name(self) -> str:
        """The file the latest root was read from (``N.root.json``), for messages."""

    def component(self, comp_id: str) -> Component | None:
        """The current verified manifest (expiry ignored), None if unknown."""

    def next_component_version(self, comp_id: str) -> int:
        """The version the next manifest of ``comp_id`` must have."""

    def publish_component(self, manifest: bytes | Envelope | SignedComponent,
                          tarball: Path | None = None, *,
                          tarball_name: str | None = None,
                          flags: IndexFlags | None = None) -> Component:
        """Stage (local) or record (remote) a signed component manifest."""

    def set_root(self, root: Root, data: bytes) -> None:
        """Stage (local) or record (remote) the next root, signed (``data``).

        Whatever the new root's keys require of the other role manifests (the index
        re-signed when the index role changed; snapshot and timestamp always) is done
        by the party that holds those keys: this store, or the server.
        """

    def renew_index(self, days: int | None = None) -> Index:
        """Re-sign the index (version +1). Raises UsageError where the index key is not
        at hand (a remote mirror: its server holds it)."""
