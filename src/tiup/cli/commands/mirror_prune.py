"""``tiup mirror prune``: yank old versions and delete tarballs nothing live needs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tiup.cli import output
from tiup.cli.commands.mirror_common import mirror_dir, open_writer, write_options


@click.command("prune", short_help="Remove old or yanked versions from a local mirror")
@click.argument("directory", required=False, metavar="[DIR]")
@click.option("--keep", type=click.IntRange(0), metavar="N",
              help="Yank all but the newest N versions per platform (never the latest stable "
                   "or the nightly), then delete their tarballs.")
@click.option("--older-than", "--before", "before", metavar="DATE",
              help="Yank versions released before DATE (RFC 3339 or YYYY-MM-DD), then delete "
                   "their tarballs.")
@click.option("--yanked", is_flag=True,
              help="Delete the tarballs of yanked versions (no key needed) and of yanked "
                   "components (their versions are yanked first: owner key needed).")
@click.option("--superseded", is_flag=True,
              help="Delete versioned manifests older than the current ones (never roots).")
@click.option("--orphans", is_flag=True,
              help="Delete tarballs no manifest references (on s3://, also versioned "
                   "manifests no commit references: what killed writers left).")
@click.option("--commits", is_flag=True, help="Delete TiUP's commits/ history.")
@click.option("--grace", type=click.FloatRange(0), default=1.0, show_default=True,
              metavar="DAYS",
              help="--superseded keeps files newer than this; on s3:// so does --orphans "
                   "(a live writer's uploads are unreferenced until it commits).")
@click.option("--component", "components", multiple=True, metavar="C",
              help="Only prune versions of these components (repeatable).")
@click.option("-k", "--key", "key_files", multiple=True, metavar="FILE",
              help="Owner's private key (repeatable; the key directories are searched too).")
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@write_options
@click.pass_context
def prune(ctx: click.Context, directory: str | None, keep: int | None, before: str | None,
          yanked: bool, superseded: bool, orphans: bool, commits: bool, grace: float,
          components: tuple[str, ...], key_files: tuple[str, ...], dry_run: bool, yes: bool,
          key_dir: str | None, lock_timeout: float) -> int:
    """Yank old versions of a local mirror and delete the tarballs nothing live needs.

    Versions chosen by --keep/--older-than are first yanked in new component
    manifests signed with their owner's key (-k) and committed (a normal signed
    update); then the tarballs no live version references are deleted. --yanked
    deletes tarballs of versions already yanked (no manifest change, no key) and
    of yanked components (their versions are yanked first, with the owner key).
    Without a selection flag: --yanked --superseded. Ends with the checks of
    `tiup mirror verify --no-tarballs`.

    \b
    Examples:
      tiup mirror prune --keep 3 --dry-run
      tiup mirror prune --older-than 2024-01-01 --component tidb -y
    """
    from tiup.clock import now
    from tiup.errors import UsageError
    from tiup.manifest.names import component_id
    from tiup.manifest.timefmt import parse_user_time
    from tiup.repository.audit import TARBALLS_EXIST, audit_mirror
    from tiup.repository.prune import PruneOptions, delete_files, plan_prune, stage_prune
    from tiup.transport.local import LocalFetcher

    if directory:
        ctx.obj = {**(ctx.obj or {}), "repo": directory}
    mirror = mirror_dir(ctx)
    moment = None
    if before:
        try:
            moment = parse_user_time(before, now())
        except ValueError as exc:
            raise UsageError(f"--older-than {before}: {exc}") from exc
    if not any((keep is not None, moment, yanked, superseded, orphans, commits)):
        yanked = superseded = True
    opts = PruneOptions(keep=keep, before=moment, yanked=yanked, superseded=superseded,
                        orphans=orphans, commits=commits,
                        components=tuple(component_id(c) for c in components),
                        grace_days=grace)
    writer = open_writer(mirror, key_files, key_dir, lock_timeout=lock_timeout).local()
    ring = writer.keyring
    # the files go after the commit, still under the lock: one transaction by hand
    with writer.open() as store:
        unknown = [c for c in opts.components if c not in store.index.components]
        if unknown:
            raise UsageError(f"unknown component {', '.join(unknown)} in {mirror}")
        plan = plan_prune(store, opts)
        for cid, entries in sorted(plan.versions.items()):
            yanks = plan.yanks.get(cid, set())
            for plat, ver, reason in entries:
                verb = "yank" if (plat, ver) in yanks else "prune"
                output.out(f"{'would ' + verb if dry_run else verb} {cid} {ver} {plat} "
                           f"({reason})")
        for name, size, reason in plan.files:
            output.out(f"{'would delete' if dry_run else 'delete'} {name} ({size} bytes; "
                       f"{reason})")
        if plan.empty:
            output.out("nothing to prune")
            return 0
        if dry_run:
            output.out(f"would free {plan.bytes} bytes")
            return 0
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError("prune changes the mirror and stdin is not a terminal",
                                 hint="pass --yes to confirm, or --dry-run to only list")
            if not click.confirm(f"Prune {mirror}?", default=False, err=True):
                output.info("nothing changed")
                return 1
        if plan.manifests:
            stage_prune(store, ring, plan)
            writer.commit(store)
        deleted = delete_files(store.storage, plan)
        for name, _size in deleted:
            output.out(f"deleted {store.storage.location_of(name)}")
        output.out(f"freed {sum(s for _n, s in deleted)} bytes")
    with (LocalFetcher(str(mirror)) if isinstance(mirror, Path)
          else mirror.fetcher()) as fetcher:
        report = audit_mirror(fetcher, now(), tarballs=TARBALLS_EXIST)
    for finding in report.errors:
        output.error(f"{finding.file}: {finding.message}")
    if not report.ok:
        return 1
    output.info(f"{mirror} verifies (tiup mirror verify --no-tarballs): "
                f"{report.manifests_checked} manifests checked")
    return 0
