"""``tiup mirror init`` and ``tiup mirror genkey``: a new mirror, a new key pair."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from tiup.cli import output


@click.command("init", short_help="Initialize an empty repository")
@click.argument("path")
@click.option("-k", "--key-dir", metavar="DIR",
              help="Where to write the private keys (default: <path>/keys).")
@click.option("--root-days", type=click.IntRange(1), help="Lifetime of root.json (3650).")
@click.option("--index-days", type=click.IntRange(1), help="Lifetime of the index (3650).")
@click.option("--component-days", type=click.IntRange(1),
              help="Lifetime of component manifests (1825).")
@click.option("--snapshot-days", type=click.IntRange(1), help="Lifetime of snapshot.json (365).")
@click.option("--timestamp-days", type=click.IntRange(1),
              help="Lifetime of timestamp.json (365).")
def init(path: str, key_dir: str | None, root_days: int | None, index_days: int | None,
         component_days: int | None, snapshot_days: int | None,
         timestamp_days: int | None) -> int:
    """Initialize an empty repository at PATH with fresh keys.

    The lifetimes chosen are recorded in PATH/.tiup-mirror.toml and used by
    every later write.
    """
    from tiup.client.profile import Profile
    from tiup.clock import now
    from tiup.errors import TiupError
    from tiup.repository.init import init_mirror
    from tiup.repository.lifetimes import Lifetimes
    from tiup.transport import normalise_address

    target = Path(path).expanduser().absolute()
    keys = Path(key_dir).expanduser().absolute() if key_dir else target / "keys"
    life = Lifetimes().with_overrides(root=root_days, index=index_days,
                                      component=component_days, snapshot=snapshot_days,
                                      timestamp=timestamp_days)
    if not target.exists():
        output.say(f'Target path "{target}" does not exist, creating new directory...')
    output.say(f'Initializing empty new repository at "{target}", private keys will be '
                f'stored in "{keys}"...')
    try:
        init_mirror(target, now(), key_dir=keys, lifetimes=life)
    except TiupError:
        output.info("Initializing new repository failed.")
        raise
    output.say(f'New repository initialized at "{target}", private keys are stored in '
                f'"{keys}".')
    if keys.resolve().is_relative_to(target.resolve()):
        output.warn(f"the private keys in {keys} are inside the mirror directory: move keys/ "
                    "out of any directory you publish (later commands find them with "
                    "--key-dir DIR or in $TIUP_HOME/keys)")
    output.say(f"Use `tiup mirror set {target}` command to set and use the new repository.")
    try:
        effective = Profile().effective_mirror()
    except TiupError:
        effective = ""
    if effective and not effective.startswith("http") and \
            normalise_address(effective) == str(target.resolve()):
        output.say(f"{target} is your current mirror: run `tiup mirror set {target}` to trust "
                    "its new root.")
    return 0



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
        output.say(f"Private key has been written to {path}")
    if save:
        pub_path = Path(os.getcwd()) / f"{key.keyid[:16]}-public.json"
        try:
            save_public_key(pub_path, key.public, overwrite=True)
        except OSError as exc:
            raise TiupError(f"cannot write {pub_path}: {exc.strerror or exc}") from exc
        output.say(f"Public key has been written to current working dir: {pub_path}")
    return 0
