"""`tiup mirror clone s3://BUCKET/PREFIX`: a clone into a bucket of a real Ceph RGW, verified,
incremental on re-runs, resumed after a SIGKILL at any S3 request, and installable from
over anonymous HTTP."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

import s3kill
from clonekit import (
    component_tarballs,
    copy_upstream,
    publish_version,
    watch_ahead,
)
from publishkit import make_tarball
from s3kit import Bucket
from tiup.repository.clone import flow


def verify_ok(tiup, url: str, *, orphans_ok: bool = False) -> None:  # type: ignore[no-untyped-def]
    r = tiup("mirror", "verify", url)
    assert r.returncode == 0 and ": 0 errors" in r.stdout, r.output
    warns = [line for line in r.stdout.splitlines() if line.startswith("WARN")]
    if orphans_ok:
        assert all("not referenced by any manifest" in w for w in warns), r.output
    else:
        assert not warns, r.output


def tarballs(bucket: Bucket) -> set[str]:
    return component_tarballs(bucket.objects())


def test_clone_into_a_bucket_and_reclone(tiup, bucket: Bucket, template: tuple[Path, Path],
                                         tmp_path: Path) -> None:
    mirror, key = copy_upstream(template, tmp_path / "up")
    keys = tmp_path / "clone-keys"
    args = ("mirror", "clone", bucket.url, "--full", "-o", "linux", "-a", "amd64",
            "--source", str(mirror), "--key-dir", str(keys))
    r = tiup(*args)
    assert r.returncode == 0, r.output
    assert "10 files downloaded" in r.stdout, r.output
    assert len(tarballs(bucket)) == 10
    assert not [k for k in bucket.objects() if "keys/" in k]  # private keys stay local
    assert len(list(keys.glob("*-pingcap.json"))) == 1
    verify_ok(tiup, bucket.url)
    # the bootstrap copy install scripts fetch: the newest stable tiup, copied in the bucket
    assert bucket.get("tiup-linux-amd64.tar.gz") == bucket.get("tiup-v1.16.1-linux-amd64.tar.gz")
    assert "tiup-darwin-arm64.tar.gz" not in r.stdout  # only the platforms cloned
    root = bucket.get("root.json")

    new = publish_version(mirror, key, "tidb", "v8.5.3", "linux/amd64")
    r = tiup(*args)
    assert r.returncode == 0, r.output
    assert "1 files downloaded" in r.stdout, r.output
    assert new in tarballs(bucket) and bucket.get("root.json") == root
    verify_ok(tiup, bucket.url)
    ts = bucket.get("timestamp.json")
    r = tiup(*args)
    assert r.returncode == 0 and "0 files downloaded" in r.stdout, r.output
    assert bucket.get("timestamp.json") == ts  # nothing new: nothing rewritten

    # a client without credentials installs from the bucket over plain HTTP
    bucket.rgw.client().put_bucket_policy(Bucket=bucket.name, Policy=(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
        f'"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::{bucket.name}/*"]}}]}}'))
    env = {"TIUP_HOME": str(tmp_path / "client"), "AWS_ACCESS_KEY_ID": "",
           "AWS_SECRET_ACCESS_KEY": ""}
    assert tiup("mirror", "set", bucket.http, env=env).returncode == 0
    r = tiup("tidb:v8.5.3", env=env, subprocess=True)
    assert r.returncode == 0 and r.stdout.strip() == "tidb v8.5.3 linux/amd64", r.output


RUNS = 10


def test_sigkill_during_clone_then_the_next_run_completes(
        tiup, bucket: Bucket, template: tuple[Path, Path], tmp_path: Path) -> None:
    mirror, key = copy_upstream(template, tmp_path / "up")
    keys = tmp_path / "clone-keys"
    args = ["mirror", "clone", bucket.url, "--tidb", "all", "-o", "linux", "-a", "amd64",
            "--source", str(mirror), "--key-dir", str(keys)]
    r = tiup(*args)
    assert r.returncode == 0, r.output
    env = dict(os.environ)
    publish_version(mirror, key, "tidb", "v8.6.100", "linux/amd64")
    ops = s3kill.trace(args, env=env, log=tmp_path / "trace.log")
    assert "PutObject" in ops
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    points = sorted(set(rng.sample(range(1, len(ops) + 1), min(RUNS, len(ops)))) | {len(ops)})
    for run, at in enumerate(points):
        new = publish_version(mirror, key, "tidb", f"v8.6.{run}", "linux/amd64")
        where = s3kill.kill_at(args, env=env, at=at, marker=tmp_path / f"mark-{run}")
        r = tiup("mirror", "verify", bucket.url)
        if r.returncode != 0:  # killed between its snapshot and timestamp PUTs only
            assert at == len(ops) and "interrupted between snapshot.json and timestamp.json" \
                in r.stdout, (seed, at, where, r.output)
        r = tiup(*args)
        assert r.returncode == 0, (seed, at, where, r.output)
        assert new in tarballs(bucket)
        verify_ok(tiup, bucket.url, orphans_ok=True)


def test_a_fresh_clone_killed_before_its_commit_leaves_a_mirror_and_its_keys(
        tiup, bucket: Bucket, template: tuple[Path, Path], tmp_path: Path) -> None:
    mirror, _key = copy_upstream(template, tmp_path / "up")
    env = dict(os.environ)

    def args(url: str, keys: Path) -> list[str]:
        return ["mirror", "clone", url, "--full", "-o", "linux", "-a", "amd64",
                "--source", str(mirror), "--key-dir", str(keys)]

    # the same clone into another prefix, to count its requests
    ops = s3kill.trace(args(f"s3://{bucket.name}/traced", tmp_path / "tk"), env=env,
                       log=tmp_path / "trace.log")
    # the commit's snapshot and timestamp PUTs, then the bootstrap copy of tiup
    timestamp = len(ops) - ops[::-1].index("PutObject")
    assert ops[timestamp - 2:] == ["PutObject", "PutObject", "HeadObject", "HeadObject",
                                   "CopyObject"], ops
    keys = tmp_path / "clone-keys"
    # killed before the final commit's snapshot.json: the new keys are saved and the
    # new, empty mirror they sign was written while the tarballs uploaded
    where = s3kill.kill_at(args(bucket.url, keys), env=env, at=timestamp - 1,
                           marker=tmp_path / "mark")
    assert where.endswith("PutObject"), where
    saved = {p.name: p.read_bytes() for p in keys.iterdir()}
    assert len(saved) == 7, sorted(saved)  # 3 root, index, snapshot, timestamp, pingcap
    assert len(component_tarballs(k for k in bucket.objects()
                                  if k.startswith(f"{bucket.prefix}/"))) == 10
    verify_ok(tiup, bucket.url, orphans_ok=True)  # the empty mirror; tarballs unnamed yet
    r = tiup(*args(bucket.url, keys))
    assert r.returncode == 0, r.output
    # the run went on with the saved keys: clients that trusted the new root still do
    assert {p.name: p.read_bytes() for p in keys.iterdir()} == saved
    verify_ok(tiup, bucket.url, orphans_ok=True)


def test_a_local_clone_of_a_public_bucket_skips_the_bootstrap_copies_it_lacks(
        tiup, bucket: Bucket, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    for args in (("mirror", "init", bucket.url, "--key-dir", str(keys), "--public-read"),
                 ("mirror", "genkey"),
                 ("mirror", "--repo", bucket.url, "grant", "alice", "--key-dir", str(keys))):
        r = tiup(*args)
        assert r.returncode == 0, r.output
    tar = make_tarball(tmp_path / "hello.tar.gz")
    r = tiup("mirror", "--repo", bucket.url, "publish", "hello", "v0.0.1", str(tar), "hello",
             "--os", "linux", "--arch", "amd64", "--key-dir", str(keys))
    assert r.returncode == 0, r.output
    # anonymous HTTP: RGW answers 403 (not 404) for the missing tiup-linux-amd64.tar.gz,
    # which the clone treats as absent, as a 404
    r = tiup("mirror", "clone", str(tmp_path / "local"), "--full", "-o", "linux", "-a",
             "amd64", "--source", bucket.http)
    assert r.returncode == 0, r.output
    assert "TiUP doesn't have linux/amd64, skipped" in r.output, r.output
    assert (tmp_path / "local" / "hello-v0.0.1-linux-amd64.tar.gz").is_file()


def test_the_manifests_are_signed_while_the_tarballs_upload(
        tiup, bucket: Bucket, template: tuple[Path, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each upload waits until the manifests are signed: a clone that signed them only
    after its uploads could not get past the first one (the wait would run out)."""
    mirror, _key = copy_upstream(template, tmp_path / "up")
    signed, used = watch_ahead(monkeypatch)
    waited: list[bool] = []
    monkeypatch.setattr(flow, "upload_hook",
                        lambda name, path: waited.append(signed.wait(s3kill.REACH_TIMEOUT)))
    args = ("mirror", "clone", bucket.url + "/ahead", "--full", "-o", "linux", "-a", "amd64",
            "--source", str(mirror), "--key-dir", str(tmp_path / "k1"))
    r = tiup(*args)
    assert r.returncode == 0, r.output
    assert len(waited) == 10 and all(waited), waited
    assert used == [True]
    verify_ok(tiup, bucket.url + "/ahead")
    ahead = [line for line in r.stdout.splitlines() if line.startswith("Cloned ")]

    # the same clone signing after the uploads writes the same objects, says the same
    monkeypatch.setattr(flow, "_sign_ahead", lambda *args, **kwargs: None)
    monkeypatch.setattr(flow, "upload_hook", None)
    r = tiup("mirror", "clone", bucket.url + "/after", *args[3:-1], str(tmp_path / "k2"))
    assert r.returncode == 0, r.output
    verify_ok(tiup, bucket.url + "/after")
    assert ahead and ahead == [line for line in r.stdout.splitlines()
                               if line.startswith("Cloned ")], r.output
    names = {k.split("/", 1)[1]: k for k in bucket.objects()}
    assert {n for n in names if n.startswith("ahead/")} == \
        {"ahead/" + n.split("/", 1)[1] for n in names if n.startswith("after/")}


