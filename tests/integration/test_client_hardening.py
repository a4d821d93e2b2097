"""Hostile input and user mistakes at the client's edges (issue 9: D3, D11, damaged installs,
expiry messages, ``tiup list`` with the mirror down, a mirror re-created at the same address).

Everything is real: signed mirrors written by the repository simulator or by ``tiup mirror
init``, the ``tiup`` command in a subprocess, HTTP servers on 127.0.0.1. Each attack or
mistake is a row of a table where that helps, with post-conditions on ``$TIUP_HOME`` (and
on the victim directory outside it): nothing deleted, nothing half-installed, one clear
error line, no traceback.
"""

from __future__ import annotations

import gzip
import io
import json
import shlex
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from reposim import SIM_NOW, SIM_NOW_TEXT, RepoSim, make_tarball, script
from servers import StaticServer
from tiup.client import installer
from tiup.client.extract import MAX_DEPTH, ExtractLimits, safe_extract
from tiup.client.mirrorset import set_mirror
from tiup.client.profile import Profile
from tiup.client.resolve import current_platform, resolve_remote
from tiup.client.updater import Updater
from tiup.errors import InstallError, InvalidNameError, UsageError
from tiup.manifest.timefmt import format_time
from tiup.settings import Settings

ENV = {"TIUP_TEST_NOW": SIM_NOW_TEXT, "TIUP_HTTP_RETRIES": "1"}
PLAT = current_platform().replace("/", "-")


def one_error(r) -> str:  # type: ignore[no-untyped-def]
    """The single ``Error:`` line of a failed run (and no traceback)."""
    assert "Traceback" not in r.output, r.output
    lines = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, r.stderr
    return lines[0]


