"""A real nginx on 127.0.0.1 serving a directory with the shipped deploy/nginx/tiup-mirror.conf.

The site file is used as it ships; only its ``listen`` and ``root`` lines are replaced.
nginx runs in the foreground as one process (``master_process off``) with its pid, logs and
temp paths in a temporary directory, so no root privileges or system paths are touched.

If nginx is not installed the tests using it FAIL (scripts/setup-test-env installs the
Debian package ``nginx-light``), unless ``TIUP_ALLOW_NO_NGINX=1`` turns that into a skip.

Usage::

    def test_x(nginx, tmp_path):
        srv = nginx(mirror_dir)
        srv.url, srv.access_log, srv.access_entries()
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SITE_CONF = REPO / "deploy" / "nginx" / "tiup-mirror.conf"

#: One line per request: status, body bytes, method and path, Range header.
LOG_FORMAT = "'$status $body_bytes_sent \"$request\" \"$http_range\"'"


def find_nginx() -> str | None:
    """The nginx binary (``/usr/sbin/nginx`` first, then ``$PATH``), or None."""
    for cand in ("/usr/sbin/nginx", shutil.which("nginx")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def render_site(port: int, root: Path) -> str:
    """The shipped site config with ``listen`` and ``root`` pointed at a test port and dir."""
    text = SITE_CONF.read_text()
    text, n1 = re.subn(r"(?m)^(\s*)listen\s+[^;]+;", rf"\g<1>listen 127.0.0.1:{port};", text,
                       count=1)
    text, n2 = re.subn(r"(?m)^(\s*)root\s+[^;]+;", lambda m: f'{m.group(1)}root "{root}";',
                       text, count=1)
    assert n1 == 1 and n2 == 1, f"{SITE_CONF} lost its listen/root lines"
    return text


@dataclass
class NginxServer:
    """A running nginx."""

    url: str
    access_log: Path
    error_log: Path
    process: subprocess.Popen[bytes]

    def access_entries(self) -> list[tuple[int, int, str, str]]:
        """``(status, body bytes, request line, range header)`` per logged request.

        nginx writes a log line just after the response, so a client can read the
        log before its own last request appears. A sentinel request is sent first
        and waited for: nginx's single worker logs in order, so everything before
        it is in the log once it is (the sentinel lines are left out).
        """
        import urllib.error
        import urllib.request
        import uuid

        marker = f"/.sync-{uuid.uuid4().hex}"
        with contextlib.suppress(urllib.error.URLError, OSError):
            urllib.request.urlopen(self.url + marker, timeout=60)
        deadline = time.monotonic() + 60  # an upper bound for a busy machine, not a wait
        while marker not in self.access_log.read_text() and time.monotonic() < deadline:
            time.sleep(0.01)
        out = []
        for line in self.access_log.read_text().splitlines():
            m = re.match(r'^(\d+) (\d+) "([^"]*)" "([^"]*)"$', line)
            if m and "/.sync-" not in m.group(3):
                out.append((int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)))
        return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _main_conf(work: Path, binary: str) -> str:
    version = subprocess.run([binary, "-V"], capture_output=True, text=True).stderr
    temps = ["client_body", "proxy", "fastcgi"]
    temps += [m for m in ("uwsgi", "scgi") if f"--without-http_{m}_module" not in version]
    temp_lines = "\n".join(f"    {t}_temp_path {work / ('tmp-' + t)};" for t in temps)
    return f"""daemon off;
master_process off;
worker_processes 1;
pid {work / 'nginx.pid'};
error_log {work / 'error.log'} info;
events {{ worker_connections 128; }}
http {{
    log_format tiup_test {LOG_FORMAT};
    access_log {work / 'access.log'} tiup_test;
{temp_lines}
    include {work / 'site.conf'};
}}
"""


def start_nginx(root: Path, work: Path, timeout: float = 60.0) -> NginxServer:
    """Start nginx serving ``root`` with its state in ``work``; returns once it accepts.

    Fails (or skips with TIUP_ALLOW_NO_NGINX=1) when nginx is not installed.
    """
    binary = find_nginx()
    if binary is None:
        msg = ("nginx is not installed (Debian package nginx-light; scripts/setup-test-env "
               "installs it); set TIUP_ALLOW_NO_NGINX=1 to skip these tests")
        if os.environ.get("TIUP_ALLOW_NO_NGINX") == "1":
            pytest.skip(msg)
        pytest.fail(msg)
    work.mkdir(parents=True, exist_ok=True)
    (work / "main.conf").write_text(_main_conf(work, binary))
    last_error = ""
    for _ in range(3):  # the free port may be taken between probing and binding
        port = _free_port()
        (work / "site.conf").write_text(render_site(port, root.resolve()))
        proc = subprocess.Popen(
            [binary, "-p", str(work), "-e", str(work / "error.log"), "-c",
             str(work / "main.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            except OSError:
                time.sleep(0.02)
                continue
            return NginxServer(f"http://127.0.0.1:{port}", work / "access.log",
                               work / "error.log", proc)
        stop_nginx_process(proc)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        log = (work / "error.log").read_text() if (work / "error.log").exists() else ""
        last_error = (stderr + log)[-2000:]
        if "Address already in use" not in last_error:
            break
    pytest.fail(f"nginx did not start: {last_error}")


def stop_nginx_process(proc: subprocess.Popen[bytes]) -> None:
    """Stop nginx (SIGTERM, then SIGKILL after 5 s)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Callable[[Path], NginxServer]]:
    """Factory fixture: ``nginx(directory)`` starts nginx serving it; stopped at teardown."""
    started: list[NginxServer] = []

    def start(root: Path) -> NginxServer:
        srv = start_nginx(root, tmp_path / f"nginx-{len(started)}")
        started.append(srv)
        return srv

    yield start
    for srv in started:
        stop_nginx_process(srv.process)
