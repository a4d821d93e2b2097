"""Attacks on the client that need a real HTTP server (the others: unit/test_security_client)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reposim import SIM_NOW, RepoSim
from servers import Fault, StaticServer
from tiup.client.profile import Profile
from tiup.client.updater import Updater
from tiup.errors import FetchError


@pytest.fixture
def sim(tmp_path: Path) -> RepoSim:
    s = RepoSim(tmp_path / "mirror")
    s.publish("hello", "v1.0.0")
    return s


def test_endless_timestamp_over_http(sim: RepoSim, tmp_path: Path) -> None:
    with StaticServer(sim.path) as srv:
        srv.add_fault("/timestamp.json", Fault(endless_chunked=True, times=-1))
        profile = Profile(tmp_path / "home", env={})
        updater = Updater(profile, srv.url, SIM_NOW)
        with pytest.raises(FetchError) as info:
            updater.refresh()
        assert "1024" in info.value.message or "exceed" in info.value.message
        assert not (profile.mirrors_dir.exists() and any(profile.mirrors_dir.rglob(
            "timestamp.json")))
