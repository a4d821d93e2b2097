"""Where every ``tiup`` command lives, and what its help says, without importing it.

The tables below are what :class:`tiup.cli.group.LazyGroup` lists: ``tiup
--help`` and ``tiup mirror --help`` show every command with its short help
from here, and a command's module (with click options, crypto, HTTP...) is
imported only when that command runs or its own help is shown.

Each entry is ``name: (target, short help, cut)``:

- ``target`` is ``"module:attribute"`` of the click command;
- the short help is the command's ``short_help=`` (``cut`` False: shown
  whole, wrapped if long), or the first sentence of its docstring (``cut``
  True: click shortens it to the terminal width, as it would from the
  loaded command).

A test loads every target and checks that its name and short help match its
entry, at every width. The order of a table is the order of ``--help``
(TiUP's, then the commands this project adds).

This module imports nothing: :mod:`tiup.cli.entry` reads it before click is
loaded. It also holds the root command's own texts (help, options, version).
"""

from __future__ import annotations

_C = "tiup.cli.commands."

#: The text of ``tiup --help`` above the options (the root group's help).
ROOT_HELP = """\
TiUP is a command-line component management tool that can help to download and install
TiDB platform components to the local system. You can run a specific version of a
component via "tiup <component>[:version]".

This is tiup in Python: fully compatible with Go TiUP's mirrors, keys and
$TIUP_HOME, with a private-mirror system that verifies every byte."""

#: The root options as ``tiup --help`` lists them (the click options in
#: :mod:`tiup.cli.main` must say the same; a test compares the two helps).
ROOT_OPTIONS = (
    ("-v, --version", "Print the version of tiup."),
    ("--verbose", "Show tracebacks and timing details on errors."),
    ("--no-progress", "Never draw progress bars."),
    ("-h, --help", "Show this message and exit."),
)


def version_line() -> str:
    """What ``tiup --version`` prints."""
    from tiup import TIUP_COMPAT_VERSION, __version__

    return f"{__version__} tiup (Python; compatible with TiUP {TIUP_COMPAT_VERSION})"


ROOT_COMMANDS: dict[str, tuple[str, str, bool]] = {
    "install": (_C + "install:install", "Install a specific version of a component.", True),
    "list": (_C + "info:list_cmd",
             "List the available TiDB components if you don't specify any component name, "
             "or list the available versions of a specific component.", True),
    "uninstall": (_C + "install:uninstall",
                  "If you specify a version number, uninstall the specified version of the "
                  "component.", True),
    "update": (_C + "install:update", "Update some components to the latest version.", True),
    "status": (_C + "info:status",
               "Show the status of the instances started by `tiup <component>` (never "
               "deletes).", True),
    "clean": (_C + "info:clean",
              "Clean the data directories of instances (`tiup status` lists them).", True),
    "mirror": (_C + "mirror:mirror",
               "The `mirror` command is used to manage a component repository for TiUP, you "
               "can use it to create a private repository, or to add new component to an "
               "existing repository.", True),
    "package": (_C + "package:package", "Package a tiup component", False),
    "env": (_C + "info:env",
            "Show the list of system environment variable that related to TiUP.", True),
    "help": ("tiup.cli.main:help_cmd",
             "Help about any command, or the help of an installed component.", True),
}

#: Words that are never a component name on the fast path: the commands, and
#: TiUP's commands this project does not have (they reach click's error path).
RESERVED_WORDS = frozenset(ROOT_COMMANDS) | {"history", "link", "unlink", "completion"}

MIRROR_COMMANDS: dict[str, tuple[str, str, bool]] = {
    "init": (_C + "mirror_init:init", "Initialize an empty repository", False),
    "sign": (_C + "mirror_sign:sign", "Add signatures to a manifest file", False),
    "genkey": (_C + "mirror_init:genkey", "Generate a new key pair", False),
    "clone": (_C + "mirror_clone:clone",
              "Clone a local mirror from remote mirror and download all selected components",
              False),
    "merge": (_C + "mirror_merge:merge", "Merge two or more offline mirrors", False),
    "publish": (_C + "mirror_publish:publish", "Publish a component", False),
    "show": (_C + "mirror_set:show", "Show the mirror address", False),
    "set": (_C + "mirror_set:set_cmd", "Set mirror address", False),
    "modify": (_C + "mirror_modify:modify", "Modify published component", False),
    "renew": (_C + "mirror_modify:renew", "Renew the manifest of a published component.", False),
    "grant": (_C + "mirror_publish:grant", "grant a new owner", False),
    "rotate": (_C + "mirror_rotate:rotate", "Rotate root.json", False),
    "transfer-owner": (_C + "mirror_rotate:transfer_owner", "Transfer component to another owner",
                       False),
    "verify": (_C + "mirror_verify:verify",
               "Audit a mirror: signatures, root chain, versions, expiry, and every tarball.",
               True),
    "prune": (_C + "mirror_prune:prune", "Remove old or yanked versions from a local mirror",
              False),
    "serve": (_C + "serve:serve_cmd", "Serve a mirror over HTTP(S)", False),
}
