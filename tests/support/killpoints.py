"""Stop a ``tiup`` subprocess at a chosen file-system step, so a test can ``kill -9`` it there.

A crash test that sleeps before ``kill -9`` proves nothing on a busy machine: the kill may
land before the first write or after the last. Here the child runs ``python -m tiup`` with
an audit hook (PEP 578) that sees, before it happens, every change the child makes under a
watched directory. Each change is one *step*, described relative to that directory::

    open staging/install-3f2a/data/f7          (an open for writing)
    rename staging/install-3f2a -> components/hello/v1.0.0
    remove timestamp.json | mkdir installed/hello | rmdir ... | rmtree ... | link a -> b
    symlink ... | truncate ...
    exit                                       (the program is done; Python exits next)

:func:`start` picks a step by a glob over that description (and the n-th match). When
the child reaches it, the hook writes a marker file and blocks before the step runs;
any other thread reaching a watched step blocks too, so nothing more changes. The test
waits for the marker (:meth:`Child.wait_stopped`), then :meth:`Child.kill` sends SIGKILL
and checks the child died of it: the kill provably landed at that step, however busy the
machine. :func:`trace` runs a command to the end and returns all its steps, for tests
that kill at each one.

Steps made through a directory file descriptor (``dir_fd``) are not seen; the
``rmtree`` that starts them is.
"""

from __future__ import annotations

import fnmatch
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

#: Upper bound for a child to reach its stop step; only ever reached when a test fails.
REACH_TIMEOUT = 180.0
#: A stopped child exits by itself after this long if nobody kills it (a crashed test).
BLOCK_LIMIT = 900.0

_TESTS = str(Path(__file__).resolve().parent)
_BOOT = (f"import sys; sys.path.insert(0, {_TESTS!r}); import killpoints; "
         "killpoints.child_main()")


