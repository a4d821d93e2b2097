"""``tiup mirror clone``: build a local (offline) mirror from another one."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tiup.cli import output

if TYPE_CHECKING:
    from tiup.repository.clone import CloneOptions, CloneReport

_CONTEXT = {"ignore_unknown_options": True, "allow_extra_args": True}


def parse_extra(tokens: tuple[str, ...]) -> tuple[list[str], dict[str, list[str]]]:
    """Split the free arguments into positionals and ``--<component> VALUES`` options.

    Raises:
        UsageError: a component option without a value, or an unknown short option.
    """
    from tiup.errors import UsageError

    positional: list[str] = []
    per_component: dict[str, list[str]] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if tok.startswith("--") and len(tok) > 2:
            name, eq, value = tok[2:].partition("=")
            if not eq:
                if i >= len(tokens) or tokens[i].startswith("--"):
                    raise UsageError(f"option --{name} needs a value (versions, all, latest "
                                     "or nightly)")
                value = tokens[i]
                i += 1
            per_component.setdefault(name, []).append(value)
        elif tok.startswith("-") and tok != "-":
            raise UsageError(f"unknown option {tok}",
                             hint="run `tiup mirror clone --help` for the options")
        else:
            positional.append(tok)
    return positional, per_component


def build_options(full: bool, oses: tuple[str, ...], archs: tuple[str, ...], prefix: bool,
                  versions: list[str], per_component: dict[str, list[str]]) -> CloneOptions:
    """The clone options from the command line (versions normalised).

    Raises:
        UsageError: an empty --os/--arch, an OS or architecture that is not a safe name
            (they become file names: ``tiup-<os>-<arch>.tar.gz``), or a value that is not
            a version.
    """
    from tiup.errors import InvalidNameError, UsageError
    from tiup.manifest.names import platform
    from tiup.repository.clone.plan import (
        DEFAULT_ARCHS,
        DEFAULT_OSES,
        CloneOptions,
        normalise_version,
        split_values,
    )

    os_list = split_values(oses) if oses else DEFAULT_OSES
    arch_list = split_values(archs) if archs else DEFAULT_ARCHS
    if not os_list:
        raise UsageError("--os is empty: give at least one OS (linux, darwin)")
    if not arch_list:
        raise UsageError("--arch is empty: give at least one architecture (amd64, arm64)")
    for os_name in os_list:
        for arch in arch_list:
            try:
                platform(os_name, arch)
            except InvalidNameError as exc:
                raise UsageError(f"--os/--arch: {exc.message}",
                                 hint="give names such as linux, darwin and amd64, arm64") \
                    from exc
    globals_ = tuple(normalise_version(v) for v in split_values(versions))
    comps: dict[str, tuple[str, ...]] = {}
    for name, values in per_component.items():
        vals = split_values(values)
        if not vals:
            raise UsageError(f"--{name} is empty: give versions, all, latest or nightly")
        comps[name] = tuple(normalise_version(v, what=f"--{name} version") for v in vals)
    return CloneOptions(full=full, oses=tuple(dict.fromkeys(os_list)),
                        archs=tuple(dict.fromkeys(arch_list)), prefix=prefix,
                        global_versions=globals_, component_versions=comps)


@click.command("clone", context_settings=_CONTEXT,
               short_help="Clone a local mirror from remote mirror and download all selected "
                          "components")
@click.argument("args", nargs=-1, type=click.UNPROCESSED,
                metavar="TARGET-DIR [GLOBAL-VERSION]... [--<component> VERSIONS]...")
@click.option("-f", "--full", is_flag=True, help="Clone every version of every component.")
@click.option("-o", "--os", "oses", multiple=True, metavar="OS[,OS]",
              help="Operating systems to clone (repeatable; default linux,darwin).")
@click.option("-a", "--arch", "archs", multiple=True, metavar="ARCH[,ARCH]",
              help="Architectures to clone (repeatable; default amd64,arm64).")
@click.option("--prefix", is_flag=True,
              help="Versions are prefixes: v7.5 selects v7.5.0, v7.5.1-..., not v7.50.0.")
@click.option("--jobs", type=click.IntRange(0), default=4, show_default=True,
              help="Files downloaded at once (0 means 1).")
@click.option("--source", metavar="ADDR",
              help="Mirror to clone: a directory, an HTTP(S) URL, or s3://BUCKET/PREFIX (a "
                   "bucket read with the standard AWS credentials) (default: TIUP_MIRRORS, "
                   "then the configured mirror).")
@click.option("--lock-timeout", type=click.FloatRange(0), default=60.0, show_default=True,
              metavar="SECONDS", help="Wait at most this long for another writer of the target.")
@click.option("--key-dir", metavar="DIR",
              help="Where the keys of an earlier clone in TARGET-DIR are, if not in "
                   "TARGET-DIR/keys (also searched: $TIUP_HOME/keys).")
@click.option("-k", "--key", "owner_key", metavar="FILE|URI",
              help="The key of owner `pingcap` in the clone: a private key file or a "
                   "'pkcs11:…' token key (default: a new key in TARGET-DIR/keys).")
@click.option("--force", is_flag=True,
              help="Clone even if TARGET-DIR holds another mirror (it is replaced, with new "
                   "keys) or other files (they are kept).")
@click.option("--no-progress", is_flag=True, help="Do not draw the progress display.")
@click.pass_context
def clone(ctx: click.Context, args: tuple[str, ...], full: bool, oses: tuple[str, ...],
          archs: tuple[str, ...], prefix: bool, jobs: int, source: str | None,
          lock_timeout: float, key_dir: str | None, owner_key: str | None, force: bool,
          no_progress: bool) -> int:
    """Clone a mirror into TARGET-DIR, signed with the clone's own keys.

    GLOBAL-VERSION selects that version of every component (falling back to a
    platform's latest stable release where it is missing); `--<component>
    VERSIONS` selects versions of one component (comma list; `all`, `latest`,
    `nightly`). Without --full and without any version only metadata is cloned.

    Running it again into the same TARGET-DIR updates the clone in place: its
    keys are kept (clients need no `tiup mirror set` again), earlier versions
    are kept, and only new or changed files are downloaded. Interrupted
    downloads resume. A TARGET-DIR holding another mirror, or other files, is
    refused unless --force (use `tiup mirror merge` to combine mirrors); so is a
    selection that matches no version.

    \b
    Examples:
      tiup mirror clone /data/mirror --full
      tiup mirror clone /data/mirror v8.5.1 --os=linux --arch=amd64
      tiup mirror clone /data/mirror --tidb v8.5.1 --tikv all
    """
    from tiup.cli.clientctx import effective_mirror, flush_warnings, open_updater, profile
    from tiup.clock import now
    from tiup.errors import ExpiredError
    from tiup.repository.clone import check_not_self, clone_mirror, inspect_target

    if no_progress:
        output.set_options(progress=False)
    positional, per_component = parse_extra(args)
    if not positional:
        raise click.UsageError("Missing argument 'TARGET-DIR'.", ctx=ctx)
    from tiup.repository.storage import Storage
    from tiup.transport.address import is_s3

    target: Path | Storage
    opts = build_options(full, oses, archs, prefix, positional[1:], per_component)
    prof = profile()
    address = source or effective_mirror(prof)
    key_dirs = [*([Path(key_dir).expanduser()] if key_dir else []), prof.keys_dir]
    owner = None
    if owner_key:
        from tiup.cli import tokens
        from tiup.repository.keyring import explicit_key

        tokens.setup([owner_key])
        owner = explicit_key(owner_key if tokens.is_uri(owner_key) else Path(owner_key))
    given = [owner] if owner else []
    if is_s3(positional[0]):
        from tiup.cli.commands.mirror_common import open_storage
        from tiup.repository.clone.target import inspect_storage_target

        target = open_storage(positional[0])
        check_not_self(address, target.location)
        inspect_storage_target(target, key_dirs, force=force, keys=given)
    else:
        target = Path(positional[0]).expanduser().absolute()
        check_not_self(address, target)
        inspect_target(target, key_dirs, force=force, keys=given)
    shown = ", ".join(opts.global_versions)
    output.info(f"Start to clone mirror, targetDir is {target}, source mirror is {address}, "
                f"selectedVersions are [{shown}]")
    output.info("If this does not meet expectations, please abort this process, read "
                "`tiup mirror clone --help` and run again")
    output.info(f"Arch [{' '.join(opts.archs)}]")
    output.info(f"OS [{' '.join(opts.oses)}]")
    source_fetcher = None
    if is_s3(address):  # a bucket read with credentials (a private mirror), not over HTTP
        from tiup.repository.s3_storage import S3Fetcher, S3Storage

        source_fetcher = S3Fetcher(S3Storage(address), record=False)
    updater = open_updater(prof, "tiup mirror clone", address, fetcher=source_fetcher)
    try:
        with _progress() as sink:
            report = clone_mirror(updater, target, opts, now=now(), jobs=max(1, jobs),
                                  progress=sink, lock_timeout=lock_timeout, force=force,
                                  key_dirs=key_dirs, owner_key=owner)
    except ExpiredError as exc:
        from tiup.cli.commands.mirror_common import explain_expired

        raise explain_expired(exc, address) from exc
    finally:
        flush_warnings(updater)
        updater.close()
    return _print_report(report, address)


def _print_report(report: CloneReport, address: str) -> int:
    for note in report.notes:
        output.info(note)
    for warning in report.warnings:
        output.warn(warning)
    if report.metadata_only:
        output.info("No --full and no version given: only metadata is cloned (no component "
                    "tarballs). Give versions (e.g. v8.5.1, --tidb all) or --full to clone "
                    "components.")
    if report.dropped:
        output.info("Nothing cloned for: " + ", ".join(sorted(set(report.dropped))))
    if report.key_files and report.storage:
        owner_key = next((p for p in report.key_files if p.name.endswith("-pingcap.json")), None)
        output.info(f"The clone in {report.storage} is signed with its own new keys, stored in "
                    f"{report.key_files[0].parent} (not in the bucket); the owner key of "
                    f"`pingcap` is {owner_key}.")
    elif report.key_files:
        owner_key = next((p for p in report.key_files if p.name.endswith("-pingcap.json")), None)
        shown = owner_key if owner_key is not None else "the key given with -k"
        output.info(f"The clone is signed with its own new keys, stored in {report.target / 'keys'}"
                    f"; the owner key of `pingcap` is {shown}.")
        output.warn(f"the private keys in {report.target / 'keys'} are inside the mirror "
                    "directory: move keys/ out of any directory you publish over HTTP (later "
                    "commands find them with --key-dir DIR or in $TIUP_HOME/keys)")
    elif report.reused_keys and report.updated:
        output.info("The clone was updated with its own keys: clients that trust it need no "
                    "`tiup mirror set` again.")
    size = output.human_bytes(report.downloaded_bytes)
    output.out(f"Cloned {len(report.components)} components, {report.versions} versions; "
               f"{report.downloaded} files downloaded ({size}), {report.present} already present")
    if report.failed:
        output.out(f"Failed to fetch {len(report.failed)} files:")
        for where, reason in report.failed:
            output.out(f"  {where}: {reason}")
        output.info(f"Run the same command again to retry: files already fetched from "
                    f"{address} are kept, partial downloads resume.")
        return 1
    if report.key_files and report.storage:
        output.info(f"Clients read {report.storage} over HTTP(S): `tiup mirror set "
                    "https://<endpoint>/<bucket>/<prefix>`.")
    elif report.key_files:
        output.info(f"Use `tiup mirror set {report.target}` to use the cloned mirror.")
    return 0


