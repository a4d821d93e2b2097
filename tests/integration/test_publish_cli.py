"""publish / modify / renew / transfer-owner / rotate through the real CLI, with error cases."""

from __future__ import annotations

import fcntl
import json
import os
import resource
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from publishkit import ENV, NOW, assert_valid, audit, make_tarball, mirror_owned_by_jdoe
from tiup.keys import generate, save_private_key
from tiup.manifest.timefmt import parse_time

PLAT = ("--os", "linux", "--arch", "amd64")


@pytest.fixture
def mirror(tmp_path: Path, clean_home: Path) -> Path:
    """A mirror with owner jdoe holding $TIUP_HOME/keys/private.json."""
    return mirror_owned_by_jdoe(tmp_path / "m", clean_home)


def manifest(m: Path, comp: str = "hello") -> dict:  # type: ignore[type-arg]
    snap = json.loads((m / "snapshot.json").read_text())["signed"]
    version = snap["meta"][f"/{comp}.json"]["version"]
    return json.loads((m / f"{version}.{comp}.json").read_text())["signed"]  # type: ignore[no-any-return]


def test_publish_then_republish_rules(tiup, mirror: Path, tmp_path: Path) -> None:
    repo = ("mirror", "--repo", str(mirror))
    tb = make_tarball(tmp_path / "any-name.tgz")
    r = tiup(*repo, "publish", "hello", "v0.0.1", str(tb), "hello", *PLAT, "--desc", "hi",
             "--hide", env=ENV)
    assert r.returncode == 0, r.stderr
    assert (mirror / "hello-v0.0.1-linux-amd64.tar.gz").read_bytes() == tb.read_bytes()
    index = json.loads((mirror / "3.index.json").read_text())["signed"]
    assert index["components"]["hello"] == {"hidden": True, "owner": "jdoe",
                                            "standalone": False, "url": "/hello.json",
                                            "yanked": False}
    ts_before = (mirror / "timestamp.json").read_bytes()
    r = tiup(*repo, "publish", "hello", "v0.0.1", str(tb), "hello", *PLAT, env=ENV)
    assert r.returncode == 0 and "nothing to do" in r.stdout
    assert (mirror / "timestamp.json").read_bytes() == ts_before
    other = make_tarball(tmp_path / "other.tar.gz", body=b"#!/bin/sh\necho other\n")
    r = tiup(*repo, "publish", "hello", "v0.0.1", str(other), "hello", *PLAT, env=ENV)
    assert r.returncode == 1 and "--overwrite" in r.stderr
    assert (mirror / "timestamp.json").read_bytes() == ts_before
    r = tiup(*repo, "publish", "hello", "v0.0.1", str(other), "hello", *PLAT, "--overwrite",
             env=ENV)
    assert r.returncode == 0, r.stderr
    assert manifest(mirror)["version"] == 2
    assert (mirror / "hello-v0.0.1-linux-amd64.tar.gz").read_bytes() == other.read_bytes()
    r = tiup(*repo, "publish", "hello", "v0.0.2", str(other), "hello", *PLAT, "--hide", env=ENV)
    assert r.returncode == 0 and "will be omitted" in r.stderr
    assert sorted(manifest(mirror)["platforms"]["linux/amd64"]) == ["v0.0.1", "v0.0.2"]
    assert_valid(mirror)


@pytest.mark.parametrize(("args", "message"), [
    (("../x", "v1.0.0"), "invalid component name"),
    (("a/b", "v1.0.0"), "invalid component name"),
    (("", "v1.0.0"), "invalid component name"),
    (("hello", "1.0.0"), "not a semantic version"),
    (("hello", "../v1"), "invalid version"),
])
def test_publish_rejects_unsafe_names(tiup, mirror: Path, tmp_path: Path, args: tuple[str, str],
                                      message: str) -> None:
    tb = make_tarball(tmp_path / "t.tar.gz")
    r = tiup("mirror", "--repo", str(mirror), "publish", *args, str(tb), "hello", *PLAT, env=ENV)
    assert r.returncode == 1
    assert message in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in mirror.iterdir() if p.name.endswith(".tar.gz")) == []


