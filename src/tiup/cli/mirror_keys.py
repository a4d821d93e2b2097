"""``tiup mirror genkey`` and ``tiup mirror sign``: key pairs and manifest signatures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from tiup.cli import output


@click.command("genkey", short_help="Generate a new key pair")
@click.option("-n", "--name", default="private", show_default=True,
              help="Name of the key (file $TIUP_HOME/keys/<name>.json).")
@click.option("-p", "--public", "show_public", is_flag=True,
              help="Show the public key of the existing key instead of generating one.")
@click.option("--save", is_flag=True,
              help="Also write the public key to <keyid16>-public.json in the current directory.")
def genkey(name: str, show_public: bool, save: bool) -> int:
    """Generate a new key pair in $TIUP_HOME/keys (TiUP's key-file form).

    An existing key is never overwritten: you get a warning and the command
    succeeds (with --save, its public key is still written).
    """
    from tiup.client.profile import Profile
    from tiup.errors import TiupError
    from tiup.keys import generate, load_private_key, save_private_key, save_public_key
    from tiup.manifest.names import component_id

    component_id(name)  # a plain file name
    path = Profile().keys_dir / f"{name}.json"
    if show_public:
        key = load_private_key(path)
        output.out(f"KeyID: {key.keyid}")
        output.out("KeyContent: ")
        output.out(json.dumps(key.public.keyinfo().to_dict(), indent="\t"))
        return 0
    if path.exists():
        output.warn(f"private key already exists ({path}), skipped")
        key = load_private_key(path)
    else:
        key = generate()
        try:
            save_private_key(path, key)
        except OSError as exc:
            raise TiupError(f"cannot write {path}: {exc.strerror or exc}") from exc
        output.info(f"Private key has been written to {path}")
    if save:
        pub_path = Path(os.getcwd()) / f"{key.keyid[:16]}-public.json"
        try:
            save_public_key(pub_path, key.public, overwrite=True)
        except OSError as exc:
            raise TiupError(f"cannot write {pub_path}: {exc.strerror or exc}") from exc
        output.info(f"Public key has been written to current working dir: {pub_path}")
    return 0


@click.command("sign", short_help="Add signatures to a manifest file")
@click.argument("manifest")
@click.option("-k", "--key", "key_file", metavar="FILE",
              help="Private key (default $TIUP_HOME/keys/private.json).")
@click.option("--timeout", default=10, show_default=True, help="Timeout (s) for a URL.")
def sign(manifest: str, key_file: str | None, timeout: int) -> int:
    """Add your signature to a manifest file, rewriting it in place canonically.

    Fails if the file is already signed by that key.
    """
    from tiup.client.profile import Profile
    from tiup.errors import TiupError
    from tiup.keys import load_private_key
    from tiup.repository.admin import sign_file

    if manifest.startswith(("http://", "https://")):
        raise TiupError(f"signing over HTTP ({manifest}) is not available in this build yet",
                        hint="download the manifest, sign the file, and send it back")
    key = load_private_key(Path(key_file) if key_file else Profile().default_key_path)
    sign_file(Path(manifest), key)
    return 0
