"""Run the ``tiup`` command for a test: in this process (the default) or in a real one.

In process, :func:`run_in_process` calls the same entry point as ``python -m tiup``
(:func:`tiup.cli.entry.main`, fast paths included) with ``sys.argv``, the standard streams,
the environment and the working directory set as a child would see them, and maps the
outcome as the interpreter does: ``sys.exit(n)`` is exit code ``n``, ``sys.exit("text")``
prints the text and is 1, an uncaught exception prints its traceback and is 1. Output is
captured as bytes and decoded as ``subprocess.run(text=True)`` decodes a child's pipes.
Everything a call may change process-wide is put back afterwards: ``os.environ`` (the CLI
sets ``TIUP_OFFLINE`` itself), the working directory, ``sys.argv`` and the streams, the
settings read from the environment (:func:`tiup.settings.current`) and the CLI's output
options.

What only a process can show stays in a process (:func:`run_subprocess`): start-up, signals
and ``kill -9``, and running a component, which spawns a child that writes to the real file
descriptors. An in-process call that reaches the component runner stops with
:class:`NeedsProcess`, naming the fix, instead of losing the component's output.
"""

from __future__ import annotations

import io
import locale
import os
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tiup

#: What ``python -m tiup`` puts in ``sys.argv[0]``.
MAIN_PATH = str(Path(tiup.__file__).resolve().parent / "__main__.py")


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class NeedsProcess(BaseException):
    """Raised (past every ``except Exception``) when an in-process call would start a
    component: its output goes to the real stdout/stderr, so the test must use a process."""


def run_subprocess(args: tuple[str, ...], *, env: dict[str, str], cwd: Path,
                   input: str | None, timeout: float) -> Result:
    """``python -m tiup *args`` in a child process."""
    proc = subprocess.run([sys.executable, "-m", "tiup", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, input=input, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def _decode(raw: bytes) -> str:
    # what subprocess.run(text=True) does with a child's pipe
    text = raw.decode(locale.getpreferredencoding(False))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _stream(data: bytes = b"") -> io.TextIOWrapper:
    # the child's pipes: text over bytes, not a terminal, no fileno (as good as a pipe
    # for everything the CLI does with them: it only asks isatty())
    return io.TextIOWrapper(io.BytesIO(data), encoding=locale.getpreferredencoding(False),
                            errors="strict", line_buffering=False, write_through=True)


def _exit_code(exc: SystemExit, stderr: io.TextIOWrapper) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=stderr)  # the interpreter prints a non-int exit value
    return 1


def _refuse_component(*_args: Any, **_kw: Any) -> int:
    raise NeedsProcess(
        "this tiup call runs a component, whose output goes to the real file descriptors: "
        "run it with tiup(..., subprocess=True)")


def _reset_process_state() -> None:
    from tiup import settings
    from tiup.cli import output

    settings.reset_current()
    output.set_options(progress=True, verbose=False)
    pkcs11 = sys.modules.get("tiup.keys.pkcs11")
    if pkcs11 is not None:  # a process closes its token sessions at exit: so does a run
        pkcs11.close_all()
        pkcs11.configure()


def run_in_process(args: tuple[str, ...], *, env: dict[str, str], cwd: Path,
                   input: str | None) -> Result:
    """``tiup *args`` through :func:`tiup.cli.entry.main` in this process (see the module
    docstring); ``env`` is the whole environment the call sees."""
    from tiup.cli import entry
    from tiup.client import runner

    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_argv = sys.argv
    saved_streams = (sys.stdin, sys.stdout, sys.stderr,
                     sys.__stdin__, sys.__stdout__, sys.__stderr__)
    saved_run_binary = runner.run_binary
    stdin = _stream((input or "").encode(locale.getpreferredencoding(False)))
    stdout, stderr = _stream(), _stream()
    code = 0
    try:
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd)
        sys.argv = [MAIN_PATH, *args]
        sys.stdin, sys.stdout, sys.stderr = stdin, stdout, stderr
        # the terminal-size lookups (click, fasthelp) see a pipe, as in a child
        sys.__stdin__, sys.__stdout__, sys.__stderr__ = stdin, stdout, stderr
        runner.run_binary = _refuse_component  # type: ignore[assignment]
        _reset_process_state()
        try:
            entry.main()
        except SystemExit as exc:
            code = _exit_code(exc, stderr)
        except NeedsProcess:
            raise
        except BaseException:  # an uncaught exception: the interpreter's report and exit 1
            traceback.print_exc(file=stderr)
            code = 1
    finally:
        runner.run_binary = saved_run_binary  # type: ignore[assignment]
        for stream in (stdout, stderr):
            stream.flush()
        (sys.stdin, sys.stdout, sys.stderr,
         sys.__stdin__, sys.__stdout__, sys.__stderr__) = saved_streams
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        _reset_process_state()
    out = stdout.buffer.getvalue()  # type: ignore[attr-defined]
    err = stderr.buffer.getvalue()  # type: ignore[attr-defined]
    return Result(code, _decode(out), _decode(err))
