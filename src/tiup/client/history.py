"""The execution history in ``$TIUP_HOME/history``, in Go TiUP's format (``behavior.md`` §1.4).

Files ``history/tiup-history-<N>``; a record goes to the one with the highest
``N``, and ``N+1`` starts once that file has reached 64 KiB. One JSON object per
line, as Go's ``encoding/json`` writes it::

    {"time":"2026-11-30T10:20:30.123456789+08:00","command":"tiup list","exit_code":0}

``time`` is the start of the run (RFC 3339 with nanoseconds, local offset,
trailing zeros of the fraction dropped); ``command`` the arguments joined by
spaces, passwords, URL secrets and PKCS#11 ``pin-value=`` PINs hidden (:func:`redact`).
Go ``tiup`` and this project read and write the same files; lines that do not parse are skipped.

:func:`record` runs after every ``tiup`` command, on the fast path of an installed
component too, so this module imports nothing beyond ``os``, ``json`` and
``time`` (``urllib.parse`` only for an argument that holds a URL, ``datetime`` only to
read records).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence

TYPE_CHECKING = False  # not typing's: importing typing costs the fast path ~3 ms
if TYPE_CHECKING:
    from datetime import datetime

DIR = "history"
PREFIX = "tiup-history-"
#: a file this large gets no more records: the next one starts
FILE_SIZE = 64 * 1024

#: Go's ``HideSensitiveInfo`` list: ``--password x`` hides ``x``, ``--password=x`` and
#: ``-pX`` become ``<flag>******`` (so ``-port`` is hidden too, as in TiUP).
SECRET_FLAGS = ("-p", "-password", "--password", "-tidb-password", "--tidb-password",
                "encrypt")
#: query keys of a URL argument whose values are hidden
SECRET_QUERY_KEYS = frozenset({"sasl-password", "access-key", "secret-access-key",
                               "session-token"})
HIDDEN = "******"


def redact(args: Sequence[str]) -> list[str]:
    """Hide the secrets in ``args`` as Go TiUP's history does.

    One deliberate difference: a flag given exactly (``-password x``) always hides the
    next argument; Go checks the ``-p`` prefix first and writes ``-p****** x``.
    """
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg in SECRET_FLAGS and i < len(args):
            out += [arg, HIDDEN]
            i += 1
            continue
        prefix = next((f for f in SECRET_FLAGS if arg.startswith(f) and len(arg) > len(f)),
                      None)
        out.append(prefix + HIDDEN if prefix is not None else _filter_uri(_hide_pin(arg)))
    return out


def _hide_pin(arg: str) -> str:
    """A PKCS#11 URI (or ``--key=pkcs11:…``) with its ``pin-value=`` hidden: the value runs
    to the next ``;``, ``&``, ``?`` or the end (RFC 7512)."""
    lower = arg.lower()
    if "pin-value=" not in lower:
        return arg
    out, i = [], 0
    while True:
        j = lower.find("pin-value=", i)
        if j < 0:
            out.append(arg[i:])
            return "".join(out)
        j += len("pin-value=")
        out.append(arg[i:j] + HIDDEN)
        ends = [k for k in (lower.find(c, j) for c in ";&?") if k >= 0]
        i = min(ends) if ends else len(arg)


def _filter_uri(arg: str) -> str:
    """A URL with its password (``xxxxx``) and secret query values (``******``) hidden;
    anything else unchanged."""
    if arg.startswith("--sink-uri="):
        return "--sink-uri=" + _filter_uri(arg[len("--sink-uri="):])
    if "://" not in arg:
        return arg
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    try:
        parts = urlsplit(arg)
    except ValueError:
        return arg
    if not parts.scheme:
        return arg
    netloc, query = parts.netloc, parts.query
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:xxxxx@{host}"
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        hidden = [(k, HIDDEN if k in SECRET_QUERY_KEYS else v) for k, v in pairs]
        if hidden != pairs:
            query = urlencode(hidden, safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return arg
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def go_time(ns: int) -> str:
    """Go's JSON form of a local time given in nanoseconds since the epoch (RFC 3339 nano)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    local = time.localtime(seconds)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", local)
    if frac:
        text += f".{frac:09d}".rstrip("0")
    offset = (local.tm_gmtoff or 0) // 60
    if offset == 0:
        return text + "Z"
    sign = "+" if offset > 0 else "-"
    hours, minutes = divmod(abs(offset), 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


def go_json(obj: object) -> str:
    """``json.Marshal``'s bytes for plain data: compact, UTF-8, with ``<``, ``>``, ``&``,
    U+2028 and U+2029 escaped as Go escapes them."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


def _valid_text(arg: str) -> str:
    """Bytes that are not UTF-8 (kept by ``sys.argv`` as surrogates) become U+FFFD, as in Go."""
    return arg.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def history_files(directory: str) -> list[tuple[int, str]]:
    """``(N, path)`` of every ``tiup-history-<N>`` file, newest (highest ``N``) first."""
    found = []
    for name in os.listdir(directory):
        number = name[len(PREFIX):]
        if name.startswith(PREFIX) and number.isdigit() and number.isascii():
            found.append((int(number), os.path.join(directory, name)))
    found.sort(reverse=True)
    return found


def record(home: str, argv: Sequence[str], started_ns: int, exit_code: int) -> None:
    """Append one run to the history of ``home``.

    Raises:
        OSError: the history directory or file cannot be written.
    """
    directory = os.path.join(home, DIR)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    files = history_files(directory)
    number = 0
    if files:
        number, newest = files[0]
        try:
            full = os.stat(newest).st_size >= FILE_SIZE
        except FileNotFoundError:
            full = False
        number += 1 if full else 0
    line = go_json({"time": go_time(started_ns),
                    "command": " ".join(_valid_text(a) for a in redact(argv)),
                    "exit_code": exit_code}) + "\n"
    path = os.path.join(directory, f"{PREFIX}{number}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))  # one write: concurrent runs never interleave
    finally:
        os.close(fd)


class Row:
    """One recorded run."""

    __slots__ = ("command", "exit_code", "text", "time")

    def __init__(self, text: str, when: datetime, command: str, exit_code: int):
        #: the ``time`` member as written (Go's RFC 3339 with nanoseconds)
        self.text = text
        self.time = when
        self.command = command
        self.exit_code = exit_code

    def to_json(self) -> str:
        """The record as Go's ``tiup history --format json`` prints it."""
        return go_json({"time": self.text, "command": self.command,
                        "exit_code": self.exit_code})


def parse_line(line: bytes) -> Row | None:
    """A record, or None for a line that is not one (Go skips those too)."""
    from datetime import datetime

    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("time"), str):
        return None
    command, code = data.get("command", ""), data.get("exit_code", 0)
    if not isinstance(command, str) or isinstance(code, bool) or not isinstance(code, int):
        return None
    try:
        when = datetime.fromisoformat(data["time"])
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return Row(data["time"], when, command, code)


