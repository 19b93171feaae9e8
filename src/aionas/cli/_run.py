"""``aionas run FILE`` and ``aionas demo``: a search with a journal, resumed if run again.

An experiment remembers itself: its direction (``mode``), strategy, seed and search
space are recorded with it in the journal (:class:`Settings`). Running it again
takes what it recorded for any option not given; a different ``--mode`` or search
space is refused (a leaderboard cannot mix them), a different ``--strategy`` or
``--seed`` is taken and said. :func:`run_search` runs the search on a
:class:`~aionas.SequentialExecutionEngine` while :class:`~._progress.Progress` shows
it and :class:`~._signals.StopOnSignals` turns Ctrl+C and SIGTERM into a clean stop;
:func:`run_command` is what ``main`` calls.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import shlex
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio

from .. import (
    Model,
    ProcessExecutor,
    SequentialExecutionEngine,
    SqliteJournal,
    __version__,
)
from ..events import error_traceback
from ..journal.history import experiment_record
from ..space import SearchSpace
from ..strategy import GridSearch, OptunaSearch, RandomSearch, RegularizedEvolution, Strategy
from ._common import UsageError, emit, format_params, format_value, require
from ._parser import DEFAULT_SEED
from ._progress import Progress
from ._searchfile import demo_file, load_search, model_factory
from ._signals import StopOnSignals

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Settings", "make_strategy", "resolve_settings", "run_command", "run_search"]


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


def describe_space(space: SearchSpace) -> dict[str, str]:
    """The search space as the journal records it: each parameter's ``repr``."""
    return {name: repr(param) for name, param in space.items()}


@dataclass(frozen=True)
class Settings:
    """What an experiment remembers of how it runs (``metadata`` in the journal)."""

    mode: str
    strategy: str
    seed: int
    space: dict[str, str]

    def metadata(self, file: Path) -> dict[str, Any]:
        """The JSON the journal records with the experiment."""
        return {
            "mode": self.mode,
            "strategy": self.strategy,
            "seed": self.seed,
            "space": self.space,
            "file": str(file.resolve()),
            "aionas": __version__,
        }


def _space_change(recorded: dict[str, str], current: dict[str, str]) -> str:
    changes = []
    for name in sorted(set(recorded) | set(current)):
        before, after = recorded.get(name), current.get(name)
        if before != after:
            changes.append(f"{name}: {before or 'absent'} -> {after or 'absent'}")
    return "; ".join(changes)


def resolve_settings(
    args: argparse.Namespace,
    *,
    experiment: str,
    journal: Path,
    space: SearchSpace,
    file_mode: str | None,
    default_strategy: str,
    file: Path,
) -> tuple[Settings, list[str]]:
    """The settings this run uses, and notes to print: what the experiment recorded,
    overridden by the options given.

    :raises UsageError: if ``--mode`` (or the file's ``mode``) or the search space
        differs from what the experiment recorded, or, without ``--experiment``, the
        experiment of that name was run from another file.
    """
    recorded, models = experiment_record(journal, experiment)  # without loading its models
    current_space = describe_space(space)
    elsewhere = "run it as a new experiment with --experiment NAME (or with another --journal)"
    where = f"experiment {experiment!r} in {str(journal)!r}"
    if "space" in recorded and recorded["space"] != current_space:
        raise UsageError(
            f"{where} was run with another search space "
            f"({_space_change(recorded['space'], current_space)}); its {models} models "
            f"would mix two spaces. Restore the space, or {elsewhere}"
        )
    notes = []
    old_file = recorded.get("file")
    if old_file is not None and old_file != str(file.resolve()):
        if args.experiment is None:
            raise UsageError(
                f"{where} was run from {old_file!r}, not {str(file.resolve())!r}: name this "
                f"search with --experiment NAME, or continue that experiment on purpose with "
                f"--experiment {shlex.quote(experiment)}"
            )
        notes.append(f"{where} continues with {str(file)!r} (it ran from {old_file!r})")
    old_mode = recorded.get("mode")
    for given, source in ((args.mode, "--mode"), (file_mode, f"the mode of {str(file)!r}")):
        if given is not None and old_mode is not None and given != old_mode:
            raise UsageError(
                f"{where} was run with mode {old_mode!r}, and {source} is {given!r}; its "
                f"leaderboard cannot mix directions. Keep {old_mode!r} to continue it, or "
                f"{elsewhere}"
            )
    mode = args.mode or old_mode or file_mode or "max"
    chosen = {}
    for option, default in (("strategy", default_strategy), ("seed", DEFAULT_SEED)):
        given, old = getattr(args, option), recorded.get(option)
        chosen[option] = given if given is not None else old if old is not None else default
        if given is not None and old is not None and given != old:
            notes.append(
                f"{where} continues with --{option} {given} (it ran with {old} so far); "
                "its earlier models still count"
            )
    settings = Settings(
        mode=mode, strategy=str(chosen["strategy"]), seed=int(chosen["seed"]), space=current_space
    )
    return settings, notes