def test_the_bootstrap_copy_in_a_bucket_follows_what_was_cloned(
        tiup, bucket: Bucket, template: tuple[Path, Path], tmp_path: Path) -> None:
    """Without a cloned `tiup`, the source's own (unsigned) bootstrap file is carried,
    with a warning, as into a directory; once `tiup` is cloned, the verified copy
    replaces it; a re-run that changes nothing writes nothing."""
    mirror, _key = copy_upstream(template, tmp_path / "up")
    (mirror / "tiup-linux-amd64.tar.gz").write_bytes(b"the source's own, in no manifest")
    base = ("mirror", "clone", bucket.url, "-o", "linux", "-a", "amd64", "--source",
            str(mirror), "--key-dir", str(tmp_path / "keys"))
    r = tiup(*base, "--tidb", "v8.5.1")
    assert r.returncode == 0, r.output
    assert "tiup-linux-amd64.tar.gz is the source's own file, downloaded without " \
           "verification" in r.output, r.output
    assert bucket.get("tiup-linux-amd64.tar.gz") == \
        (mirror / "tiup-linux-amd64.tar.gz").read_bytes()
    verify_ok(tiup, bucket.url)

    r = tiup(*base, "--tidb", "v8.5.1", "--tiup", "v1.16.0")
    assert r.returncode == 0, r.output
    assert "without verification" not in r.output, r.output
    assert bucket.get("tiup-linux-amd64.tar.gz") == \
        bucket.get("tiup-v1.16.0-linux-amd64.tar.gz")
    verify_ok(tiup, bucket.url)

    ops = s3kill.trace([*base, "--tidb", "v8.5.1", "--tiup", "v1.16.0"],
                       env=dict(os.environ), log=tmp_path / "trace.log")
    assert "CopyObject" not in ops and "PutObject" not in ops, " ".join(ops)


