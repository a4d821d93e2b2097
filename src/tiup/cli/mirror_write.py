"""``tiup mirror init``, ``grant`` and ``publish``: create a mirror and fill it."""

from __future__ import annotations

import platform as _platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tiup.cli import output
from tiup.cli.mirror_common import keyring, mirror_dir, open_store, report_commit, write_options
from tiup.cli.mirror_remote import mirror_target, remote_keyring, run_remote, timeout_option

if TYPE_CHECKING:
    from tiup.repository.files import FileInfo
    from tiup.repository.keyring import KeyRing
    from tiup.repository.view import MirrorView


def default_os() -> str:
    return "darwin" if sys.platform == "darwin" else "linux"


def default_arch() -> str:
    machine = _platform.machine().lower()
    return "arm64" if machine in ("aarch64", "arm64") else "amd64"


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
    from tiup.client.profile import Profile, normalise_address
    from tiup.clock import now
    from tiup.errors import TiupError
    from tiup.repository.init import init_mirror
    from tiup.repository.lifetimes import Lifetimes

    target = Path(path).expanduser().absolute()
    keys = Path(key_dir).expanduser().absolute() if key_dir else target / "keys"
    life = Lifetimes().with_overrides(root=root_days, index=index_days,
                                      component=component_days, snapshot=snapshot_days,
                                      timestamp=timestamp_days)
    if not target.exists():
        output.info(f'Target path "{target}" does not exist, creating new directory...')
    output.info(f'Initializing empty new repository at "{target}", private keys will be '
                f'stored in "{keys}"...')
    try:
        init_mirror(target, now(), key_dir=keys, lifetimes=life)
    except TiupError:
        output.info("Initializing new repository failed.")
        raise
    output.info(f'New repository initialized at "{target}", private keys are stored in '
                f'"{keys}".')
    if keys.resolve().is_relative_to(target.resolve()):
        output.warn(f"the private keys in {keys} are inside the mirror directory: move keys/ "
                    "out of any directory you publish (later commands find them with "
                    "--key-dir DIR or in $TIUP_HOME/keys)")
    output.info(f"Use `tiup mirror set {target}` command to set and use the new repository.")
    try:
        effective = Profile().effective_mirror()
    except TiupError:
        effective = ""
    if effective and not effective.startswith("http") and \
            normalise_address(effective) == str(target.resolve()):
        output.info(f"{target} is your current mirror: run `tiup mirror set {target}` to trust "
                    "its new root.")
    return 0


@click.command("grant", short_help="grant a new owner")
@click.argument("owner")
@click.option("-n", "--name", default="", help="Display name of the owner (default: its id).")
@click.option("-k", "--key", "key_files", multiple=True, metavar="FILE",
              help="Key of the owner, private or public (repeatable; default "
                   "$TIUP_HOME/keys/private.json).")
@click.option("--threshold", type=click.IntRange(1), default=1, show_default=True,
              help="Signatures the owner needs to publish.")
@write_options
@click.pass_context
def grant(ctx: click.Context, owner: str, name: str, key_files: tuple[str, ...],
          threshold: int, key_dir: str | None, lock_timeout: float) -> int:
    """Add a new owner to the mirror: its components must be signed by its key(s)."""
    from tiup.client.profile import Profile
    from tiup.keys import load_key_file
    from tiup.manifest.names import owner_id
    from tiup.repository.admin import grant as do_grant

    oid = owner_id(owner)
    mirror = mirror_dir(ctx)
    if not name:
        output.info(f"No --name is given, using {oid} as default")
        name = oid
    files = list(key_files) or [str(Profile().default_key_path)]
    infos = [load_key_file(f) for f in files]
    ring = keyring(mirror, [], key_dir)
    with open_store(mirror, ring, lock_timeout) as store:
        ids = do_grant(store, oid, name, infos, threshold)
        written = store.commit()
        report_commit(store, written)
    output.info(f"Granted new owner {oid}({name}) with public key {', '.join(ids)}.")
    return 0


@click.command("publish", short_help="Publish a component")
@click.argument("component")
@click.argument("version")
@click.argument("tarball", type=click.Path(dir_okay=False))
@click.argument("entry")
@click.option("-k", "--key", "key_files", multiple=True, metavar="FILE",
              help="Owner's private key (repeatable; default $TIUP_HOME/keys/private.json).")