def _rows(path: str) -> list[Row]:
    with open(path, "rb") as fh:
        return [row for row in map(parse_line, fh) if row is not None]


def read(home: str, limit: int | None) -> list[Row]:
    """The last ``limit`` records (all with None), oldest first; none if nothing was
    recorded yet.

    Raises:
        OSError: the history cannot be read.
    """
    directory = os.path.join(home, DIR)
    try:
        files = history_files(directory)
    except FileNotFoundError:
        return []
    rows: list[Row] = []
    for _number, path in files:
        if limit is not None and len(rows) >= limit:
            break
        rows = _rows(path) + rows
    if limit is not None:
        rows = rows[max(0, len(rows) - limit):] if limit else []
    return rows


def cleanup(home: str, before: datetime | None) -> int:
    """Remove the records older than ``before`` (every file with None); returns how many.

    Each file is rewritten atomically with the records it keeps (TiUP deletes whole
    files by modification time); a file left empty is deleted. Lines that are not
    records are kept.

    Raises:
        OSError: a file cannot be read, rewritten or deleted.
    """
    from tiup.fsutil import atomic_write

    directory = os.path.join(home, DIR)
    try:
        files = history_files(directory)
    except FileNotFoundError:
        return 0
    removed = 0
    for _number, path in files:
        with open(path, "rb") as fh:
            lines = fh.read().splitlines(keepends=True)
        kept = []
        for line in lines:
            if not line.strip():
                continue
            row = parse_line(line)
            if before is None or (row is not None and row.time < before):
                removed += row is not None
                continue
            kept.append(line if line.endswith(b"\n") else line + b"\n")
        if not kept:
            os.remove(path)
        elif kept != lines:
            atomic_write(path, b"".join(kept), 0o644)
    return removed
