"""What the static-file app and the publish API share: JSON error bodies, the API
handler's signature and the part of granian's RSGI protocol object we answer through.

Every error the server sends is JSON ``{"status": CODE, "message": text}``
(:func:`json_error`), as tiup-server does.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

JSON_TYPE = "application/json; charset=utf-8"

#: Longest error message sent (messages may quote a hostile body: a 5000-digit number).
MAX_MESSAGE = 1000

#: An API handler: (method, path, query, headers, client address "host:port", protocol)
#: → (status, JSON body).
ApiHandler = Callable[[str, str, str, Any, str, Any], Awaitable[tuple[int, object]]]


class Response(Protocol):
    """The part of granian's RSGI protocol object that we use."""

    def response_empty(self, status: int, headers: list[tuple[str, str]]) -> None: ...
    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None: ...
    def response_file(self, status: int, headers: list[tuple[str, str]], file: str) -> None: ...
    def response_file_range(self, status: int, headers: list[tuple[str, str]], file: str,
                            start: int, end: int) -> None: ...


def json_error(status: int, code: str, message: str) -> tuple[int, dict[str, str]]:
    """(status, body) of an error; a message longer than :data:`MAX_MESSAGE` is cut."""
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "..."
    return status, {"status": code, "message": message}


def send_json(proto: Response, status: int, body: object,
              extra: list[tuple[str, str]] | None = None) -> tuple[int, int]:
    """Answer with ``body`` as JSON; (status, bytes sent) for the access log."""
    try:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate quoted from the request: escape it
        data = json.dumps(body).encode("ascii")
    proto.response_bytes(status, [("content-type", JSON_TYPE), *(extra or [])], data)
    return status, len(data)


def read_only(proto: Response, method: str, path: str) -> tuple[int, int]:
    """The 405 of a method other than GET or HEAD on a file or page."""
    return send_json(proto, *json_error(405, "METHOD NOT ALLOWED",
                                        f"{method} is not allowed on {path}"),
                     extra=[("allow", "GET, HEAD")])
