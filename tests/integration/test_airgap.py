"""The guide in an isolated network, end to end, with the self-contained tiup (issue 12).

An administrator builds the artifact (``scripts/build-dist``), creates a mirror, publishes
it as the component ``tiup`` and a ``hello`` component, clones the mirror into a
directory and carries it (a tar copy) to a fresh host. There, in a network namespace
with no network (``unshare -n``) and an empty environment (``env -i HOME=<fresh>
PATH=/usr/bin:/bin``: no virtualenv, no project on ``sys.path``, Debian's own
``/usr/bin/python3``), ``sh local_install.sh`` installs tiup from the mirror and the
installed tiup lists, runs ``hello``, verifies and serves the mirror, and updates
itself (``tiup update --self``), rolling a broken release back.

The build uses the wheel cache of ``scripts/build-dist`` (``$TIUP_BUILD_CACHE``,
default ``~/.cache/tiup-build``): warm, a build takes about a second; cold, it downloads
≈ 45 MB of wheels per architecture once.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "scripts" / "build-dist"
HOST_PYTHON = Path("/usr/bin/python3")
VERSION_A, VERSION_B, VERSION_BROKEN = "v0.9.0", "v0.9.1", "v0.9.2"


def _unshare_works() -> str | None:
    """None if ``unshare -n`` runs here, else why not."""
    if shutil.which("unshare") is None:
        return "unshare(1) is not installed"
    try:
        proc = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True,
                              timeout=60)
    except OSError as exc:
        return f"unshare -n cannot run: {exc}"
    if proc.returncode != 0:
        return f"unshare -n fails here (needs root or user namespaces): {proc.stderr.strip()}"
    if not HOST_PYTHON.exists():
        return f"{HOST_PYTHON} is missing: the artifact runs on the host's python3"
    return None


WHY_NOT = _unshare_works()
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")


def admin(home: Path, *args: str, cwd: Path | None = None) -> str:
    """A tiup command of the administrator (the development install), which must pass."""
    env = {**os.environ, "TIUP_HOME": str(home)}
    env.pop("TIUP_MIRRORS", None)
    proc = subprocess.run([sys.executable, "-m", "tiup", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def airgap(home: Path, script: str) -> subprocess.CompletedProcess[str]:
    """``sh -c script`` with no network and an empty environment (HOME and PATH only)."""
    return subprocess.run(["unshare", "-n", "env", "-i", f"HOME={home}", "PATH=/usr/bin:/bin",
                           "sh", "-c", script], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def build(version: str, out: Path, arch: str = "amd64") -> Path:
    proc = subprocess.run([str(BUILD), "--arch", arch, "--version", version, "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = out / f"tiup-{version}-linux-{arch}.tar.gz"
    assert path.is_file()
    return path


def broken_tarball(path: Path) -> Path:
    """A ``tiup`` release whose entry exits 1."""
    data = b"#!/bin/sh\necho 'this tiup is broken' >&2\nexit 1\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("tiup")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return path


@dataclass
class Carried:
    """What the administrator carries into the air gap."""

    admin_home: Path
    clone_tar: bytes  # the cloned mirror, as a tar of the directory "offline"
    dist: Path


@pytest.fixture(scope="module")
def carried(tmp_path_factory: pytest.TempPathFactory) -> Carried:
    base = tmp_path_factory.mktemp("airgap-admin")
    dist = base / "dist"
    tarball_a = build(VERSION_A, dist)
    build(VERSION_B, dist)
    home = base / "admin-home"
    mirror = base / "mirror"
    admin(home, "mirror", "genkey")
    admin(home, "mirror", "init", str(mirror))
    admin(home, "mirror", "set", str(mirror))
    admin(home, "mirror", "grant", "admin")
    pkg = base / "pkg"
    pkg.mkdir()
    (pkg / "hello").write_text("#!/bin/sh\necho \"hello from the air gap: $*\"\n")
    (pkg / "hello").chmod(0o755)
    admin(home, "package", "hello", "--name", "hello", "--release", "v0.0.1", "-C", str(pkg),
          cwd=base)
    admin(home, "mirror", "publish", "hello", "v0.0.1",
          str(base / "package" / "hello-v0.0.1-linux-amd64.tar.gz"), "hello")
    admin(home, "mirror", "publish", "tiup", VERSION_A, str(tarball_a), "tiup", "--os", "linux",
          "--arch", "amd64", "--desc", "tiup (Python build; needs python3 >= 3.11)")
    # the unversioned copy the install scripts read: the newest stable tiup
    assert (mirror / "tiup-linux-amd64.tar.gz").read_bytes() == tarball_a.read_bytes()
    offline = base / "offline"
    # with the global version, as the guide clones (`tiup mirror clone DIR v8.5.1`): tiup has
    # no such version, so its newest stable one is taken
    out = admin(home, "mirror", "clone", str(offline), "v0.0.1", "--os", "linux",
                "--arch", "amd64")
    assert "without verification" not in out
    assert (offline / "tiup-linux-amd64.tar.gz").read_bytes() == tarball_a.read_bytes()
    assert (offline / "local_install.sh").is_file()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(offline, arcname="offline")
    return Carried(home, buf.getvalue(), dist)


def arrive(carried: Carried, where: Path) -> tuple[Path, Path]:
    """Unpack the carried mirror on the fresh host: (its HOME, the mirror directory)."""
    with tarfile.open(fileobj=io.BytesIO(carried.clone_tar)) as tar:
        tar.extractall(where, filter="data")
    home = where / "home"
    home.mkdir()
    return home, where / "offline"


def install(home: Path, offline: Path) -> str:
    r = airgap(home, f"sh {offline}/local_install.sh")
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_the_guide_in_an_air_gap(carried: Carried, tmp_path: Path) -> None:
    home, offline = arrive(carried, tmp_path)
    out = install(home, offline)
    bin_dir = home / ".tiup" / "bin"
    assert f"Installed {bin_dir}/tiup from {offline}/tiup-linux-amd64.tar.gz" in out
    assert f"Mirror set to {offline}" in out
    assert f"{home}/.profile has been modified to add tiup to PATH" in out
    assert "Host check: x86_64, glibc" in out
    assert (bin_dir / "root.json").read_bytes() == (offline / "root.json").read_bytes()
    assert f"export PATH={bin_dir}:$PATH" in (home / ".profile").read_text()

    # a login shell finds tiup on PATH (the profile), and everything works offline
    r = airgap(home, ". ~/.profile && tiup --version && tiup list && tiup hello world && "
               f"tiup mirror verify {offline}")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"{VERSION_A[1:]} tiup (Python; compatible with TiUP 1.16.5)"
    assert any(line.split()[:1] == ["hello"] for line in lines), r.stdout
    assert any(line.startswith("tiup ") and "Python build" in line for line in lines), r.stdout
    assert "hello from the air gap: world" in lines
    assert "0 errors" in r.stdout + r.stderr and "Traceback" not in r.stderr
    # nothing of the development tree was used: tiup ran from its own unpacked wheels
    runtime = list((home / ".tiup" / "runtime").iterdir())
    assert len(runtime) == 1 and (runtime[0] / "tiup" / "cli" / "entry.py").is_file()
    assert (runtime[0] / "_run.py").is_file()  # later runs start from it, not the zip

    # tiup mirror serve answers on 127.0.0.1 inside the namespace
    port = 8989  # the namespace has its own, empty, port space
    server = subprocess.Popen(
        ["unshare", "-n", "env", "-i", f"HOME={home}", "PATH=/usr/bin:/bin", "sh", "-c",
         f"ip link set lo up && exec {bin_dir}/tiup mirror serve {offline} --addr "
         f"127.0.0.1:{port} --read-only"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    try:
        assert server.stdout is not None
        first = server.stdout.readline()  # printed before it binds: wait for an answer
        assert f"Serving {offline} on http://127.0.0.1:{port}" in first, first
        probe = ("import sys, time, urllib.request\n"
                 "deadline = time.monotonic() + 120  # a bound for a busy machine\n"
                 "while True:\n"
                 "    try:\n"
                 f"        body = urllib.request.urlopen('http://127.0.0.1:{port}/root.json',"
                 " timeout=30).read(); break\n"
                 "    except OSError:\n"
                 "        if time.monotonic() > deadline: raise\n"
                 "        time.sleep(0.05)\n"
                 "sys.stdout.buffer.write(body)\n")
        inside = ["nsenter", "-t", str(server.pid), "-n", "env", "-i", f"HOME={home}",
                  "PATH=/usr/bin:/bin"]
        got = subprocess.run([*inside, str(HOST_PYTHON), "-c", probe], capture_output=True,
                             timeout=300)
        assert got.returncode == 0, got.stderr
        assert got.stdout == (offline / "root.json").read_bytes()
        # a client of the served mirror (the same root): lists over HTTP
        r = subprocess.run([*inside, f"TIUP_MIRRORS=http://127.0.0.1:{port}",
                            f"{bin_dir}/tiup", "list"], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0 and "hello" in r.stdout, r.stdout + r.stderr
    finally:
        server.terminate()
        server.wait(60)


def test_update_self_and_rollback_in_the_air_gap(carried: Carried, tmp_path: Path) -> None:
    home, offline = arrive(carried, tmp_path)
    install(home, offline)
    tiup = home / ".tiup" / "bin" / "tiup"
    before = tiup.read_bytes()
    tarball_b = carried.dist / f"tiup-{VERSION_B}-linux-amd64.tar.gz"
    # the administrator publishes B into the carried mirror (its owner key, the clone's
    # role keys in offline/keys)
    _publish(carried, offline, VERSION_B, tarball_b)
    r = airgap(home, f"{tiup} update --self && {tiup} --version")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"Updated successfully! {tiup} was v{VERSION_A[1:]}, is now {VERSION_B}" in r.stdout
    assert r.stdout.splitlines()[-1].startswith(f"{VERSION_B[1:]} tiup (Python")
    with tarfile.open(tarball_b) as tar:
        member = tar.extractfile("tiup")
        assert member is not None
        assert tiup.read_bytes() == member.read()
    assert tiup.stat().st_mode & 0o777 == 0o755
    assert not (tiup.parent / ".tiup.old").exists()
    assert before != tiup.read_bytes()
    # unpacked: A's (which ran the update) and B's (which answered --version), no other
    runtime = home / ".tiup" / "runtime"
    assert len([p for p in runtime.iterdir() if not p.name.startswith(".")]) == 2
    # the same again: nothing to do
    r = airgap(home, f"{tiup} update --self")
    assert r.returncode == 0 and f"already the newest version in the mirror ({VERSION_B})" \
        in r.stdout, r.stdout + r.stderr

    # a broken release (its entry exits 1) is installed, fails its check, and is rolled back
    good = tiup.read_bytes()
    _publish(carried, offline, VERSION_BROKEN, broken_tarball(tmp_path / "broken.tar.gz"))
    r = airgap(home, f"{tiup} update --self")
    assert r.returncode == 1, r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: the new tiup {VERSION_BROKEN} did not answer `tiup --version` "
                      "(exit status 1: this tiup is broken); the previous tiup was put back"], \
        r.stderr
    assert "Traceback" not in r.stderr
    assert tiup.read_bytes() == good
    assert not (tiup.parent / ".tiup.old").exists()
    r = airgap(home, f"{tiup} --version && {tiup} hello again")
    assert r.returncode == 0 and r.stdout.startswith(f"{VERSION_B[1:]} tiup"), r.stderr
    assert "hello from the air gap: again" in r.stdout


def _publish(carried: Carried, offline: Path, version: str, tarball: Path) -> None:
    """Publish a ``tiup`` release into the carried mirror, as its administrator."""
    env = {**os.environ, "TIUP_HOME": str(carried.admin_home), "TIUP_MIRRORS": str(offline)}
    proc = subprocess.run([sys.executable, "-m", "tiup", "mirror", "publish", "tiup", version,
                           str(tarball), "tiup", "--os", "linux", "--arch", "amd64"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    boot = (offline / "tiup-linux-amd64.tar.gz").read_bytes()
    assert hashlib.sha256(boot).digest() == hashlib.sha256(tarball.read_bytes()).digest()
