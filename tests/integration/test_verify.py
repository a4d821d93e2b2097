"""`tiup mirror verify` over TiUP's real fixture mirror: the cases issue 2 names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fixturedata import FIXTURE_NOW
from tiup.repository.audit import TARBALLS_SKIP, audit_mirror
from tiup.transport.local import LocalFetcher


def _args(mirror: Path, *extra: str) -> list[str]:
    return ["mirror", "verify", str(mirror), "--root", str(mirror / "1.root.json"),
            "--skip-tarballs", *extra]


def test_fixture_mirror_verifies(tiup, fixture_mirror: Path) -> None:  # type: ignore[no-untyped-def]
    r = tiup(*_args(fixture_mirror), env={"TIUP_TEST_NOW": "2026-11-27T00:00:00Z"})
    assert r.returncode == 0, r.output
    assert "0 errors" in r.stdout
    assert "checked 28 manifests" in r.stdout


def test_fixture_mirror_expired_in_2032(tiup, fixture_mirror: Path) -> None:  # type: ignore[no-untyped-def]
    r = tiup(*_args(fixture_mirror, "--at", "2032-01-01T00:00:00Z"))
    assert r.returncode == 1, r.output
    assert "timestamp.json expired at 2031-10-21T08:19:55+08:00" in r.stdout
    assert "1.root.json (root version 1) expired at 2031-10-21" in r.stdout


def test_fixture_without_trusted_root(tiup, fixture_mirror: Path) -> None:  # type: ignore[no-untyped-def]
    r = tiup("mirror", "verify", str(fixture_mirror), "--skip-tarballs",
             env={"TIUP_TEST_NOW": "2026-11-27T00:00:00Z"})
    assert r.returncode == 1, r.output
    assert "root.json (root version 6) expired at 2026-07-26T11:18:30+08:00" in r.stdout
    assert "timestamp.json is not signed by the timestamp key of root.json" in r.stdout


def test_json_report(tiup, fixture_mirror: Path) -> None:  # type: ignore[no-untyped-def]
    r = tiup(*_args(fixture_mirror, "--json"), env={"TIUP_TEST_NOW": "2026-01-01T00:00:00Z"})
    assert r.returncode == 0, r.output
    report = json.loads(r.stdout)
    assert report["ok"] is True
    assert report["root_version"] == 1
    assert report["problems"] == []
    assert report["manifests_checked"] == 28
    assert report["tarballs_checked"] == 0
    r = tiup(*_args(fixture_mirror, "--json", "--at", "2032-01-01T00:00:00Z"))
    report = json.loads(r.stdout)
    assert report["ok"] is False and r.returncode == 1
    assert {"file": "timestamp.json",
            "error": "timestamp.json expired at 2031-10-21T08:19:55+08:00"} in report["problems"]


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    # change a hex digit or letter inside the signed part, keeping the JSON valid
    start = data.index(b'"signed":') + 20
    for i in range(start, len(data)):
        if chr(data[i]).isalnum():
            data[i] = ord("x") if data[i] != ord("x") else ord("y")
            break
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", [
    "1.root.json", "root.json", "timestamp.json", "snapshot.json", "1.index.json",
    "1.tidb.json", "1.grafana.json", "1.alertmanager.json",
])
def test_one_changed_byte_is_named(tmp_path: Path, fixture_mirror: Path, name: str) -> None:
    copy = tmp_path / "m"
    shutil.copytree(fixture_mirror, copy)
    for p in copy.iterdir():
        p.chmod(0o644)
    _flip_one_byte(copy / name)
    trusted = (fixture_mirror / "1.root.json").read_bytes()
    report = audit_mirror(LocalFetcher(str(copy)), FIXTURE_NOW, trusted_root=trusted,
                          tarballs=TARBALLS_SKIP)
    assert not report.ok
    assert name in {f.file for f in report.errors}, report.errors


def test_every_manifest_tamper_detected(tmp_path: Path, fixture_mirror: Path) -> None:
    """One byte changed anywhere in any of the 27 files is an error naming that file."""
    trusted = (fixture_mirror / "1.root.json").read_bytes()
    names = sorted(p.name for p in fixture_mirror.glob("*.json"))
    for name in names:
        copy = tmp_path / name
        shutil.copytree(fixture_mirror, copy)
        for p in copy.iterdir():
            p.chmod(0o644)
        data = bytearray((copy / name).read_bytes())
        # the last alphanumeric byte of the file: inside the signed part
        i = max(j for j, b in enumerate(data) if chr(b).isalnum())
        data[i] = ord("7") if data[i] != ord("7") else ord("8")
        (copy / name).write_bytes(bytes(data))
        report = audit_mirror(LocalFetcher(str(copy)), FIXTURE_NOW, trusted_root=trusted,
                              tarballs=TARBALLS_SKIP)
        assert name in {f.file for f in report.errors}, (name, report.errors)


def test_cli_names_tampered_file(tiup, tmp_path: Path, fixture_mirror: Path) -> None:  # type: ignore[no-untyped-def]
    copy = tmp_path / "m"
    shutil.copytree(fixture_mirror, copy)
    for p in copy.iterdir():
        p.chmod(0o644)
    _flip_one_byte(copy / "1.pd.json")
    r = tiup("mirror", "verify", str(copy), "--root", str(fixture_mirror / "1.root.json"),
             "--skip-tarballs", env={"TIUP_TEST_NOW": "2026-01-01T00:00:00Z"})
    assert r.returncode == 1
    assert "ERROR  1.pd.json  " in r.stdout


def test_unreadable_mirror_exits_2(tiup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = tiup("mirror", "verify", str(tmp_path / "missing"))
    assert r.returncode == 2
    assert "not a directory" in r.stderr
    assert "Traceback" not in r.output


def test_bad_at_is_usage_error(tiup, fixture_mirror: Path) -> None:  # type: ignore[no-untyped-def]
    r = tiup("mirror", "verify", str(fixture_mirror), "--at", "someday")
    assert r.returncode == 2
    assert "invalid time 'someday'" in r.stderr
