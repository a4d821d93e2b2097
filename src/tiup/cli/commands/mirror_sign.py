"""``tiup mirror sign`` (a file or a signing-server URL) and the initiator's side of a
multi-party signature (``rotate``/``transfer-owner --addr``)."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tiup.cli import output

if TYPE_CHECKING:
    from tiup.manifest.envelope import Signature
    from tiup.server.signing import KeyGroup

DEFAULT_SIGN_TIMEOUT = 24 * 3600.0


@click.command("sign", short_help="Add signatures to a manifest file")
@click.argument("manifest")
@click.option("-k", "--key", "key_file", metavar="FILE|URI",
              help="Private key file or 'pkcs11:…' token key (default "
                   "$TIUP_HOME/keys/private.json).")
@click.option("--timeout", type=click.FloatRange(0), default=10, show_default=True,
              help="Timeout (s) of each request when MANIFEST is a URL.")
def sign(manifest: str, key_file: str | None, timeout: float) -> int:
    """Add your signature to a manifest file, rewriting it in place canonically;
    or, when MANIFEST is an http(s):// URL printed by `tiup mirror rotate --addr`
    or `tiup mirror transfer-owner --addr`, sign the manifest served there and
    send the signature back.

    The sha256 of the signed payload is printed so that it can be compared with
    the one the initiator shows. Fails if the manifest is already signed by
    that key.
    """
    from tiup.cli import tokens
    from tiup.client.profile import Profile
    from tiup.keys import load_private_key
    from tiup.repository.admin import sign_file

    if key_file and tokens.setup([key_file]):
        from tiup.keys.pkcs11 import token_key

        key: Any = token_key(key_file)
    else:
        key = load_private_key(Path(key_file) if key_file else Profile().default_key_path)
    if manifest.startswith(("http://", "https://")):
        _sign_url(manifest, key, timeout)
        return 0
    sign_file(Path(manifest), key)
    return 0


def _sign_url(url: str, key: Any, timeout: float) -> None:
    import json

    from tiup.errors import RepositoryError
    from tiup.manifest.canonical import encode_canonical
    from tiup.server.signing import payload_digest
    from tiup.settings import current
    from tiup.transport.publish_api import APIClient

    client = APIClient(url, timeout=max(timeout, 1.0) if timeout else None,
                       settings=current().http)
    try:
        doc = client.get_json(url)
        if not isinstance(doc, dict) or "signed" not in doc:
            raise RepositoryError(f"{url} did not serve a manifest to sign")
        signed = doc["signed"]
        existing = doc.get("signatures") or []
        if any(isinstance(s, dict) and s.get("keyid") == key.keyid for s in existing):
            raise RepositoryError("this manifest file has already been signed by specified key")
        payload = encode_canonical(signed)
        output.info(f"payload sha256: {payload_digest(signed)}")
        sig = key.signature(payload)
        body = json.dumps({"signatures": [*existing, sig.to_dict()], "signed": signed})
        client.post_json(url, body.encode())
        output.info(f"Signed with key {key.keyid}")
    finally:
        client.close()


def shown_host(host: str) -> str:
    """The host to print in the URL: the first non-loopback IPv4 for a wildcard address."""
    if host not in ("", "0.0.0.0"):  # noqa: S104 - comparing, not binding
        return host
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.254.254.254", 1))  # no packet is sent for UDP connect
            ip = str(s.getsockname()[0])
            if not ip.startswith("127."):
                return ip
    except OSError:
        pass
    return "127.0.0.1"


def collect_signatures(signed: Any, groups: list[KeyGroup], addr: str, *, all_keys: bool,
                       timeout: float, what: str) -> list[Signature]:
    """Serve ``signed`` on ``addr`` until the thresholds are met; the signatures.

    Prints the URL (stdout) once, the payload sha256, and one line per key collected.

    Raises:
        TiupError: cannot listen, or ``timeout`` passed first.
    """
    from tiup.errors import TiupError
    from tiup.server.run import parse_addr
    from tiup.server.signing import SigningServer, SigningSession

    host, port = parse_addr(addr, allow_any_port=True)
    session = SigningSession(signed, groups, all_keys=all_keys)
    server = SigningServer(session, host, port)
    try:
        url = f"http://{shown_host(host)}:{server.port}{server.uri}"
        output.out(f"Waiting all key holders to sign {url}")
        output.info(f"{what}: payload sha256 {session.digest}")
        for group in groups:
            output.info(f"  {group.name}: {group.threshold} of {len(group.keys)} key(s): "
                        + ", ".join(k[:16] for k in sorted(group.keys)))
        need = ("every key" if all_keys else
                " and ".join(f"{g.threshold} of {g.name}" for g in groups))
        deadline = time.monotonic() + timeout if timeout else None
        printed: set[str] = set()

        def report() -> None:
            for sig in session.collected():
                if sig.keyid not in printed:
                    printed.add(sig.keyid)
                    output.info(f"  - key {sig.keyid} signed "
                                f"({len(printed)}/{len(session.expected)})")

        while not session.complete():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                have = ", ".join(k[:16] for k in sorted(session.signatures)) or "none"
                raise TiupError(f"no enough signature collected before timeout ({timeout:g} s):"
                                f" need {need}, got {have}",
                                hint="raise --timeout, or ask the key holders to run "
                                     f"`tiup mirror sign {url} -k <key>`")
            session.wait_change(len(printed), min(0.5, left) if left is not None else 0.5)
            report()
        report()
        output.info(f"Collected {len(session.signatures)} signature(s) ({need})")
        return session.collected()
    finally:
        server.stop()