@click.option("--os", "os_name", default=None, help="Target OS (default: this machine's).")
@click.option("--arch", default=None, help="Target architecture (default: this machine's).")
@click.option("--desc", default="", help="Description of the component.")
@click.option("--standalone", is_flag=True, help="The component can run standalone.")
@click.option("--hide", is_flag=True, help="Hide the component in `tiup list`.")
@click.option("--overwrite", is_flag=True,
              help="Replace a version already published for this platform with other content.")
@click.option("--force", is_flag=True, help="Accept a version that is not v-prefixed semver.")
@timeout_option
@write_options
@click.pass_context
def publish(ctx: click.Context, component: str, version: str, tarball: str, entry: str,
            key_files: tuple[str, ...], os_name: str | None, arch: str | None, desc: str,
            standalone: bool, hide: bool, overwrite: bool, force: bool, timeout: float,
            key_dir: str | None, lock_timeout: float) -> int:
    """Publish TARBALL as VERSION of COMPONENT, with ENTRY its executable inside the tarball.

    The first publication makes the owner of your key the component's owner;
    later ones must be signed by that owner. The tarball is stored as
    <component>-<version>-<os>-<arch>.tar.gz whatever its file name.

    The mirror may be a local directory or an http(s):// server running
    `tiup mirror serve` (or TiUP's tiup-server): the manifest is then built from
    the server's verified metadata, signed here, and sent with the tarball;
    a conflicting concurrent publish is retried up to 10 times.

    \b
    Example:
      tiup mirror publish hello v0.0.1 package/hello-v0.0.1-linux-amd64.tar.gz hello
    """
    from tiup.manifest.names import component_id, platform, version_str
    from tiup.repository.files import hash_file
    from tiup.repository.publish import check_platform, check_version, inspect_tarball

    cid = component_id(component)
    target = mirror_target(ctx)
    ver = version_str(version)
    check_version(ver, force)
    plat = check_platform(platform(os_name or default_os(), arch or default_arch()))
    path = Path(tarball)
    inspect_tarball(path, entry)
    info = hash_file(path)
    output.info(f"uploading {tarball} with {info.length} bytes, sha256: {info.sha256} ...")
    job = _PublishJob(cid, ver, plat, entry, path, info, desc, overwrite, hide, standalone)
    if isinstance(target, str):
        ring = remote_keyring(key_files, key_dir)
        done = run_remote(target, timeout, lambda view: job.run(view, ring))
    else:
        ring = keyring(target, key_files, key_dir, default_key=True)
        with open_store(target, ring, lock_timeout) as store:
            done = job.run(store, ring)
            if done:
                written = store.commit()
                report_commit(store, written)
    if not done:
        output.info(f"{cid} {ver} ({plat}) is already published with the same content; "
                    "nothing to do")
        return 0
    output.info(f"Published {cid} {ver} ({plat}) to {target}")
    return 0


@dataclass
class _PublishJob:
    cid: str
    version: str
    plat: str
    entry: str
    path: Path
    info: FileInfo
    desc: str
    overwrite: bool
    hide: bool
    standalone: bool

    def run(self, store: MirrorView, ring: KeyRing) -> bool:
        """Build, sign and stage the next manifest; False when nothing changes."""
        from tiup.manifest.names import ComponentId, VersionStr
        from tiup.repository.publish import owner_of_key, owner_signers, plan_publish
        from tiup.repository.store import IndexFlags, sign

        existing = store.index.components.get(self.cid)
        if existing is None:
            owner = owner_of_key(store, ring)
            output.info(f"Creating component {self.cid}")
            flags = IndexFlags(hidden=self.hide, standalone=self.standalone, owner=owner)
        else:
            owner = existing.owner
            if self.standalone or self.hide:
                output.warn("This is not a new component, --standalone and --hide flag will "
                            "be omitted")
            flags = IndexFlags()
        plan = plan_publish(store, ComponentId(self.cid), VersionStr(self.version), self.plat,
                            self.entry, self.info, desc=self.desc, overwrite=self.overwrite,
                            now=store.now)
        if plan.manifest is None:
            return False
        envelope = sign(plan.manifest, owner_signers(store, owner, ring))
        store.publish_component(envelope, self.path, tarball_name=plan.tarball_name,
                                flags=flags)
        return True
