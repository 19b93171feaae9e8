"""The entry point: parse the command line, run the subcommand, map errors to exit codes.

Exit codes: 0 done (also when stdout's reader left early, as ``| head`` does), 2 a
usage error or an :class:`~aionas.AionasError` (one line on stderr, no traceback),
130 a search stopped by Ctrl+C, 143 one stopped by SIGTERM.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .. import AionasError
from ._common import UsageError, make_console, require, stdout_gone
from ._experiments import experiments_command
from ._history import history_command
from ._parser import build_parser
from ._plot import plot_command
from ._run import run_command

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aionas`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        require("rich.console")
        console = make_console()
        if args.command in ("run", "demo"):
            return run_command(args, argv, console)
        if args.command == "history":
            return history_command(args, console)
        if args.command == "experiments":
            return experiments_command(args, console)
        return plot_command(args, console)
    except (UsageError, AionasError) as error:
        print(f"aionas: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # stdout's reader has gone (``| head``): nothing is lost
        stdout_gone()
        return 0
