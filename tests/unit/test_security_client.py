"""Attacks on the client, as data: each scenario misbehaves a mirror, runs the real updater
and installer, and checks that they fail closed and that nothing unverified was cached,
extracted or made runnable."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from builders import key
from reposim import BOB, SIM_NOW, RepoSim, make_tarball, script
from tiup.client import installer
from tiup.client.mirrorset import set_mirror
from tiup.client.profile import Profile
from tiup.client.resolve import current_platform, resolve_remote
from tiup.client.updater import Updater
from tiup.errors import (
    ExpiredError,
    InstallError,
    IntegrityError,
    RollbackError,
    SignatureError,
    SizeLimitError,
    TiupError,
)
from tiup.manifest.timefmt import format_time


def make_client(sim: RepoSim, home: Path, now=SIM_NOW) -> tuple[Profile, Updater]:
    profile = Profile(home, env={"TIUP_HOME": str(home)})
    set_mirror(profile, str(sim.path))
    return profile, Updater(profile, str(sim.path), now)


def install(profile: Profile, updater: Updater, comp: str = "hello", version: str = "") -> Path:
    manifest = updater.component(comp)
    ver, item = resolve_remote(manifest, version, current_platform())
    return installer.install(profile, updater, comp, ver, item, SIM_NOW)


def snapshot_of(home: Path) -> dict[str, bytes]:
    """Every file under $TIUP_HOME except transient staging files."""
    out = {}
    for p in sorted(home.rglob("*")):
        if p.is_file() and "staging" not in p.parts:
            out[str(p.relative_to(home))] = p.read_bytes()
    return out


@pytest.fixture
def sim(tmp_path: Path) -> RepoSim:
    s = RepoSim(tmp_path / "mirror")
    s.publish("hello", "v1.0.0")
    return s


@dataclass
class Attack:
    name: str
    act: Callable[[RepoSim], None]
    error: type[TiupError]
    message: str
    install: bool = False  # the attack is only seen when installing
    #: cache files that may change: only to exact copies of the mirror's verified files
    may_change: tuple[str, ...] = ()
    prepare: Callable[[RepoSim], None] | None = None


def _rollback_timestamp(s: RepoSim) -> None:
    old = s.read("timestamp.json")
    s.publish("hello", "v1.0.1")
    s.publish("hello", "v1.0.2")
    (s.path / "old-ts").write_bytes(old)


def _replay_old_timestamp(s: RepoSim) -> None:
    s.write("timestamp.json", s.read("old-ts"))


def _rollback_snapshot(s: RepoSim) -> None:
    old = s.read("snapshot.json")
    s.publish("hello", "v1.0.1")
    s.write("snapshot.json", old)  # timestamp names the new one


def _rollback_index(s: RepoSim) -> None:
    # a snapshot (validly signed by the snapshot key) naming an older index version
    assert s.index is not None
    s.commit(snapshot=s.snapshot(index_version=s.index.version - 1))


def _second_version(s: RepoSim) -> None:
    s.publish("hello", "v1.0.1")


def _rollback_component(s: RepoSim) -> None:
    s.commit(snapshot=s.snapshot(comp_versions={"hello": 1}))


def _expired_timestamp(s: RepoSim) -> None:
    s.commit(ts_expires=format_time(SIM_NOW - timedelta(seconds=1)))


def _expired_snapshot(s: RepoSim) -> None:
    s.commit(snapshot_expires=format_time(SIM_NOW - timedelta(days=1)))


def _timestamp_by_wrong_key(s: RepoSim) -> None:
    s.commit(ts_signer=key(BOB))


def _component_by_non_owner(s: RepoSim) -> None:
    s.components["hello"].version += 1
    s.write_component("hello", signer=key(BOB))
    s.commit()


def _oversized_timestamp(s: RepoSim) -> None:
    data = json.loads(s.read("timestamp.json"))
    data["signed"]["padding"] = "x" * 2000
    s.write("timestamp.json", json.dumps(data).encode())


def _tampered_index(s: RepoSim) -> None:
    assert s.index is not None
    name = f"{s.index.version}.index.json"
    s.write(name, s.read(name).replace(b"A test", b"A evil"))


def _tarball_mismatch(s: RepoSim) -> None:
    s.publish("hello", "v2.0.0")
    s.write(f"hello-v2.0.0-{current_platform().replace('/', '-')}.tar.gz",
            make_tarball({"hello": script("echo evil")}))


def _bad_tarball(members: list[tarfile.TarInfo]) -> Callable[[RepoSim], None]:
    def act(s: RepoSim) -> None:
        s.publish("hello", "v2.0.0", tarball=make_tarball({"hello": script()}, extra=members))
    return act


PUBLISHED = ("timestamp.json", "snapshot.json", "hello.json")


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = 3 if kind == tarfile.REGTYPE else 0
    return info


ATTACKS = [
    Attack("rolled-back timestamp", _replay_old_timestamp, RollbackError,
           "timestamp manifest has a version number < the old manifest",
           prepare=_rollback_timestamp),
    Attack("rolled-back snapshot", _rollback_snapshot, IntegrityError, "sha256 of snapshot.json"),
    Attack("rolled-back index", _rollback_index, RollbackError, "older than the trusted version",
           may_change=("timestamp.json", "snapshot.json")),
    Attack("rolled-back component", _rollback_component, RollbackError,
           "names hello version 1, older than the trusted version 2", install=True,
           may_change=("timestamp.json", "snapshot.json"), prepare=_second_version),
    Attack("expired timestamp", _expired_timestamp, ExpiredError, "timestamp.json expired at"),
    Attack("expired snapshot", _expired_snapshot, ExpiredError, "snapshot.json expired at"),
    Attack("timestamp signed by an unknown key", _timestamp_by_wrong_key, SignatureError,
           "not enough signatures (0) for threshold 1"),
    Attack("component signed by a non-owner", _component_by_non_owner, SignatureError,
           "not enough signatures (0) for threshold 1", install=True,
           may_change=("timestamp.json", "snapshot.json")),
    Attack("oversized timestamp", _oversized_timestamp, SizeLimitError, "maximum size exceeded"),
    Attack("tarball bytes differ from the manifest", _tarball_mismatch, IntegrityError,
           "does not match its manifest", install=True, may_change=PUBLISHED),
    Attack("tarball with ../", _bad_tarball([_member("../evil")]), InstallError, "'..' in path",
           install=True, may_change=PUBLISHED),
    Attack("tarball with an absolute path", _bad_tarball([_member("/tmp/evil-abs")]),
           InstallError, "absolute path", install=True, may_change=PUBLISHED),
    Attack("tarball with an escaping symlink", _bad_tarball(
        [_member("link", tarfile.SYMTYPE, "../../../etc")]), InstallError,
        "points outside", install=True, may_change=PUBLISHED),
    Attack("tarball with a symlink then a file through it", _bad_tarball(
        [_member("d", tarfile.SYMTYPE, "/tmp"), _member("d/evil")]), InstallError,
        "absolute path", install=True, may_change=PUBLISHED),
    Attack("tarball with a FIFO", _bad_tarball([_member("fifo", tarfile.FIFOTYPE)]),
           InstallError, "FIFO", install=True, may_change=PUBLISHED),
    Attack("tarball with a device", _bad_tarball([_member("dev", tarfile.CHRTYPE)]),
           InstallError, "device node", install=True, may_change=PUBLISHED),
    Attack("tarball with a hard link to outside", _bad_tarball(
        [_member("hl", tarfile.LNKTYPE, "/etc/passwd")]), InstallError, "absolute path",
        install=True, may_change=PUBLISHED),
]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_fails_closed(attack: Attack, sim: RepoSim, tmp_path: Path) -> None:
    home = tmp_path / "home"
    if attack.prepare:
        attack.prepare(sim)
    profile, updater = make_client(sim, home)
    install(profile, updater)  # a good state first: caches written, v1.0.0 installed
    assert updater.requests > 0
    before = snapshot_of(home)

    attack.act(sim)
    fresh = Updater(profile, str(sim.path), SIM_NOW)
    with pytest.raises(attack.error) as info:
        fresh.refresh()
        install(profile, fresh, version="v2.0.0" if "tarball" in attack.name else "v1.0.0")
    assert attack.message in info.value.message, info.value.message

    after = snapshot_of(home)
    # nothing unverified cached, extracted or recorded: the home is as before, except
    # cache files the attack allows to change, and those only to the mirror's verified bytes
    changed = {n for n in set(after) | set(before) if after.get(n) != before.get(n)}
    allowed = {f"manifests/{n}" for n in attack.may_change}
    record = "manifests/.verified.json"
    if record in changed:  # the verified-cache record may only list bytes verified now
        assert_record_lists_only_verified(home / record, sim)
        changed.discard(record)
    assert changed <= allowed, sorted(changed - allowed)
    for name in changed:
        mirror_name = Path(name).name
        if mirror_name in ("index.json", "hello.json"):
            continue  # versioned on the mirror; verified by the updater's own tests
        assert after[name] == sim.read(mirror_name), name
    assert not any((home / "staging").glob("install-*"))
    assert not Path("/tmp/evil-abs").exists() and not (tmp_path / "evil").exists()


def assert_record_lists_only_verified(record: Path, sim: RepoSim) -> None:
    """Every digest in the client's verified-cache record is that of a file the mirror
    serves (what the client verified), never of the attacker's bytes."""
    files = json.loads(record.read_bytes())["files"]
    served = {hashlib.sha256(p.read_bytes()).hexdigest() for p in sim.path.glob("*.json")}
    served |= {hashlib.sha256(sim.read(n)).hexdigest() for n in ("old-ts",)
               if (sim.path / n).exists()}
    for name, digest in files.items():
        assert digest in served, f"{name} is recorded as verified but the mirror never served it"