def start(args: list[str], *, root: Path, stop: str, nth: int = 1, env: dict[str, str],
          marker: Path) -> Child:
    """Start ``python -m tiup <args>``, to stop before the ``nth`` step matching ``stop``.

    ``stop`` is a :mod:`fnmatch` glob over the step description (see the module doc);
    ``marker`` must not exist yet, it appears when the child stops.
    """
    assert not marker.exists(), marker
    proc = subprocess.Popen(
        [sys.executable, "-c", _BOOT, *args],
        env={**env, "KILLPOINT_ROOT": str(root), "KILLPOINT_STOP": stop,
             "KILLPOINT_NTH": str(nth), "KILLPOINT_MARK": str(marker)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return Child(proc, marker)


def trace(args: list[str], *, root: Path, env: dict[str, str], log: Path) -> list[str]:
    """Run ``python -m tiup <args>`` to the end; the steps it made under ``root``, in order.

    Fails the test if the command fails.
    """
    r = subprocess.run([sys.executable, "-c", _BOOT, *args],
                       env={**env, "KILLPOINT_ROOT": str(root), "KILLPOINT_TRACE": str(log)},
                       capture_output=True, text=True, timeout=REACH_TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    return log.read_text().splitlines()


class Child:
    """A started child; use as a context manager so it never outlives the test."""

    def __init__(self, proc: subprocess.Popen[str], marker: Path):
        self.proc = proc
        self.marker = marker

    def wait_stopped(self) -> str:
        """Wait until the child blocks at its step; returns that step's description."""
        deadline = time.monotonic() + REACH_TIMEOUT
        while not self.marker.exists():
            if self.proc.poll() is not None:
                out, err = self.proc.communicate()
                raise AssertionError(f"the child ended (exit {self.proc.returncode}) without "
                                     f"reaching its stop step:\n{out}{err}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the child did not reach its stop step in "
                                     f"{REACH_TIMEOUT} s")
            time.sleep(0.01)  # polling for an event, not waiting for time to pass
        return self.marker.read_text()

    def kill(self) -> None:
        """SIGKILL the child and check that this, not an exit of its own, ended it."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate()
        assert self.proc.returncode == -signal.SIGKILL, self.proc.returncode

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


# -- in the child ---------------------------------------------------------------------------

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
#: audit event -> (step kind, index of the path arguments, index of the dir_fd argument)
_EVENTS: dict[str, tuple[str, tuple[int, ...], int | None]] = {
    "os.rename": ("rename", (0, 1), 2),  # os.rename and os.replace
    "os.remove": ("remove", (0,), 1),
    "os.mkdir": ("mkdir", (0,), 2),
    "os.rmdir": ("rmdir", (0,), 1),
    "shutil.rmtree": ("rmtree", (0,), 1),
    "os.link": ("link", (0, 1), 2),
    "os.symlink": ("symlink", (1,), 2),
    "os.truncate": ("truncate", (0,), None),
}


def child_main() -> None:
    """Install the audit hook described by ``KILLPOINT_*``, then run ``python -m tiup``."""
    import atexit
    import runpy

    root = os.path.abspath(os.environ.pop("KILLPOINT_ROOT"))
    stop = os.environ.pop("KILLPOINT_STOP", "")
    nth = int(os.environ.pop("KILLPOINT_NTH", "1"))
    marker = os.environ.pop("KILLPOINT_MARK", "")
    trace_path = os.environ.pop("KILLPOINT_TRACE", "")
    # opened before the hook exists: writing the trace is not a step
    trace_fd = os.open(trace_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) \
        if trace_path else None
    lock = threading.Lock()
    stopped = threading.Event()
    local = threading.local()
    seen = 0

    def rel(path: object) -> str | None:
        if isinstance(path, int) or path is None:
            return None  # a file descriptor: not a path we can place
        full = os.path.abspath(os.fsdecode(os.fspath(path)))  # type: ignore[arg-type]
        if full == root:
            return "."
        return full[len(root) + 1:] if full.startswith(root + os.sep) else None

    def describe(event: str, args: tuple[object, ...]) -> str | None:
        if event == "exit":
            return "exit"
        if event == "open":
            path, mode, flags = args[0], args[1], args[2]
            writing = (any(c in mode for c in "wax+") if isinstance(mode, str)
                       else isinstance(flags, int) and bool(flags & _WRITE_FLAGS))
            where = rel(path) if writing else None
            return None if where is None else f"open {where}"
        spec = _EVENTS.get(event)
        if spec is None:
            return None
        kind, paths, dir_fd = spec
        if dir_fd is not None and len(args) > dir_fd and args[dir_fd] not in (None, -1):
            return None  # relative to a directory descriptor
        names = [rel(args[i]) for i in paths]
        if all(n is None for n in names):
            return None
        shown = [n if n is not None else os.fsdecode(os.fspath(args[i]))  # type: ignore[arg-type]
                 for n, i in zip(names, paths, strict=True)]
        return f"{kind} {' -> '.join(shown)}"

    def block() -> None:
        time.sleep(BLOCK_LIMIT)
        os._exit(86)

    def hook(event: str, args: tuple[object, ...]) -> None:
        nonlocal seen
        if getattr(local, "busy", False):
            return
        if event not in ("open", "exit") and event not in _EVENTS:
            return
        local.busy = True
        try:
            try:
                step = describe(event, args)
            except Exception:  # an argument we cannot read: never disturb the child
                step = None
            if step is None:
                return
            if stopped.is_set():
                block()
            if trace_fd is not None:
                os.write(trace_fd, (step + "\n").encode())
            if not stop or not fnmatch.fnmatchcase(step, stop):
                return
            with lock:
                seen += 1
                if seen != nth:
                    return
                stopped.set()
            tmp = marker + ".tmp"
            with open(tmp, "w") as fh:
                fh.write(step)
            os.replace(tmp, marker)
            block()
        finally:
            local.busy = False

    sys.addaudithook(hook)
    atexit.register(hook, "exit", ())
    sys.argv = ["tiup", *sys.argv[1:]]
    runpy.run_module("tiup", run_name="__main__", alter_sys=True)
