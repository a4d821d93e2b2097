"""Run the real mirror server (``python -m tiup mirror serve``) in a subprocess for tests,
build the mirrors they serve, and send raw publish-API requests to it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import urllib3

from publishkit import ENV, NOW, make_tarball
from tiup.hashing import FileInfo
from tiup.keys import PrivateKey, generate, save_private_key
from tiup.manifest.names import ComponentId, VersionStr
from tiup.repository.admin import grant
from tiup.repository.init import init_mirror
from tiup.repository.keyring import load_keyring
from tiup.repository.publish import plan_publish
from tiup.repository.store import IndexFlags, Store, sign
from tiup.transport.publish_api import multipart_parts


def _plat() -> str:
    from tiup.cli.commands.mirror_publish import default_arch, default_os

    return f"{default_os()}/{default_arch()}"


#: The platform of this machine (what `tiup install` picks).
PLAT = _plat()
PLAT_ARGS = ("--os", PLAT.split("/")[0], "--arch", PLAT.split("/")[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProc:
    proc: subprocess.Popen[str]
    url: str
    log_path: Path
    ca: str | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pool(self) -> urllib3.PoolManager:
        return urllib3.PoolManager(ca_certs=self.ca, retries=False, timeout=10.0)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)  # generous: a busy machine shuts down slowly
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)


def start_server(mirror: Path, *args: str, workdir: Path, env: dict[str, str] | None = None,
                 tls: tuple[Path, Path, Path] | None = None, timeout: float = 60.0
                 ) -> ServerProc:
    """Start ``tiup mirror serve`` on a free 127.0.0.1 port and wait until it answers."""
    port = free_port()
    full_env = {**os.environ, **ENV, **(env or {})}
    extra = list(args)
    scheme = "http"
    ca = None
    if tls is not None:
        ca_path, cert, key = tls
        extra += ["--tls-cert", str(cert), "--tls-key", str(key)]
        scheme, ca = "https", str(ca_path)
    log_path = workdir / f"server-{port}.log"
    fh = open(log_path, "w")  # noqa: SIM115 - the child writes to it until it stops
    proc = subprocess.Popen(
        [sys.executable, "-m", "tiup", "mirror", "serve", str(mirror), "--addr",
         f"127.0.0.1:{port}", "--workers", "1", *extra],
        stdout=fh, stderr=subprocess.STDOUT, text=True, env=full_env, cwd=workdir)
    fh.close()
    srv = ServerProc(proc, f"{scheme}://127.0.0.1:{port}", log_path, ca)
    pool = srv.pool()
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{srv.log()}")
        try:
            if pool.request("HEAD", f"{srv.url}/root.json").status == 200:
                return srv
        except urllib3.exceptions.HTTPError:
            pass
        if time.monotonic() > deadline:
            srv.stop()
            raise AssertionError(f"server did not start:\n{srv.log()}")
        time.sleep(0.05)  # polling for readiness, not waiting for time to pass


@dataclass
class Setup:
    """A mirror with its keys outside it, owner jdoe, and hello v0.0.1 published."""

    mirror: Path
    keys: Path
    owner_key: Path
    owner: PrivateKey
    tarballs: dict[str, Path] = field(default_factory=dict)


def make_setup(base: Path, components: tuple[str, ...] = ("hello",)) -> Setup:
    from tiup.cli.commands.mirror_publish import default_arch, default_os

    assert f"{default_os()}/{default_arch()}" == PLAT
    key = generate()
    owner_key = base / "owner.json"
    save_private_key(owner_key, key)
    mirror, keys = base / "mirror", base / "keys"
    init_mirror(mirror, NOW, key_dir=keys)
    setup = Setup(mirror, keys, owner_key, key)
    with Store(mirror, now=NOW, keyring=load_keyring([keys])) as store:
        grant(store, "jdoe", "J. Doe", [key.keyinfo()])
        store.commit()
    for comp in components:
        tb = make_tarball(base / f"{comp}-1.tar.gz", entry=comp,
                          body=f"#!/bin/sh\necho {comp} one\n".encode())
        setup.tarballs[comp] = tb
        with Store(mirror, now=NOW, keyring=load_keyring([keys])) as store:
            plan = plan_publish(store, ComponentId(comp), VersionStr("v0.0.1"), PLAT,
                                comp, FileInfo.of_file(tb), desc="", overwrite=False, now=NOW)
            assert plan.manifest is not None
            store.publish_component(sign(plan.manifest, [key]), tb,
                                    tarball_name=plan.tarball_name,
                                    flags=IndexFlags(owner="jdoe"))
            store.commit()
    return setup


def raw(srv: ServerProc, method: str, path: str, body: bytes = b"",
        headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request with the path sent exactly as given (no client-side normalisation)."""
    host, port = srv.url.rsplit("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def jerr(status_body: tuple[int, dict[str, str], bytes]) -> tuple[int, str, str]:
    status, headers, body = status_body
    assert headers["content-type"].startswith("application/json"), (status, body)
    doc = json.loads(body)
    return status, doc["status"], doc["message"]


def build(setup: Setup, version: str, tarball: Path, signers: list[PrivateKey] | None = None,
          **tweak: object) -> tuple[bytes, str]:
    """The next hello manifest adding ``version`` (not committed), and the tarball's name."""
    info = FileInfo.of_file(tarball)
    with Store(setup.mirror, now=NOW, keyring=load_keyring([setup.keys])) as store:
        plan = plan_publish(store, ComponentId("hello"), VersionStr(version), PLAT, "hello",
                            info, desc="", overwrite=False, now=NOW)
    assert plan.manifest is not None
    for key, value in tweak.items():
        item = plan.manifest.platforms[PLAT][version]
        plan.manifest.platforms[PLAT][version] = type(item)(**{**item.__dict__, key: value})
    return sign(plan.manifest, signers or [setup.owner]), plan.tarball_name


def upload(srv: ServerProc, sid: str, path: Path, name: str) -> tuple[int, dict[str, str], bytes]:
    boundary, head, tail, _total = multipart_parts(path, name)
    body = head + path.read_bytes() + tail
    return raw(srv, "POST", f"/api/v1/tarball/{sid}", body,
               {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def post_manifest(srv: ServerProc, sid: str, data: bytes, name: str = "hello", query: str = ""
                  ) -> tuple[int, dict[str, str], bytes]:
    return raw(srv, "POST", f"/api/v1/component/{sid}/{name}{query}", data,
               {"Content-Type": "text/json"})


#: one scrape's samples: (name, sorted labels) → value
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(srv: ServerProc) -> tuple[Samples, str]:
    """``GET /metrics``, read with prometheus_client's own parser; (samples, content type)."""
    from prometheus_client.parser import text_string_to_metric_families

    status, headers, body = raw(srv, "GET", "/metrics")
    assert status == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, headers["content-type"]


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))