def hint(r) -> str:  # type: ignore[no-untyped-def]
    lines = [line for line in r.stderr.splitlines() if line.startswith("Hint:")]
    assert len(lines) == 1, r.stderr
    return lines[0]


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` except transient staging files and the execution history
    (``history/`` records every run, failed ones too, as in TiUP)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "staging" not in p.relative_to(root).parts
            and p.relative_to(root).parts[0] != "history"}


@pytest.fixture
def sim(tmp_path: Path) -> RepoSim:
    s = RepoSim(tmp_path / "mirror")
    s.publish("hello", "v1.0.0", files={"hello": script("echo one")})
    s.publish("hello", "v2.0.0", files={"hello": script("echo two")})
    s.publish("other", "v1.0.0", entry="other", files={"other": script("echo other")})
    return s


@pytest.fixture
def installed(tiup, sim: RepoSim, clean_home: Path) -> Path:
    """A client of ``sim`` with hello v1.0.0 and v2.0.0 and other v1.0.0 installed."""
    assert tiup("mirror", "set", str(sim.path), env=ENV).returncode == 0
    r = tiup("install", "hello:v1.0.0", "hello:v2.0.0", "other", env=ENV)
    assert r.returncode == 0, r.output
    return clean_home


# ------------------------------------------------------------------------------------- D3
#: (spec, commands to try it with). The first two are the issue's: a version that walks
#: out of $TIUP_HOME to the victim, and ``..`` (which once removed every component).
BAD_SPECS = [
    ("hello:../../../victim", ("uninstall", "install", "update", "run", "binary")),
    ("hello:..", ("uninstall", "uninstall-all", "install", "update", "run", "binary")),
    ("hello:.", ("uninstall", "run")),
    ("hello:v1.0.0/../../../../victim", ("uninstall", "install")),
    ("../../victim", ("uninstall", "install", "run")),
    ("..:v1.0.0", ("uninstall", "binary")),
    ("hello:-rf", ("uninstall", "run")),
]


def _argv(command: str, spec: str) -> list[str]:
    return {"run": [spec], "binary": ["--binary", spec], "uninstall-all": ["uninstall", spec,
                                                                            "--all"]
            }.get(command, [command, spec])


@pytest.mark.parametrize("spec,commands", BAD_SPECS, ids=[s for s, _ in BAD_SPECS])
def test_path_like_specs_are_usage_errors_and_delete_nothing(
        tiup, installed: Path, tmp_path: Path, spec: str, commands: tuple[str, ...]) -> None:
    victim = tmp_path / "victim"  # = $TIUP_HOME/components/hello/../../../victim
    (victim / "precious").mkdir(parents=True)
    (victim / "precious" / "data").write_text("keep me")
    before = tree(installed)
    for command in commands:
        r = tiup(*_argv(command, spec), env=ENV)
        assert r.returncode == 2, (command, r.output)
        assert "invalid" in one_error(r), r.stderr
        assert (victim / "precious" / "data").read_text() == "keep me"
        assert tree(installed) == before, command
    assert sorted(p.name for p in (installed / "components").iterdir()) == ["hello", "other"]


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".hidden"])
def test_list_refuses_a_path_as_component(tiup, installed: Path, name: str) -> None:
    r = tiup("list", name, env=ENV)
    assert r.returncode == 2 and "invalid component name" in one_error(r)


def test_uninstall_checks_all_arguments_before_removing_any(tiup, installed: Path) -> None:
    r = tiup("uninstall", "other:v1.0.0", "hello:..", env=ENV)
    assert r.returncode == 2, r.output
    assert (installed / "components" / "other" / "v1.0.0" / "other").is_file()


def test_library_refuses_unsafe_names_too(tmp_path: Path) -> None:
    profile = Profile(tmp_path / "home", env={})
    (tmp_path / "victim").mkdir()
    with pytest.raises(InvalidNameError):
        installer.uninstall_version(profile, "hello", "../../../victim")
    with pytest.raises(InvalidNameError):
        installer.uninstall_component(profile, "..")
    assert (tmp_path / "victim").is_dir()
    from tiup.client.resolve import parse_spec

    with pytest.raises(UsageError):
        parse_spec("hello:" + "v" * 5000)
    assert parse_spec("hello:") == ("hello", "") and parse_spec("hello:nightly")[1] == "nightly"


# ------------------------------------------------------------------------------------ D11
class _Zeros(io.RawIOBase):
    """``n`` zero bytes, produced on demand (a bomb is never held in memory)."""

    def __init__(self, n: int):
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # type: ignore[no-untyped-def, override]
        n = min(len(buf), self.left)
        buf[:n] = b"\0" * n
        self.left -= n
        return n


def _zeros_tarball(size: int) -> bytes:
    """A valid gzip tarball with ``hello`` and one member of ``size`` zero bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("hello", script()),):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("zeros")
        info.size = size
        tar.addfile(info, _Zeros(size))  # type: ignore[arg-type]
    return buf.getvalue()


def _declared_only(size: int) -> bytes:
    """A gzip tarball whose second header declares ``size`` bytes; the data is never there.

    A few hundred bytes on the mirror that would expand past any disk: refused when the
    header is read, before a byte of it is decompressed or written.
    """
    data = script()
    hello = tarfile.TarInfo("hello")
    hello.size, hello.mode = len(data), 0o755
    huge = tarfile.TarInfo("huge")
    huge.size = size
    padding = b"\0" * (-len(data) % tarfile.BLOCKSIZE)
    body = hello.tobuf(tarfile.PAX_FORMAT) + data + padding + huge.tobuf(tarfile.PAX_FORMAT)
    return gzip.compress(body + b"\0" * 4096)


def _pax_bomb(size: int) -> bytes:
    """A member whose pax header alone is ``size`` bytes (tarfile reads it into memory)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        data = script()
        info = tarfile.TarInfo("hello")
        info.size, info.mode = len(data), 0o755
        info.pax_headers = {"comment": "x" * size}
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class Bomb:
    name: str
    tarball: Callable[[], bytes]
    message: str
    env: dict[str, str]
    max_compressed: int = 1 << 20  # the attack is small on the mirror


MIB = 1 << 20
BOMBS = [
    Bomb("2100-level deep path", lambda: make_tarball(
        {"hello": script(), "/".join(["d"] * 2100) + "/f": b"x"}), "path too", {}),
    Bomb("200-level path of short names", lambda: make_tarball(
        {"hello": script(), "/".join(["d"] * 200) + "/f": b"x"}),
        f"path too deep (201 levels, limit {MAX_DEPTH})", {}),
    Bomb("300-byte file name", lambda: make_tarball({"hello": script(), "n" * 300: b"x"}),
         "longer than 255 bytes", {}),
    Bomb("too many members", lambda: make_tarball(
        {"hello": script(), **{f"f{i}": b"" for i in range(60)}}),
        "has more than 50 members (limit TIUP_MAX_EXTRACT_MEMBERS=50)",
        {"TIUP_MAX_EXTRACT_MEMBERS": "50"}),
    Bomb("gzip bomb: 64 MiB of zeros", lambda: _zeros_tarball(64 * MIB),
         f"expands to more than {4 * MIB} bytes (limit TIUP_MAX_EXTRACT_BYTES={4 * MIB})",
         {"TIUP_MAX_EXTRACT_BYTES": str(4 * MIB)}),
    Bomb("many small files over the byte cap", lambda: make_tarball(
        {"hello": script(), **{f"f{i}": b"\0" * (100 << 10) for i in range(20)}}),
        "expands to more than", {"TIUP_MAX_EXTRACT_BYTES": str(MIB)}),
    Bomb("8 MiB pax header", lambda: _pax_bomb(8 * MIB), "expands to more than",
         {"TIUP_MAX_EXTRACT_BYTES": str(MIB)}),
    Bomb("header declaring 9 GiB (default limit)", lambda: _declared_only(9 << 30),
         f"expands to more than {8 << 30} bytes", {}),
]


def _client(sim: RepoSim, home: Path,
            settings: Settings | None = None) -> tuple[Profile, Updater]:
    profile = Profile(home, env={"TIUP_HOME": str(home)})
    set_mirror(profile, str(sim.path))
    return profile, Updater(profile, str(sim.path), SIM_NOW, settings=settings)


def _install(profile: Profile, updater: Updater, version: str) -> Path:
    ver, item = resolve_remote(updater.component("hello"), version, current_platform())
    return installer.install(profile, updater, "hello", ver, item, SIM_NOW)


@pytest.mark.parametrize("bomb", BOMBS, ids=[b.name for b in BOMBS])
def test_hostile_signed_tarball_is_refused_atomically(
        bomb: Bomb, sim: RepoSim, tmp_path: Path) -> None:
    settings = Settings.from_env(bomb.env)  # the updater hands them to the installer
    profile, updater = _client(sim, tmp_path / "home", settings)
    good = _install(profile, updater, "v1.0.0")
    data = bomb.tarball()
    assert len(data) < bomb.max_compressed
    sim.publish("hello", "v3.0.0", tarball=data)  # signed by the owner: only extraction stops it
    before = {k: v for k, v in tree(profile.home).items() if not k.startswith("manifests/")}

    fresh = Updater(profile, str(sim.path), SIM_NOW, settings=settings)
    with pytest.raises(InstallError) as info:
        _install(profile, fresh, "v3.0.0")
    message = info.value.message
    assert bomb.message in message, message
    assert len(message) < 300 and "\n" not in message  # one readable line, even for 2100 levels

    after = {k: v for k, v in tree(profile.home).items() if not k.startswith("manifests/")}
    assert after == before  # nothing half-installed, no record
    assert not profile.component_dir("hello", "v3.0.0").exists()
    assert not list(profile.staging_dir.glob("install-*"))
    assert installer.is_installed(profile, "hello", "v1.0.0") and (good / "hello").is_file()


def test_hostile_tarball_through_the_cli(tiup, sim: RepoSim, clean_home: Path) -> None:
    sim.publish("deep", "v1.0.0", entry="hello", tarball=make_tarball(
        {"hello": script(), "/".join(["d"] * 2100) + "/f": b"x"}))
    sim.publish("bomb", "v1.0.0", entry="hello", tarball=_zeros_tarball(16 * MIB))
    assert tiup("mirror", "set", str(sim.path), env=ENV).returncode == 0
    r = tiup("install", "deep", env=ENV)
    assert r.returncode == 1 and "path too long" in one_error(r)
    r = tiup("bomb", env={**ENV, "TIUP_MAX_EXTRACT_BYTES": str(MIB)})
    assert r.returncode == 1 and "TIUP_MAX_EXTRACT_BYTES" in one_error(r)
    assert "raise TIUP_MAX_EXTRACT_BYTES" in hint(r)
    r = tiup("install", "bomb", env={**ENV, "TIUP_MAX_EXTRACT_BYTES": "lots"})
    assert r.returncode == 2 and "TIUP_MAX_EXTRACT_BYTES='lots' is not an integer" in one_error(r)
    assert not (clean_home / "components" / "deep").exists()
    assert not (clean_home / "components" / "bomb").exists()
    assert not (clean_home / "installed" / "bomb").exists()
    # a limit of 0 means none: the same signed tarball installs
    r = tiup("bomb", env={**ENV, "TIUP_MAX_EXTRACT_BYTES": "0"}, subprocess=True)
    assert r.returncode == 0, r.output


def test_limits_are_counted_on_the_stream_not_trusted_from_headers(tmp_path: Path) -> None:
    tarball = tmp_path / "t.tar.gz"
    tarball.write_bytes(_zeros_tarball(2 * MIB))
    dest = tmp_path / "dest"
    dest.mkdir()
    assert safe_extract(tarball, dest, ExtractLimits(3 * MIB, 10)) == ["hello", "zeros"]
    shutil.rmtree(dest)
    dest.mkdir()
    with pytest.raises(InstallError, match="expands to more than"):
        safe_extract(tarball, dest, ExtractLimits(MIB, 10))
    assert list(dest.iterdir()) == []  # refused before anything was written


# ------------------------------------------------------------------------ damaged install
def test_run_with_version_repairs_a_damaged_install(tiup, installed: Path) -> None:
    entry = installed / "components" / "hello" / "v2.0.0" / "hello"
    entry.unlink()
    r = tiup("hello:v2.0.0", env=ENV, subprocess=True)
    assert r.returncode == 0 and r.stdout == "two\n", r.output
    assert "component `hello` version v2.0.0 is damaged (its entry hello is missing" in r.stderr
    assert "reinstalling it" in r.stderr and entry.is_file()


def test_plain_run_does_not_fall_back_to_an_older_version(tiup, installed: Path) -> None:
    shutil.rmtree(installed / "components" / "hello" / "v2.0.0")
    (installed / "components" / "hello" / "v2.0.0").mkdir()  # empty, as if files were wiped
    r = tiup("hello", env=ENV, subprocess=True)
    assert r.returncode == 0 and r.stdout == "two\n", r.output  # not "one"
    assert "is damaged" in r.stderr


def test_install_repairs_a_damaged_version_and_force_reinstalls(tiup, installed: Path) -> None:
    entry = installed / "components" / "hello" / "v2.0.0" / "hello"
    entry.unlink()
    entry.mkdir()  # exists, but is not a file
    r = tiup("install", "hello:v2.0.0", env=ENV)
    assert r.returncode == 0, r.output
    assert "already installed" not in r.output and "is damaged" in r.stderr
    assert entry.is_file()
    entry.write_bytes(script("echo tampered"))  # still a file: only --force replaces it
    assert tiup("install", "hello:v2.0.0", env=ENV).returncode == 0
    assert tiup("hello:v2.0.0", env=ENV, subprocess=True).stdout == "tampered\n"
    r = tiup("install", "--force", "hello:v2.0.0", env=ENV)
    assert r.returncode == 0, r.output
    assert tiup("hello:v2.0.0", env=ENV, subprocess=True).stdout == "two\n"


def test_damaged_install_without_the_mirror_says_how_to_repair(tiup, installed: Path,
                                                               sim: RepoSim) -> None:
    (installed / "components" / "hello" / "v2.0.0" / "hello").unlink()
    r = tiup("--binary", "hello:v2.0.0", env=ENV)
    assert r.returncode == 1 and "is damaged" in one_error(r)
    assert "tiup install --force hello:v2.0.0" in hint(r)
    shutil.rmtree(sim.path)  # the mirror is gone
    r = tiup("hello", env=ENV)
    assert r.returncode == 1, r.output
    line = one_error(r)
    assert "version v2.0.0 is damaged" in line and "could not be reinstalled" in line
    assert "`tiup install --force hello:v2.0.0`" in hint(r)
    assert tiup("hello:v1.0.0", env=ENV, subprocess=True).stdout == "one\n"  # the others still run


def test_damaged_install_offline_over_http(tiup, sim: RepoSim, clean_home: Path) -> None:
    with StaticServer(sim.path) as srv:
        assert tiup("mirror", "set", srv.url, env=ENV).returncode == 0
        assert tiup("install", "hello:v2.0.0", env=ENV).returncode == 0
        (clean_home / "components" / "hello" / "v2.0.0" / "hello").unlink()
        served = len(srv.requests())
        r = tiup("--offline", "hello", env=ENV)
        assert r.returncode == 1, r.output
        assert "offline mode is on" in one_error(r)
        assert "tiup install --force hello:v2.0.0" in hint(r)
        assert len(srv.requests()) == served  # offline means no request at all
        assert tiup("--offline", "hello:v2.0.0", env=ENV).returncode == 1  # never v1 instead
        # online again: repaired from the verified tarball
        r = tiup("hello", env=ENV, subprocess=True)
        assert r.returncode == 0 and r.stdout == "two\n", r.output


# --------------------------------------------------------------------------- expiry errors
def test_expired_timestamp_names_the_mirror_and_what_to_do(tiup, installed: Path,
                                                           sim: RepoSim) -> None:
    from datetime import timedelta

    sim.publish("hello", "v3.0.0", commit=False)
    sim.commit(ts_expires=format_time(SIM_NOW - timedelta(seconds=1)))
    r = tiup("install", "hello:v3.0.0", env=ENV)
    assert r.returncode == 1
    line = one_error(r)
    assert "timestamp.json expired at" in line and f"(mirror {sim.path})" in line
    text = hint(r)
    assert (f"ask the administrator of mirror {sim.path} to renew it "
            "(`tiup mirror --repo <mirror-dir> renew`)") in text
    assert "tiup --offline <component>" in text
    r = tiup("--offline", "hello", env=ENV, subprocess=True)  # as the hint says
    assert r.returncode == 0 and r.stdout == "two\n", r.output


def test_expired_component_manifest_names_the_renew_command(tiup, installed: Path,
                                                            sim: RepoSim) -> None:
    from datetime import timedelta

    comp = sim.components["other"]
    comp.expires = format_time(SIM_NOW - timedelta(days=1))
    comp.version += 1
    sim.write_component("other")
    sim.commit()
    r = tiup("install", "--force", "other", env=ENV)
    assert r.returncode == 1
    assert "other.json expired at" in one_error(r) and f"mirror {sim.path}" in one_error(r)
    assert "`tiup mirror --repo <mirror-dir> renew other`" in hint(r)


# ------------------------------------------------------------------- list with mirror down
def _listed(stdout: str) -> list[str]:
    return [line.split()[0] for line in stdout.splitlines()[3:]]


def test_list_with_local_mirror_gone_shows_the_cache(tiup, installed: Path,
                                                     sim: RepoSim) -> None:
    assert tiup("list", env=ENV).returncode == 0
    shutil.rmtree(sim.path)
    r = tiup("list", env=ENV)
    assert r.returncode == 0, r.output
    assert _listed(r.stdout) == ["hello", "other"]
    assert f"Warning: cannot refresh metadata from {sim.path}" in r.stderr
    assert "showing the cached list" in r.stderr
    r = tiup("list", "hello", env=ENV)
    assert r.returncode == 0 and "v2.0.0" in r.stdout and "Warning:" in r.stderr


def test_list_with_http_mirror_refusing_connections(tiup, sim: RepoSim,
                                                    clean_home: Path) -> None:
    with StaticServer(sim.path) as srv:
        url = srv.url
        assert tiup("mirror", "set", url, env=ENV).returncode == 0
        assert tiup("list", env=ENV).returncode == 0
    r = tiup("list", env=ENV)  # nothing listens on the port any more
    assert r.returncode == 0, r.output
    assert _listed(r.stdout) == ["hello", "other"]
    assert f"Warning: cannot refresh metadata from {url}" in r.stderr


def test_list_with_mirror_down_and_no_cache_is_a_clear_error(tiup, sim: RepoSim,
                                                            clean_home: Path) -> None:
    assert tiup("mirror", "set", str(sim.path), env=ENV).returncode == 0
    shutil.rmtree(sim.path)
    r = tiup("list", env=ENV)
    assert r.returncode == 1 and r.stdout == ""
    assert f"local mirror {sim.path} is not a directory" in one_error(r)
    assert "no cached list" in hint(r)


# ---------------------------------------------------------------- mirror re-created
def _root_keys(path: Path) -> list[str]:
    return sorted(k[:8] for k in json.loads(path.read_bytes())["signed"]["roles"]["root"]
                  ["keys"])


def _init(tiup, path: Path) -> None:  # type: ignore[no-untyped-def]
    r = tiup("mirror", "init", str(path))
    assert r.returncode == 0, r.output


def _commands(text: str) -> list[list[str]]:
    """The commands quoted in backticks in a hint, as argv lists."""
    return [shlex.split(part) for part in text.split("`")[1::2]]


