# The __main__.py of the self-contained tiup build (scripts/build-dist; docs/adr/0009).
#
# The `tiup` file is a /bin/sh prologue followed by a zip archive: the prologue picks a
# python3 and runs this file from the archive. The archive holds the wheels of tiup and
# its dependencies for each supported Python version. On the first run for a Python
# version they are unpacked once into $TIUP_HOME/runtime/<build>-<tag>/ (a temporary
# directory renamed into place: a run that is interrupted leaves nothing half-made);
# later runs only check that directory exists and import tiup from it.
#
# Kept to the syntax of old Python 3 releases: on a too-old python3 it must print the
# one-line explanation below, not a SyntaxError.
import os
import sys

BUILD = "@BUILD@"
VERSION = "@VERSION@"
PLATFORM = "@PLATFORM@"
PYTHONS = "@PYTHONS@".split(",")  # e.g. 3.11,3.12,3.13


#: The start script of the unpacked directory: the shell prologue runs it directly when
#: it exists (no zip to open), with the path of the tiup file first.
RUN = """import os, sys
launcher = os.path.abspath(sys.argv.pop(1))
try:
    import tiup
    from tiup.cli.entry import main
except ImportError as exc:  # damaged: unpack again from the tiup file
    import shutil
    here = os.path.dirname(os.path.abspath(__file__))
    sys.stderr.write("Warning: %s is damaged (%s); unpacking it again\\n" % (here, exc))
    shutil.rmtree(here, ignore_errors=True)
    os.execv(sys.executable, [sys.executable, "-S", "-E", launcher] + sys.argv[1:])
tiup.LAUNCHER = launcher
sys.exit(main())
"""


def _fail(message):
    sys.stderr.write("Error: " + message + "\n")
    sys.exit(1)


def _runtime_dir(tag):
    home = os.environ.get("TIUP_HOME") or "~/.tiup"
    return os.path.join(os.path.expanduser(home), "runtime", BUILD + "-" + tag)


def _unpack(archive, target, tag):
    import json
    import shutil
    import tempfile
    import zipfile

    parent = os.path.dirname(target)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        _fail("cannot create %s: %s (set TIUP_HOME to a writable directory)"
              % (parent, exc.strerror or exc))
    tmp = tempfile.mkdtemp(prefix=".unpack-", dir=parent)
    try:
        with zipfile.ZipFile(archive) as outer:
            build = json.loads(outer.read("tiup-build.json").decode("utf-8"))
            for name in build["wheels"][tag]:
                with outer.open("wheels/" + name) as fh, zipfile.ZipFile(fh) as wheel:
                    _extract_wheel(wheel, tmp, name)
        with open(os.path.join(tmp, "_run.py"), "w") as fh:
            fh.write(RUN)
        try:
            os.rename(tmp, target)
        except OSError:
            if not os.path.isdir(target):  # else another tiup unpacked it first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _extract_wheel(wheel, dest, wheel_name):
    """Unpack a wheel as an installer would: ``<dist>.data/{purelib,platlib}`` at the top,
    other ``.data`` parts (scripts, headers) dropped."""
    root = os.path.realpath(dest)
    for info in wheel.infolist():
        name = info.filename
        parts = name.split("/")
        if parts[0].endswith(".data"):
            if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                continue
            parts = parts[2:]
        if not parts or parts[-1] == "" or name.startswith("/") or ".." in parts:
            if name.endswith("/") or not parts or parts[-1] == "":
                continue
            _fail("refusing to unpack %s from %s" % (name, wheel_name))
        path = os.path.join(root, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with wheel.open(info) as src, open(path, "wb") as out:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)


def main():
    tag = "%d.%d" % sys.version_info[:2]
    if sys.version_info < (3, 11) or tag not in PYTHONS:
        _fail("this tiup (%s, %s) runs on Python %s, but %s is Python %s: install one of "
              "them (RHEL/Rocky 8 and 9: dnf install python3.11; Ubuntu 22.04: apt-get install "
              "python3.11; Ubuntu 20.04: python3.11 from the deadsnakes PPA) or set "
              "TIUP_PYTHON to its path"
              % (VERSION, PLATFORM, " or ".join(PYTHONS), sys.executable,
                 sys.version.split()[0]))
    archive = os.path.abspath(sys.argv[0])
    target = _runtime_dir(tag)
    if not os.path.isdir(target):
        _unpack(archive, target, tag)
    sys.path[0:1] = [target]  # the archive itself holds nothing tiup imports
    import tiup

    tiup.LAUNCHER = archive
    from tiup.cli.entry import main as tiup_main

    sys.exit(tiup_main())


main()