class _RichSink:
    """Overall bytes and files, the files in flight, speed and ETA (rich, stderr).

    Download threads report every chunk; the counts are plain per-file integers and
    rich is updated at most every 0.1 s. Only files of at least ``ROW_MIN`` bytes get
    a row of their own (rich redraws on every row added: 300 small files cost more
    CPU than hashing them).
    """

    INTERVAL = 0.1
    ROW_MIN = 32 * 1024 * 1024

    def __init__(self, bar: Any):
        self.bar = bar
        self.lock = threading.Lock()
        self.tasks: dict[str, Any] = {}
        #: bytes done per file (each file is advanced by one thread at a time)
        self.bytes: dict[str, int] = {}
        self.started: set[str] = set()
        self.files = 0
        self.done = 0
        self.next_push = 0.0
        self.overall = bar.add_task("files 0/0", total=None)

    def begin(self, files: int, total_bytes: int) -> None:
        self.files = files
        self.bar.update(self.overall, total=total_bytes, description=f"files 0/{files}")

    def start(self, name: str, length: int) -> None:
        with self.lock:
            self.started.add(name)
            if length >= self.ROW_MIN:
                self.tasks[name] = self.bar.add_task(f"  {name}", total=length)

    def advance(self, name: str, delta: int) -> None:
        self.bytes[name] = self.bytes.get(name, 0) + delta
        if delta > 0 and name not in self.started:  # already present: done at once
            with self.lock:
                self.done += 1
        now = time.monotonic()
        if now >= self.next_push and self.lock.acquire(blocking=False):
            try:
                self.next_push = now + self.INTERVAL
                self._push()
            finally:
                self.lock.release()

    def finish(self, name: str, ok: bool) -> None:
        with self.lock:
            self.started.add(name)
            task = self.tasks.pop(name, None)
            if task is not None:
                self.bar.remove_task(task)
            self.done += 1
            self._push()

    def _push(self) -> None:
        """Copy the counts into rich (the caller holds the lock)."""
        done = list(self.bytes.items())
        self.bar.update(self.overall, completed=sum(n for _name, n in done),
                        description=f"files {self.done}/{self.files}")
        for name, n in done:
            task = self.tasks.get(name)
            if task is not None:
                self.bar.update(task, completed=n)


class _progress:
    def __init__(self) -> None:
        self.bar: Any = None

    def __enter__(self) -> Any:
        from tiup.repository.clone import ProgressSink

        if not output.progress_enabled():
            return ProgressSink()
        from rich.progress import Progress

        console = output.stderr_console()
        self.bar = Progress(*output.progress_columns(console.width), console=console,
                            transient=True, refresh_per_second=5)
        self.bar.__enter__()
        return _RichSink(self.bar)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
