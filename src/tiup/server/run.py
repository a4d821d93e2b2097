"""Run the mirror server with granian (a Rust HTTP server driving our RSGI app).

Granian sends files with its own I/O (no Python in the data path), speaks
HTTP/1.1 and TLS, and stops gracefully on SIGINT/SIGTERM. :func:`serve` puts the
:class:`~tiup.server.config.ServerConfig` in :data:`~tiup.server.config.CONFIG_ENV`
(through :mod:`tiup.settings`, the one module touching the environment); each worker
process then builds its app with :func:`create_app`, reading its
:class:`~tiup.settings.Settings` (the parent's environment, already validated by
:func:`serve`) once.

The modules of the server depend one way: ``run`` → ``app`` (static files) and
``api`` (publish API) → ``config``, ``responses``, ``static``, ``sessions``...;
``app`` and ``api`` never import each other (``create_app`` hands the API to the app).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import tiup
from tiup.errors import MissingKeyError, TiupError
from tiup.server.app import MirrorApp
from tiup.server.config import ServerConfig
from tiup.server.responses import ApiHandler
from tiup.settings import Settings, current

#: Seconds a worker gets to finish in-flight requests after SIGTERM before it is killed
#: (writes are crash-safe: a killed publish leaves nothing referenced).
KILL_TIMEOUT = 5


def create_app() -> MirrorApp:
    """Granian factory: build the app of one worker from :data:`CONFIG_ENV`.

    Raises:
        RuntimeError: :data:`CONFIG_ENV` is not set (not started by :func:`serve`).
    """
    config = ServerConfig.from_env()
    settings = current()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    api: ApiHandler | None = None
    if config.publishing:
        from tiup.server.api import make_api

        api = make_api(config, settings)
    return MirrorApp(config, api, settings=settings)


def parse_addr(addr: str, *, allow_any_port: bool = False) -> tuple[str, int]:
    """``host:port`` → (host, port); port 0 (any free port) only with ``allow_any_port``.

    Raises:
        TiupError: not HOST:PORT.
    """
    host, sep, port = addr.rpartition(":")
    low = 0 if allow_any_port else 1
    if not sep or not port.isdigit() or not low <= int(port) < 65536:
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


def check_signing_keys(mirror: Path, key_dir: Path | None,
                       key_files: tuple[str, ...] = ()) -> None:
    """Publishing needs every index, snapshot and timestamp key of the latest root.

    Raises:
        RepositoryError: the mirror cannot be read or is damaged.
        MissingKeyError: a role key is neither in ``key_dir`` nor one of ``key_files``.
        TiupKeyError: a key of ``key_files`` cannot be used (a token: TokenError).
    """
    from tiup.repository.keyring import load_keyring
    from tiup.repository.state import read_state

    state = read_state(mirror)
    ring = load_keyring([key_dir] if key_dir is not None else [],
                        [f if f[:7].lower() == "pkcs11:" else Path(f) for f in key_files])
    for role in ("index", "snapshot", "timestamp"):
        try:
            ring.role_signers(role, state.root.roles[role].keys, state.root_name)
        except MissingKeyError as exc:
            raise MissingKeyError(
                f"publishing is enabled but {exc.message}",
                hint="pass --key-dir with the mirror's index/snapshot/timestamp keys, or "
                     "--read-only to serve without the publish API") from exc


def upload_dir(settings: Settings | None = None) -> tuple[str, bool]:
    """``$TIUP_COMPONENT_DATA_DIR/packages`` (``settings.component_data_dir``, default
    the process's settings) if set, else a private temp dir (→ remove later).

    Raises:
        UsageError: no ``settings`` were passed and an environment variable is malformed.
    """
    base = (settings if settings is not None else current()).component_data_dir
    if base:
        path = Path(base, "packages")
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return str(path), False
    return tempfile.mkdtemp(prefix="tiup-uploads-"), True


def serve(config: ServerConfig, addr: str, *, workers: int = 1, tls_cert: str | None = None,
          tls_key: str | None = None, bucket: bool = False) -> None:
    """Serve until SIGINT/SIGTERM.

    Raises:
        TiupError: bad address, port in use, bad mirror directory or TLS files.
        UsageError: an environment variable is malformed (checked here, before the
            workers read the same environment).
    """
    current()
    from granian import Granian
    from granian.constants import Interfaces, SSLProtocols
    from granian.log import LogLevels

    if not bucket and not Path(config.mirror, "root.json").is_file():
        raise TiupError(f"{config.mirror} is not a mirror (no root.json)",
                        hint="create one with `tiup mirror init` or `tiup mirror clone`")
    if bool(tls_cert) != bool(tls_key):
        raise TiupError("--tls-cert and --tls-key go together")
    for f in (tls_cert, tls_key):
        if f and not Path(f).is_file():
            raise TiupError(f"TLS file {f} not found")
    host, port = parse_addr(addr)
    check_port(host, port)
    state_dir = tempfile.mkdtemp(prefix="tiup-serve-")
    config = dataclasses.replace(config, state_dir=state_dir)
    config.hand_over()
    server = Granian(
        # a bucket: the stateless app of tiup.server.s3app
        "tiup.server.s3app:create_s3_app" if bucket else "tiup.server.run:create_app",
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
        log_level=LogLevels.warning,
        # A worker still starting when SIGTERM arrives can miss it; do not wait forever.
        workers_kill_timeout=KILL_TIMEOUT,
    )
    monitor = start_monitor(config)
    try:
        server.serve()
    finally:
        if monitor is not None:
            stop_monitor(monitor)
        shutil.rmtree(state_dir, ignore_errors=True)


def start_monitor(config: ServerConfig) -> subprocess.Popen[bytes]:
    """Start the monitor process (:mod:`tiup.server.monitor`) of a server whose config
    names its state directory; it logs to this process's stderr."""
    assert config.state_dir is not None
    # ``python -m tiup.server.monitor``, with the directory tiup is imported from first on
    # the path: the self-contained build (scripts/build-dist) runs from a directory the
    # interpreter does not know by itself.
    tiup_root = os.path.dirname(os.path.dirname(os.path.abspath(tiup.__file__)))
    code = (f"import runpy, sys; sys.path.insert(0, {tiup_root!r}); "
            "runpy.run_module('tiup.server.monitor', run_name='__main__', alter_sys=True)")
    args = [sys.executable, "-c", code, config.mirror, config.state_dir, str(os.getpid())]
    if config.upstream:
        args += ["--tarballs", "skip"]  # missing tarballs are fetched from the upstream
    return subprocess.Popen(args, stdin=subprocess.DEVNULL)


def stop_monitor(proc: subprocess.Popen[bytes]) -> None:
    """Stop the monitor (it exits at once on SIGTERM; killed if it does not)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(KILL_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
