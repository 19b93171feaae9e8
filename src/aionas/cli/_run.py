"""``aionas run FILE`` and ``aionas demo``: a search with a journal, resumed if run again.

:func:`make_strategy` turns ``--strategy`` into a strategy, :func:`run_search` runs it
on a :class:`~aionas.SequentialExecutionEngine` journaled to ``--journal`` (the
experiment is named after FILE) while :class:`~._progress.Progress` shows it, and
:func:`run_command` is what ``main`` calls: it also turns a Ctrl+C into exit code 130
and the command that resumes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio

from .. import FunctionModel, Model, SequentialExecutionEngine, SqliteJournal
from ..space import SearchSpace
from ..strategy import GridSearch, OptunaSearch, RandomSearch, RegularizedEvolution, Strategy
from ._common import UsageError, format_params, format_value, require
from ._progress import Progress
from ._searchfile import demo_file, load_search

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["make_strategy", "run_command", "run_search"]


def make_strategy(
    name: str,
    space: SearchSpace,
    factory: Callable[[dict[str, Any]], Model],
    *,
    seed: int | None,
    mode: str,
) -> Strategy:
    """The strategy ``--strategy name`` means, maximising or minimising as ``mode`` says."""
    direction: Literal["max", "min"] = "max" if mode == "max" else "min"
    if name == "random":
        return RandomSearch(space, factory, seed=seed, mode=direction)
    if name == "grid":
        try:
            return GridSearch(space, factory, mode=direction)
        except ValueError as error:
            raise UsageError(str(error)) from None
    if name == "evolution":
        size = 10
        return RegularizedEvolution(
            space, factory, population_size=size, sample_size=3, seed=seed, mode=direction
        )
    optuna = require("optuna", "optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if mode == "max" else "minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2),
    )
    return OptunaSearch(study, space, factory)


def run_search(
    path: Path,
    *,
    strategy_name: str,
    max_models: int | None,
    max_duration: float | None,
    journal_path: Path,
    seed: int | None,
    mode: str | None,
    console: Console,
) -> None:
    """Run the search ``path`` defines to the end of its budget, showing its progress."""
    space, evaluate, file_mode = load_search(path)
    direction = mode or file_mode
    if direction not in ("max", "min"):
        raise UsageError(f"mode must be 'max' or 'min', got {direction!r}")

    def factory(params: dict[str, Any]) -> Model:
        return FunctionModel(evaluate, params)

    journal = SqliteJournal(journal_path, experiment=path.stem)
    engine = SequentialExecutionEngine(
        max_model_count=max_models,
        max_duration=max_duration,
        continue_on_failure=True,
        journal=journal,
        resume="requeue",
        model_factory=factory,
    )
    strategy = make_strategy(strategy_name, space, factory, seed=seed, mode=direction)
    progress = Progress(
        console, live=console.is_terminal, budget=max_models, max_duration=max_duration
    )

    async def search() -> None:
        # The display outlives the engine's block, so that it shows the models a
        # Ctrl+C ends while the engine shuts down.
        with progress:
            async with engine:
                progress.attach(engine, direction)
                if progress.done:
                    console.print(
                        f"resuming {path.stem!r} from {journal_path}: "
                        f"{progress.done} models so far",
                        highlight=False,
                    )
                if not engine.budget_available():
                    console.print(
                        "the budget is already spent; raise --max-models or --max-duration "
                        "to go on, or use another --journal to start afresh",
                        highlight=False,
                    )
                await strategy.run(engine)

    anyio.run(search)
    best = strategy.best() or progress.best
    if best is not None:
        console.print(
            f"best: {format_value(best.metric)} (#{best.model_id}) {format_params(best.params)}",
            highlight=False,
        )
    console.print(
        f"history: aionas history {journal_path}   plot: aionas plot {journal_path} -o curves.png",
        highlight=False,
    )


def run_command(args: argparse.Namespace, argv: Sequence[str] | None, console: Console) -> int:
    """``aionas run`` or ``aionas demo`` as parsed; the exit code (130 after a Ctrl+C)."""
    file = args.file if args.command == "run" else demo_file()
    if args.command == "demo":
        require("sklearn")
    try:
        run_search(
            file,
            strategy_name=args.strategy,
            max_models=args.max_models,
            max_duration=args.max_duration,
            journal_path=args.journal,
            seed=args.seed,
            mode=args.mode,
            console=console,
        )
    except KeyboardInterrupt:
        command = " ".join(["aionas", *(argv if argv is not None else sys.argv[1:])])
        console.print(
            f"\nstopped: the running model ended Interrupted and {args.journal} is "
            f"consistent. Run the same command again to resume:\n  {command}",
            highlight=False,
        )
        return 130
    return 0
