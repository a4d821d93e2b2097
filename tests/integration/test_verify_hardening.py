"""`tiup mirror verify` hardening (issue 9): size caps on every manifest (D5) and every
tarball checked against every item naming it (D6).

D5: an endless ``timestamp.json`` over HTTP, or a local one that is a FIFO or a
symlink to ``/dev/zero``, made the audit stream without end or hang. Each is now a
finding naming the file, with at most the client's cap read.

D6: two version items naming one file, one of them wrong (length or hash), gave
"0 errors" while clients installing the wrong item fail.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from reposim import SIM_NOW, SIM_NOW_TEXT, RepoSim
from servers import Fault, StaticServer
from tiup.client.resolve import current_platform
from tiup.manifest.models import VersionItem
from tiup.manifest.timefmt import format_time
from tiup.repository.audit import audit_mirror
from tiup.transport.http import HTTPFetcher
from tiup.transport.local import LocalFetcher

ENV = {"TIUP_TEST_NOW": SIM_NOW_TEXT}


@pytest.fixture
def sim(tmp_path: Path) -> RepoSim:
    sim = RepoSim(tmp_path / "mirror")
    sim.publish("hello", "v1.0.0")
    return sim


def errors_of(mirror: str, *, tarballs: str = "all") -> list[tuple[str, str]]:
    fetcher = HTTPFetcher(mirror, retries=1) if mirror.startswith("http") \
        else LocalFetcher(mirror)
    with fetcher:
        report = audit_mirror(fetcher, SIM_NOW, tarballs=tarballs)
    return [(f.file, f.message) for f in report.errors]


# -- D5: caps ---------------------------------------------------------------------------


def test_control_mirror_is_clean(sim: RepoSim) -> None:
    assert errors_of(str(sim.path)) == []


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory"])
def test_local_non_regular_timestamp_is_a_finding(tiup, sim: RepoSim, kind: str) -> None:  # type: ignore[no-untyped-def]
    ts = sim.path / "timestamp.json"
    ts.unlink()
    if kind == "fifo":
        os.mkfifo(ts)
    elif kind == "dev-zero":
        ts.symlink_to("/dev/zero")
    else:
        ts.mkdir()
    r = tiup("mirror", "verify", str(sim.path), env=ENV, timeout=120)
    assert r.returncode == 1, r.output
    line = next(x for x in r.stdout.splitlines() if x.startswith("ERROR"))
    assert "timestamp.json" in line and "not a regular file" in line, r.stdout
    assert "Traceback" not in r.output


@pytest.mark.parametrize("name,words", [
    ("timestamp.json", "larger than the cap on timestamps"),
    ("root.json", "larger than the cap on roots"),
    ("{index}.index.json", "larger than the length snapshot.json declares"),
    ("1.hello.json", "larger than the length snapshot.json declares"),
    ("snapshot.json", "larger than the length timestamp.json declares"),
])
def test_endless_manifest_over_http_is_a_finding(tiup, sim: RepoSim, name: str,  # type: ignore[no-untyped-def]
                                                  words: str) -> None:
    assert sim.index is not None
    name = name.format(index=sim.index.version)
    assert (sim.path / name).is_file()
    with StaticServer(sim.path) as srv:
        srv.add_fault(f"/{name}", Fault(endless_chunked=True, times=-1))
        r = tiup("mirror", "verify", srv.url, "--skip-tarballs", env=ENV, timeout=120)
        sent = sum(e.sent for e in srv.requests(f"/{name}"))
    assert r.returncode in (1, 2), r.output
    found = [x for x in r.stdout.splitlines() + r.stderr.splitlines() if name in x and words in x]
    assert found, r.output
    assert sent < 64 << 20, sent  # the client hung up near the cap, not after 100s of MB
    assert "Traceback" not in r.output


def test_local_manifest_larger_than_declared_is_a_finding(sim: RepoSim) -> None:
    path = sim.path / "1.hello.json"
    path.write_bytes(path.read_bytes() + b" " * (1 << 20))
    found = errors_of(str(sim.path), tarballs="skip")
    assert ("1.hello.json", f"1.hello.json is larger than the length snapshot.json declares "
            f"({path.stat().st_size - (1 << 20)} bytes): clients refuse it") in found


# -- D6: every item naming a file --------------------------------------------------------


def _second_item(sim: RepoSim, version: str, wrong: str) -> VersionItem:
    """Publish ``version`` whose item names v1.0.0's tarball, with a wrong length or hash."""
    plat = current_platform()
    os_name, arch = plat.split("/")
    first = sim.components["hello"].platforms[plat]["v1.0.0"]
    data = (sim.path / first.url.lstrip("/")).read_bytes()
    length, sha256 = len(data), hashlib.sha256(data).hexdigest()
    sha512 = hashlib.sha512(data).hexdigest()
    if wrong == "length":
        length += 1
    elif wrong == "sha256":
        sha256 = hashlib.sha256(data + b"x").hexdigest()
    elif wrong == "sha512":
        sha512 = hashlib.sha512(data + b"x").hexdigest()
    item = VersionItem(url=first.url, entry="hello", sha256=sha256, sha512=sha512,
                       length=length, released=format_time(SIM_NOW))
    sim.publish("hello", version, declared=item)
    (sim.path / f"hello-{version}-{os_name}-{arch}.tar.gz").unlink()  # only the shared file
    return item


@pytest.mark.parametrize("version", ["v0.9.0", "v2.0.0"])  # the wrong item first or last
@pytest.mark.parametrize("wrong", ["length", "sha256", "sha512", "none"])
def test_file_named_by_two_items_is_checked_against_both(sim: RepoSim, version: str,
                                                         wrong: str) -> None:
    item = _second_item(sim, version, wrong)
    name = item.url.lstrip("/")
    found = [(f, m) for f, m in errors_of(str(sim.path)) if f == name]
    if wrong == "none":
        assert found == []
        return
    assert len(found) == 1, found  # the wrong item, and only it
    message = found[0][1]
    assert f"hello {version}" in message and ("length" if wrong == "length" else wrong) \
        in message
    # with --no-tarballs only presence is checked: one file, present
    assert [f for f, _m in errors_of(str(sim.path), tarballs="exist") if f == name] == []


def test_verify_cli_reports_the_wrong_item_clients_fail_on(tiup, sim: RepoSim) -> None:  # type: ignore[no-untyped-def]
    _second_item(sim, "v2.0.0", "sha256")
    r = tiup("mirror", "verify", str(sim.path), env=ENV)
    assert r.returncode == 1, r.output
    assert "1 errors" in r.stdout and "hello v2.0.0" in r.stdout, r.stdout
    # and a client does fail on that item: the audit's finding is real
    assert tiup("mirror", "set", str(sim.path), env=ENV).returncode == 0
    r = tiup("install", "hello:v2.0.0", env=ENV)
    assert r.returncode != 0 and "sha256" in r.output.lower(), r.output
    assert tiup("install", "hello:v1.0.0", env=ENV).returncode == 0