def test_publish_force_and_platform(tiup, mirror: Path, tmp_path: Path) -> None:
    repo = ("mirror", "--repo", str(mirror))
    tb = make_tarball(tmp_path / "t.tar.gz")
    r = tiup(*repo, "publish", "hello", "1.0", str(tb), "hello", *PLAT, "--force", env=ENV)
    assert r.returncode == 0, r.stderr
    r = tiup(*repo, "publish", "hello", "v1.0.0", str(tb), "hello", "--os", "windows",
             "--arch", "amd64", env=ENV)
    assert r.returncode == 1 and "platform windows/amd64 not supported" in r.stderr
    r = tiup(*repo, "publish", "hello", "v1.0.0", str(tb), "hello", "--os", "any",
             "--arch", "any", env=ENV)
    assert r.returncode == 0
    assert (mirror / "hello-v1.0.0-any-any.tar.gz").is_file()
    assert_valid(mirror)


def test_publish_checks_the_tarball(tiup, mirror: Path, tmp_path: Path) -> None:
    repo = ("mirror", "--repo", str(mirror), "publish", "hello", "v0.0.1")
    plain = tmp_path / "plain.tar.gz"
    plain.write_bytes(b"not gzip at all")
    r = tiup(*repo, str(plain), "hello", *PLAT, env=ENV)
    assert r.returncode == 1 and "not a gzip-compressed tar" in r.stderr
    r = tiup(*repo, str(tmp_path / "missing.tar.gz"), "hello", *PLAT, env=ENV)
    assert r.returncode == 1 and "does not exist" in r.stderr
    tb = make_tarball(tmp_path / "t.tar.gz", entry="bin/other")
    r = tiup(*repo, str(tb), "hello", *PLAT, env=ENV)
    assert r.returncode == 1 and "entry hello not found" in r.stderr
    # in-tree symlink to the entry is fine, one escaping the tree is not
    for target, ok in (("bin/other", True), ("../../etc/passwd", False)):
        link = tmp_path / f"link-{ok}.tar.gz"
        with tarfile.open(link, "w:gz") as tar, tarfile.open(tb) as src:
            for member in src.getmembers():
                tar.addfile(member, src.extractfile(member))
            info = tarfile.TarInfo("hello")
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        r = tiup(*repo, str(link), "hello", *PLAT, env=ENV)
        assert (r.returncode == 0) is ok, r.stderr
    assert_valid(mirror)


def test_owner_rules(tiup, mirror: Path, tmp_path: Path, clean_home: Path) -> None:
    repo = ("mirror", "--repo", str(mirror))
    tb = make_tarball(tmp_path / "t.tar.gz")
    assert tiup(*repo, "publish", "hello", "v0.0.1", str(tb), "hello", *PLAT,
                env=ENV).returncode == 0
    # a key nobody owns cannot create a component
    stranger = tmp_path / "stranger.json"
    save_private_key(stranger, generate())
    r = tiup(*repo, "publish", "new", "v0.0.1", str(tb), "hello", *PLAT, "-k", str(stranger),
             env=ENV)
    assert r.returncode == 1 and "no owner of mirror" in r.stderr
    # bob, another owner, cannot publish jdoe's component
    bob_key = tmp_path / "bob.json"
    save_private_key(bob_key, generate())
    assert tiup(*repo, "grant", "bob", "-k", str(bob_key), env=ENV).returncode == 0
    os.unlink(clean_home / "keys" / "private.json")
    r = tiup(*repo, "publish", "hello", "v0.0.2", str(tb), "hello", *PLAT, "-k", str(bob_key),
             env=ENV)
    assert r.returncode == 1
    assert "owner jdoe needs 1 signature(s)" in r.stderr and "searched" in r.stderr
    assert_valid(mirror)


