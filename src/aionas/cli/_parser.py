"""The command line of ``aionas``: its subcommands, their options and defaults.

:func:`build_parser` returns the :class:`argparse.ArgumentParser`; ``main`` parses
with it and hands ``args.command`` (``run``, ``demo``, ``history``, ``plot`` or
``experiments``) to the module that does the job.

Options a resumed experiment remembers (``--strategy``, ``--seed``, ``--mode``)
default to None here: ``run`` then takes what the journal recorded, and only a new
experiment falls back to the defaults named in the help.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import __version__
from ._common import DEFAULT_JOURNAL

__all__ = ["DEFAULT_SEED", "DEMO_BUDGET", "RUN_BUDGET", "STRATEGIES", "build_parser"]

#: How many models ``aionas demo`` trains unless told otherwise.
DEMO_BUDGET = 100
#: How many models ``aionas run`` trains unless told otherwise.
RUN_BUDGET = 20
#: The seed of a new experiment unless ``--seed`` says otherwise.
DEFAULT_SEED = 0
#: The names ``--strategy`` accepts.
STRATEGIES = ("random", "grid", "evolution", "optuna")


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0 or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
        return value

    return parse


def _name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must be a non-empty name")
    return text


def _journal_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "path",
        type=Path,
        nargs="?",
        default=Path(DEFAULT_JOURNAL),
        metavar="PATH",
        help=f"the journal file (default: ./{DEFAULT_JOURNAL})",
    )


def _experiment_option(command: argparse.ArgumentParser, default_help: str) -> None:
    command.add_argument(
        "--experiment",
        type=_name,
        metavar="NAME",
        help=f"the experiment in the journal ({default_help})",
    )


def _mode_option(command: argparse.ArgumentParser, default_help: str) -> None:
    command.add_argument(
        "--mode",
        choices=("max", "min"),
        help=f"whether the best final metric is the highest or the lowest ({default_help})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser of the whole command, with one subparser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="aionas", description="Run, watch and inspect neural-architecture searches."
    )
    parser.add_argument("--version", action="version", version=f"aionas {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_search_options(
        command: argparse.ArgumentParser, budget: int, strategy: str, experiment: str
    ) -> None:
        command.add_argument(
            "--strategy",
            choices=STRATEGIES,
            help=f"how to choose the next model (default: {strategy}, or what the experiment "
            "recorded when it resumes)",
        )
        command.add_argument(
            "--max-models",
            type=_positive(int),
            default=budget,
            metavar="N",
            help=f"stop after N models in all, counting those of earlier runs (default: {budget})",
        )
        command.add_argument(
            "--max-duration",
            type=_positive(float),
            metavar="S",
            help="stop after S seconds of training in all, counting earlier runs "
            "(default: no limit)",
        )
        command.add_argument(
            "--executor",
            choices=("thread", "process"),
            default="thread",
            help="where each model runs: a worker thread, or a worker process that a crash "
            "or a kill after a stop costs only that model (default: thread)",
        )
        command.add_argument(
            "--journal",
            type=Path,
            default=Path(DEFAULT_JOURNAL),
            metavar="PATH",
            help=f"the SQLite file that keeps the history (default: ./{DEFAULT_JOURNAL})",
        )
        _experiment_option(command, f"default: {experiment}")
        command.add_argument(
            "--seed",
            type=int,
            metavar="N",
            help=f"the random seed (default: {DEFAULT_SEED}, or what the experiment recorded)",
        )
        _mode_option(
            command,
            "default: the search file's `mode`, else max; a resumed experiment keeps its own",
        )

    run = commands.add_parser(
        "run",
        help="run the search a file defines (running it again resumes)",
        description="Run the search FILE.py defines: it must define `space` and "
        "`evaluate(params)`. History goes to the journal; the same command again resumes.",
    )
    run.add_argument("file", type=Path, metavar="FILE.py", help="the search file")
    add_search_options(run, RUN_BUDGET, "random", "the search file's name")
    demo = commands.add_parser(
        "demo",
        help="search a small network on the bundled digits data",
        description="Search the layers, width, activation, learning rate and weight decay "
        "of a small neural network on scikit-learn's digits (no download).",
    )
    add_search_options(demo, DEMO_BUDGET, "evolution", "digits_mlp")

    history = commands.add_parser(
        "history",
        help="the leaderboard of an experiment",
        description="The models of an experiment, best first (models without a numeric "
        "final metric last).",
    )
    _journal_argument(history)
    _experiment_option(history, "default: the only one in the file")
    history.add_argument("--top", type=_positive(int), metavar="N", help="only the best N")
    history.add_argument(
        "--status", metavar="S", help="only models with this status (trained, failed, ...)"
    )
    output = history.add_mutually_exclusive_group()
    output.add_argument(
        "--json", action="store_true", help="print one JSON array of models instead of a table"
    )
    output.add_argument(
        "--jsonl", action="store_true", help="print JSON Lines: one object per model per line"
    )
    output.add_argument(
        "--csv", action="store_true", help="print CSV: one row per model, a column per parameter"
    )
    _mode_option(history, "default: the direction the experiment recorded")

    plot = commands.add_parser(
        "plot",
        help="learning curves, best-so-far and parameters, as a picture",
        description="Draw an experiment's learning curves, its best final metric so far, "
        "and each parameter against the final metric.",
    )
    _journal_argument(plot)
    plot.add_argument(
        "-o", "--output", type=Path, required=True, metavar="FILE.png", help="where to write"
    )
    _experiment_option(plot, "default: the only one in the file")
    _mode_option(plot, "default: the direction the experiment recorded")

    experiments = commands.add_parser(
        "experiments",
        help="list the experiments a journal holds",
        description="The experiments of a journal: their models, best result and settings.",
    )
    _journal_argument(experiments)
    experiments.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser
