"""tiup: a Python implementation of TiUP's component manager and private mirrors."""

__version__ = "0.1.0"

#: The Go TiUP release whose formats and behaviour this package follows.
TIUP_COMPAT_VERSION = "1.16.5"

#: The ``tiup`` file that runs this process when it is the self-contained build
#: (``scripts/build-dist``; set by its bootstrap), else None (a pip or venv install).
LAUNCHER: str | None = None
