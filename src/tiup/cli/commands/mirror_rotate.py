"""``tiup mirror rotate`` and ``transfer-owner``: changes that need several parties' signatures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tiup.cli import output
from tiup.cli.commands.mirror_common import (
    key_option,
    mirror_target,
    open_writer,
    timeout_option,
    write_options,
)

if TYPE_CHECKING:
    from tiup.manifest.models import Root
    from tiup.repository.keyring import KeyRing
    from tiup.repository.view import MirrorView
    from tiup.repository.writer import MirrorWriter

_ADDR = click.option("--addr", default=None, metavar="HOST:PORT",
                     help="Collect the signatures over HTTP: start a signing server here and "
                          "have each key holder run `tiup mirror sign <url> -k KEY`.")
_ALL_KEYS = click.option("--all-keys", is_flag=True,
                         help="With --addr: wait for every key, not just the thresholds.")
_SIGN_TIMEOUT = click.option("--sign-timeout", type=click.FloatRange(0), default=24 * 3600.0,
                             show_default=True, metavar="SECONDS",
                             help="With --addr: give up collecting after this long (0 = never).")


@click.command("transfer-owner", short_help="Transfer component to another owner")
@click.argument("component")
@click.argument("new_owner")
@key_option
@_ADDR
@_ALL_KEYS
@_SIGN_TIMEOUT
@timeout_option
@write_options
@click.pass_context
def transfer_owner(ctx: click.Context, component: str, new_owner: str,
                   key_files: tuple[str, ...], addr: str | None, all_keys: bool,
                   sign_timeout: float, timeout: float, key_dir: str | None,
                   lock_timeout: float) -> int:
    """Give COMPONENT to NEW_OWNER; needs the signatures of both the current and the new
    owner (their thresholds): from local keys, or collected over HTTP with --addr.

    Works on a local mirror or an http(s):// mirror (sent with owner=NEW_OWNER).
    """
    from tiup.repository.admin import transfer_owner as do_transfer

    target = mirror_target(ctx)
    with open_writer(target, key_files, key_dir, timeout=timeout,
                     lock_timeout=lock_timeout) as writer:
        if addr:
            collected = _Collector(component, new_owner, addr, all_keys, sign_timeout,
                                   writer.role_keys)
            writer.run(collected.transfer)
        else:
            writer.run(lambda view: do_transfer(view, writer.keyring, component, new_owner))
    output.info(f"Transferred {component} to {new_owner}")
    return 0


class _Collector:
    """transfer-owner --addr: build the manifest, collect the owners' signatures over HTTP."""

    def __init__(self, component: str, new_owner: str, addr: str, all_keys: bool,
                 timeout: float, local_ring: KeyRing | None):
        self.component, self.new_owner, self.addr = component, new_owner, addr
        self.all_keys, self.timeout = all_keys, timeout
        #: a local mirror's keys: the commit signs index, snapshot and timestamp with them
        self.local_ring = local_ring

    def transfer(self, view: MirrorView) -> None:
        from tiup.cli.commands.mirror_sign import collect_signatures
        from tiup.errors import RepositoryError
        from tiup.manifest.envelope import envelope_bytes
        from tiup.manifest.names import component_id, owner_id
        from tiup.repository.admin import next_component_manifest
        from tiup.repository.store import IndexFlags
        from tiup.server.signing import KeyGroup

        oid = owner_id(self.new_owner)
        index = view.index
        if oid not in index.owners:
            raise RepositoryError(f"new owner '{oid}' is not in the available owner list",
                                  hint="add it first with `tiup mirror grant`")
        new, current = next_component_manifest(view, component_id(self.component))
        if current == oid:
            raise RepositoryError(f"{self.component} is already owned by {oid}")
        if self.local_ring is not None:
            from tiup.errors import MissingKeyError
            from tiup.repository.admin import check_signing_keys

            try:
                check_signing_keys(view.root, self.local_ring,
                                   ("index", "snapshot", "timestamp"), view.root_name)
            except MissingKeyError as exc:
                raise MissingKeyError(
                    f"cannot publish the transfer (checked before asking the owners to sign): "
                    f"{exc.message}", file=exc.file, hint=exc.hint) from exc
        groups = [KeyGroup(f"owner {o}", index.owners[o].keys,
                           index.owners[o].effective_threshold) for o in (current, oid)]
        sigs = collect_signatures(new.to_dict(), groups, self.addr, all_keys=self.all_keys,
                                  timeout=self.timeout,
                                  what=f"{self.component} manifest version {new.version}")
        view.publish_component(envelope_bytes(sigs, new), flags=IndexFlags(owner=oid))


