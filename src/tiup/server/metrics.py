"""``GET /metrics``: Prometheus text format, correct across granian's worker processes.

Counters are kept per worker in plain dictionaries (a request costs about a microsecond:
three dictionary updates and a bisect), and each worker writes its cumulative totals to
its own file, ``<state>/metrics/<pid>-<token>.json``, on the access log's 0.2 s tick
when they changed. A scrape (answered by whichever worker the connection reaches)
writes its own file first, then adds up every worker's file, so every request counted
anywhere is in the sum and none twice; a request on another worker shows up at most
0.2 s later. Files of workers that stopped stay, so counters never go back while the
server runs (``docs/adr/0007-metrics-prometheus-client.md`` explains why this and not
prometheus_client's multiprocess mode). Gauges are computed at scrape time from their
source of truth: the verified catalog (expiry of each role) and the upload directory
(sessions and staged bytes).

The exposition format is written by ``prometheus_client`` (custom collector families
and ``generate_latest``), imported only when a scrape arrives.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from tiup.errors import ManifestError
from tiup.manifest.timefmt import parse_time

METRICS_DIR = "metrics"
#: Upper bounds (seconds) of the request duration histogram's buckets.
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
           0.5, 1.0, 2.5, 5.0, 10.0)
#: Route classes (the ``route`` label): bounded, whatever paths clients send.
ROUTES = ("manifest", "tarball", "file", "api", "ui", "metrics", "other")
#: Event counters and their label names.
EVENTS = {
    "tiup_publishes_total": ("kind", "outcome", "reason"),
    "tiup_uploads_total": ("outcome", "reason"),
}
_HELP = {
    "tiup_publishes_total": "Publish API writes (kind component or root) by outcome and "
                            "reason (the API's status code, ok when accepted).",
    "tiup_uploads_total": "Tarball uploads to the publish API by outcome and reason.",
}


def route_class(path: str) -> str:
    """The ``route`` label of a static-file request path (never unbounded)."""
    name = path[1:]
    if not name or "/" in name:
        return "other"
    if name.endswith(".tar.gz"):
        return "tarball"
    if name.endswith(".json"):
        return "manifest"
    return "file"


class WorkerMetrics:
    """The counters of one worker process; ``directory`` None keeps them in memory only."""

    def __init__(self, directory: str | None):
        self.directory = Path(directory) if directory else None
        self.path = (self.directory / f"{os.getpid()}-{secrets.token_hex(4)}.json"
                     if self.directory else None)
        self.requests: dict[tuple[str, int], int] = {}
        self.bytes: dict[str, int] = {}
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}
        self.events: dict[tuple[str, ...], int] = {}
        self._dirty = False

    def request(self, route: str, status: int, sent: int, seconds: float) -> None:
        """Count one answered request (the hot path: keep it small)."""
        key = (route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        if sent:
            self.bytes[route] = self.bytes.get(route, 0) + sent
        counts = self.buckets.get(route)
        if counts is None:
            counts = self.buckets[route] = [0] * (len(BUCKETS) + 1)
            self.sums[route] = 0.0
        counts[bisect_left(BUCKETS, seconds)] += 1
        self.sums[route] += seconds
        self._dirty = True

    def event(self, name: str, *labels: str) -> None:
        """Count one event of :data:`EVENTS` ``name`` with its label values."""
        key = (name, *labels)
        self.events[key] = self.events.get(key, 0) + 1
        self._dirty = True

    def totals(self) -> dict[str, Any]:
        """This worker's cumulative counters, as written to its file."""
        return {
            "requests": [[r, s, n] for (r, s), n in self.requests.items()],
            "bytes": dict(self.bytes),
            "hist": {r: [*c, self.sums[r]] for r, c in self.buckets.items()},
            "events": [[*k, n] for k, n in self.events.items()],
        }

    def flush(self) -> None:
        """Write this worker's totals to its file if they changed. Never raises."""
        if not self._dirty or self.path is None:
            return
        self._dirty = False
        data = json.dumps(self.totals(), separators=(",", ":")).encode()
        tmp = self.path.with_name(f".tmp-{self.path.name}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            os.replace(tmp, self.path)
        except OSError:
            self._dirty = True  # try again on the next tick

    def merged(self) -> dict[str, Any]:
        """Every worker's totals added up (this one's as of now)."""
        self.flush()
        parts: list[dict[str, Any]] = []
        own = self.path.name if self.path else None
        if self.directory is not None:
            with contextlib.suppress(OSError):
                for entry in os.scandir(self.directory):
                    if entry.name.startswith(".") or entry.name == own:
                        continue
                    with contextlib.suppress(OSError, ValueError):
                        doc = json.loads(Path(entry.path).read_bytes())
                        if isinstance(doc, dict):
                            parts.append(doc)
        parts.append(self.totals())
        return _add(parts)


def _add(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    requests: dict[tuple[str, int], int] = {}
    sent: dict[str, int] = {}
    hist: dict[str, list[float]] = {}
    events: dict[tuple[str, ...], int] = {}
    for doc in parts:
        for route, status, n in doc.get("requests", []):
            requests[(route, int(status))] = requests.get((route, int(status)), 0) + int(n)
        for route, n in doc.get("bytes", {}).items():
            sent[route] = sent.get(route, 0) + int(n)
        for route, values in doc.get("hist", {}).items():
            acc = hist.setdefault(route, [0.0] * (len(BUCKETS) + 2))
            if len(values) == len(acc):
                for i, v in enumerate(values):
                    acc[i] += v
        for *labels, n in doc.get("events", []):
            key = tuple(str(x) for x in labels)
            events[key] = events.get(key, 0) + int(n)
    return {"requests": requests, "bytes": sent, "hist": hist, "events": events}


# ------------------------------------------------------------------- exposition
def _seconds_until(expires: str, now: datetime) -> float | None:
    try:
        return (parse_time(expires) - now).total_seconds()
    except ManifestError:
        return None


def _epoch(text: str) -> float | None:
    try:
        return parse_time(text).timestamp()
    except ManifestError:
        return None


def families(totals: dict[str, Any], state: Any,
             sessions: tuple[int, int, int | None] | None, now: datetime) -> Iterator[Any]:
    """The metric families of a scrape.

    ``state`` is a :class:`tiup.server.ui.view.Status`; ``sessions`` is (upload sessions,
    staged bytes, staging limit, None where none is enforced) when the publish API is on.
    """
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )

    req = CounterMetricFamily("tiup_http_requests", "HTTP requests answered, by route class "
                              "and status.", labels=["route", "status"])
    for (route, status), n in sorted(totals["requests"].items()):
        req.add_metric([route, str(status)], n)
    yield req
    sent = CounterMetricFamily("tiup_http_response_bytes", "Response body bytes sent, by "
                               "route class (files: their length; granian sends them).",
                               labels=["route"])
    for route, n in sorted(totals["bytes"].items()):
        sent.add_metric([route], n)
    yield sent
    hist = HistogramMetricFamily("tiup_http_request_duration_seconds", "Time from a "
                                 "request's arrival to its response being handed to the "
                                 "HTTP server, by route class.", labels=["route"])
    for route, values in sorted(totals["hist"].items()):
        cumulative, running = [], 0.0
        for bound, count in zip((*BUCKETS, float("inf")), values[:-1], strict=True):
            running += count
            # the bounds are written as prometheus_client writes them (repr: 0.0001, 1.0)
            cumulative.append(("+Inf" if bound == float("inf") else repr(bound), running))
        hist.add_metric([route], cumulative, sum_value=values[-1])
    yield hist
    for name, labels in EVENTS.items():
        fam = CounterMetricFamily(name.removesuffix("_total"), _HELP[name], labels=list(labels))
        for key, n in sorted(totals["events"].items()):
            if key[0] == name and len(key) == len(labels) + 1:
                fam.add_metric(list(key[1:]), n)
        yield fam
    if sessions is not None:
        yield GaugeMetricFamily("tiup_upload_sessions", "Upload sessions staged now "
                                "(uploaded or being uploaded, manifest not yet posted).",
                                value=sessions[0])
        yield GaugeMetricFamily("tiup_upload_staged_bytes", "Bytes of uploads staged now.",
                                value=sessions[1])
        if sessions[2] is not None:
            yield GaugeMetricFamily("tiup_upload_staged_bytes_limit", "--max-staged-size.",
                                    value=sessions[2])
    yield from _mirror_families(state, now)


def _mirror_families(state: Any, now: datetime) -> Iterator[Any]:
    from prometheus_client.core import GaugeMetricFamily

    summary = state.summary
    ok = GaugeMetricFamily("tiup_mirror_state_verified", "1 if the mirror's current state "
                           "verified when last read (0: the page shows an older one).")
    ok.add_metric([], 0 if state.error or summary is None else 1)
    yield ok
    if summary is not None:
        expiry = GaugeMetricFamily("tiup_mirror_expiry_seconds", "Seconds until a role's "
                                   "manifest expires (negative: expired); role component is "
                                   "the component manifest that expires first.",
                                   labels=["role"])
        version = GaugeMetricFamily("tiup_mirror_manifest_version", "Version of each role's "
                                    "verified manifest.", labels=["role"])
        for name, role in summary.roles.items():
            left = _seconds_until(role.expires, now)
            if left is not None:
                expiry.add_metric([name], left)
            version.add_metric([name], role.version)
        comps = [s for c in summary.components if c.expires
                 if (s := _seconds_until(c.expires, now)) is not None]
        if comps:
            expiry.add_metric(["component"], min(comps))
        yield expiry
        yield version
        yield GaugeMetricFamily("tiup_mirror_components", "Components in the verified index.",
                                value=len(summary.components))
        last = summary.last_publish
        if last is not None and (when := _epoch(last.released)) is not None:
            yield GaugeMetricFamily("tiup_mirror_last_publish_timestamp_seconds", "Release "
                                    "time of the newest published version.", value=when)
    v = state.verification
    if isinstance(v, dict):
        result = v if v.get("state") == "done" else v.get("previous")
        if isinstance(result, dict):
            yield GaugeMetricFamily("tiup_mirror_verification_ok", "1 if the last "
                                    "verification of the mirror found no error.",
                                    value=1 if result.get("ok") else 0)
            problems = GaugeMetricFamily("tiup_mirror_verification_problems", "Problems the "
                                         "last verification found.", labels=["severity"])
            problems.add_metric(["error"], int(result.get("errors", 0)))
            problems.add_metric(["warning"], int(result.get("warnings", 0)))
            yield problems
            when = _epoch(str(result.get("finished", "")))
            if when is not None:
                yield GaugeMetricFamily("tiup_mirror_verification_timestamp_seconds", "When "
                                        "the last verification finished.", value=when)


def exposition(fams: Iterable[Any]) -> tuple[bytes, str]:
    """(body, content type) of the Prometheus text format."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

    collected = list(fams)

    class _Collector:
        def collect(self) -> Iterator[Any]:
            return iter(collected)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    # 0.0.4: the text format every Prometheus (2.x and 3.x) reads; the names used here
    # need none of the newer format's escaping, so the bytes are the same.
    return generate_latest(registry), CONTENT_TYPE_PLAIN_0_0_4
