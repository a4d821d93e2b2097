"""The one retry policy and the one resumable-download engine, against an in-memory source.

Every retry loop (HTTP requests, downloads, clone, remote publish) runs through
``RetryPolicy.run`` and every resumed download through ``resume.fetch_part``; the HTTP,
clone and publish tests cover them end to end, these pin the rules themselves.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tiup.errors import ConflictError, FetchError, NotFoundError, SizeLimitError, TiupError
from tiup.transport import Chunks, RetryPolicy, TransientError
from tiup.transport.resume import PartFile, download_file, fetch_part
from tiup.transport.speed import SpeedRule

DATA = bytes(range(256)) * 40  # 10240 bytes


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def policy(attempts: int = 5, **kw: object) -> RetryPolicy:
    kw.setdefault("sleep", Sleeps())
    return RetryPolicy(attempts=attempts, base=1.0, cap=8.0, jitter=0.0, **kw)  # type: ignore[arg-type]


# -- the retry policy -------------------------------------------------------------------


def test_delay_doubles_to_the_cap_with_jitter_and_obeys_retry_after() -> None:
    exact = policy()
    assert [exact.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]
    assert exact.delay(3, retry_after=30) == 30 and exact.delay(1, retry_after=999) == 60
    assert exact.delay(1, retry_after=-5) == 0
    jittery = RetryPolicy(attempts=5, base=0.5, cap=8.0)  # ±20 % by default
    for n in range(1, 9):
        nominal = min(0.5 * 2 ** (n - 1), 8)
        assert 0.8 * nominal <= jittery.delay(n) <= 1.2 * nominal


def test_run_retries_transient_failures_then_gives_up() -> None:
    sleeps = Sleeps()
    calls: list[int] = []

    def failing() -> str:
        calls.append(1)
        raise TransientError("download from x failed: HTTP 503", file="x", reason="HTTP 503")

    with pytest.raises(FetchError) as err:
        policy(3, sleep=sleeps).run(failing)
    assert not isinstance(err.value, TransientError)
    assert "gave up after 3 attempts" in err.value.message
    assert err.value.reason == "HTTP 503 (3 attempts)"
    assert len(calls) == 3 and sleeps == [1.0, 2.0]


@pytest.mark.parametrize("exc", [NotFoundError("gone"), SizeLimitError("big"),
                                 FetchError("refused"), ConflictError("too old")])
def test_run_passes_other_failures_through_at_once(exc: TiupError) -> None:
    sleeps = Sleeps()

    def once() -> None:
        raise exc

    with pytest.raises(type(exc)) as err:
        policy(sleep=sleeps).run(once)
    assert err.value is exc and sleeps == []


def _fails_then_succeeds(failures: int) -> Callable[[], str]:
    left = [failures]

    def attempt() -> str:
        if left[0]:
            left[0] -= 1
            raise TransientError("broke", file="x")
        return "done"

    return attempt


def test_progress_earns_a_fresh_budget_and_may_resume_at_once() -> None:
    for at_once, expected in ((False, [1.0, 1.0, 1.0, 1.0]), (True, [])):
        sleeps = Sleeps()
        attempt = _fails_then_succeeds(4)
        got = policy(2, sleep=sleeps, resume_at_once=at_once).run(
            attempt, progressed=lambda: True)
        assert got == "done" and sleeps == expected


def test_before_wait_sees_each_retry_and_may_stop() -> None:
    seen: list[tuple[int, float]] = []

    def stop(exc: TiupError, failures: int, delay: float) -> None:
        seen.append((failures, delay))
        if failures == 2:
            raise FetchError("the source stopped answering")

    def attempt() -> None:
        raise TransientError("broke")

    with pytest.raises(FetchError, match="stopped answering"):
        policy().run(attempt, before_wait=stop)
    assert seen == [(1, 1.0), (2, 2.0)]


def test_no_wait_past_the_deadline_and_waits_leave_the_speed_window() -> None:
    now = [0.0]
    sleeps = Sleeps()

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    guard = SpeedRule(limit=1000, window=3600, base=2.5).guard("x", 0, lambda: now[0])

    def attempt() -> None:
        raise TransientError("broke")

    with pytest.raises(FetchError, match=r"deadline of 2\.5 s"):
        policy(sleep=sleep).run(attempt, guard=guard)
    assert sleeps == [1.0]  # the second wait (2 s) would end past the deadline
    assert guard.window_start == 1.0  # the 1 s wait is not counted against the speed


# -- the resume engine ------------------------------------------------------------------


class MemorySource:
    """A file in memory behind ``stream_range``; each call pops one behaviour."""

    def __init__(self, data: bytes = DATA, validator: str | None = "v1"):
        self.data = data
        self.validator = validator
        self.script: list[tuple[str, int]] = []
        self.calls: list[tuple[int, str | None]] = []

    def location(self, resource: str) -> str:
        return f"mem:///{resource}"

    @contextmanager
    def stream_range(self, resource: str, max_size: int | None, offset: int = 0, *,
                     if_range: str | None = None) -> Iterator[Chunks]:
        self.calls.append((offset, if_range))
        how, n = self.script.pop(0) if self.script else ("ok", 0)
        fresh = how == "whole" or (if_range is not None and if_range != self.validator)
        start = 0 if fresh else offset

        def chunks() -> Iterator[bytes]:
            sent = 0
            for i in range(start, len(self.data), 1000):
                block = self.data[i:i + 1000]
                if how == "drop" and sent + len(block) > n:
                    yield block[:n - sent]
                    raise TransientError("connection broken", file=resource)
                sent += len(block)
                yield block
                if how == "short" and sent >= n:
                    return

        yield Chunks(chunks(), start=start, requested=offset, size=len(self.data),
                     validator=self.validator)


def test_a_broken_body_is_resumed_from_where_it_broke(tmp_path: Path) -> None:
    src = MemorySource()
    src.script = [("drop", 3000), ("drop", 2500)]
    seen: list[int] = []
    download_file(src, "f.tar.gz", tmp_path / "f.tar.gz", expected_length=len(DATA),
                  part_path=None, progress=seen.append, guard=SpeedRule().guard("mem", None),
                  retry=policy())
    assert (tmp_path / "f.tar.gz").read_bytes() == DATA
    assert src.calls == [(0, None), (3000, "v1"), (5500, "v1")]
    assert seen[0] == 0 and seen[-1] == len(DATA) and seen == sorted(seen)
    assert not (tmp_path / "f.tar.gz.part").exists()
    assert not (tmp_path / "f.tar.gz.part.meta").exists()


def test_a_changed_file_restarts_the_part(tmp_path: Path) -> None:
    part_path = tmp_path / "f.part"
    part_path.write_bytes(DATA[:4000])
    part_path.with_name("f.part.meta").write_text(json.dumps(
        {"source": "mem:///f", "validator": "old"}))
    src = MemorySource(validator="new")
    seen: list[int] = []
    part = PartFile(part_path, "mem:///f")
    fetch_part(src, "f", part, length=len(DATA), guard=SpeedRule().guard("mem", None),
               retry=policy(), progress=seen.append)
    assert part_path.read_bytes() == DATA and part.size == len(DATA)
    assert src.calls == [(4000, "old")]
    assert seen[:2] == [4000, 0]  # back to 0 when the source sent the whole file
    assert json.loads(part_path.with_name("f.part.meta").read_text())["validator"] == "new"


def test_a_part_from_another_source_is_dropped(tmp_path: Path) -> None:
    part_path = tmp_path / "f.part"
    part_path.write_bytes(b"garbage")
    part_path.with_name("f.part.meta").write_text(json.dumps(
        {"source": "mem:///elsewhere", "validator": "v1"}))
    assert PartFile(part_path, "mem:///f").size == 0 and not part_path.exists()


def test_a_longer_file_removes_the_part(tmp_path: Path) -> None:
    part = PartFile(tmp_path / "f.part", "mem:///f")
    with pytest.raises(SizeLimitError, match=str(len(DATA) - 1)):
        fetch_part(MemorySource(), "f", part, length=len(DATA) - 1,
                   guard=SpeedRule().guard("mem", None), retry=policy())
    assert not part.path.exists() and part.size == 0


def test_a_short_body_is_retried_only_when_it_must_complete(tmp_path: Path) -> None:
    src = MemorySource()
    src.script = [("short", 2000)]
    part = PartFile(tmp_path / "a.part", "mem:///f")
    fetch_part(src, "f", part, length=len(DATA), guard=SpeedRule().guard("mem", None),
               retry=policy(), must_complete=True)
    assert part.path.read_bytes() == DATA and src.calls == [(0, None), (2000, "v1")]

    src = MemorySource()
    src.script = [("short", 2000)]
    part = PartFile(tmp_path / "b.part", "mem:///f")
    fetch_part(src, "f", part, length=len(DATA), guard=SpeedRule().guard("mem", None),
               retry=policy())
    assert part.size == 2000 and len(src.calls) == 1  # the caller's hash check decides


def test_without_a_policy_one_attempt_and_the_part_is_kept(tmp_path: Path) -> None:
    src = MemorySource()
    src.script = [("drop", 1500)]
    part = PartFile(tmp_path / "f.part", "mem:///f")
    with pytest.raises(TransientError):
        fetch_part(src, "f", part, length=None, guard=SpeedRule().guard("mem", None))
    assert part.size == 1500 and part.path.read_bytes() == DATA[:1500]
    fetch_part(src, "f", PartFile(part.path, "mem:///f"), length=None,
               guard=SpeedRule().guard("mem", None))
    assert part.path.read_bytes() == DATA and src.calls[-1] == (1500, "v1")


def test_a_complete_part_needs_no_request(tmp_path: Path) -> None:
    src = MemorySource()
    part_path = tmp_path / "f.part"
    part_path.write_bytes(DATA)
    part_path.with_name("f.part.meta").write_text(json.dumps(
        {"source": "mem:///f", "validator": "v1"}))
    fetch_part(src, "f", PartFile(part_path, "mem:///f"), length=len(DATA),
               guard=SpeedRule().guard("mem", None), retry=policy())
    assert src.calls == []
