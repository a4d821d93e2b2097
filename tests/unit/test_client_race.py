"""A writer commits between the client's read of timestamp.json and of snapshot.json.

The mirror's write order (snapshot, then timestamp) cannot stop a reader from
pairing an old timestamp with a new snapshot; the updater must read the
timestamp again instead of failing, and still refuse a snapshot that never
matches. The interleaving is produced by a fetcher that commits the writer's
change right after the client's first timestamp read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from reposim import SIM_NOW, RepoSim
from tiup.client.mirrorset import set_mirror
from tiup.client.profile import Profile
from tiup.client.updater import Updater
from tiup.errors import IntegrityError
from tiup.transport.local import LocalFetcher


class CommitAfterTimestamp(LocalFetcher):
    """Runs ``writer`` once, right after the first ``timestamp.json`` has been read."""

    def __init__(self, address: str, writer: Callable[[], None]):
        super().__init__(address)
        self.writer: Callable[[], None] | None = writer
        self.reads: list[str] = []

    def fetch(self, resource: str, max_size: int | None) -> bytes:
        data = super().fetch(resource, max_size)
        self.reads.append(resource)
        if resource == "timestamp.json" and self.writer is not None:
            writer, self.writer = self.writer, None
            writer()
        return data


def test_old_timestamp_new_snapshot_is_retried(tmp_path: Path) -> None:
    sim = RepoSim(tmp_path / "mirror")
    sim.publish("hello", "v1.0.0")
    home = tmp_path / "home"
    profile = Profile(home, env={"TIUP_HOME": str(home)})
    set_mirror(profile, str(sim.path))
    fetcher = CommitAfterTimestamp(str(sim.path), lambda: sim.publish("hello", "v2.0.0"))
    updater = Updater(profile, str(sim.path), SIM_NOW, fetcher=fetcher)
    comp = updater.component("hello")
    assert "v2.0.0" in comp.platforms[next(iter(comp.platforms))]
    assert fetcher.reads.count("timestamp.json") == 2


def test_snapshot_that_never_matches_is_refused(tmp_path: Path) -> None:
    sim = RepoSim(tmp_path / "mirror")
    sim.publish("hello", "v1.0.0")
    home = tmp_path / "home"
    profile = Profile(home, env={"TIUP_HOME": str(home)})
    set_mirror(profile, str(sim.path))
    (sim.path / "snapshot.json").write_bytes(sim.read("snapshot.json").replace(b'"version":0',
                                                                                b'"version":1'))
    updater = Updater(profile, str(sim.path), SIM_NOW)
    with pytest.raises(IntegrityError):
        updater.refresh()
    assert not (profile.manifests_dir / "snapshot.json").exists()