def test_recreated_local_mirror_is_explained_and_the_hint_works(tiup, tmp_path: Path,
                                                                clean_home: Path) -> None:
    mirror = tmp_path / "m"
    _init(tiup, mirror)
    old_root = tmp_path / "old-root.json"
    shutil.copy(mirror / "root.json", old_root)
    assert tiup("mirror", "set", str(mirror)).returncode == 0
    assert tiup("list").returncode == 0
    shutil.rmtree(mirror)
    _init(tiup, mirror)  # same path, new keys

    r = tiup("list")
    assert r.returncode == 1
    line = one_error(r)
    assert "not enough signatures" not in line
    assert f"the root of mirror {mirror} does not chain from the trusted root" in line
    assert f"trusted root (v1, keys {', '.join(_root_keys(old_root))})" in line
    assert f"the mirror's root.json (v1, keys {', '.join(_root_keys(mirror / 'root.json'))})" \
        in line
    assert "re-created" in line
    commands = _commands(hint(r))
    assert commands[0] == ["tiup", "mirror", "set", str(mirror)]
    assert commands[1] == ["tiup", "mirror", "set", str(mirror), "--root", "<root.json>"]

    # the old root, given explicitly, is refused: the mirror does not chain from it
    trusted = (clean_home / "bin" / "root.json").read_bytes()
    r = tiup("mirror", "set", str(mirror), "--root", str(old_root))
    assert r.returncode == 1
    line = one_error(r)
    assert f"mirror {mirror} does not chain from {old_root}" in line
    assert "its root.json is a different root" in line
    assert (clean_home / "bin" / "root.json").read_bytes() == trusted

    # the printed command, as the user would type it
    r = tiup(*commands[0][1:])
    assert r.returncode == 0, r.output
    assert (clean_home / "bin" / "root.json").read_bytes() == (mirror / "root.json").read_bytes()
    r = tiup("list")
    assert r.returncode == 0 and "Available components:" in r.stdout, r.output


