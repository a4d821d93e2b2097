"""Where every ``tiup`` command lives, and what its help says, without importing it.

The tables below are what :class:`tiup.cli.group.LazyGroup` lists: ``tiup
--help`` and ``tiup mirror --help`` show every command with its short help
from here, and a command's module (with click options, crypto, HTTP...) is
imported only when that command runs or its own help is shown.

Each entry is ``name: (target, short help, cut)``:

- ``target`` is ``"module:attribute"`` of the click command;
- the short help (``cut`` False) is shown whole, wrapped if long: the table is
  where it is written (the group sets it as the command's ``short_help`` when
  it loads a command that has none), Go TiUP's ``Short`` text where TiUP has
  the command; with ``cut`` True it is the first sentence of the command's
  docstring, which click shortens to the terminal width, as it would from the
  loaded command.

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
#: :mod:`tiup.cli.main` must say the same; a test compares the two helps). The driver
#: flags (``--binary`` to ``--force-pull``) are read by :mod:`tiup.cli.driver` before
#: click runs: click only shows and completes them.
ROOT_OPTIONS = (
    ("-v, --version", "Print the version of tiup."),
    ("--binary <component>[:version]",
     "Print the binary path of a specific version of a component (the latest installed "
     "version if no version is given)."),
    ("--binpath PATH", "Specify the binary path of the component instance."),
    ("-T, --tag TAG", "Specify a tag for the component instance (its data directory "
     "$TIUP_HOME/data/TAG)."),
    ("--offline", "Never use the network (also TIUP_OFFLINE=1)."),
    ("--force-pull", "Reinstall the component version before running it."),
    ("--verbose", "Show tracebacks and timing details on errors."),
    ("--no-progress", "Never draw progress bars."),
    ("-h, --help", "Show this message and exit."),
)


def version_line() -> str:
    """What ``tiup --version`` prints."""
    from tiup import TIUP_COMPAT_VERSION, __version__

    return f"{__version__} tiup (Python; compatible with TiUP {TIUP_COMPAT_VERSION})"


ROOT_COMMANDS: dict[str, tuple[str, str, bool]] = {
    "install": (_C + "install:install", "Install a specific version of a component", False),
    "list": (_C + "info:list_cmd", "List the available TiDB components or versions", False),
    "uninstall": (_C + "install:uninstall", "Uninstall components or versions of a component",
                  False),
    "update": (_C + "install:update", "Update tiup components to the latest version", False),
    "status": (_C + "info:status", "List the status of instantiated components", False),
    "clean": (_C + "info:clean", "Clean the data of instantiated components", False),
    "mirror": (_C + "mirror:mirror", "Manage a repository mirror for TiUP components", False),
    "env": (_C + "info:env", "Show the list of system environment variable that related to TiUP",
            False),
    "history": (_C + "history:history",
                "Display the historical execution record of TiUP, displays 100 lines by "
                "default", False),
    "link": (_C + "link:link", "Link component binary to $TIUP_HOME/bin/", False),
    "unlink": (_C + "link:unlink", "Unlink component binary to $TIUP_HOME/bin/", False),
    "package": (_C + "package:package", "Package a tiup component", False),
    "help": ("tiup.cli.main:help_cmd", "Help about any command", False),
    "completion": (_C + "completion:completion",
                   "Generate the autocompletion script for the specified shell", False),
}

#: Words that are never a component name on the fast path: the commands.
RESERVED_WORDS = frozenset(ROOT_COMMANDS)

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
               "Audit a mirror: signatures, versions, expiry and tarballs", False),
    "prune": (_C + "mirror_prune:prune", "Remove old or yanked versions from a local mirror",
              False),
    "serve": (_C + "serve:serve_cmd", "Serve a mirror over HTTP(S)", False),
    "export": (_C + "mirror_bundle:export",
               "Write what an air-gapped mirror lacks into a bundle", False),
    "import": (_C + "mirror_bundle:import_cmd",
               "Apply a bundle to an air-gapped mirror, verified first", False),
}
