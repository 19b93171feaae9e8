"""Figure 6: a whole search's cost per trial, aionas's ``RandomSearch`` beside Optuna's.

Both run the same no-op objective (it returns ``params["x"]`` at once) over the
same space, two floats in [0, 1], with random sampling and no deduplication, and
are timed the same way: the setup (the engine, the journal's file, the strategy;
Optuna's study and its storage) happens before the clock starts; the clock runs
over the search itself (``await strategy.run(engine)``; ``study.optimize``) and,
for aionas, the engine's close, which waits for the journal to be written. Cost per
trial = wall / trials, median of the repetitions; each ratio is the median of the
per-repetition ratios.

aionas: ``RandomSearch(dedup=False)`` on ``SequentialExecutionEngine(max_model_count=N)``,
without a journal and with an ``SqliteJournal`` in a new file. Optuna: a study with
``RandomSampler(seed=0)``, in memory and on SQLite (``sqlite:///FILE``, with fewer
trials: it commits every trial). Optuna runs on the event loop's thread, blocking
it, which costs it nothing here.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aionas
from aionas.space import Float, SearchSpace
from aionas.strategy import RandomSearch

from ._common import Result, median

if TYPE_CHECKING:
    import optuna

#: Trials per search (full run, ``--quick``).
TRIALS = (2_000, 200)
#: Trials of Optuna on SQLite, which commits every trial (~25 ms each here).
SQLITE_TRIALS = (100, 20)
#: Issue 10's targets: aionas per trial, vs Optuna in memory; with a journal, the same.
TARGET_RATIO = 0.1
TARGET_JOURNAL_RATIO = 1.0

SPACE = SearchSpace(x=Float(0.0, 1.0), y=Float(0.0, 1.0))


def evaluate(params: dict[str, Any]) -> float:
    """The no-op objective: the point's ``x`` is its metric."""
    return float(params["x"])


def make_model(params: dict[str, Any]) -> aionas.Model:
    return aionas.FunctionModel(evaluate, params)


def objective(trial: optuna.Trial) -> float:
    """The same objective for Optuna: suggest the two floats, return ``x``."""
    x = trial.suggest_float("x", 0.0, 1.0)
    trial.suggest_float("y", 0.0, 1.0)
    return x


async def aionas_per_trial(count: int, journal: aionas.SqliteJournal | None = None) -> float:
    """Seconds per trial of a ``count``-trial random search, from its start to the close."""
    strategy = RandomSearch(SPACE, make_model, dedup=False, seed=0)
    engine = aionas.SequentialExecutionEngine(max_model_count=count, journal=journal)
    async with engine:
        start = time.perf_counter()
        await strategy.run(engine)
    elapsed = time.perf_counter() - start
    trained = [m for m in strategy.models if m.status is aionas.ModelStatus.Trained]
    if len(trained) != count:
        raise RuntimeError(f"the search trained {len(trained)} models, not {count}")
    return elapsed / count


def optuna_per_trial(count: int, url: str | None = None) -> float:
    """Seconds per trial of Optuna's ``study.optimize`` over ``count`` trials.

    In memory, or on the RDB storage at ``url``; the study is created before the
    clock starts, and the storage's connections are closed after it stops.
    """
    import optuna

    storage = None if url is None else optuna.storages.RDBStorage(url)
    try:
        study = optuna.create_study(
            storage=storage,
            sampler=optuna.samplers.RandomSampler(seed=0),
            direction="maximize",
        )
        start = time.perf_counter()
        study.optimize(objective, n_trials=count)
        elapsed = time.perf_counter() - start
    finally:
        if storage is not None:
            storage.remove_session()
            storage.engine.dispose()
    if len(study.trials) != count:
        raise RuntimeError(f"Optuna ran {len(study.trials)} trials, not {count}")
    return elapsed / count


def _ratio(rows: dict[str, list[float]], name: str, baseline: str) -> float:
    return median([a / b for a, b in zip(rows[name], rows[baseline], strict=True)])


async def measure(
    backend: str,
    *,
    quick: bool,
    repeat: int,
    trials: int | None = None,
    sqlite_trials: int | None = None,
) -> list[Result]:
    """``repeat`` rounds of the four searches, one after the other; medians and ratios."""
    import optuna

    count = trials if trials is not None else TRIALS[quick]
    slow = sqlite_trials if sqlite_trials is not None else SQLITE_TRIALS[quick]
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)
    rows: dict[str, list[float]] = {k: [] for k in ("aionas", "journal", "memory", "sqlite")}
    folder = Path(tempfile.mkdtemp(prefix="aionas-bench-search-"))
    try:
        for index in range(repeat):
            rows["aionas"].append(await aionas_per_trial(count))
            journal = aionas.SqliteJournal(folder / f"aionas-{index}.db")
            rows["journal"].append(await aionas_per_trial(count, journal))
            rows["memory"].append(optuna_per_trial(count))
            url = f"sqlite:///{folder / f'optuna-{index}.db'}"
            rows["sqlite"].append(optuna_per_trial(slow, url))
    finally:
        optuna.logging.set_verbosity(verbosity)
        shutil.rmtree(folder, ignore_errors=True)
    ratio = _ratio(rows, "aionas", "memory")
    journal_ratio = _ratio(rows, "journal", "memory")
    figure = "6 search overhead"
    return [
        Result(
            figure,
            f"RandomSearch, {count:,} no-op trials, vs Optuna in memory",
            backend,
            median(rows["aionas"]) * 1e6,
            "us/trial",
            "Optuna memory",
            ratio,
            f"<= {TARGET_RATIO}x",
            ratio <= TARGET_RATIO,
        ),
        Result(
            figure,
            "  with an SQLite journal, vs Optuna in memory",
            backend,
            median(rows["journal"]) * 1e6,
            "us/trial",
            "Optuna memory",
            journal_ratio,
            f"<= {TARGET_JOURNAL_RATIO}x",
            journal_ratio <= TARGET_JOURNAL_RATIO,
        ),
        Result(
            figure,
            "  with an SQLite journal, vs Optuna on SQLite",
            backend,
            median(rows["journal"]) * 1e6,
            "us/trial",
            "Optuna SQLite",
            _ratio(rows, "journal", "sqlite"),
            "(reported)",
        ),
        Result(
            figure,
            f"Optuna in memory (RandomSampler), {count:,} trials",
            backend,
            median(rows["memory"]) * 1e6,
            "us/trial",
        ),
        Result(
            figure,
            f"Optuna on SQLite (RandomSampler), {slow:,} trials",
            backend,
            median(rows["sqlite"]) * 1e6,
            "us/trial",
        ),
    ]
