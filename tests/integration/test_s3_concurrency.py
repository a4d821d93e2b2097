"""Many writers on one bucket at once, and writers killed at any S3 request (real Ceph RGW).

No lock service: the conditional PUTs of the commit protocol decide (docs/adr/0008). Every
accepted publish must be present, the mirror must verify, timestamp versions must only
grow (one per commit: no lost update), and the same version published twice with
different bytes must leave one winner and one clear conflict. A writer SIGKILLed before
any of its requests leaves a mirror that verifies (or, killed between its snapshot and
timestamp PUTs, one the next write completes), and the next writer succeeds.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import s3kill
from publishkit import make_tarball
from s3kit import Bucket


def ok(tiup, *args: str, **kw) -> str:  # type: ignore[no-untyped-def]
    r = tiup(*args, **kw)
    assert r.returncode == 0, r.output
    return str(r.output)


def signed(bucket: Bucket, name: str) -> dict:  # type: ignore[type-arg]
    doc: dict = json.loads(bucket.get(name))["signed"]  # type: ignore[type-arg]
    return doc


def verify(tiup, url: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    r = tiup("mirror", "verify", url)
    return r.returncode, str(r.output)


@pytest.fixture
def mirror(tiup, bucket: Bucket, tmp_path: Path) -> tuple[Bucket, Path]:  # type: ignore[no-untyped-def]
    """An s3 mirror with owner alice (the default key) and hello v0.0.0 published."""
    keys = tmp_path / "keys"
    ok(tiup, "mirror", "init", bucket.url, "--key-dir", str(keys))
    ok(tiup, "mirror", "genkey")
    ok(tiup, "mirror", "--repo", bucket.url, "grant", "alice", "--key-dir", str(keys))
    tar = make_tarball(tmp_path / "hello-0.tar.gz")
    publish(tiup, bucket, keys, "hello", "v0.0.0", tar)
    return bucket, keys


def publish_args(bucket: Bucket, keys: Path, comp: str, version: str, tar: Path) -> list[str]:
    # --lock-timeout: how long a writer keeps retrying lost races; generous, so that a
    # loaded machine (scripts/test --stress) cannot make a writer give up
    return ["mirror", "--repo", bucket.url, "publish", comp, version, str(tar), comp,
            "--os", "linux", "--arch", "amd64", "--key-dir", str(keys), "--lock-timeout", "900"]


def publish(tiup, bucket: Bucket, keys: Path, comp: str, version: str,  # type: ignore[no-untyped-def]
            tar: Path) -> None:
    ok(tiup, *publish_args(bucket, keys, comp, version, tar))


def spawn(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tiup", *args], env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_twelve_concurrent_publishers_all_land(tiup, mirror: tuple[Bucket, Path],
                                               tmp_path: Path) -> None:
    bucket, keys = mirror
    start = signed(bucket, "timestamp.json")["version"]
    jobs: list[tuple[str, str]] = [("hello", f"v0.1.{i}") for i in range(8)]
    jobs += [(f"tool{i}", "v1.0.0") for i in range(4)]
    tars = {job: make_tarball(tmp_path / f"{job[0]}-{job[1]}.tar.gz", entry=job[0],
                              body=f"#!/bin/sh\necho {job}\n".encode()) for job in jobs}
    seen: list[int] = []
    stop = threading.Event()
    client = bucket.rgw.client()

    def watch() -> None:  # a reader polling the commit point all along
        while not stop.is_set():
            body = client.get_object(Bucket=bucket.name, Key=f"{bucket.prefix}/timestamp.json")
            seen.append(json.loads(body["Body"].read())["signed"]["version"])

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        procs = {job: spawn(publish_args(bucket, keys, *job, tars[job])) for job in jobs}
        results = {job: (p.wait(timeout=600), p.communicate()) for job, p in procs.items()}
    finally:
        stop.set()
        watcher.join()
    failed = {job: r for job, r in results.items() if r[0] != 0}
    assert not failed, failed
    current = signed(bucket, "snapshot.json")["meta"]["/hello.json"]["version"]
    hello = json.loads(bucket.get(f"{current}.hello.json"))
    versions = set(hello["signed"]["platforms"]["linux/amd64"])
    assert versions == {"v0.0.0"} | {f"v0.1.{i}" for i in range(8)}
    index_meta = signed(bucket, "snapshot.json")["meta"]
    assert all(f"/tool{i}.json" in index_meta for i in range(4))
    # the commit point only moved forward, as a reader polling it saw (a commit a writer
    # finished for another one counts once for both: hence no exact count)
    assert seen == sorted(seen) and seen[0] >= start
    assert start < signed(bucket, "timestamp.json")["version"] <= start + 2 * len(jobs)
    code, out = verify(tiup, bucket.url)
    assert code == 0 and ": 0 errors" in out, out


def test_same_version_with_different_bytes_one_wins(tiup, mirror: tuple[Bucket, Path],
                                                    tmp_path: Path) -> None:
    bucket, keys = mirror
    a = make_tarball(tmp_path / "a.tar.gz", body=b"#!/bin/sh\necho A\n")
    b = make_tarball(tmp_path / "b.tar.gz", body=b"#!/bin/sh\necho B\n")
    procs = [spawn(publish_args(bucket, keys, "hello", "v2.0.0", t)) for t in (a, b)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 1], results
    loser = next(r for r in results if r[0] == 1)
    assert ("other bytes" in loser[2] or "different content" in loser[2]), loser
    assert "Traceback" not in loser[2]
    winner = a if results[0][0] == 0 else b
    stored = bucket.get("hello-v2.0.0-linux-amd64.tar.gz")
    assert stored == winner.read_bytes()
    code, out = verify(tiup, bucket.url)
    assert code == 0 and ": 0 errors" in out, out


RUNS = 10


def test_sigkill_at_random_requests_of_a_publish(tiup, mirror: tuple[Bucket, Path],
                                                 tmp_path: Path) -> None:
    bucket, keys = mirror
    env = dict(os.environ)
    traced = make_tarball(tmp_path / "t.tar.gz", body=b"#!/bin/sh\necho traced\n")
    ops = s3kill.trace(publish_args(bucket, keys, "hello", "v3.0.0", traced), env=env,
                       log=tmp_path / "trace.log")
    assert "PutObject" in ops
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    points = sorted(rng.sample(range(1, len(ops) + 1), min(RUNS, len(ops))))
    # always the last request too: the PUT of timestamp.json, the commit point
    points = sorted(set(points) | {len(ops)})
    for run, at in enumerate(points):
        tar = make_tarball(tmp_path / f"k{run}.tar.gz", body=f"echo {run}\n".encode())
        where = s3kill.kill_at(publish_args(bucket, keys, "hello", f"v4.0.{run}", tar),
                               env=env, at=at, marker=tmp_path / f"mark-{run}")
        code, out = verify(tiup, bucket.url)
        if code != 0:
            # only a kill between the snapshot and timestamp PUTs leaves this state
            assert at == len(ops) and "interrupted between snapshot.json and timestamp.json" \
                in out, (seed, at, where, out)
        nxt = make_tarball(tmp_path / f"n{run}.tar.gz", body=f"echo next {run}\n".encode())
        publish(tiup, bucket, keys, "hello", f"v5.0.{run}", nxt)
        code, out = verify(tiup, bucket.url)
        assert code == 0 and ": 0 errors" in out, (seed, at, where, out)
        # warnings only for what the killed writer uploaded and never committed
        warns = [line for line in out.splitlines() if line.startswith("WARN")]
        assert all("not referenced by any manifest" in w for w in warns), (seed, at, out)
    # what the killed writers uploaded but never committed goes with prune --orphans
    out = ok(tiup, "mirror", "--repo", bucket.url, "prune", "--orphans", "--grace", "0",
             "--yes", "--key-dir", str(keys))
    live = signed(bucket, "snapshot.json")["meta"]
    comp = json.loads(bucket.get(f"{live['/hello.json']['version']}.hello.json"))["signed"]
    referenced = {i["url"].lstrip("/") for i in comp["platforms"]["linux/amd64"].values()}
    left = [k.split("/")[-1] for k in bucket.objects() if k.endswith(".tar.gz")]
    assert set(left) == referenced, (out, left)
    code, out = verify(tiup, bucket.url)
    assert code == 0 and ": 0 errors, 0 warnings" in out, out
