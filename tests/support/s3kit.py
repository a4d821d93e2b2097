"""A real S3 server for the object-storage tests: Ceph RGW from ``../shared/s3``.

One cluster serves the whole test run, whatever the number of xdist workers: every worker
calls ``start-s3`` on the same directory (next to the workers' temporary directories),
which boots the cluster once and, run again, only prints the same exports; a reference
count under a ``flock`` lets the last worker out run ``stop-s3 --purge``. Each test gets
its own bucket (:func:`new_bucket`). Where ``../shared/s3`` is absent (a user's clone) the
tests skip and say why.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SHARED_S3 = Path(__file__).resolve().parents[3] / "shared" / "s3"
#: the variables start-s3 exports, plus how tiup and boto3 find the endpoint
ENV_KEYS = ("S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION")


@dataclass(frozen=True)
class RGW:
    """The running cluster: its endpoint and the environment that reaches it."""

    endpoint: str
    env: dict[str, str]

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name=self.env["AWS_DEFAULT_REGION"],
            config=Config(s3={"addressing_style": "path"},
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"))


def _parse_exports(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export "):].partition("=")
            env[key] = value.strip().strip("'\"")
    missing = [k for k in ENV_KEYS if k not in env]
    assert not missing, f"start-s3 did not export {missing}: {text!r}"
    env["AWS_ENDPOINT_URL"] = env["S3_ENDPOINT_URL"]
    env["TIUP_S3_ADDRESSING_STYLE"] = "path"
    return env


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def shared_rgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RGW]:
    """The session fixture's body (see the module docstring)."""
    if not (SHARED_S3 / "start-s3").is_file():
        pytest.skip(f"the S3 tests need Ceph RGW from {SHARED_S3}, which this checkout lacks "
                    "(it is in the project workspace only)")
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by all workers of this run
    directory = base / "rgw"
    count = base / "rgw.users"
    lock = base / "rgw.lock"
    with _locked(lock):
        users = int(count.read_text() or "0") if count.exists() else 0
        count.write_text(str(users + 1))
    proc = subprocess.run([str(SHARED_S3 / "start-s3"), str(directory)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"start-s3 failed:\n{proc.stderr[-3000:]}"
    env = _parse_exports(proc.stdout)
    try:
        yield RGW(env["S3_ENDPOINT_URL"], env)
    finally:
        with _locked(lock):
            users = int(count.read_text() or "1") - 1
            count.write_text(str(users))
            if users <= 0:
                subprocess.run([str(SHARED_S3 / "stop-s3"), str(directory), "--purge"],
                               capture_output=True, timeout=120, check=False)


def new_bucket(rgw: RGW, *, public: bool = False) -> str:
    """A new, empty bucket; with ``public`` anyone may GET its objects."""
    name = f"t-{secrets.token_hex(6)}"
    rgw.client().create_bucket(Bucket=name)
    return name


@dataclass(frozen=True)
class Bucket:
    """A test's bucket and the mirror address in it."""

    rgw: RGW
    name: str
    prefix: str = "mirror"

    @property
    def url(self) -> str:
        return f"s3://{self.name}/{self.prefix}"

    @property
    def http(self) -> str:
        """The mirror over plain HTTP (anonymous reads, once public)."""
        return f"{self.rgw.endpoint}/{self.name}/{self.prefix}"

    def objects(self) -> list[str]:
        client = self.rgw.client()
        out: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.name):
            out.extend(o["Key"] for o in page.get("Contents", []))
        return sorted(out)

    def get(self, name: str) -> bytes:
        body = self.rgw.client().get_object(Bucket=self.name, Key=f"{self.prefix}/{name}")
        data: bytes = body["Body"].read()
        return data


CACHE_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "tiup-s3-cache.conf"


def render_cache(port: int, cache_dir: Path, origin: str, prefix: str) -> str:
    """The shipped caching config with only its EDIT lines and ``listen`` changed."""
    import re

    text = CACHE_CONF.read_text()
    host = origin.split("://", 1)[1].rstrip("/")
    edits = [
        (r"(?m)^proxy_cache_path\s+\S+", f"proxy_cache_path {cache_dir}"),
        (r"(?m)^(\s*)server\s+[0-9.:]+;", rf"\g<1>server {host};"),
        (r"(?m)^(\s*)listen\s+[^;]+;", rf"\g<1>listen 127.0.0.1:{port};"),
        (r"(?m)^(\s*)set \$tiup_prefix [^;]+;", rf"\g<1>set $tiup_prefix {prefix};"),
    ]
    for pattern, repl in edits:
        text, n = re.subn(pattern, repl, text, count=1)
        assert n == 1, f"{CACHE_CONF} lost the line {pattern}"
    return text


def start_cache(bucket: Bucket, work: Path) -> Any:
    """nginx with deploy/nginx/tiup-s3-cache.conf in front of ``bucket``'s mirror;
    returns the :class:`nginx.NginxServer`."""
    import socket
    import time

    import nginx

    binary = nginx.find_nginx()
    if binary is None:
        pytest.fail("nginx is not installed (scripts/setup-test-env installs it)")
    work.mkdir(parents=True, exist_ok=True)
    (work / "main.conf").write_text(nginx._main_conf(work, binary))
    port = nginx._free_port()
    (work / "site.conf").write_text(render_cache(port, work / "cache", bucket.rgw.endpoint,
                                                 f"/{bucket.name}/{bucket.prefix}"))
    proc = subprocess.Popen([binary, "-p", str(work), "-e", str(work / "error.log"), "-c",
                             str(work / "main.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60  # only reached when nginx fails to start
    while True:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            pytest.fail(f"nginx did not start: {err}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "nginx never listened"
            time.sleep(0.02)
    return nginx.NginxServer(f"http://127.0.0.1:{port}", work / "access.log",
                             work / "error.log", proc)
