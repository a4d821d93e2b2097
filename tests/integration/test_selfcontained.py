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

from publishkit import ENV, NOW, assert_valid, make_tarball
from tiup.errors import InstallError
from tiup.keys import generate, save_private_key
from tiup.repository.admin import grant
from tiup.repository.init import init_mirror
from tiup.repository.keyring import load_keyring
from tiup.repository.store import Store

REPO = Path(__file__).resolve().parents[2]
PLAT = ("--os", "linux", "--arch", "amd64")


@pytest.fixture
def mirror(tmp_path: Path, clean_home: Path) -> Path:
    key = generate()
    save_private_key(clean_home / "keys" / "private.json", key)
    m = tmp_path / "m"
    init_mirror(m, NOW)
    with Store(m, now=NOW, keyring=load_keyring([m / "keys"])) as store:
        grant(store, "jdoe", "J. Doe", [key.keyinfo()])
        store.commit()
    return m


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
