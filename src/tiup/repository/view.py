"""What the write helpers need from a mirror: a local Store or a remote (HTTP) mirror.

:mod:`tiup.repository.publish` and :mod:`tiup.repository.admin` build and sign
component manifests against a :class:`MirrorView`; a local
:class:`~tiup.repository.store.Store` stages and commits them, a
:class:`~tiup.repository.remote.RemoteMirror` sends them to a tiup-server.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Protocol

from tiup.manifest.envelope import Envelope
from tiup.manifest.models import Component, Index
from tiup.repository.lifetimes import Lifetimes
from tiup.repository.store import IndexFlags


class MirrorView(Protocol):
    """The mirror as the write helpers see it."""

    @property
    def directory(self) -> object: ...
    @property
    def now(self) -> datetime: ...
    @property
    def lifetimes(self) -> Lifetimes: ...
    @property
    def index(self) -> Index: ...

    def component(self, comp_id: str) -> Component | None:
        """The current verified manifest (expiry ignored), None if unknown."""

    def next_component_version(self, comp_id: str) -> int:
        """The version the next manifest of ``comp_id`` must have."""

    def publish_component(self, manifest: bytes | Envelope, tarball: Path | None = None, *,
                          tarball_name: str | None = None,
                          flags: IndexFlags | None = None) -> Component:
        """Stage (local) or record (remote) a signed component manifest."""
