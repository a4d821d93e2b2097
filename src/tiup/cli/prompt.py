"""TiUP's yes/no question (``tui.PromptForConfirmOrAbortError``): on stdout, one line read
from stdin, anything but ``y``/``yes`` aborts (exit 1, as in TiUP)."""

from __future__ import annotations

import sys

from tiup.errors import TiupError


def confirm_or_abort(question: str) -> None:
    """Ask ``question`` (TiUP appends ``(default=N)``) and return only on ``y``/``yes``.

    Raises:
        TiupError: any other answer, or end of input: ``Operation aborted by user``.
    """
    sys.stdout.write(question + "(default=N) ")
    sys.stdout.flush()
    answer = sys.stdin.readline().rstrip("\n")
    if answer.strip().lower() not in ("y", "yes"):
        raise TiupError(f"Operation aborted by user (with answer '{answer}')", code="aborted")