@click.command("rotate", short_help="Rotate root.json")
@click.option("--key-dir", metavar="DIR",
              help="Directory with root keys (also searched: <mirror>/keys, $TIUP_HOME/keys).")
@click.option("--add-key", "add_keys", multiple=True, metavar="FILE|URI",
              help="Add this key (public or private file, or a 'pkcs11:…' token key) to the "
                   "root role (repeatable).")
@click.option("-k", "--key", "key_files", multiple=True, metavar="FILE|URI",
              help="Also sign with this root key (a file, or a 'pkcs11:…' token key; "
                   "repeatable).")
@click.option("--remove-key", "remove_keys", multiple=True, metavar="KEYID",
              help="Remove this root key (id or a unique prefix of 8+ hex digits; repeatable).")
@click.option("--threshold", type=click.IntRange(1), default=None,
              help="New root threshold (default: unchanged).")
@click.option("--days", type=click.IntRange(1), default=None,
              help="Root lifetime from now (default: the mirror's; expiry never shrinks).")
@click.option("--edit", is_flag=True,
              help="Edit the new root in $EDITOR (the default on a terminal when no other "
                   "change is given).")
@_ADDR
@_ALL_KEYS
@_SIGN_TIMEOUT
@timeout_option
@click.option("--lock-timeout", type=click.FloatRange(0), default=60.0, show_default=True,
              metavar="SECONDS", help="Wait at most this long for another writer.")
@click.pass_context
def rotate(ctx: click.Context, key_dir: str | None, add_keys: tuple[str, ...],
           key_files: tuple[str, ...], remove_keys: tuple[str, ...], threshold: int | None,
           days: int | None, edit: bool,
           addr: str | None, all_keys: bool, sign_timeout: float, timeout: float,
           lock_timeout: float) -> int:
    """Publish the next root.json: add or remove root keys, change the root threshold.

    The new root (version +1, expiry extended) comes from the options, or from
    $EDITOR (pre-filled; the temp file is deleted). It is signed by enough old
    and new root keys found locally, or, with --addr HOST:PORT, by key holders
    running `tiup mirror sign <url> -k KEY` until both the old and the new
    thresholds are met (--all-keys: every key). N.root.json and root.json are
    written, then snapshot and timestamp (and the index, re-signed, if its key
    changed); on an http(s):// mirror the root is sent to the server (POST
    /api/v1/rotate). The snapshot/timestamp/index keys of a local mirror are
    checked before anyone is asked to sign.

    A rotation that changes nothing (no option given; the editor quit, or
    saved the proposal unchanged) publishes nothing and exits 0: the pre-filled
    expiry alone is not a change; use --days N to extend the root's expiry.
    """


    target = mirror_target(ctx)
    writer = open_writer(target, key_files, key_dir, default_key=False, timeout=timeout,
                         lock_timeout=lock_timeout)
    with writer:
        return _rotate(writer, add_keys, remove_keys, threshold, days, edit, addr, all_keys,
                       sign_timeout)


def _rotate(writer: MirrorWriter, add_keys: tuple[str, ...], remove_keys: tuple[str, ...],
            threshold: int | None, days: int | None, edit: bool, addr: str | None,
            all_keys: bool, sign_timeout: float) -> int:
    import sys

    from tiup.cli import tokens
    from tiup.keys import load_key_file, private_key

    ring = writer.keyring
    infos = []
    tokens.setup(add_keys)
    for file in add_keys:
        if tokens.is_uri(file):
            from tiup.keys.pkcs11 import token_key

            signer = token_key(file)
            ring.add(signer, signer.where)
            infos.append(signer.public.keyinfo())
            continue
        info = load_key_file(Path(file))
        if info.is_private:
            ring.add(private_key(info, file), file)
        infos.append(info)
    flags_given = bool(add_keys or remove_keys or threshold is not None or days is not None)
    interactive = edit or (not flags_given and sys.stdin.isatty() and sys.stdout.isatty())
    if interactive:
        from tiup.cli.commands.root_editor import editor_command

        editor_command()  # a broken $EDITOR is a usage error before anything else
    plan = _RotatePlan(infos, remove_keys, threshold, days, interactive, addr, all_keys,
                       sign_timeout, ring, local=writer.role_keys is not None)
    # The new root is built (edited, signed: that may take hours) outside any transaction,
    # from the state read here; the transaction then checks the root is still that one.
    old, lifetime = writer.read(lambda view: (view.root, view.lifetimes.root))
    built = plan.build(old, lifetime)
    new = built[0] if built else None
    if built is not None:
        writer.run(lambda view: _publish_root(view, old, built))
    target = writer.address
    if new is None:
        why = (f"--days {days} does not extend its expiry (expiry never shrinks)"
               if days is not None else "it would differ only in its version and expiry")
        output.info(f"No change to root.json version {plan.old_version} of {target}: {why}; "
                    "nothing was published.")
        output.info("To rotate, give --add-key, --remove-key, --threshold or --days, or change "
                    "keys, thresholds or `expires` with --edit.")
        return 0
    role = new.roles["root"]
    output.info(f"Rotated root to version {new.version} ({len(role.keys)} root keys, threshold "
                f"{role.threshold}, expires {new.expires}), signed by {plan.signed_by} keys")
    return 0


