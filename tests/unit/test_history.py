"""The execution history's files, in Go TiUP's format (``pkg/environment/history.go``):
one ``{"time","command","exit_code"}`` JSON line per run, ``tiup-history-<N>`` files of
64 KiB, secrets hidden as TiUP hides them."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tiup.client import history

#: a line exactly as Go TiUP 1.16 writes it (json.Marshal of historyRow)
GO_LINE = ('{"time":"2024-05-06T07:08:09.123456789+08:00",'
           '"command":"/root/.tiup/bin/tiup playground v8.1.0 --db 2","exit_code":0}\n')


@pytest.fixture
def tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Lets a test choose the local time zone (``TZ``); restored afterwards."""
    yield
    monkeypatch.undo()
    time.tzset()


def _set_tz(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("TZ", name)
    time.tzset()


@pytest.mark.parametrize(("zone", "ns", "text"), [
    ("UTC", 1_700_000_000_123_456_789, "2023-11-14T22:13:20.123456789Z"),
    ("UTC", 1_700_000_000_100_000_000, "2023-11-14T22:13:20.1Z"),  # trailing zeros trimmed
    ("UTC", 1_700_000_000_000_000_000, "2023-11-14T22:13:20Z"),  # no fraction at all
    ("CST-8", 1_700_000_000_000_000_500, "2023-11-15T06:13:20.0000005+08:00"),
    ("EST+5", 1_700_000_000_000_000_000, "2023-11-14T17:13:20-05:00"),
    ("IST-5:30", 1_700_000_000_000_000_000, "2023-11-15T03:43:20+05:30"),
])
def test_time_is_gos_rfc3339_nano_in_local_time(tz: None, monkeypatch: pytest.MonkeyPatch,
                                                zone: str, ns: int, text: str) -> None:
    _set_tz(monkeypatch, zone)
    assert history.go_time(ns) == text
    assert datetime.fromisoformat(text).timestamp() == pytest.approx(ns / 1e9, abs=1e-6)


def test_json_is_what_go_marshals() -> None:
    line = history.go_json({"time": "t", "command": "tiup x --q='a<b>&c' 中文 \u2028",
                            "exit_code": 3})
    assert line == ('{"time":"t","command":"tiup x --q=\'a\\u003cb\\u003e\\u0026c\' 中文 '
                    '\\u2028","exit_code":3}')
    assert json.loads(line)["command"] == "tiup x --q='a<b>&c' 中文 \u2028"


@pytest.mark.parametrize(("args", "shown"), [
    (["-p", "secret"], ["-p", "******"]),
    (["-psecret"], ["-p******"]),
    (["-port", "4000"], ["-p******", "4000"]),  # as TiUP: the -p prefix wins
    (["--password", "secret"], ["--password", "******"]),
    (["--password=secret"], ["--password******"]),
    (["-tidb-password", "s"], ["-tidb-password", "******"]),
    (["--tidb-password", "s"], ["--tidb-password", "******"]),
    (["encrypt", "s"], ["encrypt", "******"]),
    (["-password", "s"], ["-password", "******"]),  # TiUP: "-p****** s" (leaks s)
    (["-p"], ["-p"]),  # nothing after it to hide
    (["mysql://root:pw@127.0.0.1:4000/db"], ["mysql://root:xxxxx@127.0.0.1:4000/db"]),
    (["--sink-uri=kafka://h:9092/t?sasl-password=s&partition-num=3"],
     ["--sink-uri=kafka://h:9092/t?sasl-password=******&partition-num=3"]),
    (["s3://b/p?access-key=A&secret-access-key=S&session-token=T&region=x"],
     ["s3://b/p?access-key=******&secret-access-key=******&session-token=******&region=x"]),
    (["http://h/x?a=1&b=2"], ["http://h/x?a=1&b=2"]),  # nothing secret: left as typed
    (["playground", "v8.1.0", "--db", "2"], ["playground", "v8.1.0", "--db", "2"]),
])
def test_secrets_are_hidden_as_tiup_hides_them(args: list[str], shown: list[str]) -> None:
    assert history.redact(args) == shown


def test_records_go_to_the_newest_file_until_it_reaches_64_kib(tmp_path: Path) -> None:
    home = tmp_path / "home"
    history.record(str(home), ["tiup", "list"], 1_700_000_000_000_000_000, 0)
    first = home / "history" / "tiup-history-0"
    line = json.loads(first.read_text())
    assert list(line) == ["time", "command", "exit_code"]
    assert line["command"] == "tiup list" and line["exit_code"] == 0
    first.write_bytes(first.read_bytes() + b"x" * history.FILE_SIZE)
    history.record(str(home), ["tiup", "hello", "-p", "pw"], 1_700_000_001_000_000_000, 3)
    second = home / "history" / "tiup-history-1"
    assert json.loads(second.read_text())["command"] == "tiup hello -p ******"
    history.record(str(home), ["tiup", "env"], 1_700_000_002_000_000_000, 0)
    assert len(second.read_text().splitlines()) == 2  # not yet full: the same file


def test_bytes_that_are_not_utf8_are_recorded_as_go_records_them(tmp_path: Path) -> None:
    arg = os.fsdecode(b"caf\xe9")  # what sys.argv holds for a Latin-1 argument
    history.record(str(tmp_path), ["tiup", arg], 1_700_000_000_000_000_000, 0)
    row = history.read(str(tmp_path), None)[0]
    assert row.command == "tiup caf\ufffd"


def test_reading_takes_the_last_rows_across_files_and_skips_garbage(tmp_path: Path) -> None:
    folder = tmp_path / "history"
    folder.mkdir()
    (folder / "tiup-history-0").write_text(GO_LINE + "not json\n" + "{}\n")
    (folder / "tiup-history-1").write_text("".join(
        history.go_json({"time": f"2024-05-07T00:00:0{i}Z", "command": f"tiup c{i}",
                         "exit_code": i}) + "\n" for i in range(3)))
    (folder / "tiup-history-x").write_text(GO_LINE)  # not a history file
    rows = history.read(str(tmp_path), None)
    assert [r.command for r in rows] == ["/root/.tiup/bin/tiup playground v8.1.0 --db 2",
                                         "tiup c0", "tiup c1", "tiup c2"]
    assert rows[0].time.strftime("%Y-%m-%dT%H:%M:%S") == "2024-05-06T07:08:09"  # its offset
    assert rows[0].to_json() + "\n" == GO_LINE
    assert [r.command for r in history.read(str(tmp_path), 2)] == ["tiup c1", "tiup c2"]
    assert [r.exit_code for r in history.read(str(tmp_path), 4)] == [0, 0, 1, 2]
    assert len(history.read(str(tmp_path), 100)) == 4
    assert history.read(str(tmp_path), 0) == []
    assert history.read(str(tmp_path / "nothing"), None) == []


def test_cleanup_removes_old_records_not_whole_files(tmp_path: Path) -> None:
    folder = tmp_path / "history"
    folder.mkdir()
    now = datetime(2026, 1, 31, tzinfo=UTC)
    lines = [history.go_json({"time": (now - timedelta(days=d)).isoformat(),
                              "command": f"tiup d{d}", "exit_code": 0}) + "\n"
             for d in (90, 70, 10)]
    (folder / "tiup-history-0").write_text(lines[0] + lines[1])  # all old: deleted
    (folder / "tiup-history-1").write_text(lines[1] + "garbage\n" + lines[2])
    removed = history.cleanup(str(tmp_path), now - timedelta(days=60))
    assert removed == 3
    assert not (folder / "tiup-history-0").exists()
    assert (folder / "tiup-history-1").read_text() == "garbage\n" + lines[2]
    assert [r.command for r in history.read(str(tmp_path), None)] == ["tiup d10"]
    assert history.cleanup(str(tmp_path), None) == 1
    assert list(folder.iterdir()) == []
