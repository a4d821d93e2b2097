"""``tiup mirror publish`` and ``grant``: fill a mirror and admit owners."""

from __future__ import annotations

import platform as _platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tiup.cli import output
from tiup.cli.commands.mirror_common import (
    mirror_dir,
    mirror_target,
    open_writer,
    timeout_option,
    write_options,
)

if TYPE_CHECKING:
    from tiup.hashing import FileInfo
    from tiup.repository.keyring import KeyRing
    from tiup.repository.view import MirrorView


def default_os() -> str:
    return "darwin" if sys.platform == "darwin" else "linux"


def default_arch() -> str:
    machine = _platform.machine().lower()
    return "arm64" if machine in ("aarch64", "arm64") else "amd64"


@click.command("grant", short_help="grant a new owner")
@click.argument("owner")
@click.option("-n", "--name", default="", help="Display name of the owner (default: its id).")
@click.option("-k", "--key", "key_files", multiple=True, metavar="FILE|URI",
              help="Key of the owner, private or public, or a 'pkcs11:…' token key "
                   "(repeatable; default $TIUP_HOME/keys/private.json).")
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
        output.say(f"No --name is given, using {oid} as default")
        name = oid
    from tiup.cli import tokens

    files = list(key_files) or [str(Profile().default_key_path)]
    if tokens.setup(files):
        from tiup.keys.pkcs11 import token_public_key

        infos = [token_public_key(f).keyinfo() if tokens.is_uri(f) else load_key_file(f)
                 for f in files]
    else:
        infos = [load_key_file(f) for f in files]
    writer = open_writer(mirror, (), key_dir, default_key=False,
                         lock_timeout=lock_timeout).local()
    ids = writer.run_store(lambda store: do_grant(store, oid, name, infos, threshold))
    output.say(f"Granted new owner {oid}({name}) with public key {', '.join(ids)}.")
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
    from tiup.hashing import FileInfo
    from tiup.manifest.names import component_id, platform, version_str
    from tiup.repository.publish import check_platform, check_version, inspect_tarball

    cid = component_id(component)
    target = mirror_target(ctx)
    ver = version_str(version)
    check_version(ver, force)
    plat = check_platform(platform(os_name or default_os(), arch or default_arch()))
    path = Path(tarball)
    inspect_tarball(path, entry)
    info = FileInfo.of_file(path)
    output.say(f"uploading {tarball} with {info.length} bytes, sha256: {info.sha256} ...")
    job = _PublishJob(cid, ver, plat, entry, path, info, desc, overwrite, hide, standalone)
    with open_writer(target, key_files, key_dir, timeout=timeout,
                     lock_timeout=lock_timeout) as writer:
        done = writer.run(lambda view: job.run(view, writer.keyring), commit_if=bool)
    if not done:
        output.say(f"{cid} {ver} ({plat}) is already published with the same content; "
                    "nothing to do")
        return 0
    output.say(f"Published {cid} {ver} ({plat}) to {target}")
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
        from tiup.repository.store import IndexFlags, sign_component

        existing = store.index.components.get(self.cid)
        if existing is None:
            owner = owner_of_key(store, ring)
            output.say(f"Creating component {self.cid}")
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
        envelope = sign_component(plan.manifest, owner_signers(store, owner, ring))
        store.publish_component(envelope, self.path, tarball_name=plan.tarball_name,
                                flags=flags)
        return True