def test_owner_threshold_two(tiup, mirror: Path, tmp_path: Path) -> None:
    repo = ("mirror", "--repo", str(mirror))
    k1, k2 = tmp_path / "k1.json", tmp_path / "k2.json"
    save_private_key(k1, generate())
    save_private_key(k2, generate())
    r = tiup(*repo, "grant", "team", "-k", str(k1), "-k", str(k2), "--threshold", "2", env=ENV)
    assert r.returncode == 0, r.stderr
    tb = make_tarball(tmp_path / "t.tar.gz")
    r = tiup(*repo, "publish", "tool", "v1.0.0", str(tb), "hello", *PLAT, "-k", str(k1),
             env=ENV)
    assert r.returncode == 1 and "owner team needs 2 signature(s)" in r.stderr
    r = tiup(*repo, "publish", "tool", "v1.0.0", str(tb), "hello", *PLAT, "-k", str(k1),
             "-k", str(k2), env=ENV)
    assert r.returncode == 0, r.stderr
    assert len(json.loads((mirror / "1.tool.json").read_text())["signatures"]) == 2
    assert_valid(mirror)


def test_nightly_pruned_per_platform(tiup, mirror: Path, tmp_path: Path) -> None:
    repo = ("mirror", "--repo", str(mirror), "publish", "hello")
    tb = make_tarball(tmp_path / "t.tar.gz")
    for ver, os_name, arch in (("v1.1.0-nightly-1", "linux", "amd64"),
                               ("v1.1.0-nightly-1", "darwin", "arm64"),
                               ("v1.0.0", "linux", "amd64"),
                               ("v1.1.0-nightly-2", "linux", "amd64")):
        r = tiup(*repo, ver, str(tb), "hello", "--os", os_name, "--arch", arch, env=ENV)
        assert r.returncode == 0, r.stderr
    m = manifest(mirror)
    assert m["nightly"] == "v1.1.0-nightly-2"
    assert sorted(m["platforms"]["linux/amd64"]) == ["v1.0.0", "v1.1.0-nightly-2"]
    assert sorted(m["platforms"]["darwin/arm64"]) == ["v1.1.0-nightly-1"]
    assert_valid(mirror)


def test_modify(tiup, mirror: Path, tmp_path: Path) -> None:
    repo = ("mirror", "--repo", str(mirror))
    tb = make_tarball(tmp_path / "t.tar.gz")
    for ver in ("v0.0.1", "v0.1.0-nightly"):
        assert tiup(*repo, "publish", "hello", ver, str(tb), "hello", *PLAT,
                    env=ENV).returncode == 0
    r = tiup(*repo, "modify", "hello:v0.0.1", "--yank", env=ENV)
    assert r.returncode == 0, r.stderr
    assert manifest(mirror)["platforms"]["linux/amd64"]["v0.0.1"]["yanked"] is True
    r = tiup(*repo, "modify", "hello:v0.1.0-nightly", "--yank", env=ENV)
    assert r.returncode == 1 and "nightly version can't be yanked" in r.stderr
    r = tiup(*repo, "modify", "hello:v9.9.9", "--yank", env=ENV)
    assert r.returncode == 1 and "version v9.9.9 not found in hello" in r.stderr
    r = tiup(*repo, "modify", "hello:v0.0.1", "--hide", env=ENV)
    assert r.returncode == 2
    r = tiup(*repo, "modify", "nope", "--hide", env=ENV)
    assert r.returncode == 1 and "unknown component nope" in r.stderr
    r = tiup(*repo, "modify", "hello", "--hide", "--standalone", "--desc", "Say hello", env=ENV)
    assert r.returncode == 0, r.stderr
    snap = json.loads((mirror / "snapshot.json").read_text())["signed"]
    index = json.loads((mirror / f"{snap['meta']['/index.json']['version']}.index.json")
                       .read_text())["signed"]
    assert index["components"]["hello"]["hidden"] is True
    assert index["components"]["hello"]["standalone"] is True
    assert manifest(mirror)["description"] == "Say hello"
    r = tiup(*repo, "modify", "hello", "--yank", env=ENV)
    assert r.returncode == 0
    assert_valid(mirror)


