"""``tiup mirror modify``, ``renew``, ``transfer-owner`` and ``rotate``."""

from __future__ import annotations

from pathlib import Path

import click

from tiup.cli import output
from tiup.cli.mirror_common import keyring, mirror_dir, open_store, report_commit, write_options

_KEY = click.option("-k", "--key", "key_files", multiple=True, metavar="FILE",
                    help="Owner's private key (repeatable; default: $TIUP_HOME/keys/private.json "
                         "and the key directories).")


@click.command("modify", short_help="Modify published component")
@click.argument("spec", metavar="COMPONENT[:VERSION]")
@click.option("--yank/--no-yank", default=None,
              help="Yank (or un-yank) the component, or only VERSION if given.")
@click.option("--hide/--no-hide", default=None, help="Hide the component in `tiup list`.")
@click.option("--standalone/--no-standalone", default=None,
              help="Mark the component as runnable on its own.")
@click.option("--desc", default="", help="New description.")
@_KEY
@write_options
@click.pass_context
def modify(ctx: click.Context, spec: str, yank: bool | None, hide: bool | None,
           standalone: bool | None, desc: str, key_files: tuple[str, ...], key_dir: str | None,
           lock_timeout: float) -> int:
    """Modify a published component: description, flags, or yank one version.

    \b
    Examples:
      tiup mirror modify hello --desc "Say hello"
      tiup mirror modify hello:v0.0.1 --yank
    """
    from tiup.errors import UsageError
    from tiup.repository.admin import modify as do_modify

    comp, _, version = spec.partition(":")
    if version and (hide is not None or standalone is not None):
        raise UsageError("--hide and --standalone apply to a whole component, not to "
                         f"{comp}:{version}")
    mirror = mirror_dir(ctx)
    ring = keyring(mirror, key_files, key_dir, default_key=True)
    with open_store(mirror, ring, lock_timeout) as store:
        new = do_modify(store, ring, comp, version or None, yank=yank, hidden=hide,
                        standalone=standalone, desc=desc)
        written = store.commit()
        report_commit(store, written)
    output.info(f"Modified {comp} (manifest version {new.version})")
    return 0


@click.command("renew", short_help="Renew the manifest of a published component.")
@click.argument("components", nargs=-1)
@click.option("--days", type=click.IntRange(1), default=None,
              help="Component (and --index) lifetime from now (default: the mirror's).")
@click.option("--index", "with_index", is_flag=True, help="Also re-sign the index.")
@click.option("--all", "all_components", is_flag=True, help="Renew every component.")
@_KEY
@write_options
@click.pass_context
def renew(ctx: click.Context, components: tuple[str, ...], days: int | None, with_index: bool,
          all_components: bool, key_files: tuple[str, ...], key_dir: str | None,
          lock_timeout: float) -> int:
    """Renew manifests; snapshot.json and timestamp.json are always re-signed.

    Works on a mirror that has already expired.

    \b
    Examples:
      tiup mirror renew                  # only snapshot and timestamp
      tiup mirror renew hello --days 730
      tiup mirror renew --all --index
    """
    from tiup.repository.admin import renew_component

    mirror = mirror_dir(ctx)
    ring = keyring(mirror, key_files, key_dir, default_key=True)
    with open_store(mirror, ring, lock_timeout) as store:
        names = sorted(store.index.components) if all_components else list(components)
        for name in names:
            comp = renew_component(store, ring, name, days)
            output.info(f"Renewed {name}: version {comp.version}, expires {comp.expires}")
        if with_index:
            store.renew_index(days)
        written = store.commit()
        report_commit(store, written)
        if store.new_index is not None:
            output.info(f"Renewed the index: version {store.new_index.version}, expires "
                        f"{store.new_index.expires}")
    output.info(f"Renewed snapshot.json and timestamp.json of {mirror}")
    return 0


@click.command("transfer-owner", short_help="Transfer component to another owner")
@click.argument("component")
@click.argument("new_owner")
@_KEY
@write_options
@click.pass_context
def transfer_owner(ctx: click.Context, component: str, new_owner: str,
                   key_files: tuple[str, ...], key_dir: str | None, lock_timeout: float) -> int:
    """Give COMPONENT to NEW_OWNER; needs the keys of both the current and the new owner."""
    from tiup.repository.admin import transfer_owner as do_transfer

    mirror = mirror_dir(ctx)
    ring = keyring(mirror, key_files, key_dir, default_key=True)
    with open_store(mirror, ring, lock_timeout) as store:
        do_transfer(store, ring, component, new_owner)
        written = store.commit()
        report_commit(store, written)
    output.info(f"Transferred {component} to {new_owner}")
    return 0


@click.command("rotate", short_help="Rotate root.json")
@click.option("--key-dir", metavar="DIR",
              help="Directory with root keys (also searched: <mirror>/keys, $TIUP_HOME/keys).")
@click.option("--add-key", "add_keys", multiple=True, metavar="FILE",
              help="Add this key (public or private file) to the root role (repeatable).")
@click.option("--remove-key", "remove_keys", multiple=True, metavar="KEYID",
              help="Remove this root key (id or a unique prefix of 8+ hex digits; repeatable).")
@click.option("--threshold", type=click.IntRange(1), default=None,
              help="New root threshold (default: unchanged).")
@click.option("--days", type=click.IntRange(1), default=None,
              help="Root lifetime from now (default: the mirror's; expiry never shrinks).")
@click.option("--lock-timeout", type=click.FloatRange(0), default=60.0, show_default=True,
              metavar="SECONDS", help="Wait at most this long for another writer.")
@click.pass_context
def rotate(ctx: click.Context, key_dir: str | None, add_keys: tuple[str, ...],
           remove_keys: tuple[str, ...], threshold: int | None, days: int | None,
           lock_timeout: float) -> int:
    """Publish the next root.json: add or remove root keys, change the root threshold.

    The new root is signed by enough old and new root keys found locally;
    N.root.json and root.json are written, then snapshot and timestamp.
    """
    from tiup.keys import load_key_file, private_key
    from tiup.repository.admin import propose_root, sign_root

    mirror = mirror_dir(ctx)
    ring = keyring(mirror, [], key_dir)
    infos = []
    for file in add_keys:
        info = load_key_file(Path(file))
        if info.is_private:
            ring.add(private_key(info, file), file)
        infos.append(info)
    with open_store(mirror, ring, lock_timeout) as store:
        new = propose_root(store, add=infos, remove=remove_keys, threshold=threshold, days=days)
        plan = sign_root(store, ring, new)
        written = store.commit()
        report_commit(store, written)
    role = new.roles["root"]
    output.info(f"Rotated root to version {new.version} ({len(role.keys)} root keys, threshold "
                f"{role.threshold}, expires {new.expires}), signed by {len(plan.signed_by)} keys")
    return 0
