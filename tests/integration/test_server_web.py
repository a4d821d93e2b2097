"""The web page of `tiup mirror serve` over real HTTP: who gets HTML and who keeps getting
exactly what they got before, the pages' content and headers, and the page following the
mirror (a publish, a damaged state) through the monitor process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from browser import poll
from publishkit import make_tarball
from serverkit import ServerProc, build, make_setup, post_manifest, raw, start_server, upload
from uikit import HOSTILE, make_ui_mirror

BROWSER_ACCEPT = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                  "image/webp,*/*;q=0.8")
JSON_404_ROOT = b'{"status": "NOT FOUND", "message": "/ not found"}'


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("web")
    made = make_ui_mirror(base)
    srv = start_server(made.mirror, "--read-only", workdir=base)
    # the monitor's first catalog is in place once the page answers 200
    poll(lambda: raw(srv, "GET", "/ui/")[0] == 200, "the first catalog")
    yield srv, made
    srv.stop()


def html(srv: ServerProc, path: str) -> tuple[int, dict[str, str], str]:
    status, headers, body = raw(srv, "GET", path, headers={"Accept": BROWSER_ACCEPT})
    return status, headers, body.decode()


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "text/*",
                                    "text/html;q=0", "application/json, text/plain"])
def test_clients_keep_the_json_404_at_root(ui_server, accept: str | None) -> None:  # type: ignore[no-untyped-def]
    srv, _ = ui_server
    status, headers, body = raw(srv, "GET", "/", headers={"Accept": accept} if accept else {})
    assert (status, body) == (404, JSON_404_ROOT)
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert "vary" not in headers
    # other methods on / are refused as before
    status, headers, body = raw(srv, "POST", "/", b"x", {"Accept": BROWSER_ACCEPT})
    assert status == 405 and json.loads(body)["status"] == "METHOD NOT ALLOWED"


def test_mirror_files_are_the_same_for_browsers(ui_server) -> None:  # type: ignore[no-untyped-def]
    srv, made = ui_server
    tarball = sorted(p.name for p in made.mirror.glob("hello-*.tar.gz"))[0]
    for path in ("/root.json", "/timestamp.json", "/snapshot.json", "/1.hello.json",
                 f"/{tarball}", "/missing.json", "/keys/x", "/ui.json", "/uimirror"):
        plain = raw(srv, "GET", path)
        browser = raw(srv, "GET", path, headers={"Accept": BROWSER_ACCEPT})
        drop = ("date",)
        assert plain[0] == browser[0], path
        assert plain[2] == browser[2], path
        assert {k: v for k, v in plain[1].items() if k not in drop} == \
            {k: v for k, v in browser[1].items() if k not in drop}, path
        if path.endswith((".json", ".tar.gz")) and plain[0] == 200:
            assert (made.mirror / path[1:]).read_bytes() == plain[2]


def test_browser_gets_the_index_at_root(ui_server) -> None:  # type: ignore[no-untyped-def]
    srv, made = ui_server
    status, headers, page = html(srv, "/")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["vary"] == "Accept"
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["server-timing"].startswith("app;dur=")
    for cid in made.components:
        assert f'href="/ui/component/{cid}"' in page
    # owner-written text is escaped, never markup
    assert HOSTILE not in page
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page
    # no external assets: every src/href is this server's or a fragment
    for url in re.findall(r'(?:src|href|action)="([^"]*)"', page):
        assert url.startswith(("/", "#", "data:")), url
    # the same page at /ui/ for any client
    status, headers, again = raw(srv, "GET", "/ui/")
    assert status == 200 and "vary" not in headers
    assert again.decode() == page


def test_page_caching_headers(ui_server) -> None:  # type: ignore[no-untyped-def]
    srv, _ = ui_server
    status, headers, body = raw(srv, "GET", "/ui/")
    etag = headers["etag"]
    assert headers["cache-control"] == "no-cache"
    status, headers, body = raw(srv, "GET", "/ui/", headers={"If-None-Match": etag})
    assert (status, body) == (304, b"")
    status, headers, body = raw(srv, "HEAD", "/ui/component/hello")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 1000
    css = re.search(r'href="(/ui/assets/[^"]+\.css)"', raw(srv, "GET", "/ui/")[2].decode())
    assert css is not None
    status, headers, body = raw(srv, "GET", css.group(1))
    assert status == 200 and headers["content-type"].startswith("text/css")
    assert "immutable" in headers["cache-control"] and b"@media print" in body
    assert raw(srv, "GET", "/ui/assets/nope.css")[0] == 404
    assert raw(srv, "POST", "/ui/", b"")[0] == 405


def test_component_page_is_paginated(ui_server) -> None:  # type: ignore[no-untyped-def]
    srv, _made = ui_server
    status, _, page = html(srv, "/ui/component/big")
    assert status == 200
    rows = re.findall(r"<tr><th scope=\"row\">(v[0-9.]+)", page)
    # 100 versions on a page, each on two platforms, newest first
    assert len(rows) == 200 and rows[0] == "v1.2.49" and rows[-1] == "v1.1.50"
    assert "Page 1 of 3" in page and 'href="/ui/component/big?page=3"' in page
    assert "tiup install big:v1.2.49" in page
    _, _, last = html(srv, "/ui/component/big?page=3")
    rows = re.findall(r"<tr><th scope=\"row\">(v[0-9.]+)", last)
    assert len(rows) == 100 and rows[-1] == "v1.0.0" and "Page 3 of 3" in last
    # the filter works across pages, without JavaScript
    _, _, found = html(srv, "/ui/component/big?q=v1.0.7")
    assert sorted(set(re.findall(r"<tr><th scope=\"row\">(v[0-9.]+)", found))) == \
        ["v1.0.7", "v1.0.70", "v1.0.71", "v1.0.72", "v1.0.73", "v1.0.74", "v1.0.75",
         "v1.0.76", "v1.0.77", "v1.0.78", "v1.0.79"]
    # out-of-range and malformed page numbers land on a real page
    assert "Page 3 of 3" in html(srv, "/ui/component/big?page=99999")[2]
    assert "Page 1 of 3" in html(srv, "/ui/component/big?page=-1")[2]
    # a yanked version is marked and offers no install command
    _, _, oldies = html(srv, "/ui/component/oldies")
    assert re.search(r"v1\.0\.1<span class=\"badge flag\">yanked</span>", oldies)
    assert "tiup install oldies:v1.0.1" not in oldies
    assert "tiup install oldies:v1.0.2" in oldies


def test_unknown_pages_are_html_404(ui_server) -> None:  # type: ignore[no-untyped-def]
    srv, _ = ui_server
    for path in ("/ui/component/nope", "/ui/component/../root.json", "/ui/else",
                 "/ui/component/"):
        status, headers, page = html(srv, path)
        assert status == 404 and headers["content-type"].startswith("text/html"), path
        assert "Not found" in page


def test_health_panel(ui_server) -> None:  # type: ignore[no-untyped-def]
    srv, _ = ui_server
    _, _, page = html(srv, "/ui/")
    roles = {role: css for css, role in
             re.findall(r'<tr class="(expiry-\w+)" data-role="(\w+)"', page)}
    assert roles == {
        "root": "expiry-ok", "index": "expiry-ok", "snapshot": "expiry-warn",
        "timestamp": "expiry-bad"}
    assert "5 days left: renew now" in page and "20 days left: renew soon" in page
    assert "signed by 3 of 3 keys" in page
    assert re.search(r'id="last-publish"><a href="/ui/component/\w+">', page)
    status = poll(lambda: "passed" in html(srv, "/ui/")[2].split('id="verification"')[1]
                  [:200], "the verification result")
    assert status


def test_page_follows_publishes_and_damage(tmp_path: Path) -> None:
    setup = make_setup(tmp_path)
    srv = start_server(setup.mirror, "--key-dir", str(setup.keys), workdir=tmp_path)
    try:
        first = poll(lambda: re.search(r'id="timestamp-version">(\d+)<',
                                       html(srv, "/ui/component/hello")[2]), "first catalog")
        version = int(first.group(1))
        tb = make_tarball(tmp_path / "h2.tar.gz", body=b"#!/bin/sh\necho two\n")
        data, name = build(setup, "v0.0.2", tb)
        assert upload(srv, "s1", tb, name)[0] == 200
        assert post_manifest(srv, "s1", data)[0] == 200
        page = poll(lambda: (p := html(srv, "/ui/component/hello")[2]) and
                    "tiup install hello:v0.0.2" in p and p, "the new version on the page")
        assert f'id="timestamp-version">{version + 1}<' in page
        poll(lambda: "passed</span>: 0 errors, 0 warnings" in html(srv, "/ui/")[2] and
             f"at timestamp version {version + 1}," in html(srv, "/ui/")[2],
             "the verification of the new state")
        # a damaged timestamp: the page keeps the last verified state and says so
        ts = setup.mirror / "timestamp.json"
        ts.write_bytes(ts.read_bytes()[:-20])
        page = poll(lambda: (p := html(srv, "/ui/")[2]) and "does not verify" in p and p,
                    "the damage on the page")
        assert 'role="alert"' in page and "hello" in page
        poll(lambda: 'id="verify-result">failed' in html(srv, "/ui/")[2],
             "the failed verification")
    finally:
        srv.stop()


def test_a_mirror_file_named_metrics_wins(tmp_path: Path) -> None:
    setup = make_setup(tmp_path)
    (setup.mirror / "metrics").write_bytes(b"a file\n")
    srv = start_server(setup.mirror, "--read-only", workdir=tmp_path)
    try:
        status, headers, body = raw(srv, "GET", "/metrics")
        assert (status, body) == (200, b"a file\n")
        assert headers["content-type"] == "application/octet-stream"
    finally:
        srv.stop()
