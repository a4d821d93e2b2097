"""What ``local_install.sh`` and the self-contained ``tiup`` say when the host lacks
something (issue 12): one line naming what is missing and how to get it.

The script runs with ``env -i`` and a PATH made of symbolic links to the tools it
needs, minus the one a case takes away; fake ``python3`` scripts stand for an old
interpreter or one built without ``ssl``.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "src" / "tiup" / "repository" / "clone" / "local_install.sh"
TOOLS = ("sh", "dirname", "uname", "sed", "tr", "tar", "gzip", "mkdir", "mktemp", "rm", "cut",
         "getconf", "chmod", "mv", "cp", "basename", "ls", "cat")
MARK = "# tiup-python-launcher v1.2.3 linux/{arch} 3.11,3.12,3.13"


def _os_name() -> str:
    values = {}
    for line in Path("/etc/os-release").read_text().splitlines():
        key, _, value = line.partition("=")
        values[key] = value.strip('"')
    return f"{values.get('NAME', '')} {values.get('VERSION_ID', '')}"


def arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}[os.uname().machine]


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    """A directory with what local_install.sh reads: root.json and the bootstrap tarball
    (its tiup: the Python build's mark, then a script that records its arguments)."""
    m = tmp_path / "offline"
    m.mkdir()
    shutil.copy(SCRIPT, m / "local_install.sh")
    (m / "root.json").write_text("{}")
    body = (f"#!/bin/sh\n{MARK.format(arch=arch())}\n"
            'echo "$@" >> "$(dirname "$0")/calls"\n').encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("tiup")
        info.size, info.mode = len(body), 0o755
        tar.addfile(info, io.BytesIO(body))
    (m / f"tiup-linux-{arch()}.tar.gz").write_bytes(buf.getvalue())
    return m


def path_with(tmp_path: Path, *, without: tuple[str, ...] = (),
              extra: dict[str, str] | None = None) -> Path:
    """A bin directory linking the tools local_install.sh uses (not ``without``), plus
    ``extra`` scripts."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in TOOLS:
        found = shutil.which(tool, path="/usr/bin:/bin")
        if tool not in without and found and not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(found)
    for name, text in (extra or {}).items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def run(mirror: Path, bin_dir: Path, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    home.mkdir(exist_ok=True)
    return subprocess.run(["env", "-i", f"HOME={home}", f"PATH={bin_dir}", *(
        f"{k}={v}" for k, v in env.items()), str(bin_dir / "sh"), str(mirror / "local_install.sh")],
        capture_output=True, text=True, timeout=120)


def only_error(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    return lines[0]


def fake_python(version: str, missing: str = "") -> str:
    return ("#!/bin/sh\n"
            f'case "$2" in *version_info*) echo {version}; exit 0 ;; '
            f'"import {missing or "nothing-missing"}") exit 1 ;; esac\nexit 0\n')


@pytest.mark.skipif(not Path("/etc/os-release").exists(), reason="no /etc/os-release")
def test_no_python(mirror: Path, tmp_path: Path) -> None:
    r = run(mirror, path_with(tmp_path), tmp_path / "home")
    name = _os_name()
    pkg, how = ("python3", f"{name}: apt-get install python3") if name.startswith(
        ("Debian GNU/Linux 12", "Debian GNU/Linux 13")) else (None, None)
    line = only_error(r)
    assert line.startswith("Error: python3 >= 3.11 not found: install "), line
    assert line.endswith(", or set TIUP_PYTHON to its path"), line
    if pkg is not None:
        assert line == f"Error: python3 >= 3.11 not found: install {pkg} ({how}), or set " \
                       "TIUP_PYTHON to its path"
    assert not (tmp_path / "home" / ".tiup" / "bin" / "tiup").exists()


def test_too_old_python(mirror: Path, tmp_path: Path) -> None:
    bin_dir = path_with(tmp_path, extra={"python3": fake_python("3.9")})
    line = only_error(run(mirror, bin_dir, tmp_path / "home"))
    assert line.startswith(f"Error: python3 >= 3.11 not found: {bin_dir}/python3 is Python 3.9 "
                           "and this tiup runs on Python 3.11,3.12,3.13: install "), line
    assert not (tmp_path / "home" / ".tiup" / "bin" / "tiup").exists()


def test_python_without_ssl(mirror: Path, tmp_path: Path) -> None:
    bin_dir = path_with(tmp_path, extra={"python3.12": fake_python("3.12", "ssl")})
    line = only_error(run(mirror, bin_dir, tmp_path / "home"))
    assert line == f"Error: {bin_dir}/python3.12 has no ssl module: install your " \
                   "distribution's python3.12 (not a build without ssl), or set TIUP_PYTHON"


def test_missing_tar(mirror: Path, tmp_path: Path) -> None:
    bin_dir = path_with(tmp_path, without=("tar",), extra={"python3": fake_python("3.11")})
    line = only_error(run(mirror, bin_dir, tmp_path / "home"))
    assert line == "Error: tar not found: install it (RHEL/Rocky: dnf install tar; " \
                   "Debian/Ubuntu: apt-get install tar)"


def test_no_tiup_for_this_platform(mirror: Path, tmp_path: Path) -> None:
    (mirror / f"tiup-linux-{arch()}.tar.gz").rename(mirror / "tiup-darwin-arm64.tar.gz")
    line = only_error(run(mirror, path_with(tmp_path), tmp_path / "home"))
    assert line == (f"Error: this mirror has no tiup for linux/{arch()} "
                    f"({mirror}/tiup-linux-{arch()}.tar.gz is missing; it has: darwin/arm64): "
                    f"clone it with `tiup mirror clone <dir> --tiup latest --os linux "
                    f"--arch {arch()}`")


def test_tiup_python_is_used_and_each_step_is_printed(mirror: Path, tmp_path: Path) -> None:
    """With the requirements met (TIUP_PYTHON naming the host's python3): installed,
    root trusted, mirror set, PATH added, each step printed."""
    host = shutil.which("python3", path="/usr/bin:/bin")
    if host is None:
        pytest.skip("no python3 in /usr/bin")
    home = tmp_path / "home"
    r = run(mirror, path_with(tmp_path), home, TIUP_PYTHON=host)
    assert r.returncode == 0, r.stdout + r.stderr
    bin_dir = home / ".tiup" / "bin"
    assert r.stdout.splitlines()[0].startswith(f"Host check: {os.uname().machine}, glibc ")
    assert f"Installed {bin_dir}/tiup from {mirror}/tiup-linux-{arch()}.tar.gz" in r.stdout
    assert f"Trusting this mirror's root: {bin_dir}/root.json" in r.stdout
    assert f"Mirror set to {mirror}" in r.stdout
    assert f"{home}/.profile has been modified to add tiup to PATH" in r.stdout
    assert (bin_dir / "calls").read_text() == f"mirror set {mirror} --silent\n"
    assert (bin_dir / "tiup").stat().st_mode & 0o777 == 0o755
    assert [p.name for p in bin_dir.iterdir() if p.name.startswith(".install")] == []
