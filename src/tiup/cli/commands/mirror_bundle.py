"""``tiup mirror export`` and ``tiup mirror import``: sneakernet updates of air-gapped mirrors."""

from __future__ import annotations

from pathlib import Path

import click

from tiup.cli import output
from tiup.cli.commands.serve import _Size


def _history(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    from tiup.client.profile import Profile

    return Profile().home / "export-history"


@click.command("export", short_help="Write what an air-gapped mirror lacks into a bundle")
@click.argument("mirror", metavar="MIRROR")
@click.argument("bundle", metavar="BUNDLE")
@click.option("--since", "since", metavar="FILE|N",
              help="What the target holds: its timestamp.json (copied out of it), its "
                   "snapshot.json, or its timestamp version N. Without it: a full bundle.")
@click.option("--part-size", type=_Size(), metavar="SIZE",
              help="Split the bundle into parts of SIZE (e.g. 4GiB): BUNDLE.001, BUNDLE.002 "
                   "… and BUNDLE.parts.json.")
@click.option("--dry-run", is_flag=True, help="Only print what would go in, and the size.")
@click.option("--history", "history", metavar="DIR",
              help="Where exports record the states they carried, for a later --since "
                   "timestamp.json [default: $TIUP_HOME/export-history].")
def export(mirror: str, since: str | None, bundle: str, part_size: int | None, dry_run: bool,
           history: str | None) -> int:
    """Write the files an air-gapped copy of MIRROR lacks into BUNDLE (a tar; `-`: stdout).

    MIRROR is a local mirror, usually a clone kept up to date with `tiup mirror
    clone` (same keys each time). The bundle holds the new tarballs, the versioned
    manifests that changed, the root chain from the target's root on,
    snapshot.json, timestamp.json and an index of every file (length, sha256,
    sha512). Nothing in it is trusted on its own: `tiup mirror import` checks it
    all against the target's root.

    The usual --since is the target's timestamp.json (a few hundred bytes to carry
    out); this side then looks up the snapshot it named among the states earlier
    exports carried (--history). Without such a record, pass the target's
    snapshot.json instead.

    \b
    Examples:
      tiup mirror export /data/offline full.tar                      # first time
      tiup mirror export /data/offline update.tar --since timestamp.json
      tiup mirror export /data/offline update.tar --since ts.json --part-size 4GiB
      tiup mirror export /data/offline - --since ts.json --dry-run
    """
    from tiup.errors import FetchError, UsageError
    from tiup.repository.bundle.export import plan_export, write_bundle

    since_value: bytes | int | None = None
    if since is not None:
        if since.isdigit():
            since_value = int(since)
        else:
            from tiup.transport.local import LocalFetcher

            where = Path(since)
            try:
                since_value = LocalFetcher(str(where.parent)).fetch(where.name, 16 * 1024 * 1024)
            except FetchError as exc:
                raise UsageError(f"cannot read --since {since}: {exc.reason}",
                                 hint="pass the target's timestamp.json, snapshot.json, or "
                                      "its timestamp version") from exc
    if part_size is not None and part_size < 64 * 1024:
        raise UsageError("--part-size must be at least 64KiB")
    if part_size and bundle == "-":
        raise UsageError("--part-size needs a file name for BUNDLE, not `-`")
    hist = _history(history)
    plan = plan_export(Path(mirror), since=since_value, since_source=since or "",
                       history=hist)
    if plan.up_to_date:
        output.say(f"the target is up to date with {plan.mirror} (timestamp version "
                   f"{plan.index.timestamp_version}): nothing to export")
        return 0
    s = plan.summary()
    kind = "full bundle" if plan.index.full else (
        f"bundle since {plan.index.since.describe()}" if plan.index.since else "bundle")
    head = (f"{kind} of {plan.mirror} at timestamp version {plan.index.timestamp_version}: "
            f"{output.count(s['tarballs'], 'tarball')}, "
            f"{output.count(s['manifests'], 'manifest')}, "
            f"{output.human_bytes(s['bytes'])} ({plan.tar_size()} bytes as a tar)")
    fingerprint = (f"root v{plan.index.root_version} sha256 {plan.index.root_sha256} "
                   "(give it to a first import: --fingerprint)")
    if dry_run:
        for m in plan.files:
            output.out(f"{m.length:>14}  {m.name}")
        output.out(head)
        output.out(fingerprint)
        return 0
    out = None if bundle == "-" else Path(bundle)
    with output.byte_progress("exporting") as progress:
        written = write_bundle(plan, out, part_size=part_size, history=hist, progress=progress)
    if out is not None:
        output.say(head)
        output.say(fingerprint)
        for path in written:
            output.say(f"wrote {path}")
    else:
        output.info(head)
        output.info(fingerprint)
    return 0


@click.command("import", short_help="Apply a bundle to an air-gapped mirror, verified first")
@click.argument("bundle", metavar="BUNDLE")
@click.option("--repo", "repo", metavar="DIR",
              help="The mirror to update (default: `tiup mirror --repo`, else the configured "
                   "mirror). An empty or new directory takes a full bundle.")
@click.option("--trust-root", metavar="FILE",
              help="First import: a copy of the mirror's root.json, carried apart from the "
                   "bundle, to trust its root chain by.")
@click.option("--fingerprint", metavar="SHA256",
              help="First import: the sha256 of the mirror's root.json (as `tiup mirror "
                   "export` prints it) to trust its root chain by.")
@click.option("--lock-timeout", type=click.FloatRange(0), default=60.0, show_default=True,
              metavar="SECONDS", help="How long to wait for another writer of the mirror.")
@click.pass_context
def import_cmd(ctx: click.Context, bundle: str, repo: str | None, trust_root: str | None,
               fingerprint: str | None, lock_timeout: float) -> int:
    """Verify BUNDLE (from `tiup mirror export`) and apply it to a mirror as one commit.

    Everything is checked against the target's own trusted root before a byte
    lands: the root chain, every signature, versions only going forward, every
    tarball's length, sha256 and sha512 (streamed, never extracted). Then the
    files go live in the store's order: tarballs, manifests, snapshot.json,
    timestamp.json last. A bundle for another mirror, an older one (rollback), or
    one made --since another state (a gap) is refused, and the target is left as
    it was. Interrupted, the mirror stays valid: run the same import again.

    BUNDLE is the bundle file, `-` (stdin), or a split bundle (its .parts.json,
    or the name it was exported as). A first import (empty directory) trusts the
    bundle's root only if --trust-root or --fingerprint matches it.

    \b
    Examples:
      tiup mirror import full.tar --repo /data/mirror --fingerprint 3f1c…
      tiup mirror import update.tar --repo /data/mirror
      tiup mirror import update.tar.parts.json --repo /data/mirror
    """
    from tiup.cli.commands.mirror_common import mirror_dir
    from tiup.clock import now
    from tiup.errors import UsageError
    from tiup.repository.bundle.importer import import_bundle
    from tiup.settings import current
    from tiup.transport.address import is_s3

    pinned = None
    if trust_root:
        from tiup.cli.commands.mirror_common import read_root_option

        pinned = read_root_option(trust_root, "--trust-root")
    from tiup.manifest.names import is_hex_digest

    if fingerprint is not None and not is_hex_digest(fingerprint.lower(), 64):
        raise UsageError(f"--fingerprint {fingerprint!r} is not a sha256 (64 hex digits)")
    chosen = repo or (ctx.obj or {}).get("repo")
    found: object = mirror_dir(ctx) if not chosen else chosen if is_s3(chosen) \
        else Path(chosen).expanduser()
    if not isinstance(found, Path):
        raise UsageError(f"cannot import into {chosen or 'the s3:// mirror'}: bundles are "
                         "imported into a directory",
                         hint="import into a directory inside the air gap; a bucket mirror "
                              "is written with `tiup mirror clone s3://…` on the connected "
                              "side")
    target = found
    with output.byte_progress("importing tarballs") as progress:
        report = import_bundle(bundle, target, now=now(), trust_root=pinned,
                               fingerprint=fingerprint, progress=progress,
                               lock_timeout=lock_timeout, sync_script=current().sync_script)
    if report.up_to_date:
        output.say(f"{report.target} already holds this bundle's state (timestamp version "
                   f"{report.timestamp_version}): nothing to do")
        return 0
    comps = ", ".join(sorted(report.components)) or "none"
    output.say(f"imported {report.bundle} into {report.target}: "
               f"{output.count(len(report.components), 'component')} changed ({comps}), "
               f"{output.count(report.versions, 'new version')}, "
               f"{output.count(report.tarballs, 'tarball')}, "
               f"{output.human_bytes(report.bytes)}; now at "
               f"timestamp version {report.timestamp_version}")
    for warning in report.warnings:
        output.warn(warning)
    return 0
