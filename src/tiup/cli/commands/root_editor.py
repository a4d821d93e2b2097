"""The interactive step of ``tiup mirror rotate``: edit the next root in ``$EDITOR``.

The file is pre-filled with the next root (version +1, expiry extended), as
4-space-indented JSON of the ``signed`` object like TiUP writes it, and is
deleted afterwards whatever happens (TiUP leaves it behind). A file left as
proposed (the editor quit, or saved without a change) changes nothing, and
``rotate`` then publishes nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from tiup.cli import output
from tiup.errors import ManifestError, TiupError, UsageError
from tiup.manifest.models import Root


def editor_command() -> tuple[str, list[str]]:
    """The editor (``$VISUAL``, else ``$EDITOR``, else ``vi``) as text and as an argv.

    Raises:
        UsageError: the variable is blank or its quoting is broken (``EDITOR='vi "'``).
    """
    name = "VISUAL" if os.environ.get("VISUAL") else "EDITOR"
    editor = os.environ.get(name) or "vi"
    try:
        argv = shlex.split(editor)
    except ValueError as exc:
        raise UsageError(f"cannot parse ${name}={editor!r}: {exc}",
                         hint=f"fix ${name} (e.g. {name}=vi), or give --add-key/--remove-key/"
                              "--threshold/--days instead of editing") from exc
    if not argv:
        raise UsageError(f"${name} is blank", hint=f"set {name}=vi (or another editor)")
    return editor, argv


def edit_root(proposed: Root, old: Root) -> Root:
    """Let the user edit ``proposed``; the edited root.

    Raises:
        TiupError: the editor failed, or the result is not a valid next root.
    """
    from tiup.manifest.canonical import decode_json_strict
    from tiup.repository.admin import check_root_threshold

    editor, argv = editor_command()
    fd, name = tempfile.mkstemp(suffix=".root.json")
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(proposed.to_dict(), indent=4) + "\n")
        output.info(f"Editing the new root (version {proposed.version}) with {editor} (quit "
                    "without a change to publish nothing) ...")
        try:
            done = subprocess.run([*argv, str(path)], check=False)
        except OSError as exc:
            raise TiupError(f"cannot run the editor {editor!r}: {exc.strerror or exc}",
                            hint="set EDITOR, or give --add-key/--remove-key/--threshold/--days"
                            ) from exc
        if done.returncode != 0:
            raise TiupError(f"the editor {editor!r} exited with status {done.returncode}; "
                            "nothing was changed")
        try:
            edited = Root.from_dict(decode_json_strict(path.read_bytes()), "the edited root")
        except (ManifestError, ValueError) as exc:
            raise TiupError(f"the edited root is not valid: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
    if edited.version != old.version + 1:
        raise TiupError(f"the edited root has version {edited.version}, it must be "
                        f"{old.version + 1}")
    check_root_threshold(edited)
    return edited
