"""Run an installed component (``behavior.md`` §5.1 steps 3-7, §12.13).

This module is on the hot path of ``tiup <component>``: it imports only the
standard library pieces it needs (no click, rich, cryptography or HTTP), so
starting an installed component costs little more than starting Python.

The component gets TiUP's environment variables; values computed here win
over inherited ones (§12.13). SIGHUP, SIGTERM and SIGQUIT are forwarded to
the child; its exit status becomes ours (255 if it was killed by a signal).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Mapping

from tiup.client.history import redact
from tiup.ids import base62

#: TiUP's version, reported to components as TIUP_VERSION.
TIUP_VERSION = "1.16.5"


def make_instance_dir(home: str, env: Mapping[str, str], tag: str | None
                      ) -> tuple[str, str, bool]:
    """(instance dir, tag, whether to remove it after the run).

    ``TIUP_INSTANCE_DATA_DIR`` is reused as is; otherwise ``data/<tag>`` with the
    tag given or Base62 of the Unix milliseconds, created exclusively (a random
    suffix on collision, §12.13).
    """
    inherited = env.get("TIUP_INSTANCE_DATA_DIR")
    if inherited:
        os.makedirs(inherited, exist_ok=True)
        return inherited, tag or os.path.basename(inherited.rstrip("/")), False
    data_dir = os.path.join(home, "data")
    os.makedirs(data_dir, exist_ok=True)
    if tag:
        path = os.path.join(data_dir, tag)
        os.makedirs(path, exist_ok=True)
        return path, tag, False
    base = base62(int(time.time() * 1000))
    name = base
    while True:
        try:
            os.mkdir(os.path.join(data_dir, name))
            return os.path.join(data_dir, name), name, True
        except FileExistsError:
            import secrets

            name = f"{base}{secrets.token_hex(2)}"


def component_env(home: str, parent: Mapping[str, str], *, comp: str, binary: str,
                  user_version: str, tag: str, instance_dir: str, mirror: str
                  ) -> dict[str, str]:
    """The child's environment: the parent's, overridden by TiUP's computed values."""
    storage = os.path.join(home, "storage", comp)
    os.makedirs(storage, exist_ok=True)
    env = dict(parent)
    env.update({
        "TIUP_HOME": home,
        "TIUP_USER_INPUT_VERSION": user_version,
        "TIUP_VERSION": TIUP_VERSION,
        "TIUP_COMPONENT_DATA_DIR": storage,
        "TIUP_COMPONENT_INSTALL_DIR": os.path.dirname(binary),
        "TIUP_WORK_DIR": os.getcwd(),
        "TIUP_TAG": tag,
        "TIUP_INSTANCE_DATA_DIR": instance_dir,
        "TIUP_MIRRORS": mirror,
    })
    return env


def pid_alive(pid: object) -> bool:
    """True if ``pid`` names a running process (one we may not signal counts as running)."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_meta(instance_dir: str, *, comp: str, pid: int, binary: str, args: list[str],
               env: Mapping[str, str]) -> None:
    """``tiup_process_meta``: only TIUP_* variables; never overwrite a live process's meta."""
    path = os.path.join(instance_dir, "tiup_process_meta")
    try:
        with open(path, "rb") as fh:
            old = json.load(fh)
        if isinstance(old, dict) and isinstance(old.get("pid"), int) and pid_alive(old["pid"]) \
                and old["pid"] != pid:
            return
    except (OSError, ValueError):
        pass
    meta = {
        "component": comp,
        "created_time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "pid": pid,
        "exec": binary,
        "args": redact(args),
        "env": {k: v for k, v in env.items() if k.startswith("TIUP_")},
        "dir": instance_dir,
    }
    created = meta["created_time"]
    assert isinstance(created, str)
    if len(created) > 5 and created[-5] in "+-":
        meta["created_time"] = created[:-2] + ":" + created[-2:]
    tmp = os.path.join(instance_dir, ".tmp-tiup_process_meta")
    with open(tmp, "w") as fh:
        fh.write(json.dumps(meta, indent=2))
    os.replace(tmp, path)


def run_binary(home: str, parent_env: Mapping[str, str], *, comp: str, binary: str,
               args: list[str], user_version: str, tag: str | None, mirror: str,
               announce: Callable[[str], None] | None = None) -> int:
    """Start ``binary`` with ``args`` and wait; returns the exit code to use.

    Raises:
        OSError: the binary cannot be started.
    """
    instance_dir, tag_used, remove_after = make_instance_dir(home, parent_env, tag)
    env = component_env(home, parent_env, comp=comp, binary=binary, user_version=user_version,
                        tag=tag_used, instance_dir=instance_dir, mirror=mirror)
    if announce is not None and comp not in ("playground", "playground-ng", "cluster"):
        announce(" ".join([binary, *redact(args)]))
    # Signals that arrive between the spawn and the forwarding handlers wait, blocked, and
    # reach the child once the handlers are in place; the child starts with our old mask.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, (*_FORWARDED, signal.SIGINT))
    try:
        pid = os.posix_spawn(binary, [binary, *args], env, setsigmask=mask)
        write_meta(instance_dir, comp=comp, pid=pid, binary=binary, args=args, env=env)
        return _wait(pid, comp, mask)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if remove_after:
            _remove_instance_dir(instance_dir)


def _remove_instance_dir(path: str) -> None:
    try:  # the usual case: only the meta file (no shutil import on the fast path)
        for name in os.listdir(path):
            os.remove(os.path.join(path, name))
        os.rmdir(path)
    except OSError:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


_FORWARDED = (signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT)


def _wait(pid: int, comp: str, mask: set[int | signal.Signals]) -> int:
    """Wait for ``pid``, forwarding SIGHUP/SIGTERM/SIGQUIT; ``mask`` is restored (so that
    signals held back since the spawn are delivered) once the handlers are in place."""

    def forward(signum: int, _frame: object) -> None:
        import sys

        name = signal.Signals(signum).name
        sys.stderr.write(f"Got signal {name} (Component: {comp} ; PID: {pid})\n")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    previous = {s: signal.signal(s, forward) for s in _FORWARDED}
    # SIGINT reaches the child from the terminal; tiup just keeps waiting.
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    try:
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if os.WIFSIGNALED(status):
        return 255
    return os.waitstatus_to_exitcode(status)