def test_tampered_cache_is_detected_and_refetched(sim: RepoSim, tmp_path: Path) -> None:
    profile, updater = make_client(sim, tmp_path / "home")
    updater.refresh()
    updater.component("hello")
    cache = profile.manifests_dir
    good = {n: (cache / n).read_bytes() for n in ("snapshot.json", "index.json", "hello.json")}
    for name in good:
        (cache / name).write_bytes(good[name].replace(b"A test", b"A evil").replace(
            b'"version":0', b'"version":0 '))
    again = Updater(profile, str(sim.path), SIM_NOW)
    again.refresh()
    assert again.component("hello").description == "A test component"
    for name, data in good.items():
        assert (cache / name).read_bytes() == data, name
    assert "snapshot.json" in again.fetcher.log  # the tampered copies were refetched
    assert f"{sim.components['hello'].version}.hello.json" in again.fetcher.log


def test_expired_cache_is_not_trusted(sim: RepoSim, tmp_path: Path) -> None:
    profile, updater = make_client(sim, tmp_path / "home")
    updater.component("hello")
    # the mirror renews everything; the old cache would be expired 400 days later
    later = SIM_NOW + timedelta(days=400)
    sim.now = later
    sim.root = sim.make_root(sim.root.version, sim.root_keys, 2)  # type: ignore[union-attr]
    sim.rotate_root(sim.root_keys)
    sim.index.expires = sim.expires()  # type: ignore[union-attr]
    sim.write_index(bump=True)
    sim.components["hello"].expires = sim.expires()
    sim.components["hello"].version += 1
    sim.write_component("hello")
    sim.commit()
    fresh = Updater(profile, str(sim.path), later)
    assert fresh.component("hello").version == sim.components["hello"].version
    assert {"snapshot.json", "3.index.json", "2.hello.json"} <= set(fresh.fetcher.log)


