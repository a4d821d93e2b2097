"""Run the mirror server with granian (a Rust HTTP server driving our RSGI app).

Granian sends files with its own I/O (no Python in the data path), speaks
HTTP/1.1 and TLS, and stops gracefully on SIGINT/SIGTERM. The app is built
in each worker process from :data:`tiup.server.app.CONFIG_ENV`.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from tiup.errors import TiupError
from tiup.server.app import CONFIG_ENV, ServerConfig


def parse_addr(addr: str) -> tuple[str, int]:
    """``host:port`` → (host, port). Raises TiupError for anything else."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise TiupError(f"invalid address {addr!r}", hint="use HOST:PORT, e.g. 0.0.0.0:8989")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - the documented default


def check_port(host: str, port: int) -> None:
    """Fail early, with a clear message, if the address cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise TiupError(f"cannot listen on {host}:{port}: {exc.strerror}",
                            hint="choose another --addr, or stop what uses that port") from exc


def serve(config: ServerConfig, addr: str, *, workers: int = 1, tls_cert: str | None = None,
          tls_key: str | None = None) -> None:
    """Serve until SIGINT/SIGTERM.

    Raises:
        TiupError: bad address, port in use, bad mirror directory or TLS files.
    """
    from granian import Granian
    from granian.constants import Interfaces, SSLProtocols

    if not Path(config.mirror, "root.json").is_file():
        raise TiupError(f"{config.mirror} is not a mirror (no root.json)",
                        hint="create one with `tiup mirror init` or `tiup mirror clone`")
    if bool(tls_cert) != bool(tls_key):
        raise TiupError("--tls-cert and --tls-key go together")
    for f in (tls_cert, tls_key):
        if f and not Path(f).is_file():
            raise TiupError(f"TLS file {f} not found")
    host, port = parse_addr(addr)
    check_port(host, port)
    os.environ[CONFIG_ENV] = config.to_env()
    server = Granian(
        "tiup.server.app:create_app",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.RSGI,
        workers=max(1, workers),
        websockets=False,
        log_access=False,
        ssl_cert=Path(tls_cert) if tls_cert else None,
        ssl_key=Path(tls_key) if tls_key else None,
        ssl_protocol_min=SSLProtocols.tls12,
    )
    server.serve()