def test_renew_on_expired_mirror(tiup, mirror: Path, tmp_path: Path) -> None:
    repo = ("mirror", "--repo", str(mirror))
    tb = make_tarball(tmp_path / "t.tar.gz")
    assert tiup(*repo, "publish", "hello", "v0.0.1", str(tb), "hello", *PLAT,
                env=ENV).returncode == 0
    later_text = "2031-06-01T00:00:00Z"  # snapshot, timestamp and hello.json have expired
    later = parse_time(later_text)
    problems = audit(mirror, later)
    assert any("expired" in p for p in problems)
    r = tiup(*repo, "renew", "hello", "--days", "3000", env={"TIUP_TEST_NOW": later_text})
    assert r.returncode == 0, r.stderr
    assert manifest(mirror)["expires"].startswith("2039-")
    assert_valid(mirror, later)
    ts = json.loads((mirror / "timestamp.json").read_text())["signed"]
    assert ts["expires"] == "2032-05-31T00:00:00Z"
    r = tiup(*repo, "renew", "nope", env=ENV)
    assert r.returncode == 1 and "unknown component nope" in r.stderr
    r = tiup(*repo, "renew", "--all", "--index", env={"TIUP_TEST_NOW": later_text})
    assert r.returncode == 0 and "Renewed hello" in r.stderr and "Renewed the index" in r.stderr
    assert_valid(mirror, later)


def test_missing_role_key_names_key_and_places(tiup, mirror: Path, tmp_path: Path,
                                               clean_home: Path) -> None:
    keys = tmp_path / "offline-keys"
    (mirror / "keys").rename(keys)
    snap_key = next(p for p in keys.iterdir() if p.name.endswith("-snapshot.json"))
    tb = make_tarball(tmp_path / "t.tar.gz")
    repo = ("mirror", "--repo", str(mirror))
    r = tiup(*repo, "publish", "hello", "v0.0.1", str(tb), "hello", *PLAT, env=ENV)
    assert r.returncode == 1
    assert "private key" in r.stderr and "of role index" in r.stderr
    assert str(mirror / "keys") in r.stderr and str(clean_home / "keys") in r.stderr
    snap_key.rename(tmp_path / snap_key.name)
    r = tiup(*repo, "publish", "hello", "v0.0.1", str(tb), "hello", *PLAT, "--key-dir",
             str(keys), env=ENV)
    assert r.returncode == 1 and "of role snapshot" in r.stderr
    assert snap_key.name[:16] in r.stderr and str(keys) in r.stderr
    assert not list(mirror.glob(".tmp-*")) and not (mirror / "hello-v0.0.1-linux-amd64.tar.gz"
                                                     ).exists()
    (keys / "junk.json").write_text("not a key")
    snap_key.with_name(snap_key.name)
    (tmp_path / snap_key.name).rename(keys / snap_key.name)
    r = tiup(*repo, "publish", "hello", "v0.0.1", str(tb), "hello", *PLAT, "--key-dir",
             str(keys), env=ENV)
    assert r.returncode == 0, r.stderr
    assert "Warning: skipping" in r.stderr and "junk.json" in r.stderr
    assert_valid(mirror)