def test_noop_update_is_one_small_request(sim: RepoSim, tmp_path: Path) -> None:
    profile, updater = make_client(sim, tmp_path / "home")
    updater.component("hello")
    again = Updater(profile, str(sim.path), SIM_NOW)
    again.refresh()
    again.component("hello")
    assert again.fetcher.log == ["timestamp.json"]
    assert again.requests == 1 and again.bytes_transferred <= 2048


def test_root_rotation_dropping_all_old_keys(sim: RepoSim, tmp_path: Path) -> None:
    profile, updater = make_client(sim, tmp_path / "home")
    updater.component("hello")
    # v2: new root keys only, signed by old (threshold) and new (threshold): accepted
    sim.rotate_root((3, 4, 5), signers=(0, 1, 3, 4), timestamp_key=13)
    sim.publish("hello", "v1.1.0")
    fresh = Updater(profile, str(sim.path), SIM_NOW)
    fresh.refresh()
    assert fresh.trusted().root.version == 2
    assert "2.root.json" in fresh.fetcher.log
    assert (profile.manifests_dir / "root.json").read_bytes() == sim.read("2.root.json")
    assert fresh.component("hello").version == sim.components["hello"].version


@pytest.mark.parametrize("signers,why", [
    ((3, 4, 5), "(0) for threshold 2"),          # only the new keys: old threshold missing
    ((0, 1), "(0) for threshold 2"),             # only the old keys: new threshold missing
    ((0, 3, 4), "(1) for threshold 2"),          # one old key is not enough
])
def test_root_rotation_without_enough_signatures_is_rejected(
        sim: RepoSim, tmp_path: Path, signers: tuple[int, ...], why: str) -> None:
    profile, updater = make_client(sim, tmp_path / "home")
    updater.component("hello")
    before = snapshot_of(profile.home)
    sim.rotate_root((3, 4, 5), signers=signers, timestamp_key=13)
    fresh = Updater(profile, str(sim.path), SIM_NOW)
    with pytest.raises(SignatureError) as info:
        fresh.refresh()
    assert why in info.value.message and "2.root.json" in info.value.message
    assert snapshot_of(profile.home) == before


def test_snapshot_hash_is_checked_before_parsing(sim: RepoSim, tmp_path: Path) -> None:
    _profile, updater = make_client(sim, tmp_path / "home")
    updater.refresh()
    ts = json.loads(sim.read("timestamp.json"))
    real = hashlib.sha256(sim.read("snapshot.json")).hexdigest()
    assert ts["signed"]["meta"]["/snapshot.json"]["hashes"]["sha256"] == real


def test_tar_member_checks_reject_without_writing(tmp_path: Path) -> None:
    from tiup.client.extract import safe_extract

    buf = io.BytesIO(make_tarball({"ok": b"1"}, extra=[_member("a/../../x")]))
    path = tmp_path / "t.tar.gz"
    path.write_bytes(buf.getvalue())
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(InstallError, match=r"'\.\.' in path"):
        safe_extract(path, dest)
    assert list(dest.iterdir()) == [] and not (tmp_path / "x").exists()
