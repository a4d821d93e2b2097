"""The guide's flow (搭建私有镜像) on a mirror in a bucket of a real Ceph RGW: init, genkey,
grant, package, publish, modify, renew, rotate, merge, prune, clone, each result passing
`tiup mirror verify s3://…`, and a fresh client installing and running a component over
anonymous HTTP from the bucket."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from nginx import stop_nginx_process
from publishkit import make_tarball
from s3kit import Bucket, start_cache


def ok(tiup, *args: str, **kw) -> str:  # type: ignore[no-untyped-def]
    r = tiup(*args, **kw)
    assert r.returncode == 0, r.output
    return str(r.output)


def verified(tiup, url: str) -> str:  # type: ignore[no-untyped-def]
    out = ok(tiup, "mirror", "verify", url)
    assert ": 0 errors, 0 warnings" in out, out
    return out


def test_guide_flow_on_a_bucket(tiup, bucket: Bucket, tmp_path: Path) -> None:
    url, keys = bucket.url, tmp_path / "keys"
    out = ok(tiup, "mirror", "init", url, "--key-dir", str(keys), "--public-read")
    assert str(keys) in out and "never in the bucket" in out
    # private keys stay on this machine: nothing in the bucket holds a private key
    assert not [k for k in bucket.objects() if "keys/" in k or k.endswith("-root.json")]
    assert len(list(keys.glob("*-root.json"))) == 3
    verified(tiup, url)
    ok(tiup, "mirror", "genkey")
    ok(tiup, "mirror", "--repo", url, "grant", "alice", "--key-dir", str(keys))
    verified(tiup, url)
    # tiup package, as the guide makes the tarball
    hello = tmp_path / "hello"
    hello.write_text("#!/bin/sh\necho hello one\n")
    hello.chmod(0o755)
    ok(tiup, "package", "hello", "--entry", "hello", "--name", "hello", "--release", "v0.0.1",
       "--os", "linux", "--arch", "amd64")
    tar1 = tmp_path / "package" / "hello-v0.0.1-linux-amd64.tar.gz"
    tar2 = make_tarball(tmp_path / "hello-2.tar.gz", body=b"#!/bin/sh\necho hello two\n")
    out = ok(tiup, "mirror", "--repo", url, "publish", "hello", "v0.0.1", str(tar1), "hello",
             "--os", "linux", "--arch", "amd64", "--key-dir", str(keys))
    assert f"Published hello v0.0.1 (linux/amd64) to {url}" in out
    ok(tiup, "mirror", "--repo", url, "publish", "hello", "v0.0.2", str(tar2), "hello",
       "--os", "linux", "--arch", "amd64", "--key-dir", str(keys))
    verified(tiup, url)
    # the same version again with the same bytes: nothing to do; other bytes: refused
    out = ok(tiup, "mirror", "--repo", url, "publish", "hello", "v0.0.2", str(tar2), "hello",
             "--os", "linux", "--arch", "amd64", "--key-dir", str(keys))
    assert "nothing to do" in out
    r = tiup("mirror", "--repo", url, "publish", "hello", "v0.0.2", str(tar1), "hello",
             "--os", "linux", "--arch", "amd64", "--key-dir", str(keys))
    assert r.returncode == 1 and "different content" in r.stderr, r.output
    ok(tiup, "mirror", "--repo", url, "modify", "hello:v0.0.1", "--yank", "--key-dir",
       str(keys))
    verified(tiup, url)
    ok(tiup, "mirror", "--repo", url, "renew", "--key-dir", str(keys))
    verified(tiup, url)
    # a second owner takes over a component (signed by both owners)
    from tiup.keys import generate, save_private_key

    bob = tmp_path / "bob.json"
    save_private_key(bob, generate())
    ok(tiup, "mirror", "--repo", url, "grant", "bob", "-k", str(bob), "--key-dir", str(keys))
    tar3 = make_tarball(tmp_path / "side.tar.gz", entry="side")
    ok(tiup, "mirror", "--repo", url, "publish", "side", "v1.0.0", str(tar3), "side",
       "--os", "linux", "--arch", "amd64", "--key-dir", str(keys))
    ok(tiup, "mirror", "--repo", url, "transfer-owner", "side", "bob", "-k", str(bob),
       "--key-dir", str(keys))
    index_meta = json.loads(bucket.get("snapshot.json"))["signed"]["meta"]["/index.json"]
    index = json.loads(bucket.get(f"{index_meta['version']}.index.json"))["signed"]
    assert index["components"]["side"]["owner"] == "bob"
    verified(tiup, url)
    ok(tiup, "mirror", "--repo", url, "rotate", "--days", "4000", "--key-dir", str(keys))
    assert "2.root.json" in [k.split("/")[-1] for k in bucket.objects()]
    verified(tiup, url)
    # merge a local mirror of custom components into the bucket
    custom, ckeys = tmp_path / "custom", tmp_path / "custom-keys"
    ok(tiup, "mirror", "init", str(custom), "--key-dir", str(ckeys))
    ok(tiup, "mirror", "--repo", str(custom), "grant", "alice", "--key-dir", str(ckeys))
    tool = make_tarball(tmp_path / "tool.tar.gz", entry="tool")
    ok(tiup, "mirror", "--repo", str(custom), "publish", "tool", "v1.0.0", str(tool), "tool",
       "--os", "linux", "--arch", "amd64", "--key-dir", str(ckeys))
    out = ok(tiup, "mirror", "--repo", url, "merge", str(custom), "--key-dir", str(keys))
    assert "merged tool: v1.0.0 linux/amd64" in out
    verified(tiup, url)
    # prune the yanked version's tarball
    out = ok(tiup, "mirror", "--repo", url, "prune", "--yanked", "--yes", "--key-dir",
             str(keys))
    assert "hello-v0.0.1-linux-amd64.tar.gz" in out
    assert f"{bucket.prefix}/hello-v0.0.1-linux-amd64.tar.gz" not in bucket.objects()
    verified(tiup, url)
    # a fresh client, no credentials at all: plain HTTP to the bucket
    client_env = {"TIUP_HOME": str(tmp_path / "client"), "AWS_ACCESS_KEY_ID": "",
                  "AWS_SECRET_ACCESS_KEY": ""}
    ok(tiup, "mirror", "set", bucket.http, env=client_env)
    r = tiup("hello", env=client_env, subprocess=True)
    assert r.returncode == 0 and "hello two" in r.stdout, r.output
    r = tiup("install", "tool", env=client_env)
    assert r.returncode == 0, r.output
    index = json.loads(bucket.get("snapshot.json"))["signed"]["meta"]
    assert "/tool.json" in index and "/hello.json" in index
    # a client that pins the first root walks the chain: 2.root.json, then 3.root.json,
    # which an anonymous reader of a bucket gets as 403 (not 404): the end of the chain
    first_root = tmp_path / "1.root.json"
    first_root.write_bytes(bucket.get("1.root.json"))
    pinned_env = {**client_env, "TIUP_HOME": str(tmp_path / "pinned-client")}
    ok(tiup, "mirror", "set", bucket.http, "--root", str(first_root), env=pinned_env)
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(bucket.http + "/3.root.json")
    assert missing.value.code == 403
    r = tiup("hello", env=pinned_env, subprocess=True)
    assert r.returncode == 0 and "hello two" in r.stdout, r.output

    # the same through the nginx cache of deploy/nginx/tiup-s3-cache.conf
    cache = start_cache(bucket, tmp_path / "nginx")
    try:
        cached_env = {**client_env, "TIUP_HOME": str(tmp_path / "cached-client")}
        ok(tiup, "mirror", "set", cache.url, env=cached_env)
        r = tiup("hello", env=cached_env, subprocess=True)
        assert r.returncode == 0 and "hello two" in r.stdout, r.output
        tarball = cache.url + "/hello-v0.0.2-linux-amd64.tar.gz"
        for expected in ("HIT",):
            with urllib.request.urlopen(tarball) as resp:
                assert resp.headers["X-Cache-Status"] == expected
                assert resp.read() == tar2.read_bytes()
        # timestamp.json is never cached: a publish shows at once through the cache
        with urllib.request.urlopen(cache.url + "/timestamp.json") as resp:
            assert resp.headers.get("X-Cache-Status", "") in ("", "BYPASS")
            assert resp.headers["Cache-Control"] == "no-cache"
        ok(tiup, "mirror", "--repo", url, "publish", "hello", "v0.0.3", str(tar1), "hello",
           "--os", "linux", "--arch", "amd64", "--key-dir", str(keys))
        with urllib.request.urlopen(cache.url + "/timestamp.json") as resp:
            assert resp.read() == bucket.get("timestamp.json")
        r = tiup("install", "hello:v0.0.3", env=cached_env)
        assert r.returncode == 0, r.output
        # a missing file is a 404 (S3 says 403 to anonymous readers)
        try:
            urllib.request.urlopen(cache.url + "/nothing-v1-linux-amd64.tar.gz")
            raise AssertionError("expected 404")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
    finally:
        stop_nginx_process(cache.process)


def test_unusable_addresses_fail_in_one_line(tiup, bucket: Bucket, tmp_path: Path) -> None:
    r = tiup("mirror", "init", "s3://Bad_Bucket/x", "--key-dir", str(tmp_path / "k"))
    assert r.returncode != 0 and "invalid bucket name" in r.stderr
    assert "Traceback" not in r.output
    r = tiup("mirror", "verify", f"s3://{bucket.name}/../x")
    assert r.returncode != 0 and "invalid prefix" in r.stderr and "Traceback" not in r.output
    r = tiup("mirror", "verify", "s3://no-such-bucket-here/m")
    assert r.returncode == 2 and "does not exist" in r.output, r.output
    r = tiup("mirror", "--repo", bucket.url, "renew", "--key-dir", str(tmp_path / "k"))
    assert r.returncode == 1 and "not a mirror" in r.stderr, r.output
    ok(tiup, "mirror", "init", bucket.url, "--key-dir", str(tmp_path / "k"))
    r = tiup("mirror", "init", bucket.url, "--key-dir", str(tmp_path / "k2"))
    assert r.returncode == 1 and "not empty" in r.stderr, r.output
    r = tiup("mirror", "set", bucket.url)
    assert r.returncode == 2 and "over HTTP(S)" in r.stderr, r.output
    r = tiup("mirror", "init", str(tmp_path / "dir"), "--public-read")
    assert r.returncode == 2 and "s3:// mirrors only" in r.stderr, r.output


def test_hostile_keys_in_the_bucket_are_ignored(tiup, bucket: Bucket, tmp_path: Path) -> None:
    """Keys a listing returns are names from outside: only plain mirror names are used."""
    keys = tmp_path / "keys"
    ok(tiup, "mirror", "init", bucket.url, "--key-dir", str(keys))
    client = bucket.rgw.client()
    hostile = ["sp ace-v1-linux-amd64.tar.gz", "a/../../b-v1-linux-amd64.tar.gz",
               "x\\y-v1-linux-amd64.tar.gz", "deep/a/b/c/d/e/f/g/h/i.tar.gz"]
    for name in hostile:
        client.put_object(Bucket=bucket.name, Key=f"{bucket.prefix}/{name}", Body=b"junk")
    verified(tiup, bucket.url)
    out = ok(tiup, "mirror", "--repo", bucket.url, "prune", "--orphans", "--grace", "0",
             "--yes", "--key-dir", str(keys))
    assert "nothing to prune" in out, out
    assert all(f"{bucket.prefix}/{n}" in bucket.objects() for n in hostile)


def test_each_newer_tiup_replaces_the_bootstrap_copy_in_the_bucket(
        tiup, bucket: Bucket, tmp_path: Path) -> None:
    """`tiup-linux-amd64.tar.gz` (the unsigned copy install scripts fetch) follows the
    newest stable `tiup` published into a bucket; it used to be written create-only, so
    the second `tiup` ever published failed."""
    url, keys = bucket.url, tmp_path / "keys"
    ok(tiup, "mirror", "init", url, "--key-dir", str(keys))
    ok(tiup, "mirror", "genkey")
    ok(tiup, "mirror", "--repo", url, "grant", "alice", "--key-dir", str(keys))
    built = {}
    for version in ("v1.0.0", "v1.1.0", "v1.0.1"):
        built[version] = make_tarball(tmp_path / f"tiup-{version}.tar.gz", entry="tiup",
                                      body=f"#!/bin/sh\necho {version}\n".encode())
        ok(tiup, "mirror", "--repo", url, "publish", "tiup", version, str(built[version]),
           "tiup", "--os", "linux", "--arch", "amd64", "--key-dir", str(keys))
        verified(tiup, url)
        newest = "v1.0.0" if version == "v1.0.0" else "v1.1.0"  # v1.0.1 is not the newest
        assert bucket.get("tiup-linux-amd64.tar.gz") == built[newest].read_bytes(), version