def test_recreated_http_mirror_and_set_root_replaces_the_pin(tiup, tmp_path: Path,
                                                             clean_home: Path) -> None:
    mirror = tmp_path / "m"
    _init(tiup, mirror)
    with StaticServer(mirror) as srv:
        assert tiup("mirror", "set", srv.url).returncode == 0
        pin = next((clean_home / "bin").glob("*.root.json"))
        assert pin.name != "root.json"
        shutil.rmtree(mirror)
        _init(tiup, mirror)
        r = tiup("list", env={"TIUP_HTTP_RETRIES": "1"})
        assert r.returncode == 1
        assert f"the root of mirror {srv.url} does not chain" in one_error(r)
        text = hint(r)
        assert f"`tiup mirror set {srv.url} --root <root.json>`" in text
        assert f"`rm {pin}` then `tiup mirror set {srv.url}`" in text
        # plain `mirror set` would keep the old pin: the hint asks for --root
        new_root = tmp_path / "from-admin.json"
        shutil.copy(mirror / "root.json", new_root)
        r = tiup("mirror", "set", srv.url, "--root", str(new_root))
        assert r.returncode == 0, r.output
        assert pin.read_bytes() == new_root.read_bytes()
        r = tiup("list")
        assert r.returncode == 0, r.output
        assert tiup("mirror", "set", srv.url).returncode == 0  # the pin is the new root now
        assert tiup("list").returncode == 0


