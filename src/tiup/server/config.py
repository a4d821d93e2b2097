"""What a worker process of the mirror server needs, handed over in the environment.

:func:`tiup.server.run.serve` writes the :class:`ServerConfig` to :data:`CONFIG_ENV` as
JSON before granian starts its workers; each worker's :func:`tiup.server.run.create_app`
reads it back. Both go through :mod:`tiup.settings`
(:func:`~tiup.settings.hand_over_server_config`, :func:`~tiup.settings.server_config_blob`),
the one module that touches the environment: this is inter-process communication, not a
user setting (``docs/adr/``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tiup.settings import SERVER_CONFIG_ENV as CONFIG_ENV
from tiup.settings import hand_over_server_config, server_config_blob


@dataclass(frozen=True)
class ServerConfig:
    """Everything a worker process needs; passed to workers as JSON in the environment."""

    mirror: str
    key_dir: str | None = None
    #: signing keys given one by one (``--key``): key files, or ``pkcs11:`` URIs (each
    #: worker process opens its own session on the token)
    key_files: tuple[str, ...] = ()
    upload_dir: str | None = None
    max_upload: int = 4 << 30
    session_ttl: int = 120
    upstream: str | None = None
    #: Bytes of uploads staged at once (all clients / one client address), and sessions
    #: (uploaded or being uploaded, not yet consumed by a component POST).
    max_staged: int = 16 << 30
    max_client_staged: int = 8 << 30
    max_sessions: int = 64
    max_client_sessions: int = 8
    #: The server's private runtime directory (created by ``serve``): the monitor's
    #: catalog and verification, and each worker's metrics.
    state_dir: str | None = None

    @property
    def publishing(self) -> bool:
        """Signing keys (a directory or ``--key``) and an upload directory: the API is on."""
        return (self.key_dir is not None or bool(self.key_files)) and \
            self.upload_dir is not None

    def key_sources(self) -> tuple[list[Path], list[Path | str]]:
        """The key directories and the explicit keys of :func:`load_keyring`."""
        files: list[Path | str] = [f if f[:7].lower() == "pkcs11:" else Path(f)
                                   for f in self.key_files]
        return ([Path(self.key_dir)] if self.key_dir else []), files

    def to_env(self) -> str:
        """The JSON blob handed to the workers."""
        return json.dumps(self.__dict__)

    def hand_over(self) -> None:
        """Leave this config for the worker processes started next (:data:`CONFIG_ENV`)."""
        hand_over_server_config(self.to_env())

    @classmethod
    def from_env(cls) -> ServerConfig:
        """The config :meth:`hand_over` left. Raises RuntimeError when it is not set."""
        raw = server_config_blob()
        if not raw:
            raise RuntimeError(f"{CONFIG_ENV} is not set")
        fields = json.loads(raw)
        fields["key_files"] = tuple(fields.get("key_files") or ())
        return cls(**fields)