def _publish_root(view: MirrorView, old: Root, built: tuple[Root, bytes]) -> None:
    """Stage the new root, if the mirror's root is still the one it was built from.

    Raises:
        RepositoryError: the root changed meanwhile (code "root-changed"; retrying the
            transaction would not help: the new root must be built again).
    """
    from tiup.errors import RepositoryError

    current = view.root
    if current.version != old.version:
        raise RepositoryError(f"the root changed to version {current.version} while the new "
                              f"root {old.version + 1} was being prepared",
                              hint="run rotate again", code="root-changed")
    view.set_root(*built)


class _RotatePlan:
    def __init__(self, add: list[Any], remove: tuple[str, ...], threshold: int | None,
                 days: int | None, interactive: bool, addr: str | None, all_keys: bool,
                 sign_timeout: float, ring: KeyRing, *, local: bool):
        self.add, self.remove, self.threshold, self.days = add, remove, threshold, days
        self.interactive, self.addr, self.all_keys = interactive, addr, all_keys
        self.sign_timeout, self.ring, self.local = sign_timeout, ring, local
        self.signed_by = 0
        self.old_version = 0
        self._built: tuple[int, tuple[Root, bytes] | None] | None = None

    def build(self, old: Root, lifetime: int) -> tuple[Root, bytes] | None:
        """The next root and its signed bytes, None if it changes nothing (asks the editor /
        key holders once).

        Raises:
            MissingKeyError: a key the commit signs with is missing (checked before any
                signature is collected), or too few root keys to sign locally.
            TiupError: the edited root is invalid; the signatures were not collected.
        """
        from tiup.clock import now
        from tiup.manifest.envelope import envelope_bytes
        from tiup.repository.admin import next_root, root_changed, root_signers
        from tiup.repository.store import sign

        if self._built is not None and self._built[0] == old.version:
            return self._built[1]
        self.old_version = old.version
        proposed = next_root(old, now(), self.days or lifetime, add=self.add,
                             remove=self.remove, threshold=self.threshold)
        new = proposed
        if self.interactive:
            from tiup.cli.commands.root_editor import edit_root

            new = edit_root(proposed, old)
        # the pre-filled expiry alone is no reason to publish: --days, or an edited date, is
        asked_expiry = self.days is not None or new.expires != proposed.expires
        if not root_changed(old, new, expiry=asked_expiry):
            self._built = (old.version, None)
            return None
        if self.local:
            self._check_commit_keys(old, new)
        if self.addr:
            from tiup.cli.commands.mirror_sign import collect_signatures
            from tiup.server.signing import KeyGroup

            groups = [KeyGroup("old root", old.roles["root"].keys, old.roles["root"].threshold),
                      KeyGroup("new root", new.roles["root"].keys, new.roles["root"].threshold)]
            sigs = collect_signatures(new.to_dict(), groups, self.addr, all_keys=self.all_keys,
                                      timeout=self.sign_timeout,
                                      what=f"root version {new.version}")
            data = envelope_bytes(sigs, new)
            self.signed_by = len(sigs)
        else:
            signers = root_signers(old, new, self.ring)
            data = sign(new, signers)
            self.signed_by = len(signers)
        self._built = (old.version, (new, data))
        return new, data

    def _check_commit_keys(self, old: Root, new: Root) -> None:
        """The keys the local commit signs with must be here before anyone signs the root."""
        from tiup.errors import MissingKeyError
        from tiup.repository.admin import check_signing_keys
        from tiup.repository.store import rotation_roles

        try:
            check_signing_keys(new, self.ring, rotation_roles(old, new),
                               f"the new root version {new.version}")
        except MissingKeyError as exc:
            when = "before asking the key holders to sign" if self.addr else "before signing"
            raise MissingKeyError(f"cannot publish root version {new.version} (checked {when}):"
                                  f" {exc.message}", file=exc.file, hint=exc.hint) from exc


