"""The guide's client flow ("使用镜像") through the real CLI, over a directory and HTTP."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from reposim import SIM_NOW_TEXT, RepoSim, script
from tiup.client.profile import address_hash

ENV = {"TIUP_TEST_NOW": SIM_NOW_TEXT}
HELLO_MSG = "The component `hello` version  is not installed; downloading from repository."


@pytest.fixture
def sim(tmp_path: Path) -> RepoSim:
    s = RepoSim(tmp_path / "mirror")
    s.publish("hello", "v0.0.1", files={"hello": script("echo hello")})
    return s


def test_guide_flow_mirror_set_list_run(tiup, sim: RepoSim, clean_home: Path) -> None:
    r = tiup("mirror", "set", str(sim.path), env=ENV)
    assert r.returncode == 0, r.output
    assert f"Successfully set mirror to {sim.path}" in r.stdout
    assert (clean_home / "bin" / "root.json").read_bytes() == sim.read("root.json")
    assert 'mirror = "' in (clean_home / "tiup.toml").read_text()

    r = tiup("list", env=ENV)
    assert r.returncode == 0, r.output
    assert "Available components:" in r.stdout
    assert "hello  alice  A test component" in r.stdout

    r = tiup("hello", env=ENV, subprocess=True)
    assert r.returncode == 0, r.output
    assert HELLO_MSG in r.stderr
    assert "Starting component `hello`: " in r.stderr
    assert r.stdout == "hello\n"
    binary = clean_home / "components" / "hello" / "v0.0.1" / "hello"
    assert binary.is_file() and os.access(binary, os.X_OK)
    record = json.loads((clean_home / "installed" / "hello" / "v0.0.1.json").read_text())
    assert record["component"] == "hello" and record["entry"] == "hello"
    assert record["mirror"] == str(sim.path)

    # second run: no download message, same output
    r = tiup("hello", env=ENV, subprocess=True)
    assert r.returncode == 0 and "downloading" not in r.stderr and r.stdout == "hello\n"
    assert tiup("mirror", "show").stdout.strip() == str(sim.path)


def test_tiup_mirrors_is_for_one_run_only(tiup, sim: RepoSim, tmp_path: Path,
                                          clean_home: Path) -> None:
    other = RepoSim(tmp_path / "other")
    other.publish("hello", "v9.0.0", files={"hello": script("echo other")})
    assert tiup("mirror", "set", str(sim.path), env=ENV).returncode == 0
    before = (clean_home / "tiup.toml").read_bytes()

    r = tiup("hello", env={**ENV, "TIUP_MIRRORS": str(other.path)}, subprocess=True)
    assert r.returncode == 0, r.output
    assert HELLO_MSG in r.stderr and r.stdout == "other\n"
    # nothing persisted: same tiup.toml, same trust anchor, a separate per-mirror state
    assert (clean_home / "tiup.toml").read_bytes() == before
    assert (clean_home / "bin" / "root.json").read_bytes() == sim.read("root.json")
    state = clean_home / "mirrors" / address_hash(str(other.path.resolve()))
    assert (state / "root.json").read_bytes() == other.read("root.json")
    assert (state / "manifests" / "hello.json").is_file()
    assert not (clean_home / "manifests" / "hello.json").exists()

    assert tiup("mirror", "show").stdout.strip() == str(sim.path)
    r = tiup("mirror", "show", env={"TIUP_MIRRORS": str(other.path)})
    assert r.stdout.strip() == str(other.path)


def test_tiup_mirrors_in_fresh_home(tiup, sim: RepoSim, clean_home: Path) -> None:
    r = tiup("list", env={**ENV, "TIUP_MIRRORS": str(sim.path)})
    assert r.returncode == 0, r.output
    assert "hello" in r.stdout
    r = tiup("hello", env={**ENV, "TIUP_MIRRORS": str(sim.path)}, subprocess=True)
    assert r.returncode == 0 and r.stdout == "hello\n", r.output
    assert not (clean_home / "tiup.toml").exists()
    assert tiup("mirror", "show").stdout.strip() == "https://tiup-mirrors.pingcap.com/"


def test_component_environment_exit_code_and_args(tiup, sim: RepoSim, clean_home: Path,
                                                  tmp_path: Path) -> None:
    body = ('echo "$TIUP_HOME|$TIUP_COMPONENT_INSTALL_DIR|$TIUP_COMPONENT_DATA_DIR|'
            '$TIUP_TAG|$TIUP_USER_INPUT_VERSION|$TIUP_VERSION|$TIUP_MIRRORS|$TIUP_WORK_DIR|'
            '$TIUP_INSTANCE_DATA_DIR"\nfor a in "$@"; do echo "arg:$a"; done\nexit 7')
    sim.publish("envy", "v1.0.0", entry="bin/envy", files={"bin/envy": script(body)})
    assert tiup("mirror", "set", str(sim.path), env=ENV).returncode == 0
    r = tiup("--tag=t1", "envy:1.0.0", "--", "--help", "-x", "a b", "--tag", "t2",
             env={**ENV, "TIUP_TAG": "inherited"}, cwd=tmp_path, subprocess=True)
    assert r.returncode == 7, r.output
    first, *args = r.stdout.splitlines()
    home, install_dir, data_dir, tag, user_ver, tiup_ver, mirrors, work, inst = first.split("|")
    assert home == str(clean_home)
    assert install_dir == str(clean_home / "components" / "envy" / "v1.0.0" / "bin")
    assert data_dir == str(clean_home / "storage" / "envy")
    assert tag == "t2"  # the later --tag among the component's args wins; computed beats env
    assert user_ver == "1.0.0" and tiup_ver == "1.16.5"
    assert mirrors == str(sim.path) and work == str(tmp_path)
    assert inst == str(clean_home / "data" / "t2")
    assert args == ["arg:--help", "arg:-x", "arg:a b", "arg:--tag", "arg:t2"]
    meta = json.loads((clean_home / "data" / "t2" / "tiup_process_meta").read_text())
    assert meta["component"] == "envy" and all(k.startswith("TIUP_") for k in meta["env"])

    # fast path (already installed, record present): same behaviour
    r = tiup("envy:v1.0.0", "-T", "t3", env=ENV, subprocess=True)
    assert r.returncode == 7 and r.stdout.splitlines()[0].split("|")[3] == "t3"


def test_install_list_binary_uninstall(tiup, sim: RepoSim, clean_home: Path) -> None:
    sim.publish("hello", "v0.0.2", files={"hello": script("echo hello2")})
    sim.publish("hidden", "v1.0.0", hidden=True)
    assert tiup("mirror", "set", str(sim.path), env=ENV).returncode == 0
    r = tiup("install", "hello:v0.0.1", "hello", env=ENV)
    assert r.returncode == 0, r.output
    assert sorted(os.listdir(clean_home / "components" / "hello")) == ["v0.0.1", "v0.0.2"]
    r = tiup("install", "hello:0.0.1", env=ENV)  # v prefix added
    assert r.returncode == 0 and "already installed" in r.stderr
    r = tiup("install", "nosuch", env=ENV)
    assert r.returncode == 1 and "The component `nosuch` not found" in r.stdout

    r = tiup("list", env=ENV)
    assert "hidden" not in r.stdout
    assert "hidden" in tiup("list", "--all", env=ENV).stdout
    r = tiup("list", "hello", env=ENV)
    lines = r.stdout.splitlines()
    assert lines[0] == "Available versions for hello:"
    assert lines[3].startswith("v0.0.1   YES") and lines[4].startswith("v0.0.2   YES")
    data = json.loads(tiup("list", "--installed", "--json", env=ENV).stdout)
    assert [d["name"] for d in data] == ["hello"]

    r = tiup("--binary", "hello", env=ENV)
    assert r.stdout.strip() == str(clean_home / "components" / "hello" / "v0.0.2" / "hello")
    r = tiup("--binary", "hello:v0.0.9", env=ENV)
    assert r.returncode == 1 and "install specified version" in r.stderr

    r = tiup("uninstall", "hello:v0.0.1")
    assert r.returncode == 0 and "Uninstalled component `hello:v0.0.1` successfully!" in r.stdout
    assert not (clean_home / "installed" / "hello" / "v0.0.1.json").exists()
    r = tiup("uninstall", "hello")
    assert "--all" in r.stdout and (clean_home / "components" / "hello").is_dir()
    assert tiup("uninstall", "hello", "--all").returncode == 0
    assert not (clean_home / "components" / "hello").exists()


def test_update_installs_newer_versions(tiup, sim: RepoSim, clean_home: Path) -> None:
    assert tiup("mirror", "set", str(sim.path), env=ENV).returncode == 0
    assert tiup("install", "hello", env=ENV).returncode == 0
    sim.publish("hello", "v0.0.2", files={"hello": script("echo hello2")})
    r = tiup("update", "--all", env=ENV)
    assert r.returncode == 0, r.output
    assert "Updated successfully!" in r.stdout
    assert tiup("hello", env=ENV, subprocess=True).stdout == "hello2\n"
    assert tiup("update").returncode == 0  # no args: help


def test_installed_component_runs_offline_and_when_mirror_is_gone(
        tiup, sim: RepoSim, clean_home: Path) -> None:
    assert tiup("mirror", "set", str(sim.path), env=ENV).returncode == 0
    assert tiup("install", "hello", env=ENV).returncode == 0
    far_future = {"TIUP_TEST_NOW": "2040-01-01T00:00:00Z"}  # every manifest expired
    import shutil

    shutil.rmtree(sim.path)
    r = tiup("hello", env=far_future, subprocess=True)
    assert r.returncode == 0 and r.stdout == "hello\n", r.output
    r = tiup("--offline", "hello", env=far_future, subprocess=True)
    assert r.returncode == 0 and r.stdout == "hello\n"
    # offline, not installed: clear error, nothing downloaded
    r = tiup("--offline", "install", "other", env={**ENV, "TIUP_MIRRORS": "http://127.0.0.1:9"})
    assert r.returncode == 1
    assert "needs network access to http://127.0.0.1:9, but offline mode is on" in r.stderr


def test_offline_installed_without_record_uses_signed_cache(tiup, sim: RepoSim,
                                                            clean_home: Path) -> None:
    """A version installed by Go TiUP (no record) runs from the verified cached manifest."""
    assert tiup("mirror", "set", str(sim.path), env=ENV).returncode == 0
    assert tiup("install", "hello", env=ENV).returncode == 0
    (clean_home / "installed" / "hello" / "v0.0.1.json").unlink()
    r = tiup("--offline", "hello", env={"TIUP_TEST_NOW": "2040-01-01T00:00:00Z"}, subprocess=True)
    assert r.returncode == 0 and r.stdout == "hello\n", r.output


def test_bare_tiup_help_version_and_env(tiup) -> None:
    r = tiup(subprocess=True)  # the fast paths of cli/entry.py
    assert r.returncode == 0 and "Usage:" in r.stdout and "install" in r.stdout
    assert tiup("--version", subprocess=True).stdout.startswith("0.1.0 tiup")
    r = tiup("env", "TIUP_HOME")
    assert r.stdout.strip() == os.environ["TIUP_HOME"]
    r = tiup("env")
    assert r.stdout.splitlines()[0].startswith('TIUP_HOME="')
    assert tiup("mirror", "set").returncode == 0  # help
    assert tiup("--binary").returncode == 2


def test_mirror_set_rejects_a_root_not_signed_by_itself(tiup, sim: RepoSim,
                                                        clean_home: Path) -> None:
    data = json.loads(sim.read("root.json"))
    data["signatures"] = data["signatures"][:1]  # threshold is 2
    bad = sim.path.parent / "bad-root.json"
    bad.write_text(json.dumps(data))
    r = tiup("mirror", "set", str(sim.path), "--root", str(bad), env=ENV)
    assert r.returncode == 1
    assert "Failed to set mirror: root.json from" in r.stderr and "not validly signed" in r.stderr
    assert not (clean_home / "bin" / "root.json").exists()
    assert not (clean_home / "tiup.toml").exists()


def test_status_and_clean(tiup, sim: RepoSim, clean_home: Path) -> None:
    assert tiup("mirror", "set", str(sim.path), env=ENV).returncode == 0
    assert tiup("-T", "keep", "hello", env=ENV, subprocess=True).returncode == 0
    r = tiup("status")
    assert "keep" in r.stdout and "TERM" in r.stdout
    r = tiup("clean", "keep")
    assert r.returncode == 0 and not (clean_home / "data" / "keep").exists()


def test_install_drops_setuid_bits(tiup, tmp_path: Path, clean_home: Path) -> None:
    s = RepoSim(tmp_path / "m")
    from reposim import make_tarball

    s.publish("hello", "v1.0.0", tarball=make_tarball({"hello": script()}, mode=0o6755))
    assert tiup("mirror", "set", str(s.path), env=ENV).returncode == 0
    assert tiup("install", "hello", env=ENV).returncode == 0
    mode = (clean_home / "components" / "hello" / "v1.0.0" / "hello").stat().st_mode
    assert not mode & (stat.S_ISUID | stat.S_ISGID) and mode & stat.S_IXUSR


def _catches(pid: int, signum: int) -> bool:
    """True once process ``pid`` has a handler for ``signum`` (Linux: SigCgt in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


@pytest.mark.skipif(sys.platform != "linux", reason="signals as on Linux")
def test_sigterm_is_forwarded(sim: RepoSim, clean_home: Path, tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    sim.publish("sleeper", "v1.0.0", entry="s", files={
        "s": script("trap 'echo got-term; exit 3' TERM\necho ready\nwhile :; do sleep 0.05; done")})
    env = {**os.environ, **ENV}
    subprocess.run([sys.executable, "-m", "tiup", "mirror", "set", str(sim.path)], env=env,
                   check=True, capture_output=True)
    proc = subprocess.Popen([sys.executable, "-m", "tiup", "sleeper"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"  # the shell's trap is set by now
    # tiup installs its forwarding handler after starting the component: wait until the
    # kernel shows it catches SIGTERM (SigCgt), else the signal would kill tiup itself
    deadline = time.monotonic() + 60
    while not _catches(proc.pid, signal.SIGTERM):
        assert time.monotonic() < deadline, "tiup never installed its SIGTERM handler"
        time.sleep(0.01)  # polling for an event, not waiting for time to pass
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 3, err
    assert "got-term" in out and "Got signal SIGTERM (Component: sleeper" in err
