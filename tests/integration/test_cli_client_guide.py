"""End to end: the guide's "使用自定义组件" flow with the publisher's CLI, then the client."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tiup.client.resolve import current_platform


def test_guide_custom_component_flow(tiup, tmp_path: Path, clean_home: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    hello = work / "hello"
    hello.write_text("#!/bin/sh\necho hello\n")
    hello.chmod(hello.stat().st_mode | stat.S_IXUSR)
    os_name, arch = current_platform().split("/")
    tarball = f"package/hello-v0.0.1-{os_name}-{arch}.tar.gz"

    def ok(*args: str) -> str:
        r = tiup(*args, cwd=work)
        assert r.returncode == 0, (args, r.output)
        return r.output

    ok("package", "hello", "--entry", "hello", "--name", "hello", "--release", "v0.0.1")
    assert (work / tarball).is_file()
    mirror = tmp_path / "m"
    ok("mirror", "init", str(mirror))
    ok("mirror", "genkey")
    ok("mirror", "set", str(mirror))
    ok("mirror", "grant", os.environ.get("USER") or "jdoe")
    ok("mirror", "publish", "hello", "v0.0.1", tarball, "hello")

    r = tiup("hello", cwd=work, subprocess=True)
    assert r.returncode == 0, r.output
    assert "The component `hello` version  is not installed; downloading from repository." \
        in r.stderr
    assert f"Starting component `hello`: {clean_home}/components/hello/v0.0.1/hello" in r.stderr
    assert r.stdout == "hello\n"
    r = tiup("list", cwd=work)
    assert "hello" in r.stdout
    # the mirror the publisher wrote passes a full audit after the client used it
    assert tiup("mirror", "verify", str(mirror)).returncode == 0
