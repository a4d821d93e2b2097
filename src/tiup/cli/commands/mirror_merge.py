"""``tiup mirror merge``: merge other mirrors into the current (local) mirror."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from tiup.cli import output
from tiup.cli.commands.mirror_common import mirror_dir, open_writer, write_options

if TYPE_CHECKING:
    from tiup.repository.merge import MergePlan
    from tiup.repository.store import Store


@click.command("merge", short_help="Merge two or more offline mirrors")
@click.argument("sources", nargs=-1, required=True, metavar="MIRROR-DIR-OR-URL...")
@click.option("-k", "--key", "key_files", multiple=True, metavar="FILE",
              help="Owner's private key (repeatable; also searched: $TIUP_HOME/keys and the "
                   "mirror's key directory).")
@click.option("--dry-run", is_flag=True, help="Only print what would be merged.")
@write_options
@click.pass_context
def merge(ctx: click.Context, sources: tuple[str, ...], key_files: tuple[str, ...],
          dry_run: bool, key_dir: str | None, lock_timeout: float) -> int:
    """Merge the components of other mirrors into the current mirror.

    Each source (a directory or URL) is verified with its own root first.
    Versions the current mirror lacks are added, signed by their owner in the
    current mirror (grant the owner first: `tiup mirror grant <id>`); a version
    present in both with other content is a conflict and is not merged.

    \b
    Example:
      tiup mirror set /data/my_mirror
      tiup mirror grant $USER
      tiup mirror merge /data/my_custom_components
    """
    import shutil

    from tiup.clock import now
    from tiup.repository.merge import apply_merge, plan_merge, read_source
    from tiup.transport import open_fetcher

    base = mirror_dir(ctx)
    writer = open_writer(base, key_files, key_dir, default_key=False,
                         lock_timeout=lock_timeout).local()
    fetchers = []
    try:
        srcs = []
        for address in sources:
            fetcher = open_fetcher(address)
            fetchers.append(fetcher)
            src = read_source(fetcher, now())
            for warning in src.warnings:
                output.warn(warning)
            srcs.append(src)
        def build(store: Store) -> MergePlan:
            plan = plan_merge(store, srcs)
            _print_plan(plan, dry_run)
            if not dry_run and plan.items:
                # the tarballs are copied into the store's staging area as they are taken
                if isinstance(base, Path):
                    work = base / ".tiup-merge"
                else:  # a bucket: the tarballs pass through a local temporary directory
                    import tempfile

                    work = Path(tempfile.mkdtemp(prefix="tiup-merge-"))
                try:
                    apply_merge(store, writer.keyring, plan, work)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
            return plan

        plan = writer.run_store(build, commit_if=lambda p: not dry_run and bool(p.items))
        if not plan.items:
            output.out("nothing to merge")
    finally:
        for fetcher in fetchers:
            fetcher.close()
    if plan.conflicts:
        output.error(f"{len(plan.conflicts)} conflict(s): those versions were not merged")
        return 1
    return 0


def _print_plan(plan: MergePlan, dry_run: bool) -> None:
    merged: dict[str, list[str]] = {}
    for mi in plan.items:
        merged.setdefault(mi.component, []).append(f"{mi.version} {mi.platform}")
    verb = "would merge" if dry_run else "merged"
    for cid, entries in sorted(merged.items()):
        output.out(f"{verb} {cid}: {', '.join(entries)}")
    present = [w for w, reason in plan.skipped if reason == "present"]
    for what, reason in plan.skipped:
        if reason != "present":
            output.out(f"skipped {what}: {reason}")
    if present:
        output.out(f"skipped {len(present)} version(s) already in the base")
    for line in plan.conflicts:
        output.out(line)
