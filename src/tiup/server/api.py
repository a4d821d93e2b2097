"""The tiup-server publish API (``/api/v1/...``). Being built: publishing is off until then."""

from __future__ import annotations

from typing import Any

from tiup.server.app import ApiHandler, ServerConfig, json_error


def make_api(config: ServerConfig) -> ApiHandler:
    """The API handler for ``config`` (publishing not implemented yet: 501)."""

    async def handler(method: str, path: str, query: str, headers: Any, proto: Any
                      ) -> tuple[int, object]:
        return json_error(501, "NOT IMPLEMENTED", "publishing over HTTP is not available yet")

    return handler