def test_lock_timeout(tiup, mirror: Path) -> None:
    fd = os.open(mirror / "lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        r = tiup("mirror", "--repo", str(mirror), "renew", "--lock-timeout", "0", env=ENV)
        assert r.returncode == 1
        assert f"mirror {mirror} is locked by another writer" in r.stderr
    finally:
        os.close(fd)
    assert tiup("mirror", "--repo", str(mirror), "renew", env=ENV).returncode == 0


def _limit_file_size() -> None:
    # A real write fault: writing past 4 KiB fails with EFBIG (SIGXFSZ ignored).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_failed_write_leaves_mirror_unchanged(mirror: Path, tmp_path: Path) -> None:
    """The store's write fails for real (file-size limit): clean error, nothing changed.

    Tests run as root, where chmod does not stop writes; RLIMIT_FSIZE does.
    """
    tb = make_tarball(tmp_path / "big.tar.gz", body=os.urandom(20000))
    before = {p.name: p.read_bytes() for p in mirror.iterdir() if p.is_file()}
    proc = subprocess.run(
        [sys.executable, "-m", "tiup", "mirror", "--repo", str(mirror), "publish", "hello",
         "v0.0.1", str(tb), "hello", *PLAT],
        capture_output=True, text=True, env={**os.environ, **ENV}, preexec_fn=_limit_file_size,
        timeout=60)
    assert proc.returncode == 1
    assert "cannot write hello-v0.0.1-linux-amd64.tar.gz in mirror" in proc.stderr
    assert "File too large" in proc.stderr and "Traceback" not in proc.stderr
    after = {p.name: p.read_bytes() for p in mirror.iterdir() if p.is_file()}
    assert after == before
    assert_valid(mirror)


def _open_up(path: Path) -> None:
    """Let another user traverse every directory from / down to ``path``."""
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & 0o001:
            p.chmod(mode | 0o005)


def test_read_only_mirror_directory(mirror: Path, tmp_path: Path, clean_home: Path) -> None:
    """A mirror directory the user cannot write: a clean error, nothing changed.

    Root ignores directory permissions, so as root the command runs as ``nobody``.
    """
    before = {p.name: p.read_bytes() for p in mirror.iterdir() if p.is_file()}
    mirror.chmod(0o555)
    kwargs: dict[str, object] = {}
    if os.geteuid() == 0:
        _open_up(mirror)
        _open_up(Path(sys.executable).resolve().parent)
        for p in clean_home.rglob("*"):
            p.chmod(p.stat().st_mode | 0o005 | (0o004 if p.is_file() else 0))
        _open_up(clean_home)
        for keyfile in mirror.joinpath("keys").glob("*"):
            keyfile.chmod(0o644)
        kwargs = {"user": 65534, "group": 65534}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tiup", "mirror", "--repo", str(mirror), "renew"],
            capture_output=True, text=True, env={**os.environ, **ENV}, timeout=60,
            cwd=str(mirror), **kwargs)  # type: ignore[call-overload]
    finally:
        mirror.chmod(0o755)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "cannot write" in proc.stderr and "Permission denied" in proc.stderr, proc.stderr
    after = {p.name: p.read_bytes() for p in mirror.iterdir() if p.is_file()}
    assert after == before


def test_transfer_owner(tiup, mirror: Path, tmp_path: Path, clean_home: Path) -> None:
    repo = ("mirror", "--repo", str(mirror))
    tb = make_tarball(tmp_path / "t.tar.gz")
    assert tiup(*repo, "publish", "hello", "v0.0.1", str(tb), "hello", *PLAT,
                env=ENV).returncode == 0
    bob_key = tmp_path / "bob.json"
    save_private_key(bob_key, generate())
    assert tiup(*repo, "grant", "bob", "-k", str(bob_key), env=ENV).returncode == 0
    r = tiup(*repo, "transfer-owner", "hello", "alice", env=ENV)
    assert r.returncode == 1 and "not in the available owner list" in r.stderr
    r = tiup(*repo, "transfer-owner", "hello", "bob", env=ENV)
    assert r.returncode == 1 and "owner bob needs 1 signature(s)" in r.stderr
    r = tiup(*repo, "transfer-owner", "hello", "bob", "-k", str(bob_key), env=ENV)
    assert r.returncode == 0, r.stderr
    assert len(json.loads((mirror / "2.hello.json").read_text())["signatures"]) == 2
    assert_valid(mirror)
    # now jdoe's key alone can no longer publish hello
    r = tiup(*repo, "publish", "hello", "v0.0.2", str(tb), "hello", *PLAT,
             "-k", str(clean_home / "keys" / "private.json"), "--key-dir", str(tmp_path / "x"),
             env={**ENV, "TIUP_HOME": str(tmp_path / "other-home")})
    assert r.returncode == 1 and "owner bob" in r.stderr


