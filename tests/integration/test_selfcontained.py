"""The self-contained tiup as a mirror's component (issue 12), apart from the air gap:

- publishing ``tiup`` keeps ``tiup-<os>-<arch>.tar.gz`` a copy of the newest stable release;
- the arm64 build (not runnable here) carries the right wheels, checked by their tags;
- ``tiup update --self`` from a pip/venv install says what to do instead;
- tarball extraction on a Python without ``tarfile.data_filter`` (3.11.2, Debian 12's).
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from publishkit import ENV, assert_valid, make_tarball, mirror_owned_by_jdoe
from tiup.errors import InstallError

REPO = Path(__file__).resolve().parents[2]
PLAT = ("--os", "linux", "--arch", "amd64")


@pytest.fixture
def mirror(tmp_path: Path, clean_home: Path) -> Path:
    return mirror_owned_by_jdoe(tmp_path / "m", clean_home)


def test_publishing_tiup_keeps_the_bootstrap_copy_the_newest_stable(
        tiup, mirror: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo = ("mirror", "--repo", str(mirror))
    boot = mirror / "tiup-linux-amd64.tar.gz"
    tarballs = {v: make_tarball(tmp_path / f"{v}.tgz", "tiup", f"#!/bin/sh\necho {v}\n".encode())
                for v in ("v1.0.0", "v0.9.0", "v1.1.0-rc.1", "v1.2.0")}
    # hello is not tiup: no copy
    r = tiup(*repo, "publish", "hello", "v1.0.0", str(tarballs["v1.0.0"]), "tiup", *PLAT,
             env=ENV)
    assert r.returncode == 0, r.stderr
    assert not boot.exists()
    for version, expected in (("v1.0.0", "v1.0.0"), ("v0.9.0", "v1.0.0"),
                              ("v1.1.0-rc.1", "v1.0.0"), ("v1.2.0", "v1.2.0")):
        r = tiup(*repo, "publish", "tiup", version, str(tarballs[version]), "tiup", *PLAT,
                 env=ENV)
        assert r.returncode == 0, r.stderr
        assert boot.read_bytes() == tarballs[expected].read_bytes(), (version, expected)
    assert not (mirror / "tiup-linux-arm64.tar.gz").exists()
    assert_valid(mirror)


def test_update_self_from_a_python_install_says_what_to_do(tiup) -> None:  # type: ignore[no-untyped-def]
    r = tiup("update", "--self")
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert errors and errors[0].startswith("Error: this tiup runs from a Python installation "
                                           "(pip or a virtualenv)"), r.stderr
    assert "Traceback" not in r.stderr


def test_the_arm64_build_carries_aarch64_wheels(tmp_path: Path) -> None:
    proc = subprocess.run([str(REPO / "scripts" / "build-dist"), "--arch", "arm64",
                           "--version", "v7.7.7", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with tarfile.open(tmp_path / "tiup-v7.7.7-linux-arm64.tar.gz") as tar:
        members = tar.getmembers()
        assert [(m.name, m.mode, m.isreg()) for m in members] == [("tiup", 0o755, True)]
        data = tar.extractfile("tiup").read()  # type: ignore[union-attr]
    head = data[:400].decode("utf-8", "replace").splitlines()
    assert head[0] == "#!/bin/sh"
    assert head[1] == "# tiup-python-launcher v7.7.7 linux/arm64 3.11,3.12,3.13"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        build = json.loads(zf.read("tiup-build.json"))
        names = set(zf.namelist())
        main = zf.read("__main__.py").decode()
    assert build["platform"] == "linux/arm64" and build["version"] == "v7.7.7"
    assert 'VERSION = "v7.7.7"' in main and "@BUILD@" not in main
    for python, wheels in build["wheels"].items():
        cp = "cp" + python.replace(".", "")
        assert {f"wheels/{w}" for w in wheels} <= names
        assert wheels[0] == "tiup-7.7.7-py3-none-any.whl"
        dists = {w.split("-")[0].lower() for w in wheels}
        assert {"cryptography", "cffi", "granian", "click", "rich", "urllib3"} <= dists
        for w in wheels:
            pyt, abi, plat = w[:-4].split("-")[-3:]
            if plat == "any":
                assert abi == "none", w
                continue
            assert all(p.startswith("manylinux") and p.endswith("_aarch64")
                       for p in plat.split(".")), w
            assert abi == cp or (abi == "abi3" and int(pyt[3:]) <= int(cp[2:])), w
            glibc = [tuple(map(int, p.split("_")[1:3])) for p in plat.split(".")
                     if p.startswith("manylinux_")]
            assert not glibc or min(glibc) <= (2, 28), w  # runs on RHEL 8's glibc
    # the tiup inside has the overridden version
    with zipfile.ZipFile(io.BytesIO(data)) as zf, \
            zipfile.ZipFile(zf.open("wheels/tiup-7.7.7-py3-none-any.whl")) as own:
        assert b'__version__ = "7.7.7"' in own.read("tiup/__init__.py")


def test_extraction_without_data_filter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    from tiup.client.extract import safe_extract

    monkeypatch.delattr(tarfile, "data_filter")
    path = make_tarball(tmp_path / "t.tgz", "bin/tool", b"#!/bin/sh\n",
                        extra={"doc/readme": b"hi"})
    dest = tmp_path / "dest"
    dest.mkdir()
    assert safe_extract(path, dest) == ["bin/tool", "doc/readme"]
    assert (dest / "bin" / "tool").stat().st_mode & 0o700 == 0o700
    assert (dest / "doc" / "readme").read_bytes() == b"hi"
    # a symlink out, then a file written through it: refused, nothing outside is written
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        link = tarfile.TarInfo("sub")
        link.type, link.linkname = tarfile.SYMTYPE, "."
        tar.addfile(link)
        evil = tarfile.TarInfo("../escape")
        evil.size = 1
        tar.addfile(evil, io.BytesIO(b"x"))
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(buf.getvalue())
    dest2 = tmp_path / "dest2"
    dest2.mkdir()
    with pytest.raises(InstallError):
        safe_extract(bad, dest2)
    assert not (tmp_path / "escape").exists()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The amd64 artifact (wheels for Python 3.11 only: the host's), unpacked: its tiup."""
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([str(REPO / "scripts" / "build-dist"), "--arch", "amd64", "--version",
                           "v7.7.8", "--python", "3.11", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with tarfile.open(out / "tiup-v7.7.8-linux-amd64.tar.gz") as tar:
        tar.extractall(out, filter="data")
    return out / "tiup"


def _host(tiup: Path, home: Path, path: str, *args: str, **env: str
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["env", "-i", f"HOME={home}", f"PATH={path}",
                           *(f"{k}={v}" for k, v in env.items()), str(tiup), *args],
                          capture_output=True, text=True, timeout=300)


def test_the_launcher_without_python_says_what_to_install(built: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sh").symlink_to("/bin/sh")
    r = subprocess.run(["env", "-i", f"HOME={tmp_path}", f"PATH={bin_dir}", "/bin/sh",
                        str(built), "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 127
    assert r.stderr == ("Error: tiup needs python3 >= 3.11 and none was found on PATH: install "
                        "python3.11 (RHEL/Rocky 8 and 9: dnf install python3.11) or set "
                        "TIUP_PYTHON to its path\n")


@pytest.mark.skipif(not Path("/usr/bin/python3.11").exists(), reason="needs /usr/bin/python3.11")
def test_the_launcher_on_a_python_it_has_no_wheels_for(tmp_path: Path) -> None:
    proc = subprocess.run([str(REPO / "scripts" / "build-dist"), "--arch", "amd64", "--version",
                           "v7.7.9", "--python", "3.12", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with tarfile.open(tmp_path / "tiup-v7.7.9-linux-amd64.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    r = _host(tmp_path / "tiup", tmp_path, "/usr/bin:/bin", "--version",
              TIUP_PYTHON="/usr/bin/python3.11")
    assert r.returncode == 1
    version = subprocess.run(["/usr/bin/python3.11", "-c",
                              "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert r.stderr.startswith(
        f"Error: this tiup (v7.7.9, linux/amd64) runs on Python 3.12, but /usr/bin/python3.11 "
        f"is Python {version}: install one of them ("), r.stderr
    assert len(r.stderr.splitlines()) == 1 and not (tmp_path / ".tiup" / "runtime").exists()


@pytest.mark.skipif(not Path("/usr/bin/python3.11").exists(), reason="needs /usr/bin/python3.11")
def test_concurrent_first_runs_both_work(built: Path, tmp_path: Path) -> None:
    """Two first runs unpack at once: both answer, one directory stays, no leftovers."""
    home = tmp_path / "home"
    home.mkdir()
    env = ["env", "-i", f"HOME={home}", "PATH=/usr/bin:/bin", str(built), "--version"]
    procs = [subprocess.Popen(env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all(o[0].startswith("7.7.8 tiup (Python") for o in outs), outs
    runtime = home / ".tiup" / "runtime"
    assert [p.name.endswith("-3.11") for p in runtime.iterdir()] == [True]
    assert (next(runtime.iterdir()) / "_run.py").is_file()  # later runs start from it


@pytest.mark.skipif(not Path("/usr/bin/python3.11").exists(), reason="needs /usr/bin/python3.11")
def test_a_damaged_runtime_is_unpacked_again(built: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    cmd = ["env", "-i", f"HOME={home}", "PATH=/usr/bin:/bin", str(built), "--version"]
    assert subprocess.run(cmd, capture_output=True, timeout=300).returncode == 0
    (runtime,) = (home / ".tiup" / "runtime").iterdir()
    (runtime / "tiup" / "cli" / "entry.py").unlink()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.startswith("7.7.8 tiup (Python"), r.stderr
    assert r.stderr.startswith(f"Warning: {runtime} is damaged (") and \
        r.stderr.endswith("; unpacking it again\n"), r.stderr
    assert (runtime / "tiup" / "cli" / "entry.py").is_file()


def test_publishing_tiup_through_a_server_writes_the_bootstrap_copy(
        tiup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Over tiup-server's publish API too, the newest stable tiup is copied to the file the
    install scripts read, and a client of that server downloads it."""
    from serverkit import PLAT_ARGS, make_setup, start_server

    setup = make_setup(tmp_path / "data")
    srv = start_server(setup.mirror, "--key-dir", str(setup.keys), workdir=tmp_path)
    try:
        tb = make_tarball(tmp_path / "t.tgz", "tiup", b"#!/bin/sh\necho tiup\n")
        r = tiup("mirror", "--repo", srv.url, "publish", "tiup", "v1.0.0", str(tb), "tiup",
                 "-k", str(setup.owner_key), *PLAT_ARGS,
                 env={**ENV, "TIUP_HOME": str(tmp_path / "publisher")})
        assert r.returncode == 0, r.output
        boot = f"tiup-{PLAT_ARGS[1]}-{PLAT_ARGS[3]}.tar.gz"
        resp = srv.pool().request("GET", f"{srv.url}/{boot}")
        assert resp.status == 200 and resp.data == tb.read_bytes()
    finally:
        assert srv.stop() == 0
    assert_valid(setup.mirror)


PYENV = Path("/root/.pyenv/versions")


def _pyenv(prefix: str) -> Path | None:
    """A pyenv interpreter of that version on this machine, if any."""
    found = sorted(PYENV.glob(f"{prefix}.*/bin/python3")) if PYENV.is_dir() else []
    return found[-1] if found else None


@pytest.fixture(scope="module")
def built_all(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The amd64 artifact as released (wheels for 3.11, 3.12 and 3.13), unpacked."""
    out = tmp_path_factory.mktemp("dist-all")
    proc = subprocess.run([str(REPO / "scripts" / "build-dist"), "--arch", "amd64", "--version",
                           "v7.7.10", "--out", str(out)], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with tarfile.open(out / "tiup-v7.7.10-linux-amd64.tar.gz") as tar:
        tar.extractall(out, filter="data")
    return out / "tiup"


@pytest.mark.parametrize("minor", ["3.12", "3.13"])
def test_the_artifact_runs_on_newer_pythons(built_all: Path, tmp_path: Path, minor: str
                                           ) -> None:
    """Its native wheels for each carried version load: cryptography signs a key file."""
    python = _pyenv(minor)
    if python is None:
        pytest.skip(f"no Python {minor} interpreter on this machine (pyenv)")
    r = _host(built_all, tmp_path, "/usr/bin:/bin", "mirror", "genkey", "--name", "k",
              TIUP_PYTHON=str(python), TIUP_HOME=str(tmp_path / "home"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads((tmp_path / "home" / "keys" / "k.json").read_text())["keytype"] == "rsa"
    assert [p.name.rsplit("-", 1)[1] for p in (tmp_path / "home" / "runtime").iterdir()] == \
        [minor]


@pytest.mark.parametrize("minor", ["3.9", "3.6"])
def test_the_artifact_on_an_old_python_says_what_to_install(built_all: Path, tmp_path: Path,
                                                           minor: str) -> None:
    python = _pyenv(minor)
    if python is None:
        pytest.skip(f"no Python {minor} interpreter on this machine (pyenv)")
    r = _host(built_all, tmp_path, "/usr/bin:/bin", "--version", TIUP_PYTHON=str(python))
    assert r.returncode == 1
    assert r.stderr.startswith(
        f"Error: this tiup (v7.7.10, linux/amd64) runs on Python 3.11 or 3.12 or 3.13, but "
        f"{python} is Python {minor}."), r.stderr
    assert "dnf install python3.11" in r.stderr and len(r.stderr.splitlines()) == 1
