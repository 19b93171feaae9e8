"""The command line of ``aionas``: its subcommands, their options and defaults.

:func:`build_parser` returns the :class:`argparse.ArgumentParser`; ``main`` parses
with it and hands ``args.command`` (``run``, ``demo``, ``history`` or ``plot``) to
the module that does the job.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._common import DEFAULT_JOURNAL

__all__ = ["DEMO_BUDGET", "STRATEGIES", "build_parser"]

#: How many models ``aionas demo`` trains unless told otherwise.
DEMO_BUDGET = 100
#: The names ``--strategy`` accepts.
STRATEGIES = ("random", "grid", "evolution", "optuna")


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The parser of the whole command, with one subparser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="aionas", description="Run, watch and inspect neural-architecture searches."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def add_search_options(
        command: argparse.ArgumentParser, budget: int | None, strategy: str = "random"
    ) -> None:
        command.add_argument("--strategy", choices=STRATEGIES, default=strategy)
        command.add_argument("--max-models", type=_positive(int), default=budget, metavar="N")
        command.add_argument("--max-duration", type=_positive(float), metavar="S")
        command.add_argument("--journal", type=Path, default=Path(DEFAULT_JOURNAL), metavar="PATH")
        command.add_argument("--seed", type=int, default=0)
        command.add_argument("--mode", choices=("max", "min"))

    run = commands.add_parser("run", help="run the search a file defines (resumes if run again)")
    run.add_argument("file", type=Path, metavar="FILE.py")
    add_search_options(run, 20)
    demo = commands.add_parser("demo", help="search a small network on the digits data")
    add_search_options(demo, DEMO_BUDGET, "evolution")
    history = commands.add_parser("history", help="the leaderboard of a journal")
    history.add_argument("path", type=Path, nargs="?", default=Path(DEFAULT_JOURNAL))
    history.add_argument("--top", type=_positive(int), metavar="N")
    history.add_argument("--status", metavar="S")
    history.add_argument("--json", action="store_true", help="print JSON instead of a table")
    history.add_argument("--mode", choices=("max", "min"), default="max", help="best is highest")
    plot = commands.add_parser("plot", help="learning curves and best-so-far, as a picture")
    plot.add_argument("path", type=Path, nargs="?", default=Path(DEFAULT_JOURNAL))
    plot.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.png")
    plot.add_argument("--mode", choices=("max", "min"), default="max", help="best is highest")
    return parser
