"""HTTPFetcher against a real nginx running the shipped deploy/nginx/tiup-mirror.conf."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import urllib3

from nginx import NginxServer, nginx, render_site  # noqa: F401 - `nginx` is a fixture
from tiup.errors import FetchError, NotFoundError
from tiup.repository.audit import audit_mirror
from tiup.transport.http import HTTPFetcher
from tiup.transport.local import LocalFetcher

pytestmark = pytest.mark.nginx

SIZE = 2 * 1024 * 1024 + 777


@pytest.fixture
def mirror_dir(tmp_path: Path) -> Path:
    root = tmp_path / "mirror"
    root.mkdir()
    (root / "timestamp.json").write_bytes(b'{"signed":{"_type":"timestamp"}}')
    (root / "snapshot.json").write_bytes(b"{}")
    (root / "3.index.json").write_bytes(b'{"signed":{"_type":"index"}}')
    (root / "tidb-v7.5.0-linux-amd64.tar.gz").write_bytes(os.urandom(SIZE))
    (root / "tiup-linux-amd64.tar.gz").write_bytes(b"bootstrap")
    (root / "keys").mkdir()
    (root / "keys" / "private.json").write_text('{"secret": true}')
    (root / ".tmp-abc-timestamp.json").write_text("half written")
    return root


@pytest.fixture
def served(nginx, mirror_dir: Path) -> NginxServer:  # type: ignore[no-untyped-def]  # noqa: F811
    srv: NginxServer = nginx(mirror_dir)
    return srv


def test_site_config_is_templated_from_the_shipped_file(tmp_path: Path) -> None:
    text = render_site(12345, tmp_path)
    assert "listen 127.0.0.1:12345;" in text and f'root "{tmp_path}";' in text
    assert "sendfile on;" in text and "location ^~ /keys/" in text


def test_fetch_and_secrets_hidden(served: NginxServer, mirror_dir: Path) -> None:
    with HTTPFetcher(served.url, retries=1) as f:
        assert f.fetch("timestamp.json", 1024) == (mirror_dir / "timestamp.json").read_bytes()
        assert f.exists("3.index.json")
        for hidden in ("keys/private.json", ".tmp-abc-timestamp.json", "keys/"):
            with pytest.raises(FetchError) as err:
                f.fetch(hidden, None)
            assert isinstance(err.value, NotFoundError) or "403" in str(err.value)
        with pytest.raises(NotFoundError):
            f.fetch("4.index.json", None)
    statuses = [s for s, *_ in served.access_entries()]
    assert statuses[:2] == [200, 200] and statuses[2:] == [404, 404, 404, 404]


def test_cache_headers(served: NginxServer) -> None:
    http = urllib3.PoolManager()
    def cc(name: str) -> str | None:
        return http.request("HEAD", f"{served.url}/{name}").headers.get("Cache-Control")
    assert cc("timestamp.json") == "no-cache"
    assert cc("snapshot.json") == "no-cache"
    assert cc("tiup-linux-amd64.tar.gz") == "no-cache"
    assert cc("3.index.json") == "public, max-age=31536000, immutable"
    assert cc("tidb-v7.5.0-linux-amd64.tar.gz") == "public, max-age=604800"
    resp = http.request("GET", f"{served.url}/3.index.json", headers={"Accept-Encoding": "gzip"})
    assert resp.headers.get("Content-Encoding") is None
    assert resp.headers["Content-Type"] == "application/json"


def test_range_resume_against_nginx(served: NginxServer, mirror_dir: Path,
                                    tmp_path: Path) -> None:
    name = "tidb-v7.5.0-linux-amd64.tar.gz"
    data = (mirror_dir / name).read_bytes()
    with HTTPFetcher(served.url, retries=1) as f:
        with f.stream_range(name, SIZE, 1000) as chunks:
            assert chunks.start == 1000 and chunks.size == SIZE
            validator = chunks.validator
            assert b"".join(chunks) == data[1000:]
        # an interrupted earlier run left 1 MB and nginx's ETag in the sidecar
        part = tmp_path / "dl" / "x.part"
        part.parent.mkdir()
        part.write_bytes(data[:1_000_000])
        part.with_name("x.part.meta").write_text(json.dumps(
            {"source": f"{served.url}/{name}", "validator": validator}))
        dest = tmp_path / "dl" / name
        f.download(name, dest, expected_length=SIZE, part_path=part)
    assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(data).digest()
    status, sent, request, rng = served.access_entries()[-1]
    assert (status, rng, sent) == (206, "bytes=1000000-", SIZE - 1_000_000)
    assert request.startswith(f"GET /{name} HTTP/1.1")


def test_changed_file_restarts_against_nginx(served: NginxServer, mirror_dir: Path,
                                             tmp_path: Path) -> None:
    name = "tidb-v7.5.0-linux-amd64.tar.gz"
    part = tmp_path / "x.part"
    part.write_bytes(b"stale bytes from an older file")
    part.with_name("x.part.meta").write_text(json.dumps(
        {"source": f"{served.url}/{name}", "validator": '"0-0"'}))
    with HTTPFetcher(served.url, retries=1) as f:
        f.download(name, tmp_path / name, part_path=part)
    assert (tmp_path / name).read_bytes() == (mirror_dir / name).read_bytes()
    assert served.access_entries()[-1][0] == 200


def test_audit_over_nginx_matches_local(nginx, fixture_mirror: Path,  # type: ignore[no-untyped-def]  # noqa: F811
                                        tmp_path: Path) -> None:
    from fixturedata import FIXTURE_NOW

    copy = tmp_path / "fixture"
    shutil.copytree(fixture_mirror, copy)
    srv: NginxServer = nginx(copy)
    trusted = (copy / "1.root.json").read_bytes() if (copy / "1.root.json").exists() else None
    with HTTPFetcher(srv.url, retries=1) as f:
        remote = audit_mirror(f, FIXTURE_NOW, trusted_root=trusted)
    local = audit_mirror(LocalFetcher(str(copy)), FIXTURE_NOW, trusted_root=trusted)
    assert remote.ok == local.ok
    assert sorted(map(str, remote.errors)) == sorted(map(str, local.errors))
