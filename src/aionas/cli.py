"""The ``aionas`` command: run a search from a file, watch it, read and plot its history.

    aionas run FILE.py [--strategy random|grid|evolution|optuna] [--max-models N]
                       [--max-duration S] [--journal PATH] [--seed N] [--mode max|min]
    aionas demo                       # the bundled digits example
    aionas history [PATH] [--top N] [--status S] [--json] [--mode max|min]
    aionas plot [PATH] -o FILE.png [--mode max|min]

FILE defines ``space`` (a ``SearchSpace`` or a dict of ``Choice``/``Int``/``Float``)
and ``evaluate(params)``, which trains a model, reports per-epoch metrics with
``aionas.report_intermediate_result`` and returns its final metric. History is
kept in an SQLite journal (``./aionas.db`` by default; the experiment is named
after FILE), so running the same command again resumes where it stopped.

Needs the extras: ``pip install 'aionas[all]'``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio

from .events import (
    FinalMetricEvent,
    IntermediateMetricEvent,
    ModelEvent,
    ModelEventType,
    TrainingEndEvent,
    TrainingStartEvent,
)
from .exceptions import AionasError
from .history import load_history
from .journal import SqliteJournal
from .model import FunctionModel, Model
from .sequential import SequentialExecutionEngine
from .space import SearchSpace
from .status import ModelStatus
from .strategy import GridSearch, RandomSearch, RegularizedEvolution, Strategy

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["main"]

DEFAULT_JOURNAL = "aionas.db"
DEMO_BUDGET = 100
STRATEGIES = ("random", "grid", "evolution", "optuna")


class UsageError(Exception):
    """A problem with what the user asked for: printed as one line, exit code 2."""


def _require(module: str, extra: str = "all") -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(
            f"this needs {module.split('.')[0]!r}: pip install 'aionas[{extra}]'"
        ) from None


# -- loading a search file ------------------------------------------------------------


def load_search(path: Path) -> tuple[SearchSpace, Callable[[dict[str, Any]], Any], str]:
    """The ``space``, ``evaluate`` and optional ``mode`` a search file defines."""
    if not path.is_file():
        raise UsageError(f"no search file at {str(path)!r}")
    spec = importlib.util.spec_from_file_location(f"aionas_search_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot load {str(path)!r} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # so that pickling, dataclasses and the like work
    spec.loader.exec_module(module)
    space, evaluate = getattr(module, "space", None), getattr(module, "evaluate", None)
    if space is None or not callable(evaluate):
        raise UsageError(
            f"{str(path)!r} must define `space` (a SearchSpace or a dict of Choice/Int/Float) "
            "and `evaluate(params)`"
        )
    try:
        search_space = SearchSpace.of(space)
    except (TypeError, ValueError) as error:
        raise UsageError(f"{str(path)!r}: bad `space`: {error}") from None
    return search_space, evaluate, str(getattr(module, "mode", "max"))


def _demo_file() -> Path:
    source_tree = Path(__file__).resolve().parents[2] / "examples" / "digits_mlp.py"
    if source_tree.is_file():
        return source_tree
    bundled = Path(__file__).resolve().parent / "_demo" / "digits_mlp.py"
    if bundled.is_file():
        return bundled
    raise UsageError("the demo search file is missing from this installation")


def make_strategy(
    name: str,
    space: SearchSpace,
    factory: Callable[[dict[str, Any]], Model],
    *,
    seed: int | None,
    mode: str,
) -> Strategy:
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
    optuna = _require("optuna", "optuna")
    from .strategy import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if mode == "max" else "minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2),
    )
    return OptunaSearch(study, space, factory)


# -- showing progress -----------------------------------------------------------------


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())


class Progress:
    """What a running search shows: a live panel on a terminal, one line per event otherwise."""

    def __init__(
        self, console: Console, *, live: bool, budget: int | None, max_duration: float | None
    ) -> None:
        self.console = console
        self.live = live
        self.budget = budget
        self.max_duration = max_duration
        self.started = time.monotonic()
        self.done = 0
        self.running: Model | None = None
        self.best: Model | None = None
        self.mode = "max"
        self.last_end: TrainingEndEvent | None = None
        self._live: Any = None

    def attach(self, engine: SequentialExecutionEngine, mode: str) -> None:
        self.mode = mode
        already = engine.list_models()
        self.done = sum(1 for m in already if m.status.completed())
        for model in already:
            self._consider(model)
        for kind in ModelEventType:
            engine.register_model_event_callback(kind, self.on_event)
        self.engine = engine

    def _consider(self, model: Model) -> None:
        if model.status is not ModelStatus.Trained or not isinstance(model.metric, float):
            return
        if self.best is None or (
            model.metric > self.best.metric
            if self.mode == "max"
            else model.metric < self.best.metric
        ):
            self.best = model

    def on_event(self, event: ModelEvent) -> None:
        model = event.model
        if isinstance(event, TrainingStartEvent):
            self.running = model
            self.last_end = None
            line = f"start  #{model.model_id} {_params(model.params)}"
        elif isinstance(event, IntermediateMetricEvent):
            step = len(model.metrics.intermediates)
            line = f"metric #{model.model_id} epoch {step}: {_fmt(event.metric)}"
        elif isinstance(event, FinalMetricEvent):
            line = f"final  #{model.model_id}: {_fmt(event.metric)}"
        elif isinstance(event, TrainingEndEvent):
            self.done += 1
            self.running = None if self.running is model else self.running
            self.last_end = event
            self._consider(model)
            best = "-" if self.best is None else f"{_fmt(self.best.metric)} (#{self.best.model_id})"
            line = (
                f"end    #{model.model_id} {event.status.value} ({event.reason}) "
                f"metric={_fmt(model.metric)}; best so far {best}"
            )
        else:
            return
        if self.live and self._live is not None:
            self._live.update(self.render())
        elif not self.live:
            self.console.print(line, highlight=False, markup=False)

    def render(self) -> Any:
        from rich.table import Table

        elapsed = time.monotonic() - self.started
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        budget = "?" if self.budget is None else str(self.budget)
        table.add_row("models", f"{self.done} done of {budget}")
        if self.running is not None:
            latest = self.running.metrics.intermediates[-1:] or [None]
            table.add_row(
                "running",
                f"#{self.running.model_id} {_params(self.running.params)}; "
                f"epoch {len(self.running.metrics.intermediates)}: {_fmt(latest[0])}",
            )
        elif self.last_end is not None and self.last_end.status is not ModelStatus.Trained:
            end = self.last_end
            table.add_row("last", f"#{end.model.model_id} {end.status.value} ({end.reason})")
        if self.best is not None:
            table.add_row(
                "best",
                f"{_fmt(self.best.metric)} #{self.best.model_id} {_params(self.best.params)}",
            )
        time_text = f"{elapsed:.0f} s elapsed"
        engine = getattr(self, "engine", None)
        if self.max_duration is not None and engine is not None:
            spent = engine.statistics().total_duration
            time_text += f", {max(0.0, self.max_duration - spent):.0f} s of budget left"
        table.add_row("time", time_text)
        return table

    def __enter__(self) -> Progress:
        if self.live:
            from rich.live import Live

            self._live = Live(self.render(), console=self.console, refresh_per_second=8)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self.render())
            self._live.__exit__(None, None, None)


# -- the commands ---------------------------------------------------------------------


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
            f"best: {_fmt(best.metric)} (#{best.model_id}) {_params(best.params)}", highlight=False
        )
    console.print(
        f"history: aionas history {journal_path}   plot: aionas plot {journal_path} -o curves.png",
        highlight=False,
    )


def _rows(path: Path, status: str | None, top: int | None, mode: str = "max") -> list[Model]:
    models, _ = load_history(path)
    if status is not None:
        try:
            wanted = ModelStatus(status)
        except ValueError:
            valid = ", ".join(s.value for s in ModelStatus)
            raise UsageError(f"unknown status {status!r}; use one of {valid}") from None
        models = [m for m in models if m.status is wanted]
    sign = 1.0 if mode == "max" else -1.0
    ranked = sorted(
        models,
        key=lambda m: (
            isinstance(m.metric, float),
            sign * m.metric if isinstance(m.metric, float) else 0.0,
        ),
        reverse=True,
    )
    return ranked[:top] if top is not None else ranked


def show_history(
    path: Path,
    *,
    top: int | None,
    status: str | None,
    as_json: bool,
    console: Console,
    mode: str = "max",
) -> None:
    models = _rows(path, status, top, mode)
    if as_json:
        items = [
            {
                "id": m.model_id,
                "experiment": getattr(m, "experiment", None),
                "params": m.params,
                "status": m.status.value,
                "metric": m.metric,
                "intermediates": list(m.metrics.intermediates),
                "error": None if m.error is None else str(m.error),
            }
            for m in models
        ]
        print(json.dumps(items, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"leaderboard: {path}")
    for column in ("rank", "id", "experiment", "status", "metric", "epochs", "params"):
        table.add_column(column, justify="right" if column in {"rank", "id", "metric"} else "left")
    for rank, m in enumerate(models, 1):
        table.add_row(
            str(rank),
            str(m.model_id),
            str(getattr(m, "experiment", "")),
            m.status.value,
            _fmt(m.metric),
            str(len(m.metrics.intermediates)),
            _params(m.params),
        )
    console.print(table)


def plot_history(path: Path, output: Path, mode: str = "max") -> None:
    matplotlib = _require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models, _ = load_history(path)
    if not models:
        raise UsageError(f"{path} holds no models to plot")
    figure, (curves, best_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    for model in models:
        values = [v for v in model.metrics.intermediates if isinstance(v, int | float)]
        if values:
            curves.plot(range(1, len(values) + 1), values, linewidth=1, alpha=0.6)
    curves.set_title("intermediate metric per model")
    curves.set_xlabel("epoch (report)")
    curves.set_ylabel("metric")
    ordered = sorted(models, key=lambda m: m.model_id or 0)
    xs, best, current = [], [], None
    for model in ordered:
        if model.status is ModelStatus.Trained and isinstance(model.metric, float):
            pick = max if mode == "max" else min
            current = model.metric if current is None else pick(current, model.metric)
        if current is not None:
            xs.append(model.model_id)
            best.append(current)
    finals = [(m.model_id, m.metric) for m in ordered if isinstance(m.metric, float)]
    if finals:
        best_axis.scatter(*zip(*finals, strict=True), s=12, alpha=0.5, label="final metric")
    if xs:
        best_axis.step(xs, best, where="post", color="black", label="best so far")
    best_axis.set_title("best so far")
    best_axis.set_xlabel("model")
    best_axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)


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


def _parser() -> argparse.ArgumentParser:
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aionas`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        console_module = _require("rich.console")
        console: Console = console_module.Console(soft_wrap=not sys.stdout.isatty())
        if args.command in ("run", "demo"):
            file = args.file if args.command == "run" else _demo_file()
            if args.command == "demo":
                _require("sklearn")
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
        elif args.command == "history":
            show_history(
                args.path,
                top=args.top,
                status=args.status,
                as_json=args.json,
                console=console,
                mode=args.mode,
            )
        else:
            plot_history(args.path, args.output, args.mode)
            console.print(f"wrote {args.output}", highlight=False)
    except (UsageError, AionasError) as error:
        print(f"aionas: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
