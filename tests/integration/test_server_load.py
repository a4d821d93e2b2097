"""64 concurrent verifying clients download from the real server while publishes land.

Each client thread runs the real trust path (timestamp → snapshot hash → index → component
signature → tarball length/sha256/sha512) in a loop; a publisher pushes new versions through
the publish API meanwhile. No client may ever fail a check, and the server must stay up.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from publishkit import ENV, NOW, assert_valid, make_tarball
from serverkit import PLAT, PLAT_ARGS, make_setup, start_server
from tiup.client.profile import Profile
from tiup.client.updater import Updater
from tiup.manifest import versions
from tiup.transport.http import HTTPFetcher

CLIENTS = 64
PUBLISHES = 3
#: Generous: only a server that stalls its clients (a lock held across requests) takes
#: this long, however busy the machine (~15 s when idle, ~25 s with both cores loaded).
TIME_LIMIT = 120.0


def test_64_clients_while_publishing(tmp_path: Path) -> None:
    setup = make_setup(tmp_path / "data")
    srv = start_server(setup.mirror, "--key-dir", str(setup.keys), "--workers", "2",
                       workdir=tmp_path)
    errors: list[str] = []
    seen: set[str] = set()
    rounds = [0] * CLIENTS
    last = [""] * CLIENTS
    warmed = [threading.Event() for _ in range(CLIENTS)]
    done = threading.Event()
    started = time.monotonic()

    def client(i: int) -> None:
        profile = Profile(home=tmp_path / "homes" / str(i), env={})
        fetcher = HTTPFetcher(srv.url, retries=3, backoff_base=0.05)
        try:
            # rounds go on until one that began after the last publish has ended
            while True:
                finishing = done.is_set()
                up = Updater(profile, srv.url, NOW, fetcher=fetcher)
                up.refresh()
                comp = up.component("hello")
                plat = comp.platforms[PLAT]
                latest = versions.sort_versions(list(plat))[-1]
                item = plat[latest]
                data = fetcher.fetch(item.url, item.length)
                if (len(data) != item.length or hashlib.sha256(data).hexdigest() != item.sha256
                        or hashlib.sha512(data).hexdigest() != item.sha512):
                    errors.append(f"client {i}: {item.url} does not match its manifest")
                seen.add(latest)
                last[i] = latest
                rounds[i] += 1
                warmed[i].set()
                if finishing and rounds[i] >= 2:
                    break
        except Exception as exc:
            errors.append(f"client {i}: {type(exc).__name__}: {exc}")
        finally:
            warmed[i].set()
            fetcher.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    env = {**os.environ, **ENV, "TIUP_HOME": str(tmp_path / "publisher"),
           "TIUP_PUBLISH_BACKOFF": "0.05"}
    published: list[str] = []
    try:
        for w in warmed:  # every client has verified the first version before any publish
            assert w.wait(TIME_LIMIT), "a client never finished its first round"
        for n in range(PUBLISHES):
            tb = make_tarball(tmp_path / f"p{n}.tar.gz", body=os.urandom(200_000),
                              entry="hello", extra={"x": b"#!/bin/sh\n"})
            r = subprocess.run(
                [sys.executable, "-m", "tiup", "mirror", "--repo", srv.url, "publish", "hello",
                 f"v1.0.{n}", str(tb), "hello", "-k", str(setup.owner_key), *PLAT_ARGS],
                env=env, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            published.append(f"v1.0.{n}")
    finally:
        done.set()
        for t in threads:
            t.join(TIME_LIMIT)
    elapsed = time.monotonic() - started
    try:
        assert srv.proc.poll() is None, srv.log()
        assert srv.pool().request("GET", f"{srv.url}/timestamp.json").status == 200
    finally:
        assert srv.stop() == 0
    assert errors == [], errors[:5]
    assert all(n >= 2 for n in rounds), rounds
    assert elapsed <= TIME_LIMIT, elapsed
    assert f"v1.0.{PUBLISHES - 1}" in seen and len(seen) >= 2, seen
    assert set(last) == {f"v1.0.{PUBLISHES - 1}"}, last  # every client ends on the newest
    assert_valid(setup.mirror)
