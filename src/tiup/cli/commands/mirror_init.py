"""``tiup mirror init`` and ``tiup mirror genkey``: a new mirror, a new key pair."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tiup.cli import output

if TYPE_CHECKING:
    from tiup.keys import PrivateKey
    from tiup.repository.lifetimes import Lifetimes
    from tiup.repository.storage import Storage


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
@click.option("--root-key", "root_keys", multiple=True, metavar="URI|FILE",
              help="A root key on a token ('pkcs11:token=…;object=…') or in a private key "
                   "file, instead of three generated root keys (repeatable).")
@click.option("--root-threshold", type=click.IntRange(1), default=None,
              help="Root signatures needed (default: every root key).")
@click.option("--public-read", is_flag=True,
              help="s3:// only: let anyone read (GET, not list) the mirror's objects, so "
                   "clients need no credentials (adds a bucket-policy statement, or prints "
                   "the policy to apply when it may not be set).")
def init(path: str, key_dir: str | None, root_days: int | None, index_days: int | None,
         component_days: int | None, snapshot_days: int | None,
         timestamp_days: int | None, root_keys: tuple[str, ...],
         root_threshold: int | None, public_read: bool) -> int:
    """Initialize an empty repository at PATH with fresh keys.

    PATH is a directory, or s3://BUCKET/PREFIX for a mirror in S3-compatible object
    storage (endpoint and credentials the standard AWS way: AWS_ENDPOINT_URL,
    AWS_PROFILE, AWS_ACCESS_KEY_ID...). Private keys are never written into a bucket:
    they go to --key-dir, default $TIUP_HOME/keys.

    With --root-key (repeatable) the root keys are the ones given, e.g. on PKCS#11
    tokens: no root key is written to disk. The lifetimes chosen are recorded in
    PATH/.tiup-mirror.toml and used by every later write.
    """
    from tiup.cli import tokens
    from tiup.repository.keyring import explicit_key
    from tiup.transport.address import is_s3

    if not is_s3(path) and public_read:
        from tiup.errors import UsageError

        raise UsageError("--public-read applies to s3:// mirrors only",
                         hint="serve a directory with `tiup mirror serve DIR`")
    from tiup.repository.lifetimes import Lifetimes

    tokens.setup(root_keys)
    signers = [explicit_key(k if tokens.is_uri(k) else Path(k)) for k in root_keys]
    life = Lifetimes().with_overrides(root=root_days, index=index_days,
                                      component=component_days, snapshot=snapshot_days,
                                      timestamp=timestamp_days)
    if is_s3(path):
        return _init_s3(path, key_dir, public_read, signers, root_threshold, life)
    from tiup.client.profile import Profile
    from tiup.errors import TiupError
    from tiup.transport import normalise_address

    target = Path(path).expanduser().absolute()
    keys = Path(key_dir).expanduser().absolute() if key_dir else target / "keys"
    if not target.exists():
        output.say(f'Target path "{target}" does not exist, creating new directory...')
    output.say(f'Initializing empty new repository at "{target}", private keys will be '
                f'stored in "{keys}"...')
    _initialise(target, str(target), keys, life, signers, root_threshold)
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



def _initialise(where: Path | Storage, location: str, keys: Path, life: Lifetimes,
                signers: list[PrivateKey], root_threshold: int | None) -> None:
    """Create the mirror and say what was made (the step both kinds of PATH share)."""
    from tiup.clock import now
    from tiup.errors import TiupError
    from tiup.repository.init import init_mirror

    try:
        init_mirror(where, now(), key_dir=keys, lifetimes=life, root_keys=signers,
                    root_threshold=root_threshold)
    except TiupError:
        output.info("Initializing new repository failed.")
        raise
    output.say(f'New repository initialized at "{location}", private keys are stored in '
               f'"{keys}".')
    if signers:
        threshold = root_threshold or len(signers)
        output.say(f"Root keys (threshold {threshold} of {len(signers)}): " +
                   ", ".join(f"{k.keyid} ({getattr(k, 'where', '')})" for k in signers))


def _init_s3(address: str, key_dir: str | None, public_read: bool,
             signers: list[PrivateKey], root_threshold: int | None, life: Lifetimes) -> int:
    import json

    from tiup.cli.commands.mirror_common import open_storage
    from tiup.client.profile import Profile
    from tiup.errors import FetchError
    from tiup.repository.s3_storage import S3Storage

    storage = open_storage(address)
    assert isinstance(storage, S3Storage)
    keys = Path(key_dir).expanduser().absolute() if key_dir else Profile().keys_dir
    output.say(f'Initializing empty new repository at "{storage.location}", private keys '
               f'will be stored in "{keys}" (never in the bucket)...')
    _initialise(storage, storage.location, keys, life, signers, root_threshold)
    output.say(f"Write to it with `tiup mirror --repo {storage.location} ...` (pass "
               f"--key-dir {keys} where it is not $TIUP_HOME/keys).")
    if public_read:
        try:
            storage.make_public()
            output.say(f"Anonymous read (GET) of {storage.location}/* is allowed by the bucket "
                       "policy: clients use `tiup mirror set https://<endpoint>/"
                       f"{storage.bucket}/{storage.prefix}`")
        except FetchError as exc:
            output.warn(f"could not set the bucket policy ({exc.message}); apply this one "
                        "(merged with any policy the bucket has):")
            click.echo(json.dumps(storage.public_read_policy(), indent=2))
    return 0


@click.command("genkey", short_help="Generate a new key pair")
@click.option("-n", "--name", default="private", show_default=True,
              help="Name of the key (file $TIUP_HOME/keys/<name>.json).")
@click.option("-p", "--public", "show_public", is_flag=True,
              help="Show the public key of the existing key instead of generating one.")
@click.option("--save", is_flag=True,
              help="Also write the public key to <keyid16>-public.json in the current directory.")
@click.option("--pkcs11", "token_uri", metavar="URI",
              help="Generate the key pair on a PKCS#11 token ('pkcs11:token=…;object=…'); "
                   "the private key never leaves it.")
def genkey(name: str, show_public: bool, save: bool, token_uri: str | None) -> int:
    """Generate a new key pair in $TIUP_HOME/keys (TiUP's key-file form), or on a
    PKCS#11 token with --pkcs11 URI.

    An existing key is never overwritten: you get a warning and the command
    succeeds (with --save, its public key is still written).
    """
    from tiup.client.profile import Profile
    from tiup.errors import TiupError
    from tiup.keys import generate, load_private_key, save_private_key, save_public_key
    from tiup.manifest.names import component_id

    if token_uri is not None:
        return _genkey_token(token_uri, show_public, save)
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


def _genkey_token(uri: str, show_public: bool, save: bool) -> int:
    """``genkey --pkcs11 URI``: generate on the token (``-p``: show the existing key)."""
    from tiup.cli import tokens
    from tiup.errors import TiupError, UsageError
    from tiup.keys import PublicKey, save_public_key

    if not tokens.is_uri(uri):
        raise UsageError(f"--pkcs11 takes a 'pkcs11:' URI, not {uri!r}",
                         hint="e.g. --pkcs11 'pkcs11:token=mytoken;object=tiup-owner'")
    tokens.setup([uri])
    from tiup.keys.pkcs11 import generate_on_token, token_public_key

    public: PublicKey
    if show_public:
        public = token_public_key(uri)
        output.out(f"KeyID: {public.keyid}")
        output.out("KeyContent: ")
        output.out(json.dumps(public.keyinfo().to_dict(), indent="\t"))
        return 0
    key = generate_on_token(uri)
    public = key.public
    output.say(f"Key pair generated on the token: {key.where} (RSA {key.bits}, the private key "
               "is not extractable)")
    output.out(f"KeyID: {public.keyid}")
    if save:
        pub_path = Path(os.getcwd()) / f"{public.keyid[:16]}-public.json"
        try:
            save_public_key(pub_path, public, overwrite=True)
        except OSError as exc:
            raise TiupError(f"cannot write {pub_path}: {exc.strerror or exc}") from exc
        output.say(f"Public key has been written to current working dir: {pub_path}")
    return 0