class _UserFrames(logging.Formatter):
    """Log records as one ``aionas:`` line, a failure's traceback from the user's code on."""

    def formatException(self, ei: Any) -> str:
        error = ei[1]
        return super().formatException(ei) if error is None else error_traceback(error).rstrip()


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now (above the live panel while it shows)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _log_to_stderr() -> None:
    """Show the engine's warnings and failures the command's way (once per process)."""
    logger = logging.getLogger("aionas")
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        handler = _Stderr()
        handler.setLevel(logging.WARNING)
        handler.setFormatter(_UserFrames("aionas: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


class _Terminated(KeyboardInterrupt):
    """SIGTERM before the search catches signals itself: stops like Ctrl+C."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


def _leaf(error: BaseException) -> BaseException:
    """The one error inside task groups' exception groups, if there is one."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def run_search(
    path: Path,
    *,
    args: argparse.Namespace,
    default_strategy: str,
    console: Console,
) -> int:
    """Run the search ``path`` defines to the end of its budget, showing its progress.

    Returns 0, or after a stop by signal 128 plus its number (130 for Ctrl+C).
    """
    space, evaluate, file_mode = load_search(path)
    experiment = args.experiment or path.stem
    journal_path: Path = args.journal
    settings, notes = resolve_settings(
        args,
        experiment=experiment,
        journal=journal_path,
        space=space,
        file_mode=file_mode,
        default_strategy=default_strategy,
        file=path,
    )
    for note in notes:
        print(f"aionas: {note}", file=sys.stderr)
    factory = model_factory(evaluate, path)
    executor = None
    if args.executor == "process":
        if inspect.iscoroutinefunction(evaluate):
            raise UsageError(
                f"--executor process runs a blocking evaluate() in a worker process, but the "
                f"evaluate() of {str(path)!r} is async def (it runs on the event loop): make "
                "it a plain def, or drop --executor process"
            )
        module = getattr(evaluate, "__module__", "")
        if module.startswith("aionas_search_"):
            raise UsageError(
                f"--executor process needs {str(path)!r} importable by its name in a worker "
                f"process: rename it to a valid module name (letters, digits, _), not "
                f"{path.stem!r} or the name of another module"
            )
        executor = ProcessExecutor()
    journal = SqliteJournal(journal_path, experiment=experiment, metadata=settings.metadata(path))
    engine = SequentialExecutionEngine(
        max_model_count=args.max_models,
        max_duration=args.max_duration,
        continue_on_failure=True,
        journal=journal,
        resume="requeue",
        model_factory=factory,
        executor=executor,
    )
    strategy = make_strategy(
        settings.strategy, space, factory, seed=settings.seed, mode=settings.mode
    )
    progress = Progress(
        console, live=console.is_terminal, budget=args.max_models, max_duration=args.max_duration
    )
    stopper = StopOnSignals(engine, progress.notice)

    async def search() -> None:
        # The display outlives the engine's block, so that it shows the models a
        # stop ends while the engine shuts down.
        with progress:
            async with anyio.create_task_group() as tasks:
                await tasks.start(stopper.watch, tasks)
                tasks.start_soon(progress.tick)
                async with engine:
                    progress.attach(engine, settings.mode)
                    restored = engine.list_models()
                    if restored:
                        again = len(restored) - progress.done
                        emit(
                            console,
                            f"resuming {experiment!r} from {journal_path}: "
                            f"{len(restored)} models so far"
                            + (f", {again} to run again" if again else ""),
                        )
                    if not engine.budget_available():
                        emit(
                            console,
                            "the budget is already spent; raise --max-models or --max-duration "
                            "to go on, or start afresh with --experiment NAME",
                        )
                    if not stopper.received:  # a signal may have come while it opened
                        with stopper.search:
                            await strategy.run(engine)
                tasks.cancel_scope.cancel()

    try:
        anyio.run(search)
    except BaseExceptionGroup as group:  # from the task groups: one error, said plainly
        raise _leaf(group) from None
    best = progress.best
    if best is not None:
        emit(
            console,
            f"best: {format_value(best.metric)} (#{best.model_id}) {format_params(best.params)}",
        )
    journal_arg = "" if str(journal_path) == "aionas.db" else f" {shlex.quote(str(journal_path))}"
    experiment_arg = "" if args.experiment is None else f" --experiment {shlex.quote(experiment)}"
    emit(
        console,
        f"history: aionas history{journal_arg}{experiment_arg}   "
        f"plot: aionas plot{journal_arg}{experiment_arg} -o curves.png",
    )
    if stopper.received:
        stopped = ", ".join(f"#{i}" for i in progress.stopped) or "no model"
        command = shlex.join(["aionas", *_argv(args)])
        print(
            f"aionas: stopped: {stopped} ended Interrupted, every end is recorded, and "
            f"{str(journal_path)!r} is consistent. The same command resumes (an "
            f"interrupted model runs again):\n  {command}",
            file=sys.stderr,
        )
    elif engine.budget_available() and not progress.stopping:
        emit(console, "the strategy proposed nothing more (every point of the space was tried)")
    if stopper.forced:
        # A model given up by a forced stop may still run in its thread; the journal
        # is closed and consistent, so do not wait for that thread to end.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(stopper.exit_code)
    return stopper.exit_code


def _argv(args: argparse.Namespace) -> list[str]:
    argv: list[str] | None = getattr(args, "argv", None)
    return argv if argv is not None else sys.argv[1:]


def run_command(args: argparse.Namespace, argv: Sequence[str] | None, console: Console) -> int:
    """``aionas run`` or ``aionas demo`` as parsed; the exit code (130 after a Ctrl+C)."""
    if args.command == "demo":
        require("sklearn")
        file, default_strategy = demo_file(), "evolution"
    else:
        file, default_strategy = args.file, "random"
    args.argv = None if argv is None else list(argv)
    _log_to_stderr()
    # Until the search catches signals itself, SIGTERM stops like Ctrl+C.
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return run_search(file, args=args, default_strategy=default_strategy, console=console)
    except KeyboardInterrupt as interrupt:  # before the search caught signals, or after
        if not Path(args.journal).exists():
            said = "nothing was recorded"
        else:
            said = (
                f"{str(args.journal)!r} holds what was committed (as after a crash: the next "
                "run repairs and resumes it)"
            )
        print(f"\naionas: stopped outside the search; {said}", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(interrupt, _Terminated) else signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, previous)
