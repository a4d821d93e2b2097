"""The web page and the metrics without a server: content negotiation, version order,
expiry colours, the monitor's catalog and verification on disk as a worker reads them,
the HTML's escaping and paging, and the metrics' merge across worker files."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from functools import cmp_to_key
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from publishkit import NOW, NOW_TEXT
from tiup.manifest import versions
from tiup.manifest.timefmt import format_time
from tiup.manifest.versions import sort_key as version_key
from tiup.server.metrics import BUCKETS, WorkerMetrics, exposition, families, route_class
from tiup.server.monitor import VERIFICATION, Monitor
from tiup.server.ui import render
from tiup.server.ui.routes import wants_html
from tiup.server.ui.view import StateView
from uikit import HOSTILE, Spec, make_ui_mirror

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("accept", "html"), [
    (None, False), ("", False), ("*/*", False), ("text/*", False),
    ("application/json", False), ("text/html", True), ("TEXT/HTML", True),
    ("text/html;q=0", False), ("text/html; q=0.0", False), ("text/html;q=0.5", True),
    ("text/html;q=abc", False), ("application/json, text/html;q=0.1", True),
    ("text/html-like", False), ("application/xhtml+xml", False),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
])
def test_who_gets_html(accept: str | None, html: bool) -> None:
    assert wants_html(accept) is html


@pytest.mark.parametrize(("path", "route"), [
    ("/timestamp.json", "manifest"), ("/12.tidb.json", "manifest"),
    ("/tidb-v1.0.0-linux-amd64.tar.gz", "tarball"), ("/local_install.sh", "file"),
    ("/", "other"), ("/keys/x.json", "other"), ("/a/b", "other"), ("/metrics", "file"),
])
def test_route_classes_are_bounded(path: str, route: str) -> None:
    assert route_class(path) == route


VERSIONS = ["v1.0.0", "v1.0.0-rc.1", "v1.0.0-rc.10", "v1.0.0-rc.2", "v1.0.0-alpha",
            "v1.0.0-alpha.1", "v1.0.0-alpha.beta", "v1.0.0-beta.11", "v1.0.0-1", "v2",
            "v2.0", "v10.0.0", "v1.10.0", "v1.9.9", "nightly", "v5.0.0-nightly-20200101",
            "garbage", "1.0.0", "v1.0.0+build", "v0.0.1"]


def test_version_key_orders_like_compare() -> None:
    assert sorted(VERSIONS, key=version_key) == sorted(VERSIONS,
                                                       key=cmp_to_key(versions.compare))


_PART = st.one_of(st.integers(0, 12).map(str), st.sampled_from(["rc", "alpha", "beta", "x"]))


@given(st.lists(st.builds(
    lambda a, b, c, pre: f"v{a}.{b}.{c}" + (f"-{'.'.join(pre)}" if pre else ""),
    st.integers(0, 3), st.integers(0, 3), st.integers(0, 3),
    st.lists(_PART, max_size=3)), max_size=12))
def test_version_key_matches_compare_on_generated_versions(items: list[str]) -> None:
    assert sorted(items, key=version_key) == sorted(items, key=cmp_to_key(versions.compare))


@pytest.mark.parametrize(("days", "css", "words"), [
    (3650, "expiry-ok", "3,650 days left"), (30, "expiry-ok", "30 days left"),
    (29.5, "expiry-warn", "29 days left: renew soon"),
    (7, "expiry-warn", "7 days left: renew soon"),
    (6.9, "expiry-bad", "6 days left: renew now"),
    (0.5, "expiry-bad", "less than a day left: renew now"),
    (0, "expiry-bad", "expired today"), (-1, "expiry-bad", "expired 1 day ago"),
    (-40, "expiry-bad", "expired 40 days ago"),
])
def test_expiry_colours(days: float, css: str, words: str) -> None:
    ex = render.expiry(format_time(NOW + timedelta(days=days)), NOW)
    assert (ex.css, ex.words) == (css, words)
    assert render.expiry("not a time", NOW).css == "expiry-bad"


@pytest.mark.parametrize(("n", "text"), [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"),
                                         (5 << 20, "5.0 MiB"), (3 << 30, "3.0 GiB")])
def test_sizes_in_binary_units(n: int, text: str) -> None:
    assert render.size_text(n) == text


# ------------------------------------------------------------ monitor → worker view
SMALL = {"hello": Spec(3, "Says hello"), "big": Spec(230, "many"),
         "sneaky": Spec(1, HOSTILE)}


def test_monitor_writes_what_workers_read(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIUP_TEST_NOW", NOW_TEXT)  # the monitor's clock
    made = make_ui_mirror(tmp_path / "m", SMALL)
    state = tmp_path / "state"
    monitor = Monitor(made.mirror, state)
    monitor.refresh()
    view = StateView(str(state))
    status = view.status()
    assert status.summary is not None and status.error is None
    s = status.summary
    assert [c.id for c in s.components] == ["big", "hello", "sneaky"]
    assert s.by_id["big"].latest == "v1.2.29" and s.by_id["big"].versions == 230
    assert s.by_id["big"].platforms == ("linux/amd64", "linux/arm64")
    assert s.roles["timestamp"].expires == format_time(NOW + timedelta(days=5))
    assert s.last_publish is not None and s.last_publish.version == "v1.2.29"
    verification = json.loads((state / VERIFICATION).read_bytes())
    assert verification["state"] == "done" and verification["ok"], verification
    rows = view.versions(s, "big")
    assert rows is not None and [v for v, _ in rows[:3]] == ["v1.2.29", "v1.2.28", "v1.2.27"]
    assert view.versions(s, "nope") is None
    # unchanged files: the same status object, no reload
    assert view.status() is status

    # pages: escaped text, paging bounds
    index = render.index_page(status, NOW)
    assert HOSTILE not in index and "&lt;img src=x onerror=" in index
    page = render.component_page(status, s.by_id["big"], rows, NOW, page=3)
    assert "Page 3 of 3: versions 201–230 of 230" in page
    assert page.count('<tr><th scope="row">') == 60  # 30 versions × 2 platforms
    assert "Page 1 of 1: no versions" in render.component_page(
        status, s.by_id["big"], rows, NOW, q="nothing-matches")

    # the mirror is damaged: the last good catalog stays, the error is shown
    ts = made.mirror / "timestamp.json"
    ts.write_bytes(ts.read_bytes()[:-5])
    monitor.refresh()
    damaged = view.status()
    assert damaged is not status
    assert damaged.summary is not None and damaged.summary.generation == s.generation
    assert damaged.error and "timestamp.json" in damaged.error
    assert damaged.verification is not None and damaged.verification["ok"] is False
    assert "does not verify" in render.index_page(damaged, NOW)

    # every metric the shipped alert rules use is one the server exports
    worker = WorkerMetrics(None)
    worker.request("manifest", 500, 10, 0.1)
    worker.event("tiup_publishes_total", "component", "refused", "forbidden")
    body, _ = exposition(families(worker.merged(), status, (0, 0, 1), NOW))
    exported = {s.name for f in text_string_to_metric_families(body.decode())
                for s in f.samples}
    rules = (REPO / "deploy" / "prometheus" / "tiup-mirror.rules.yml").read_text()
    used = set(re.findall(r"\b(tiup_[a-z_]+)", rules))
    assert used and used <= exported, used - exported


def test_view_without_a_state_directory() -> None:
    view = StateView(None)
    status = view.status()
    assert status.summary is None
    assert "being read" in render.index_page(status, NOW)


# ------------------------------------------------------------------------- metrics
def test_metrics_add_up_every_worker(tmp_path: Path) -> None:
    one, two = WorkerMetrics(str(tmp_path)), WorkerMetrics(str(tmp_path))
    for _ in range(3):
        one.request("manifest", 200, 100, 0.0003)
    two.request("manifest", 200, 50, 20.0)  # beyond the last bucket: +Inf
    two.request("tarball", 404, 60, 0.001)  # exactly on a bound: that bucket
    two.event("tiup_publishes_total", "component", "refused", "manifest_conflict")
    one.flush()
    two.flush()
    one.request("ui", 200, 10, 0.002)  # not flushed yet: the scraping worker adds its own
    merged = one.merged()
    assert merged["requests"] == {("manifest", 200): 4, ("tarball", 404): 1, ("ui", 200): 1}
    assert merged["bytes"] == {"manifest": 350, "tarball": 60, "ui": 10}
    status = StateView(None).status()
    body, content_type = exposition(families(merged, status, (2, 300, 1000), NOW))
    assert content_type.startswith("text/plain; version=0.0.4")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(body.decode()) for s in f.samples}
    hist = "tiup_http_request_duration_seconds_bucket"
    assert samples[(hist, (("le", "0.0005"), ("route", "manifest")))] == 3
    assert samples[(hist, (("le", "10.0"), ("route", "manifest")))] == 3
    assert samples[(hist, (("le", "+Inf"), ("route", "manifest")))] == 4
    assert samples[(hist, (("le", "0.001"), ("route", "tarball")))] == 1
    assert samples[("tiup_http_request_duration_seconds_sum", (("route", "manifest"),))] == \
        pytest.approx(20.0009)
    assert samples[("tiup_publishes_total", (("kind", "component"),
                                             ("outcome", "refused"),
                                             ("reason", "manifest_conflict")))] == 1
    assert samples[("tiup_upload_sessions", ())] == 2
    assert samples[("tiup_mirror_state_verified", ())] == 0
    assert len(BUCKETS) == len(set(BUCKETS))
    # a worker whose file is unreadable or torn is skipped, not fatal
    (tmp_path / "junk.json").write_bytes(b"{not json")
    assert one.merged()["requests"][("manifest", 200)] == 4
