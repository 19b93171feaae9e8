"""The entry point: parse the command line, run the subcommand, map errors to exit codes.

Exit codes: 0 done (also when stdout's reader left early, as ``| head`` does), 2 a
usage error or an :class:`~aionas.AionasError` (one line on stderr, no traceback),
130 a search stopped by Ctrl+C, 143 one stopped by SIGTERM.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .. import AionasError
from ._common import UsageError, make_console, require, stdout_closed, stdout_gone, write_failed
from ._experiments import experiments_command
from ._history import history_command
from ._parser import build_parser
from ._plot import plot_command
from ._run import run_command

__all__ = ["main"]


def _closed_streams_to_devnull() -> None:
    """``aionas ... >&-`` or ``2>&-``: write what would go there nowhere, not crash."""
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 (lives as long as we do)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aionas`` command; returns the exit code."""
    _closed_streams_to_devnull()
    args = build_parser().parse_args(argv)
    try:
        require("rich.console")
        console = make_console()
        if args.command in ("run", "demo"):
            return run_command(args, argv, console)
        if args.command == "history":
            code = history_command(args, console)
        elif args.command == "experiments":
            code = experiments_command(args, console)
        else:
            code = plot_command(args, console)
        return 1 if write_failed() else code
    except (UsageError, AionasError) as error:
        print(f"aionas: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # stdout's reader has gone (``| head``): nothing is lost
        stdout_gone()
        return 0
    except OSError as error:  # stdout cannot be written (a full disk, /dev/full)
        if not stdout_closed():
            raise
        print(f"aionas: the output could not be written: {error.strerror}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl+C while reading or drawing: nothing to repair
        print(file=sys.stderr)
        return 130