def test_rotate(tiup, mirror: Path, tmp_path: Path) -> None:
    repo = ("mirror", "--repo", str(mirror))
    root_keys = sorted(p for p in (mirror / "keys").iterdir() if p.name.endswith("-root.json"))
    new_key = tmp_path / "new-root.json"
    key = generate()
    save_private_key(new_key, key)
    first_root = (mirror / "root.json").read_bytes()
    r = tiup(*repo, "rotate", "--add-key", str(new_key), "--remove-key",
             root_keys[0].name[:16], "--threshold", "2", env=ENV)
    assert r.returncode == 0, r.stderr
    new_root = json.loads((mirror / "2.root.json").read_text())["signed"]
    assert (mirror / "root.json").read_bytes() == (mirror / "2.root.json").read_bytes()
    assert new_root["version"] == 2 and new_root["roles"]["root"]["threshold"] == 2
    assert key.keyid in new_root["roles"]["root"]["keys"]
    assert len(new_root["roles"]["root"]["keys"]) == 3
    snap = json.loads((mirror / "snapshot.json").read_text())["signed"]
    assert snap["meta"]["/root.json"]["version"] == 2
    assert_valid(mirror)
    from tiup.repository.audit import audit_mirror
    from tiup.transport.local import LocalFetcher

    with LocalFetcher(str(mirror)) as f:  # a client that trusted the first root follows
        report = audit_mirror(f, NOW, trusted_root=first_root)
    assert report.ok and report.root_version == 2
    r = tiup(*repo, "rotate", "--remove-key", "deadbeef", env=ENV)
    assert r.returncode == 1 and "no such root key" in r.stderr
    r = tiup(*repo, "rotate", "--threshold", "9", env=ENV)
    assert r.returncode == 1 and "between 1 and" in r.stderr
    # without the new key only 2 old keys remain: enough for threshold 2 (a rotation must
    # change something: here the expiry)
    new_key.unlink()
    r = tiup(*repo, "rotate", "--days", "4000", env=ENV)
    assert r.returncode == 0, r.stderr
    for p in (mirror / "keys").iterdir():
        if p.name.endswith("-root.json"):
            p.unlink()
    r = tiup(*repo, "rotate", "--days", "4001", env=ENV)
    assert r.returncode == 1 and "root needs 2 signature(s)" in r.stderr
    assert_valid(mirror)


def test_sync_script_gets_the_committed_files(tiup, mirror: Path, tmp_path: Path) -> None:
    """TIUP_MIRROR_SYNC_SCRIPT runs after the commit with a directory of the changed files."""
    seen = tmp_path / "seen.txt"
    script = tmp_path / "sync.sh"
    script.write_text(f'#!/bin/sh\nls "$1" > {seen}\n')
    script.chmod(0o755)
    tb = make_tarball(tmp_path / "t.tar.gz")
    r = tiup("mirror", "--repo", str(mirror), "publish", "hello", "v0.0.1", str(tb), "hello",
             *PLAT, env={**ENV, "TIUP_MIRROR_SYNC_SCRIPT": str(script)})
    assert r.returncode == 0, r.stderr
    names = seen.read_text().split()
    assert "hello-v0.0.1-linux-amd64.tar.gz" in names and "1.hello.json" in names
    assert "snapshot.json" in names and "timestamp.json" in names
    # a failing script fails the command, but the commit stands
    script.write_text("#!/bin/sh\nexit 3\n")
    r = tiup("mirror", "--repo", str(mirror), "publish", "hello", "v0.0.2", str(tb), "hello",
             *PLAT, env={**ENV, "TIUP_MIRROR_SYNC_SCRIPT": str(script)})
    assert r.returncode == 1
    assert "changes committed, but sync script failed" in r.stderr and "status 3" in r.stderr
    assert "v0.0.2" in manifest(mirror)["platforms"]["linux/amd64"]
    assert_valid(mirror)
