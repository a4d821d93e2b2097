"""Headless Chromium (Debian's ``chromium``) driven over the DevTools protocol, for the
web page's browser tests.

The protocol runs over ``--remote-debugging-pipe`` (JSON messages ending in NUL, Chromium
reading fd 3 and writing fd 4): no websocket, no port, no extra package. Every wait is for
an observable event (a protocol event, or a DOM condition polled until it holds); the
deadlines only bound a hang.

If chromium is not installed the tests using it FAIL (``scripts/setup-test-env`` installs
the Debian package), unless ``TIUP_ALLOW_NO_CHROMIUM=1`` turns that into a skip.

Usage::

    with Browser(tmp_path) as b:
        b.open("http://127.0.0.1:8989/ui/")
        b.value("document.title"); b.type_text("#q", "hel"); b.screenshot(path)
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
#: Where the test run leaves its screenshots for review (gitignored).
ARTIFACTS = REPO / "tests" / ".artifacts" / "browser"
#: The flags the machine notes name for Debian's chromium running as root in a sandbox-less
#: container with no network beyond loopback.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
         "--window-size=1280,900", "--remote-debugging-pipe")
#: Bounds a hang (a wait normally ends when its event arrives).
DEADLINE = 60.0


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def require_chromium() -> str:
    path = find_chromium()
    if path is None:
        message = ("chromium is not installed: run scripts/setup-test-env (Debian package "
                   "chromium)")
        if os.environ.get("TIUP_ALLOW_NO_CHROMIUM") == "1":
            pytest.skip(message)
        pytest.fail(message)
    return path


def _above_9(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class BrowserError(AssertionError):
    #: the DevTools protocol's error object, when the browser refused a command
    protocol_error: dict[str, Any] | None = None


class Browser:
    """One headless Chromium with one page (tab)."""

    def __init__(self, workdir: Path):
        binary = require_chromium()
        self.profile = workdir / "chromium-profile"
        self.profile.mkdir(parents=True, exist_ok=True)
        low_r, self._to_child = os.pipe()
        self._from_child, low_w = os.pipe()
        # the child's ends above 9, so that moving them to 3 and 4 cannot close one another
        to_child_r, from_child_w = (_above_9(low_r), _above_9(low_w))
        # fd 3 = what we write, fd 4 = what chromium writes, whatever numbers the pipes got
        cmd = (f'exec "$0" "$@" 3<&{to_child_r} 4>&{from_child_w} '
               f"{to_child_r}<&- {from_child_w}>&-")
        self.log_path = workdir / "chromium.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            ["bash", "-c", cmd, binary, *FLAGS, f"--user-data-dir={self.profile}",
             "about:blank"],
            pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        os.close(to_child_r)
        os.close(from_child_w)
        self._next = 0
        self._cond = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")

    # ---------------------------------------------------------------- protocol
    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self._cond:
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self._events.append(msg)
                    self._cond.notify_all()

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> dict[str, Any]:
        with self._cond:
            self._next += 1
            ident = self._next
        msg: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self._to_child, data):]
        deadline = time.monotonic() + DEADLINE
        with self._cond:
            while ident not in self._replies:
                if self._closed:
                    raise BrowserError(f"chromium exited:\n{self.log()}")
                if not self._cond.wait(deadline - time.monotonic()):
                    raise BrowserError(f"no answer to {method}")
            reply = self._replies.pop(ident)
        if "error" in reply:
            err = BrowserError(f"{method}: {reply['error']}")
            err.protocol_error = reply["error"]
            raise err
        result: dict[str, Any] = reply.get("result", {})
        return result

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A command to the page's session."""
        return self.send(method, params, self.session)

    def wait_event(self, method: str, since: int = 0) -> dict[str, Any]:
        """The first event ``method`` of the page's session at or after position ``since``."""
        deadline = time.monotonic() + DEADLINE
        with self._cond:
            while True:
                for ev in self._events[since:]:
                    if ev.get("method") == method and ev.get("sessionId") == self.session:
                        return ev
                if self._closed:
                    raise BrowserError(f"chromium exited:\n{self.log()}")
                if not self._cond.wait(deadline - time.monotonic()):
                    raise BrowserError(f"no {method} event")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    # -------------------------------------------------------------------- page
    def open(self, url: str) -> None:
        """Load ``url`` and wait for its load event (scripts with ``defer`` have run)."""
        with self._cond:
            mark = len(self._events)
        nav = self.call("Page.navigate", {"url": url})
        if nav.get("errorText"):
            raise BrowserError(f"{url}: {nav['errorText']}")
        self.wait_event("Page.loadEventFired", mark)

    def value(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-able)."""
        res = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in res:
            raise BrowserError(f"{expression}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait_for(self, expression: str, what: str = "") -> Any:
        """Poll ``expression`` until it is truthy (a DOM condition, not a time)."""
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                value = self.value(expression)
            except BrowserError as exc:
                # a click started a navigation: the old document's context is gone and
                # the new one is not there yet; ask the new document next time
                if not _navigating(exc):
                    raise
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"never true: {what or expression}")
            time.sleep(0.02)

    def type_text(self, selector: str, text: str) -> None:
        """Focus ``selector`` and type ``text`` one key at a time (each fires ``input``)."""
        self.value(f"document.querySelector({json.dumps(selector)}).focus()")
        for ch in text:
            self.call("Input.dispatchKeyEvent", {"type": "keyDown", "text": ch, "key": ch,
                                                 "unmodifiedText": ch})
            self.call("Input.dispatchKeyEvent", {"type": "keyUp", "key": ch})

    def clear(self, selector: str) -> None:
        """Empty an input as a user would (select all, delete), firing ``input``."""
        self.value(f"document.querySelector({json.dumps(selector)}).select()")
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", {"type": kind, "key": "Backspace",
                                                 "code": "Backspace",
                                                 "windowsVirtualKeyCode": 8})

    def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        """Save a PNG of the page (the whole page, not only the window)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = self.call("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"],
                                "height": min(size["height"], 6000), "scale": 1})
        data = self.call("Page.captureScreenshot", params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(BrowserError):
                self.send("Browser.close")
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for fd in (self._to_child, self._from_child):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def poll(check: Callable[[], Any], what: str) -> Any:
    """Call ``check`` until it returns something truthy (an observable state)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


def _navigating(exc: BrowserError) -> bool:
    """The page's execution context went away because it navigated (CDP error -32000
    with "Inspected target navigated or closed", or a destroyed context)."""
    err = exc.protocol_error or {}
    return err.get("code") == -32000 and any(
        word in str(err.get("message", "")) for word in ("navigated", "context"))
