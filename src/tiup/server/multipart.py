"""A streaming ``multipart/form-data`` reader for tarball uploads.

The tiup-server API receives a tarball as the form field ``file`` (Go's
``mime/multipart`` writer; ``curl -F file=@x.tar.gz``). The body is fed in
chunks as they arrive; the part of the wanted field goes to a sink as it is
parsed, so a 4 GiB upload never sits in memory. Other fields are skipped
(their bodies are bounded by :data:`MAX_OTHER_FIELD`), part headers by
:data:`MAX_HEADERS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import Message

from tiup.errors import MultipartError

MAX_HEADERS = 16 * 1024
MAX_OTHER_FIELD = 1024 * 1024


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a ``multipart/form-data`` content type.

    Raises:
        MultipartError: another content type, or no usable boundary.
    """
    if not content_type:
        raise MultipartError("no Content-Type: expected multipart/form-data")
    msg = Message()
    msg["content-type"] = content_type
    if msg.get_content_type() != "multipart/form-data":
        raise MultipartError(f"Content-Type is {msg.get_content_type()}, "
                             "expected multipart/form-data")
    boundary = msg.get_param("boundary")
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= 200:
        raise MultipartError("multipart/form-data without a valid boundary")
    return boundary.encode("latin-1")


def _disposition(raw: bytes) -> tuple[str | None, str | None]:
    """(field name, file name) from a part's header block."""
    msg = Message()
    for line in raw.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if sep:
            msg[name.decode("latin-1").strip()] = value.decode("utf-8", "replace").strip()
    if msg.get("content-disposition") is None:
        return None, None
    field = msg.get_param("name", header="content-disposition")
    filename = msg.get_filename()
    return (field if isinstance(field, str) else None), filename


class FormFileReader:
    """Feed the body with :meth:`feed`, then call :meth:`finish`.

    The bytes of the first part named ``field`` go to ``sink``; ``filename``
    holds its file name once its headers are parsed.
    """

    def __init__(self, boundary: bytes, field: str, sink: Callable[[bytes], None]):
        self._delim = b"\r\n--" + boundary
        self._field = field
        self._sink = sink
        # The body starts with "--boundary"; prefixing CRLF makes every delimiter alike.
        self._buf = bytearray(b"\r\n")
        self._state = "preamble"
        self._in_wanted = False
        self._other = 0
        self.found = False
        self.filename: str | None = None

    def feed(self, data: bytes) -> None:
        """Consume one chunk. Raises MultipartError."""
        self._buf += data
        while self._step():
            pass

    def finish(self) -> None:
        """The body ended. Raises MultipartError if it ended inside a part."""
        self._step()
        if self._state != "done":
            raise MultipartError("the multipart body ended before its closing boundary")

    def _step(self) -> bool:
        buf = self._buf
        if self._state == "preamble":
            at = buf.find(self._delim)
            if at < 0:
                if len(buf) > MAX_HEADERS:
                    raise MultipartError("no multipart boundary found")
                return False
            del buf[: at + len(self._delim)]
            self._state = "after-delim"
            return True
        if self._state == "after-delim":
            if len(buf) < 2:
                return False
            if buf[:2] == b"--":
                self._state = "done"
                buf.clear()
                return False
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEADERS:
                    raise MultipartError("multipart part headers are too large")
                return False
            head = bytes(buf[:end])
            del buf[: end + 4]
            head = re.sub(rb"^[ \t]*\r\n", b"", head)
            field, filename = _disposition(head)
            self._in_wanted = field == self._field and not self.found
            if self._in_wanted:
                self.found = True
                self.filename = filename
            self._other = 0
            self._state = "body"
            return True
        if self._state == "body":
            at = buf.find(self._delim)
            if at < 0:
                keep = len(self._delim) - 1
                if len(buf) > keep:
                    self._emit(bytes(buf[: len(buf) - keep]))
                    del buf[: len(buf) - keep]
                return False
            self._emit(bytes(buf[:at]))
            del buf[: at + len(self._delim)]
            self._state = "after-delim"
            return True
        return False

    def _emit(self, data: bytes) -> None:
        if not data:
            return
        if self._in_wanted:
            self._sink(data)
            return
        self._other += len(data)
        if self._other > MAX_OTHER_FIELD:
            raise MultipartError("a multipart field other than the file is too large")
