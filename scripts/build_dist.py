"""Build the self-contained tiup: ``dist/tiup-vX.Y.Z-linux-<arch>.tar.gz`` (docs/adr/0009).

Each tarball holds one file, ``tiup``: a ``/bin/sh`` prologue that picks a python3
(``$TIUP_PYTHON``, python3.13, python3.12, python3.11, python3) followed by a zip
archive holding ``__main__.py`` (``scripts/dist/bootstrap.py``), the wheel of tiup
built from ``src/`` and the wheels of its dependencies — the versions installed in the
environment running this script — for linux/<arch> and each supported Python
version (manylinux wheels fetched with ``pip download --platform``; glibc ≥ 2.28).

Wheels are cached under ``$TIUP_BUILD_CACHE`` (default ``~/.cache/tiup-build``), one
directory per architecture, Python version and set of pinned versions: a warm cache
builds without the network.

Run: ``scripts/build-dist [--arch amd64|arm64|all] [--version vX.Y.Z] [--out dist]``
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src" / "tiup"
BOOTSTRAP = Path(__file__).resolve().parent / "dist" / "bootstrap.py"

ARCHES = {"amd64": "x86_64", "arm64": "aarch64"}
PYTHONS = ("3.11", "3.12", "3.13")
#: the manylinux tags accepted, newest first: glibc ≥ 2.28 (RHEL 8, Debian 11, Ubuntu 20.04)
MANYLINUX = ("manylinux_2_28", "manylinux_2_27", "manylinux_2_26", "manylinux_2_24",
             "manylinux_2_17", "manylinux2014")
#: the fixed time of every file in the artifact: the same inputs build the same bytes
EPOCH = (2020, 1, 1, 0, 0, 0)
LAUNCHER_MARK = "# tiup-python-launcher"
#: the component's description in the mirror: what a Go client's `update --self` installs
DESCRIPTION = "tiup (Python build; needs python3 >= 3.11)"

PROLOGUE = """#!/bin/sh
{mark} {version} linux/{arch} {pylist}
# tiup (Python implementation, https://github.com/pingcap/tiup compatible): a shell
# prologue and a zip archive run by python3 >= 3.11 (Python {pythons}). Once unpacked
# (first run), it starts from $TIUP_HOME/runtime/{build}-<python version>/.
rt=${{TIUP_HOME:-$HOME/.tiup}}/runtime/{build}
for py in ${{TIUP_PYTHON:-}} python3.13 python3.12 python3.11 python3; do
    if command -v "$py" >/dev/null 2>&1; then
        b=${{py##*/}}
        case "$b" in python3.1[1-9])
            run="$rt-${{b#python}}/_run.py"
            [ -f "$run" ] && exec "$py" -S -E "$run" "$0" "$@" ;;
        esac
        exec "$py" -S -E "$0" "$@"
    fi
done
echo "Error: tiup needs python3 >= 3.11 and none was found on PATH: install python3.11 \\
(RHEL/Rocky 8 and 9: dnf install python3.11) or set TIUP_PYTHON to its path" >&2
exit 127
"""


def default_version() -> str:
    text = (SRC / "__init__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    assert match, "src/tiup/__init__.py has no __version__"
    return "v" + match.group(1)


def pins() -> list[str]:
    """``name==version`` of tiup's dependencies as installed here, transitively."""
    seen: dict[str, str] = {}
    todo = ["tiup"]
    while todo:
        name = todo.pop()
        dist = metadata.distribution(name)
        for req in dist.requires or []:
            if "extra ==" in req:
                continue
            dep = re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0]
            key = dep.lower().replace("_", "-")
            if key in seen:
                continue
            try:
                seen[key] = metadata.version(dep)
            except metadata.PackageNotFoundError:
                continue  # a dependency for another Python or platform
            todo.append(dep)
    return sorted(f"{k}=={v}" for k, v in seen.items())


def top_level() -> list[str]:
    dist = metadata.distribution("tiup")
    return [re.split(r"[ ;<>=!~\[(]", r, maxsplit=1)[0] for r in dist.requires or []
            if "extra ==" not in r]


def cache_root() -> Path:
    return Path(os.environ.get("TIUP_BUILD_CACHE") or "~/.cache/tiup-build").expanduser()


def fetch_wheels(arch: str, python: str, pinned: list[str]) -> list[Path]:
    """The wheels for ``arch`` and ``python``, from the cache or ``pip download``."""
    key = hashlib.sha256("\n".join([*pinned, *MANYLINUX]).encode()).hexdigest()[:12]
    where = cache_root() / f"{arch}-cp{python.replace('.', '')}-{key}"
    done = where / ".complete"
    if not done.exists():
        where.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
            fh.write("\n".join(pinned) + "\n")
            constraints = fh.name
        try:
            versions = dict(p.split("==") for p in pinned)
            wanted = [f"{n}=={versions[n.lower().replace('_', '-')]}" for n in top_level()]
            cmd = [sys.executable, "-m", "pip", "download", "--quiet",
                   "--disable-pip-version-check",
                   "-d", str(where), "--only-binary=:all:", "--implementation", "cp",
                   "--python-version", python, "-c", constraints]
            for tag in MANYLINUX:
                cmd += ["--platform", f"{tag}_{ARCHES[arch]}"]
            subprocess.run(cmd + wanted, check=True)
        finally:
            os.unlink(constraints)
        check_tags(sorted(where.glob("*.whl")), arch, python)
        done.write_text(" ".join(pinned))
    return sorted(where.glob("*.whl"))


