"""Where errors become messages and exit codes: the one mapping of the CLI.

0 ok; 1 the operation failed; 2 usage error. A component's own exit status
passes through. Tracebacks only with ``--verbose`` (or ``TIUP_VERBOSE=1``).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from typing import NoReturn

import click

from tiup.cli import output
from tiup.errors import TiupError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def run(entry: Callable[[], object]) -> NoReturn:
    """Run a click entry point in standalone-off mode and map every outcome to an exit code."""
    try:
        result = entry()
    except TiupError as exc:
        if output.verbose():
            traceback.print_exc()
        output.error(exc.message, exc.hint)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_FAILED)
    except click.Abort:
        output.error("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        output.error("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(EXIT_FAILED)
    except OSError as exc:
        if output.verbose():
            traceback.print_exc()
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        output.error(f"{exc.strerror or exc}{where}")
        sys.exit(EXIT_FAILED)
    sys.exit(result if isinstance(result, int) else EXIT_OK)