def test_set_root_accepts_a_root_the_mirror_chains_from(tiup, tmp_path: Path,
                                                        clean_home: Path) -> None:
    sim = RepoSim(tmp_path / "mirror")
    sim.publish("hello", "v1.0.0")
    v1 = tmp_path / "v1.root.json"
    v1.write_bytes(sim.read("1.root.json"))
    sim.rotate_root((3, 4, 5), signers=(0, 1, 3, 4), timestamp_key=13, update_root_json=True)
    r = tiup("mirror", "set", str(sim.path), "--root", str(v1), env=ENV)
    assert r.returncode == 0, r.output
    r = tiup("list", env=ENV)
    assert r.returncode == 0 and "hello" in r.stdout, r.output


def test_set_root_refuses_a_chain_that_breaks(tiup, tmp_path: Path, clean_home: Path) -> None:
    sim = RepoSim(tmp_path / "mirror")
    v1 = tmp_path / "v1.root.json"
    v1.write_bytes(sim.read("1.root.json"))
    sim.rotate_root((3, 4, 5), signers=(3, 4, 5), timestamp_key=13)  # no old signatures
    r = tiup("mirror", "set", str(sim.path), "--root", str(v1), env=ENV)
    assert r.returncode == 1
    line = one_error(r)
    assert f"does not chain from {v1}" in line and "2.root.json" in line
    assert not (clean_home / "tiup.toml").exists()


def test_cache_pruning_leaves_other_processes_temporary_files(tmp_path: Path) -> None:
    """Several tiup runs may share one $TIUP_HOME: pruning the manifest cache must not
    delete another run's ``.tmp-*`` file between its write and its rename."""
    from tiup.client.updater import Updater

    sim = RepoSim(tmp_path / "mirror")
    sim.publish("hello", "v1.0.0")
    home = tmp_path / "home"
    profile = Profile(home, env={"TIUP_HOME": str(home)})
    set_mirror(profile, str(sim.path))
    updater = Updater(profile, str(sim.path), SIM_NOW)
    updater.component("hello")
    cache = updater.state.manifests_dir
    in_flight = cache / ".tmp-0123456789ab-index.json"
    in_flight.write_bytes(b"{}")
    stale = cache / "gone.json"
    stale.write_bytes(b"{}")
    sim.publish("other", "v1.0.0")  # a new index: the next refresh prunes the cache
    Updater(profile, str(sim.path), SIM_NOW).refresh()
    assert in_flight.exists()
    assert not stale.exists()