def test_clone_from_a_private_bucket(tiup, bucket: Bucket, template: tuple[Path, Path],
                                     tmp_path: Path) -> None:
    """`--source s3://…`: a bucket read with credentials (no anonymous reads), verified as
    any source (its root trusted on first use, with a warning), into a directory and into
    another prefix of the bucket; the bucket itself as the target is refused."""
    mirror, _key = copy_upstream(template, tmp_path / "up")
    base = ("-o", "linux", "-a", "amd64", "--full", "--key-dir")
    r = tiup("mirror", "clone", bucket.url, *base, str(tmp_path / "k1"), "--source",
             str(mirror))
    assert r.returncode == 0, r.output

    out = tmp_path / "offline"
    r = tiup("mirror", "clone", str(out), *base, str(tmp_path / "k2"), "--source", bucket.url)
    assert r.returncode == 0, r.output
    assert f"trusting the root of {bucket.url} on first use" in r.output, r.output
    assert "10 files downloaded" in r.stdout, r.output
    assert component_tarballs(p.name for p in out.iterdir()) == tarballs(bucket)
    r = tiup("mirror", "verify", str(out))
    assert r.returncode == 0 and ": 0 errors" in r.stdout, r.output

    other = f"s3://{bucket.name}/copy"
    r = tiup("mirror", "clone", other, *base, str(tmp_path / "k3"), "--source", bucket.url)
    assert r.returncode == 0, r.output
    verify_ok(tiup, other)

    before = bucket.objects()
    r = tiup("mirror", "clone", bucket.url + "/", *base, str(tmp_path / "k4"), "--source",
             bucket.url)
    assert r.returncode == 2 and "the source mirror is the target" in r.output, r.output
    assert bucket.objects() == before
