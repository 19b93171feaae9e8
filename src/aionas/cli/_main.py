"""The entry point: parse the command line, run the subcommand, map errors to exit codes.

Exit codes: 0 done, 2 a usage error or an :class:`~aionas.AionasError` (one line on
stderr, no traceback), 130 a search stopped by Ctrl+C.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import AionasError
from ._common import UsageError, require
from ._history import history_command
from ._parser import build_parser
from ._plot import plot_command
from ._run import run_command

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aionas`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        console_module = require("rich.console")
        console: Console = console_module.Console(soft_wrap=not sys.stdout.isatty())
        if args.command in ("run", "demo"):
            return run_command(args, argv, console)
        if args.command == "history":
            return history_command(args, console)
        return plot_command(args, console)
    except (UsageError, AionasError) as error:
        print(f"aionas: {error}", file=sys.stderr)
        return 2
