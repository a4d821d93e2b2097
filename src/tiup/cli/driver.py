"""The driver's own argument scan: ``tiup [driver flags] <component|command> [args...]``.

Click must never parse a component's arguments, so the leading driver flags
are scanned here (``behavior.md`` §5.0 and §12.13): all of them, in any
order, as ``--flag value`` or ``--flag=value``; a ``--`` ends them. The
first other word is a subcommand or a component; everything after a
component passes through verbatim (a ``--`` right after it is dropped).

This module imports nothing heavy: it runs before click is loaded.
"""

from __future__ import annotations

#: Driver flags that take a value.
VALUE_FLAGS = {"--binary": "binary", "--binpath": "binpath", "--tag": "tag", "-T": "tag"}
#: Driver flags without a value.
BOOL_FLAGS = {"--offline": "offline", "--force-pull": "force_pull", "--verbose": "verbose",
              "--no-progress": "no_progress"}
#: Words that go to click as they are.
CLICK_WORDS = ("-h", "--help", "-v", "--version")


class DriverArgs:
    """The result of the scan."""

    def __init__(self) -> None:
        self.binary: str | None = None
        self.binpath: str | None = None
        self.tag: str | None = None
        self.offline = False
        self.force_pull = False
        self.verbose = False
        self.no_progress = False
        self.word: str | None = None
        self.rest: list[str] = []
        #: the arguments after the word, untouched (for subcommands)
        self.raw_rest: list[str] = []
        self.error: str | None = None
        self.dashdash = False

    def click_prefix(self) -> list[str]:
        """Root options click understands, to put back in front of a subcommand."""
        out = []
        if self.verbose:
            out.append("--verbose")
        if self.no_progress:
            out.append("--no-progress")
        return out


def scan(argv: list[str]) -> DriverArgs:
    """Split ``argv`` (without the program name) into driver flags, word and rest."""
    d = DriverArgs()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            d.dashdash = True
            i += 1
            break
        name, eq, value = arg.partition("=")
        if name in VALUE_FLAGS:
            if not eq:
                if i + 1 >= len(argv):
                    d.error = f"flag needs an argument: {name}"
                    return d
                value = argv[i + 1]
                i += 1
            setattr(d, VALUE_FLAGS[name], value)
            i += 1
            continue
        if arg in BOOL_FLAGS:
            setattr(d, BOOL_FLAGS[arg], True)
            i += 1
            continue
        break
    if i < len(argv):
        d.word = argv[i]
        rest = argv[i + 1:]
        d.raw_rest = list(rest)
        if d.word not in CLICK_WORDS and not d.word.startswith("-") and rest[:1] == ["--"]:
            rest = rest[1:]
        d.rest = rest
    # A later --tag/-T among the component's own arguments still names the instance.
    j = 0
    while j < len(d.rest) - 1:
        if d.rest[j] in ("--tag", "-T"):
            d.tag = d.rest[j + 1]
        j += 1
    return d
