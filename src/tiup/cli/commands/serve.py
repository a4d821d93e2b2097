"""``tiup mirror serve`` and ``tiup-server``: serve a mirror over HTTP(S) with the publish API."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tiup.cli import output

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``4GiB``, ``512MiB``, ``100MB``, ``1G``, ``1048576`` → bytes.

    Raises:
        click.BadParameter: not a size.
    """
    m = _SIZE.fullmatch(text)
    if m is None:
        raise click.BadParameter(f"{text!r} is not a size (e.g. 4GiB, 512MiB, 100MB)")
    unit = m.group(2).upper()
    decimal = bool(unit) and not m.group(3) and text.strip()[-1] in "bB"
    base = 1000 if decimal else 1024
    power = " KMGT".index(unit) if unit else 0
    return int(float(m.group(1)) * base**power)


class _Size(click.ParamType[int, Any]):
    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


def _options(func: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option("--addr", default="0.0.0.0:8989", show_default=True, metavar="HOST:PORT",
                     help="Address to listen on."),
        click.option("--key-dir", metavar="DIR",
                     help="Private keys of the index/snapshot/timestamp roles (default: "
                          "<mirror>/keys if it exists). Publishing is enabled when they are "
                          "available."),
        click.option("--key", "signing_keys", multiple=True, metavar="FILE|URI",
                     help="A signing key of the index/snapshot/timestamp roles: a key file, "
                          "or a 'pkcs11:…' token key with pin-source=FILE (repeatable; with "
                          "or instead of --key-dir)."),
        click.option("--read-only", is_flag=True,
                     help="Serve files only: the publish API answers 404."),
        click.option("--tls-cert", metavar="FILE", help="Serve HTTPS with this certificate "
                     "(PEM, with the chain)."),
        click.option("--tls-key", metavar="FILE", help="Private key of --tls-cert (PEM)."),
        click.option("--upstream", metavar="URL", default=None,
                     help="Fetch static files missing here from this mirror (off by "
                          "default; never used by the publish path)."),
        click.option("--max-upload-size", type=_Size(), default="4GiB", show_default=True,
                     help="Largest tarball accepted by the publish API (413 above)."),
        click.option("--max-staged-size", type=_Size(), default="16GiB", show_default=True,
                     help="Bytes of uploads staged at once, all clients together: uploads "
                          "not yet consumed by their manifest (507 when full)."),
        click.option("--max-client-staged-size", type=_Size(), default="8GiB",
                     show_default=True,
                     help="Bytes of uploads staged at once by one client address (an IPv6 "
                          "client by its /64; behind a proxy, the proxy) (507 when full)."),
        click.option("--max-sessions", type=click.IntRange(1), default=64, show_default=True,
                     metavar="N",
                     help="Upload sessions at once, all clients together (429 when full)."),
        click.option("--max-client-sessions", type=click.IntRange(1), default=8, metavar="N",
                     show_default=True,
                     help="Upload sessions at once per client address (429 when full)."),
        click.option("--session-ttl", type=click.IntRange(1), default=120, show_default=True,
                     metavar="SECONDS",
                     help="An upload not followed by its manifest is deleted after this many "
                          "idle seconds."),
        click.option("--workers", type=click.IntRange(1, 64), default=None,
                     help="Worker processes (default: the number of CPUs, at most 4)."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def redact_key(value: str) -> str:
    """A ``--key`` value as shown: a token URI with its PIN hidden."""
    if value[:7].lower() != "pkcs11:":
        return value
    from tiup.keys.pkcs11 import redact_uri

    return redact_uri(value)


def run_server(directory: str | None, addr: str, key_dir: str | None, read_only: bool,
               tls_cert: str | None, tls_key: str | None, upstream: str | None,
               max_upload_size: int, session_ttl: int, workers: int | None,
               max_staged_size: int = 16 << 30, max_client_staged_size: int = 8 << 30,
               max_sessions: int = 64, max_client_sessions: int = 8,
               signing_keys: tuple[str, ...] = ()) -> int:
    """Check everything, print where we serve, then serve until SIGINT/SIGTERM.

    Raises:
        TiupError: a startup failure (exit 1).
    """
    import shutil

    from tiup.errors import TiupError, UsageError
    from tiup.server.config import ServerConfig
    from tiup.server.run import check_signing_keys, parse_addr, serve, upload_dir

    if directory is None:
        from tiup.client.profile import Profile

        directory = Profile().effective_mirror()
        if directory.startswith(("http://", "https://")):
            raise TiupError(f"the current mirror {directory} is not a local directory",
                            hint="pass the mirror directory: tiup mirror serve DIR")
    if directory.startswith("s3://"):
        return _serve_bucket(directory, addr, key_dir, read_only, tls_cert, tls_key,
                             max_upload_size, workers)
    mirror = Path(directory).expanduser()
    if not mirror.is_dir():
        raise TiupError(f"mirror directory {directory} does not exist",
                        hint="create one with `tiup mirror init` or `tiup mirror clone`")
    mirror = mirror.resolve()
    if not (mirror / "root.json").is_file():
        raise TiupError(f"{mirror} is not a mirror (no root.json)",
                        hint="create one with `tiup mirror init` or `tiup mirror clone`")
    parse_addr(addr)
    for flag, value in (("--max-client-staged-size", max_client_staged_size),
                        ("--max-staged-size", max_staged_size)):
        if value < max_upload_size:
            raise UsageError(f"{flag} ({value} bytes) is smaller than --max-upload-size "
                             f"({max_upload_size} bytes): no upload of the largest size "
                             "could be staged", hint=f"raise {flag} or lower --max-upload-size")
    keys: Path | None = None
    if not read_only:
        if key_dir:
            keys = Path(key_dir).expanduser().resolve()
            if not keys.is_dir():
                raise TiupError(f"key directory {key_dir} does not exist")
        elif (mirror / "keys").is_dir():
            keys = mirror / "keys"
    signing_keys = () if read_only else tuple(signing_keys)
    if signing_keys:
        from tiup.cli import tokens

        if tokens.setup(signing_keys):
            from tiup.keys.pkcs11 import parse_uri

            for given in signing_keys:
                if tokens.is_uri(given) and not {"pin-source", "pin-value"} & set(
                        parse_uri(given).attrs):
                    raise UsageError(f"{parse_uri(given).selector()}: the server's worker "
                                     "processes cannot ask for a PIN",
                                     hint="add pin-source=FILE (a file holding the PIN, "
                                          "readable by the server only) to the URI")
        signing_keys = tuple(v if tokens.is_uri(v) else str(Path(v).expanduser().resolve())
                             for v in signing_keys)
    if keys is not None or signing_keys:
        check_signing_keys(mirror, keys, signing_keys)
        if "tiup.keys.pkcs11" in sys.modules:  # PKCS#11 state must not cross the fork
            from tiup.keys.pkcs11 import finalize_all

            finalize_all()
    if keys is not None and keys.is_relative_to(mirror):
        output.warn(f"the key directory {keys} lies inside the served mirror {mirror}; "
                    "it is never served, but move it out of any directory a static web "
                    "server publishes (and pass --key-dir)")
    publishing = keys is not None or bool(signing_keys)
    uploads, temporary = upload_dir() if publishing else (None, False)
    config = ServerConfig(mirror=str(mirror), key_dir=str(keys) if keys else None,
                          key_files=signing_keys,
                          upload_dir=uploads, max_upload=max_upload_size,
                          session_ttl=session_ttl, upstream=upstream,
                          max_staged=max_staged_size, max_client_staged=max_client_staged_size,
                          max_sessions=max_sessions, max_client_sessions=max_client_sessions)
    scheme = "https" if tls_cert else "http"
    n = workers or max(1, min(4, os.cpu_count() or 1))
    output.info(f"Serving {mirror} on {scheme}://{addr}")
    if publishing:
        where = ", ".join([*([str(keys)] if keys else []),
                           *(redact_key(k) for k in signing_keys)])
        output.info(f"Publishing is enabled (signing keys from {where}, uploads in {uploads})")
    else:
        output.info("Publishing is disabled (no key directory): files only")
    try:
        serve(config, addr, workers=n, tls_cert=tls_cert, tls_key=tls_key)
    finally:
        if temporary and uploads:
            shutil.rmtree(uploads, ignore_errors=True)
    return 0


def _serve_bucket(address: str, addr: str, key_dir: str | None, read_only: bool,
                  tls_cert: str | None, tls_key: str | None, max_upload_size: int,
                  workers: int | None) -> int:
    """Serve a mirror in a bucket, statelessly (:mod:`tiup.server.s3app`)."""
    from tiup.cli.commands.mirror_common import open_storage
    from tiup.errors import TiupError
    from tiup.repository.keyring import load_keyring
    from tiup.repository.state import read_state
    from tiup.server.config import ServerConfig
    from tiup.server.run import parse_addr, serve

    storage = open_storage(address)
    parse_addr(addr)
    state = read_state(storage)  # a mirror, readable and verified, before serving it
    keys: Path | None = None
    if not read_only and key_dir:
        keys = Path(key_dir).expanduser().resolve()
        if not keys.is_dir():
            raise TiupError(f"key directory {key_dir} does not exist")
        ring = load_keyring([keys])
        for role in ("index", "snapshot", "timestamp"):
            ring.role_signers(role, state.root.roles[role].keys, state.root_name)
    config = ServerConfig(mirror=storage.location, key_dir=str(keys) if keys else None,
                          max_upload=max_upload_size)
    n = workers or max(1, min(4, os.cpu_count() or 1))
    scheme = "https" if tls_cert else "http"
    output.info(f"Serving {storage.location} on {scheme}://{addr} (stateless: files streamed "
                "from the bucket, uploads staged in it)")
    output.info(f"Publishing is enabled (signing keys from {keys})" if keys is not None else
                "Publishing is disabled (no --key-dir): files only")
    serve(config, addr, workers=n, tls_cert=tls_cert, tls_key=tls_key, bucket=True)
    return 0


@click.command("serve", short_help="Serve a mirror over HTTP(S)")
@click.argument("directory", required=False)
@_options
def serve_cmd(directory: str | None, **kw: Any) -> int:
    """Serve the mirror DIR (default: the current mirror, which must be local) over
    HTTP or HTTPS, with the tiup-server publish API so that `tiup mirror publish`
    works against http(s)://HOST:PORT from other machines.

    \b
    Files: GET/HEAD of the mirror's top-level files, with Range, ETag and caching
    headers; never keys/, subdirectories or directory listings.
    API:   POST /api/v1/tarball/<sid>, /api/v1/component/<sid>/<name>, /api/v1/rotate.
    Page:  / (for browsers) and /ui/: components, versions, expiry and verification.
    Metrics: GET /metrics (Prometheus text format).

    DIR may be s3://BUCKET/PREFIX: a stateless server over the bucket (files streamed
    from it, uploads staged in it, publishes committed with conditional PUTs), so that
    several instances behind a load balancer serve one mirror; pass --key-dir to
    publish. Each instance has the page and metrics, from its own reading of the
    bucket (again whenever timestamp.json, snapshot.json or root.json changes).

    Runs until SIGINT/SIGTERM (exit 0).
    """
    return run_server(directory, **kw)


@click.command("tiup-server", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("directory")
@_options
def serve_standalone(directory: str, **kw: Any) -> int:
    """Serve the mirror DIRECTORY over HTTP(S) with the tiup-server publish API
    (the same as `tiup mirror serve DIRECTORY`)."""
    return run_server(directory, **kw)
