"""`GET /metrics` after real traffic on a server with two worker processes, read with
prometheus_client's own text parser: every request counted once whichever worker answered
it, bytes, the duration histogram, publishes and uploads by reason, staged uploads, and
the seconds until each role expires (exact: the server's clock is fixed)."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from browser import poll
from publishkit import make_tarball
from serverkit import (
    Samples,
    build,
    make_setup,
    post_manifest,
    raw,
    scrape,
    start_server,
    upload,
    value,
)

DAY = 86400


def test_metrics_count_real_traffic_across_workers(tmp_path: Path) -> None:
    setup = make_setup(tmp_path)
    srv = start_server(setup.mirror, "--key-dir", str(setup.keys), "--workers", "2",
                       workdir=tmp_path)
    try:
        # start_server's readiness check: the one HEAD /root.json that answered 200
        requests: Counter[tuple[str, int]] = Counter({("manifest", 200): 1})
        sent: Counter[str] = Counter()

        def get(path: str, route: str, method: str = "GET") -> None:
            status, _, body = raw(srv, method, path)
            requests[(route, status)] += 1
            sent[route] += len(body)

        with ThreadPoolExecutor(8) as pool:  # many connections: both workers answer
            for f in [pool.submit(raw, srv, "GET", "/timestamp.json") for _ in range(200)]:
                status, _, body = f.result()
                requests[("manifest", status)] += 1
                sent["manifest"] += len(body)
        tarball = sorted(p.name for p in setup.mirror.glob("hello-*.tar.gz"))[0]
        for _ in range(3):
            get("/root.json", "manifest")
        get("/nope.json", "manifest")
        get(f"/{tarball}", "tarball")
        get(f"/{tarball}", "tarball", "HEAD")
        get("/keys/private.json", "other")
        get("/ui/", "ui")
        # the publish API: one upload and publish accepted, then refusals with reasons
        tb = make_tarball(tmp_path / "h2.tar.gz", body=b"#!/bin/sh\necho two\n")
        data, name = build(setup, "v0.0.2", tb)
        for status, _, body in (upload(srv, "s1", tb, name), post_manifest(srv, "s1", data),
                                post_manifest(srv, "s9", b"not json"),
                                raw(srv, "POST", "/api/v1/tarball/bad!sid", b"")):
            requests[("api", status)] += 1
            sent["api"] += len(body)
        # one upload left staged (no manifest follows)
        staged = make_tarball(tmp_path / "h3.tar.gz", body=b"#!/bin/sh\necho three\n" * 50)
        status, _, body = upload(srv, "s2", staged, "hello-v0.0.3-linux-amd64.tar.gz")
        assert status == 200
        requests[("api", 200)] += 1
        sent["api"] += len(body)

        def settled() -> Samples | None:
            samples, _ = scrape(srv)
            for (route, status), n in requests.items():
                if value(samples, "tiup_http_requests_total", route=route,
                         status=str(status)) != n:
                    return None
            return samples

        samples = poll(settled, "every worker's counts in the scrape")
        _, content_type = scrape(srv)
        assert content_type == "text/plain; version=0.0.4; charset=utf-8"
        assert requests[("manifest", 200)] == 204 and requests[("api", 400)] == 2
        for route, n in sent.items():
            assert value(samples, "tiup_http_response_bytes_total", route=route) == n, route
        # the histogram counts each request once, in its route
        for route in ("manifest", "tarball", "other", "ui", "api"):
            total = sum(n for (r, _s), n in requests.items() if r == route)
            assert value(samples, "tiup_http_request_duration_seconds_count",
                         route=route) == total
            assert value(samples, "tiup_http_request_duration_seconds_bucket", route=route,
                         le="+Inf") == total
        assert value(samples, "tiup_uploads_total", outcome="accepted", reason="ok") == 2
        assert value(samples, "tiup_uploads_total", outcome="refused",
                     reason="invalid_request") == 1
        assert value(samples, "tiup_publishes_total", kind="component", outcome="accepted",
                     reason="ok") == 1
        assert value(samples, "tiup_publishes_total", kind="component", outcome="refused",
                     reason="invalid_manifest") == 1
        assert value(samples, "tiup_upload_sessions") == 1
        assert value(samples, "tiup_upload_staged_bytes") == staged.stat().st_size
        assert value(samples, "tiup_upload_staged_bytes_limit") == 16 << 30

        # the mirror's gauges follow the published state (the monitor reads it again)
        def republished() -> Samples | None:
            samples, _ = scrape(srv)
            ok = value(samples, "tiup_mirror_verification_ok") == 1 and \
                value(samples, "tiup_mirror_manifest_version", role="index") is not None
            return samples if ok and value(samples, "tiup_mirror_components") == 1 and \
                value(samples, "tiup_mirror_last_publish_timestamp_seconds") else None

        samples = poll(republished, "the mirror gauges")
        doc = json.loads((setup.mirror / "timestamp.json").read_bytes())
        poll(lambda: value(scrape(srv)[0], "tiup_mirror_manifest_version", role="timestamp")
             == doc["signed"]["version"], "the timestamp version after the publish")
        samples, _ = scrape(srv)
        # TIUP_TEST_NOW is 2026-01-01: the expiry is exact
        assert value(samples, "tiup_mirror_expiry_seconds", role="timestamp") == 365 * DAY
        assert value(samples, "tiup_mirror_expiry_seconds", role="snapshot") == 365 * DAY
        assert value(samples, "tiup_mirror_expiry_seconds", role="root") == 3650 * DAY
        assert value(samples, "tiup_mirror_expiry_seconds", role="index") == 3650 * DAY
        assert value(samples, "tiup_mirror_expiry_seconds", role="component") == 1825 * DAY
        assert value(samples, "tiup_mirror_state_verified") == 1
        assert value(samples, "tiup_mirror_verification_problems", severity="error") == 0
        # counters never go back between scrapes
        again, _ = scrape(srv)
        for key, v in samples.items():
            if key[0].endswith("_total") and key in again:
                assert again[key] >= v, key
    finally:
        srv.stop()
