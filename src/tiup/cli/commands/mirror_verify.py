"""``tiup mirror verify``: audit a whole mirror."""

from __future__ import annotations

import json
import sys

import click

from tiup import clock
from tiup.cli import output


@click.command("verify")
@click.argument("path", required=False)
@click.option("--root", "root_file", metavar="FILE",
              help="Start the root chain from this trusted root instead of the mirror's root.json.")
@click.option("--at", "at", metavar="TIME",
              help="Check validity at TIME: RFC 3339 (2032-01-01T00:00:00Z), a date, or +<N>d.")
@click.option("--skip-tarballs", is_flag=True, help="Do not look at tarballs at all.")
@click.option("--no-tarballs", is_flag=True,
              help="Only check that tarballs exist; do not hash them.")
@click.option("--jobs", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Tarballs hashed at once.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable report on stdout.")
@click.pass_context
def verify(ctx: click.Context, path: str | None, root_file: str | None, at: str | None,
           skip_tarballs: bool, no_tarballs: bool, jobs: int, as_json: bool) -> int:
    """Audit a mirror: signatures, root chain, versions, expiry, and every tarball.

    PATH is a mirror directory, URL or s3://BUCKET/PREFIX (default: --repo, then the
    configured mirror).
    Every problem found is reported, each naming its file; the exit status is
    0 without errors, 1 with errors, 2 if the mirror cannot be read at all.
    Manifests are read with the size caps clients use, and every tarball is checked
    against every version item that names it.

    \b
    Examples:
      tiup mirror verify /data/mirror
      tiup mirror verify /data/mirror --at +90d     # still valid in 90 days?
      tiup mirror verify . --root trusted-root.json --skip-tarballs --json
    """
    from tiup.cli.clientctx import effective_mirror
    from tiup.client.profile import Profile
    from tiup.errors import FetchError, UsageError
    from tiup.manifest.timefmt import parse_user_time
    from tiup.repository.audit import TARBALLS_ALL, TARBALLS_EXIST, TARBALLS_SKIP, audit_mirror
    from tiup.transport import open_fetcher

    target = path or (ctx.obj or {}).get("repo") or effective_mirror(Profile())
    now = clock.now()
    if at:
        try:
            now = parse_user_time(at, now)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    trusted = None
    if root_file:
        from tiup.cli.commands.mirror_common import read_root_option

        trusted = read_root_option(root_file, "--root")
    mode = TARBALLS_SKIP if skip_tarballs else TARBALLS_EXIST if no_tarballs else TARBALLS_ALL
    try:
        if target.startswith("s3://"):
            from tiup.cli.commands.mirror_common import open_storage

            fetcher = open_storage(target).fetcher()
        else:
            fetcher = open_fetcher(target)
    except FetchError as exc:
        output.error(f"cannot audit {target}: {exc.message}", exc.hint)
        return 2
    with fetcher, output.byte_progress("hashing tarballs") as progress:
        report = audit_mirror(fetcher, now, trusted_root=trusted,
                              trusted_root_name=root_file or "root.json", tarballs=mode,
                              jobs=jobs, progress=progress)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        for f in report.findings:
            click.echo(f"{f.severity:<5}  {f.file}  {f.message}")
        root = f"root version {report.root_version}, " if report.root_version else ""
        summary = (f"checked {report.manifests_checked} manifests, {report.tarballs_checked} "
                   f"tarballs ({root}at {now.isoformat()}): {len(report.errors)} errors, "
                   f"{len(report.warnings)} warnings")
        click.echo(summary, file=sys.stdout)
    if report.manifests_checked == 0 and not report.ok:
        return 2
    return 0 if report.ok else 1
