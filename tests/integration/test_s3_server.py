"""Stateless servers over one bucket (`tiup mirror serve s3://BUCKET/PREFIX`): two instances
behind "a load balancer" — a tarball uploaded to one, the manifest POSTed to the other, the
publish lands — and 64 concurrent verified readers during publishes never see an
inconsistent state."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

from browser import poll
from publishkit import make_tarball
from s3kit import Bucket
from serverkit import ServerProc, post_manifest, raw, scrape, start_server, upload, value
from tiup import trust
from tiup.hashing import FileInfo
from tiup.keys import load_private_key
from tiup.manifest.names import ComponentId, VersionStr
from tiup.reader import MirrorReader
from tiup.repository.publish import plan_publish
from tiup.repository.s3_storage import S3Storage
from tiup.repository.store import Store, sign
from tiup.transport.http import HTTPFetcher

PLAT = "linux/amd64"


def ok(tiup, *args: str, **kw) -> str:  # type: ignore[no-untyped-def]
    r = tiup(*args, **kw)
    assert r.returncode == 0, r.output
    return str(r.output)


def bucket_with_hello(tiup, bucket: Bucket, tmp_path: Path,  # type: ignore[no-untyped-def]
                      clean_home: Path) -> tuple[Path, Path]:
    """A mirror in the bucket where owner alice (this home's key) published hello v0.0.1;
    (the mirror's key directory, alice's key)."""
    keys = tmp_path / "keys"
    ok(tiup, "mirror", "init", bucket.url, "--key-dir", str(keys))
    ok(tiup, "mirror", "genkey")
    ok(tiup, "mirror", "--repo", bucket.url, "grant", "alice", "--key-dir", str(keys))
    first = make_tarball(tmp_path / "h0.tar.gz")
    ok(tiup, "mirror", "--repo", bucket.url, "publish", "hello", "v0.0.1", str(first), "hello",
       "--os", "linux", "--arch", "amd64", "--key-dir", str(keys))
    return keys, clean_home / "keys" / "private.json"


def manifest(bucket: Bucket, owner_key: Path, version: str, tarball: Path) -> tuple[bytes, str]:
    """hello's next manifest adding ``version``, signed by its owner (as a client builds it)."""
    now = datetime.now(UTC)
    with Store(S3Storage(bucket.url), now=now) as store:
        plan = plan_publish(store, ComponentId("hello"), VersionStr(version), PLAT, "hello",
                            FileInfo.of_file(tarball), desc="", overwrite=False, now=now)
    assert plan.manifest is not None
    return sign(plan.manifest, [load_private_key(owner_key)]), plan.tarball_name


def test_two_instances_one_bucket(tiup, bucket: Bucket, tmp_path: Path,
                                  clean_home: Path) -> None:
    keys, owner_key = bucket_with_hello(tiup, bucket, tmp_path, clean_home)
    servers: list[ServerProc] = []
    try:
        for _ in range(2):
            servers.append(start_server(bucket.url, "--key-dir", str(keys), workdir=tmp_path,  # type: ignore[arg-type]
                                        env={"TIUP_TEST_NOW": ""}))
        a, b = servers
        # the upload goes to A, the manifest to B: the session lives in the bucket
        tar = make_tarball(tmp_path / "h1.tar.gz", body=b"#!/bin/sh\necho one\n")
        data, name = manifest(bucket, owner_key, "v1.0.0", tar)
        status, _h, body = upload(a, "sess-1", tar, name)
        assert status == 200, body
        assert any("/.upload/sess-1/" in k for k in bucket.objects())
        status, _h, body = post_manifest(b, "sess-1", data)
        assert status == 200, body
        assert not any("/.upload/" in k for k in bucket.objects())  # the session is done
        meta = json.loads(bucket.get("snapshot.json"))["signed"]["meta"]["/hello.json"]
        comp = json.loads(bucket.get(f"{meta['version']}.hello.json"))["signed"]
        assert "v1.0.0" in comp["platforms"][PLAT]
        assert bucket.get(name) == tar.read_bytes()
        # files are served by either instance
        resp = a.pool().request("GET", f"{a.url}/{name}")
        assert resp.status == 200 and resp.data == tar.read_bytes()
        r = a.pool().request("GET", f"{b.url}/{name}", headers={"Range": "bytes=2-5"})
        assert r.status == 206 and r.data == tar.read_bytes()[2:6]
        assert a.pool().request("GET", f"{a.url}/.upload/x").status == 404

        # 64 verified readers over both instances while clients publish through them
        root = bucket.get("root.json")
        stop = threading.Event()
        errors: list[str] = []
        reads = [0]
        lock = threading.Lock()

        def reader(url: str) -> None:
            with HTTPFetcher(url) as fetcher:
                while not stop.is_set() or reads[0] < 64:
                    try:
                        r = MirrorReader(fetcher, trust.TrustedState(root, datetime.now(UTC)))
                        r.refresh()
                        r.component("hello")
                    except Exception as exc:  # an inconsistent state, seen by a client
                        with lock:
                            errors.append(f"{type(exc).__name__}: {exc}")
                        return
                    with lock:
                        reads[0] += 1

        threads = [threading.Thread(target=reader, args=(servers[i % 2].url,))
                   for i in range(64)]
        for t in threads:
            t.start()
        try:
            for i in range(2):
                tb = make_tarball(tmp_path / f"p{i}.tar.gz", body=f"echo {i}\n".encode())
                srv = servers[i % 2]
                ok(tiup, "mirror", "--repo", srv.url, "publish", "hello", f"v2.0.{i}", str(tb),
                   "hello", "--os", "linux", "--arch", "amd64")
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert not errors, errors[:5]
        # an upload never followed by its manifest: removed by prune --orphans
        status, _h, body = upload(b, "abandoned", tar, name)
        assert status == 200, body
        out = ok(tiup, "mirror", "--repo", bucket.url, "prune", "--orphans", "--grace", "0",
                 "--yes", "--key-dir", str(keys))
        assert ".upload/abandoned/" in out
        assert not any("/.upload/" in k for k in bucket.objects())
        assert reads[0] >= 64
        r = tiup("mirror", "verify", bucket.url)
        assert r.returncode == 0 and ": 0 errors, 0 warnings" in r.stdout, r.output
    finally:
        for srv in servers:
            srv.stop()


def test_each_instance_has_the_web_page_and_metrics(tiup, bucket: Bucket, tmp_path: Path,
                                                      clean_home: Path) -> None:
    """Two instances on one bucket: each shows the bucket's verified state on its page and
    in its gauges, and both follow a publish made through the other; each counts its own
    requests and API outcomes; staged sessions are the bucket's."""
    keys, owner_key = bucket_with_hello(tiup, bucket, tmp_path, clean_home)
    servers: list[ServerProc] = []
    try:
        for _ in range(2):
            servers.append(start_server(bucket.url, "--key-dir", str(keys),  # type: ignore[arg-type]
                                        "--workers", "2", workdir=tmp_path,
                                        env={"TIUP_TEST_NOW": ""}))
        a, b = servers

        def page(srv: ServerProc, path: str) -> bytes:
            status, headers, body = raw(srv, "GET", path)
            assert status == 200 and headers["content-type"].startswith("text/html"), body
            return body

        for srv in servers:
            poll(lambda srv=srv: b"v0.0.1" in page(srv, "/ui/component/hello"),
                 "the page shows the bucket's component")
        # a publish: the tarball to A, the manifest to B; then one upload left staged on B
        tar = make_tarball(tmp_path / "h1.tar.gz", body=b"#!/bin/sh\necho one\n")
        data, name = manifest(bucket, owner_key, "v1.0.0", tar)
        assert upload(a, "s1", tar, name)[0] == 200
        assert post_manifest(b, "s1", data)[0] == 200
        left = make_tarball(tmp_path / "h2.tar.gz", body=b"#!/bin/sh\necho two\n" * 40)
        assert upload(b, "s2", left, "hello-v2.0.0-linux-amd64.tar.gz")[0] == 200
        timestamp = json.loads(bucket.get("timestamp.json"))["signed"]["version"]
        for srv in servers:  # each instance's monitor saw the publish made through B
            poll(lambda srv=srv: b"v1.0.0" in page(srv, "/ui/component/hello"),
                 "the page shows the new version")

            def current(srv: ServerProc = srv) -> object:
                samples, _ = scrape(srv)
                return value(samples, "tiup_mirror_manifest_version", role="timestamp") == \
                    timestamp and value(samples, "tiup_mirror_verification_ok") == 1 and samples

            samples = poll(current, "the gauges of the published state")
            assert value(samples, "tiup_mirror_components") == 1
            assert value(samples, "tiup_mirror_expiry_seconds", role="timestamp") > 0  # type: ignore[operator]
            assert value(samples, "tiup_upload_sessions") == 1  # the bucket's, seen by both
            assert value(samples, "tiup_upload_staged_bytes") == left.stat().st_size
            assert value(samples, "tiup_upload_staged_bytes_limit") is None
        # each instance counts what it answered
        sa, _ = scrape(a)
        sb, content_type = scrape(b)
        assert content_type == "text/plain; version=0.0.4; charset=utf-8"
        assert value(sa, "tiup_uploads_total", outcome="accepted", reason="ok") == 1
        assert value(sa, "tiup_publishes_total", kind="component", outcome="accepted",
                     reason="ok") is None
        assert value(sb, "tiup_publishes_total", kind="component", outcome="accepted",
                     reason="ok") == 1
        assert value(sb, "tiup_uploads_total", outcome="accepted", reason="ok") == 1
        status, _h, body = raw(a, "GET", f"/{name}")
        assert status == 200 and body == tar.read_bytes()

        def tarball_counted() -> object:
            samples, _ = scrape(a)
            return value(samples, "tiup_http_requests_total", route="tarball",
                         status="200") == 1 and samples

        samples = poll(tarball_counted, "the tarball GET counted, on either worker")
        assert value(samples, "tiup_http_response_bytes_total", route="tarball") == \
            tar.stat().st_size
    finally:
        for srv in servers:
            srv.stop()


def test_rotate_through_a_stateless_server(tiup, bucket: Bucket, tmp_path: Path,
                                           clean_home: Path) -> None:
    """`POST /api/v1/rotate` on a bucket: refusals leave the bucket as it was; a root
    signed by the root keys lands, and the bucket verifies."""
    from serverkit import jerr
    from tiup.manifest.models import Root
    from tiup.repository.admin import next_root
    from tiup.repository.keyring import load_keyring
    from tiup.repository.lifetimes import Lifetimes

    keys, _owner = bucket_with_hello(tiup, bucket, tmp_path, clean_home)
    srv = start_server(bucket.url, "--key-dir", str(keys), workdir=tmp_path,  # type: ignore[arg-type]
                       env={"TIUP_TEST_NOW": ""})
    try:
        before = bucket.get("root.json")
        old = trust.load(before, "root.json", Root)[1]
        now = datetime.now(UTC)
        ring = load_keyring([keys])
        signers = [k for kid, k in ring.keys.items() if kid in old.roles["root"].keys]
        assert jerr(raw(srv, "POST", "/api/v1/rotate", b"[1,2"))[:2] == (400, "INVALID MANIFEST")
        new = next_root(old, now, Lifetimes().root)
        status, code, msg = jerr(raw(srv, "POST", "/api/v1/rotate", sign(new, signers[:1])))
        assert (status, code) == (403, "FORBIDDEN"), msg
        stale = next_root(old, now, Lifetimes().root)
        stale.version = old.version
        assert jerr(raw(srv, "POST", "/api/v1/rotate", sign(stale, signers)))[:2] == \
            (409, "MANIFEST CONFLICT")
        assert bucket.get("root.json") == before
        assert f"{bucket.prefix}/{old.version + 1}.root.json" not in bucket.objects()

        status, _h, body = raw(srv, "POST", "/api/v1/rotate", sign(new, signers))
        assert status == 200, body
        assert trust.load(bucket.get("root.json"), "root.json", Root)[1].version == \
            old.version + 1
        assert f"{bucket.prefix}/{old.version + 1}.root.json" in bucket.objects()
        r = tiup("mirror", "verify", bucket.url)
        assert r.returncode == 0 and ": 0 errors" in r.stdout, r.output
    finally:
        srv.stop()
