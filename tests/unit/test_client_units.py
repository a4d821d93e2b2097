"""Unit tests of the client pieces: driver scan, version picking, expiry warnings, profile."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from reposim import SIM_NOW, RepoSim
from tiup.cli.driver import scan
from tiup.client.homefast import simple_mirror_config
from tiup.client.mirrorset import set_mirror
from tiup.client.profile import Profile
from tiup.client.resolve import pick_installed, resolve_remote
from tiup.client.updater import OfflineError, Updater
from tiup.errors import InstallError
from tiup.settings import Settings


@pytest.mark.parametrize("argv,word,rest,flags", [
    (["hello"], "hello", [], {}),
    (["--tag", "x", "--offline", "hello:v1", "-a"], "hello:v1", ["-a"],
     {"tag": "x", "offline": True}),
    (["--tag=x", "-T", "y", "hello", "--", "--help"], "hello", ["--help"], {"tag": "y"}),
    (["--binary", "hello:v1"], None, [], {"binary": "hello:v1"}),
    (["--force-pull", "--binpath=/b", "c", "--tag", "z"], "c", ["--tag", "z"],
     {"force_pull": True, "binpath": "/b", "tag": "z"}),
    (["--", "--weird"], "--weird", [], {}),
    (["list", "--all"], "list", ["--all"], {}),
])
def test_driver_scan(argv: list[str], word: str | None, rest: list[str],
                     flags: dict[str, object]) -> None:
    d = scan(argv)
    assert d.word == word and d.rest == rest and d.error is None
    for name, value in flags.items():
        assert getattr(d, name) == value


def test_driver_scan_missing_value() -> None:
    assert scan(["--tag"]).error == "flag needs an argument: --tag"


@pytest.mark.parametrize("installed,wanted,expected", [
    (["v1.0.0", "v1.1.0", "v1.2.0-rc.1", "v2.0.0-nightly"], "", "v1.1.0"),
    (["v1.2.0-rc.1", "v2.0.0-nightly"], "", "v1.2.0-rc.1"),
    (["v1.0.0", "v2.0.0-nightly-20200101"], "nightly", "v2.0.0-nightly-20200101"),
    (["v1.0.0"], "1.0.0", "v1.0.0"),
    (["v1.0.0"], "v1.0.1", None),
    (["v1.0.0"], "nightly", None),
])
def test_pick_installed(installed: list[str], wanted: str, expected: str | None) -> None:
    assert pick_installed(installed, wanted) == expected


def test_resolve_remote_versions(tmp_path: Path) -> None:
    sim = RepoSim(tmp_path / "m")
    sim.publish("hello", "v1.0.0")
    sim.publish("hello", "v1.1.0")
    sim.publish("hello", "v2.0.0-nightly", nightly=True)
    sim.yank("hello", "v1.1.0")
    comp = sim.components["hello"]
    from tiup.client.resolve import current_platform

    plat = current_platform()
    assert resolve_remote(comp, "", plat)[0] == "v1.0.0"
    assert resolve_remote(comp, "1.0.0", plat)[0] == "v1.0.0"
    assert resolve_remote(comp, "nightly", plat)[0] == "v2.0.0-nightly"
    with pytest.raises(InstallError, match="unknown version"):
        resolve_remote(comp, "v1.1.0", plat)
    with pytest.raises(InstallError, match="doesn't support platform"):
        resolve_remote(comp, "", "plan9/mips")


@pytest.mark.parametrize("env,days_left,warned", [
    ({}, 5, True),
    ({}, 9, False),
    ({"TIUP_EXPIRY_WARN_DAYS": "14"}, 9, True),
    ({"TIUP_EXPIRY_WARN_DAYS": "0"}, 1, False),
])
def test_expiry_warning(tmp_path: Path, env: dict[str, str], days_left: int,
                        warned: bool) -> None:
    sim = RepoSim(tmp_path / "m", lifetime=timedelta(days=days_left))
    profile = Profile(tmp_path / "home", env={})
    set_mirror(profile, str(sim.path))
    updater = Updater(profile, str(sim.path), SIM_NOW, settings=Settings.from_env(env))
    updater.refresh()
    text = "\n".join(updater.warnings)
    assert ("timestamp.json of mirror" in text and "expires at" in text) == warned, text


def test_offline_updater_refuses_remote_but_allows_local(tmp_path: Path) -> None:
    sim = RepoSim(tmp_path / "m")
    profile = Profile(tmp_path / "home", env={})
    set_mirror(profile, str(sim.path))
    Updater(profile, str(sim.path), SIM_NOW, offline=True).refresh()
    remote = Updater(profile, "http://127.0.0.1:9", SIM_NOW, offline=True, command="tiup list")
    with pytest.raises(OfflineError, match=r"tiup list needs network access to http://127\.0\.0\.1:9"):
        remote.refresh()


def test_profile_state_per_mirror_and_config(tmp_path: Path) -> None:
    profile = Profile(tmp_path / "home", env={})
    profile.write_config("/data/mirror")
    assert profile.configured_mirror() == "/data/mirror"
    assert (tmp_path / "home" / "tiup.toml").read_text() == 'mirror = "/data/mirror"\n'
    assert profile.mirror_state("/data/mirror/").configured
    other = profile.mirror_state("https://example.com/")
    assert not other.configured and other.root_path.parent.parent == profile.mirrors_dir
    assert simple_mirror_config(b'mirror = "a\\"b"') is None
    (tmp_path / "home" / "tiup.toml").write_text('# comment\nmirror = "https://x/"\n')
    assert profile.configured_mirror() == "https://x/"