def check_tags(wheels: list[Path], arch: str, python: str) -> None:
    """Every wheel is pure, or native for linux/``arch`` and CPython ``python``."""
    cp = "cp" + python.replace(".", "")
    for whl in wheels:
        _name, _ver, *rest = whl.name[:-4].split("-")
        pyt, abi, plat = rest[-3:]
        if plat == "any" and abi == "none":
            continue
        plats = plat.split(".")
        ok_plat = all(p.endswith("_" + ARCHES[arch]) and p.startswith("manylinux")
                      for p in plats)
        ok_abi = abi == cp or (abi == "abi3" and int(pyt[3:] or 0) <= int(cp[3:]))
        if not (ok_plat and ok_abi):
            raise SystemExit(f"build-dist: {whl.name} is not a wheel for {cp} linux/{arch}")


def tiup_wheel(version: str) -> tuple[str, bytes]:
    """tiup itself from ``src/``, as a wheel (``__version__`` set to ``version``)."""
    plain = version.removeprefix("v")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(SRC.rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            rel = "tiup/" + path.relative_to(SRC).as_posix()
            data = path.read_bytes()
            if rel == "tiup/__init__.py":
                data = re.sub(rb'^__version__ = "[^"]+"', f'__version__ = "{plain}"'.encode(),
                              data, count=1, flags=re.M)
            zf.writestr(zipfile.ZipInfo(rel, EPOCH), data)
    return f"tiup-{plain}-py3-none-any.whl", buf.getvalue()


def build_launcher(arch: str, version: str, wheels: dict[str, list[Path]]) -> bytes:
    """The ``tiup`` file: the shell prologue and the zip archive."""
    own_name, own = tiup_wheel(version)
    files: dict[str, bytes] = {own_name: own}
    by_python: dict[str, list[str]] = {}
    for python, paths in wheels.items():
        by_python[python] = [own_name] + [p.name for p in paths]
        for p in paths:
            files.setdefault(p.name, p.read_bytes())
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    build = digest.hexdigest()[:16]
    main = (BOOTSTRAP.read_text().replace("@BUILD@", build).replace("@VERSION@", version)
            .replace("@PLATFORM@", f"linux/{arch}").replace("@PYTHONS@", ",".join(wheels)))
    meta = {"version": version, "platform": f"linux/{arch}", "build": build,
            "pythons": list(wheels), "wheels": by_python}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("__main__.py", EPOCH), main.encode(),
                    compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr(zipfile.ZipInfo("tiup-build.json", EPOCH),
                    json.dumps(meta, indent=1, sort_keys=True).encode())
        for name in sorted(files):  # wheels are compressed already: stored as they are
            zf.writestr(zipfile.ZipInfo("wheels/" + name, EPOCH), files[name])
    prologue = PROLOGUE.format(mark=LAUNCHER_MARK, version=version, arch=arch,
                               pythons=", ".join(wheels), pylist=",".join(wheels),
                               build=build)
    return prologue.encode() + buf.getvalue()


def build(arch: str, version: str, out: Path, pythons: tuple[str, ...] = PYTHONS) -> Path:
    pinned = pins()
    wheels = {py: fetch_wheels(arch, py, pinned) for py in pythons}
    launcher = build_launcher(arch, version, wheels)
    out.mkdir(parents=True, exist_ok=True)
    dest = out / f"tiup-{version}-linux-{arch}.tar.gz"
    tmp = dest.with_name(dest.name + ".tmp")
    info = tarfile.TarInfo("tiup")
    info.size = len(launcher)
    info.mode = 0o755
    info.mtime = 1577836800
    info.uname = info.gname = "root"
    with open(tmp, "wb") as raw:
        import gzip

        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            tar.addfile(info, io.BytesIO(launcher))
    os.replace(tmp, dest)
    return dest


def main() -> int:
    ap = argparse.ArgumentParser(prog="scripts/build-dist", description=__doc__.split("\n")[0])
    ap.add_argument("--arch", choices=[*ARCHES, "all"], default="all")
    ap.add_argument("--version", default=None,
                    help="vX.Y.Z (default: v + tiup.__version__ of src/)")
    ap.add_argument("--out", default=str(REPO / "dist"))
    ap.add_argument("--python", default=",".join(PYTHONS),
                    help="Python versions to carry wheels for (default %(default)s)")
    args = ap.parse_args()
    version = args.version or default_version()
    if not re.fullmatch(r"v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", version):
        ap.error(f"--version {version!r} is not vX.Y.Z")
    arches = list(ARCHES) if args.arch == "all" else [args.arch]
    pythons = tuple(p.strip() for p in args.python.split(",") if p.strip())
    for arch in arches:
        start = time.monotonic()
        path = build(arch, version, Path(args.out), pythons)
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB, "
              f"{time.monotonic() - start:.1f} s)")
        print(f"  publish: tiup mirror publish tiup {version} {path} tiup --os linux "
              f'--arch {arch} --desc "{DESCRIPTION}"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
