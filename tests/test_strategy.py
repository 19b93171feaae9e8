"""Strategies on toy spaces with a known optimum, on asyncio and trio."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import aionas
from aionas import ModelStatus, SequentialExecutionEngine, SqliteJournal
from aionas.space import Choice, Float, Int, SearchSpace
from aionas.strategy import GridSearch, OptunaSearch, RandomSearch, RegularizedEvolution, point_key

pytestmark = pytest.mark.anyio

GRID = SearchSpace(x=Int(0, 5), y=Choice(["a", "b", "c"]))  # 18 points; optimum x=3, y="b"


def grid_score(params: dict[str, Any]) -> float:
    return -((params["x"] - 3) ** 2) + (1.0 if params["y"] == "b" else 0.0)


def factory(params: dict[str, Any]) -> aionas.Model:
    return aionas.FunctionModel(grid_score, params)


def keys(models: list[aionas.Model]) -> list[str]:
    return [point_key(m.params) for m in models]


async def test_grid_visits_every_point_once_and_finds_the_optimum() -> None:
    grid = GridSearch(GRID, factory)
    async with SequentialExecutionEngine() as engine:
        await grid.run(engine)
    assert sorted(keys(engine.list_models())) == sorted(point_key(p) for p in GRID.grid())
    best = grid.best()
    assert best is not None
    assert best.params == {"x": 3, "y": "b"}


async def test_grid_stops_at_the_budget_and_min_mode() -> None:
    grid = GridSearch(GRID, factory, shuffle=True, seed=1, mode="min")
    async with SequentialExecutionEngine(max_model_count=5) as engine:
        await grid.run(engine)
    assert len(engine.list_models()) == 5
    best = grid.best()
    assert best is not None
    assert best.metric == min(m.metric for m in engine.list_models())


def test_grid_needs_a_finite_space() -> None:
    with pytest.raises(ValueError, match="continuous"):
        GridSearch(SearchSpace(lr=Float(0.1, 1.0)), factory)


async def test_random_with_dedup_never_repeats_and_covers_the_space() -> None:
    search = RandomSearch(GRID, factory, seed=3)
    async with SequentialExecutionEngine(max_model_count=50) as engine:
        await search.run(engine)  # must return once the 18 points are done
    evaluated = keys(engine.list_models())
    assert len(evaluated) == len(set(evaluated)) == 18
    best = search.best()
    assert best is not None
    assert best.params == {"x": 3, "y": "b"}


async def test_random_without_dedup_may_repeat_and_runs_to_the_budget() -> None:
    search = RandomSearch(SearchSpace(x=Int(0, 1)), factory_x, dedup=False, seed=0)
    async with SequentialExecutionEngine(max_model_count=10) as engine:
        await search.run(engine)
    assert len(engine.list_models()) == 10


def factory_x(params: dict[str, Any]) -> aionas.Model:
    return aionas.FunctionModel(lambda p: float(p["x"]), params)


TARGET = {"a": 7, "b": 2, "c": 5, "d": "z"}
EVOLVE = SearchSpace(a=Int(0, 9), b=Int(0, 9), c=Int(0, 9), d=Choice(["w", "x", "y", "z"]))


def evolve_score(params: dict[str, Any]) -> float:
    distance = sum(abs(params[k] - TARGET[k]) for k in "abc")
    return -float(distance) + (1.0 if params["d"] == TARGET["d"] else 0.0)


async def test_evolution_gets_near_the_optimum_within_30() -> None:
    results = []
    for seed in range(3):
        evolution = RegularizedEvolution(
            EVOLVE,
            lambda p: aionas.FunctionModel(evolve_score, p),
            population_size=8,
            sample_size=3,
            mutation_prob=0.3,
            dedup=True,
            seed=seed,
        )
        async with SequentialExecutionEngine(max_model_count=30) as engine:
            await evolution.run(engine)
        best = evolution.best()
        assert best is not None
        results.append(best.metric)
        evaluated = keys(engine.list_models())
        assert len(evaluated) == len(set(evaluated)) == 30
    # optimum 1.0; 4,000 points in all, 30 evaluated: within 3 steps of it
    assert all(score >= -2.0 for score in results), results


async def test_evolution_with_crossover_and_min_mode() -> None:
    evolution = RegularizedEvolution(
        EVOLVE,
        lambda p: aionas.FunctionModel(lambda q: -evolve_score(q), p),
        population_size=6,
        sample_size=2,
        crossover=True,
        seed=5,
        mode="min",
    )
    async with SequentialExecutionEngine(max_model_count=30) as engine:
        await evolution.run(engine)
    best = evolution.best()
    assert best is not None
    assert best.metric == min(m.metric for m in engine.list_models())
    assert best.metric <= 4.0
    assert len(evolution.population) == 6


def test_evolution_arguments() -> None:
    with pytest.raises(ValueError, match="sample_size"):
        RegularizedEvolution(EVOLVE, factory, population_size=3, sample_size=5)
    with pytest.raises(ValueError, match="mode"):
        RandomSearch(EVOLVE, factory, mode="maximize")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["random", "grid", "evolution"])
async def test_after_resume_dedup_strategies_add_no_repeats(tmp_path: Path, kind: str) -> None:
    db = tmp_path / "search.db"

    def make() -> aionas.strategy.Strategy:
        if kind == "random":
            return RandomSearch(GRID, factory, seed=0)
        if kind == "grid":
            return GridSearch(GRID, factory)
        return RegularizedEvolution(GRID, factory, population_size=4, sample_size=2, dedup=True)

    for budget in (7, 18):
        strategy = make()
        async with SequentialExecutionEngine(
            max_model_count=budget, journal=SqliteJournal(db), model_factory=factory
        ) as engine:
            await strategy.run(engine)
    evaluated = keys(engine.list_models())
    assert len(evaluated) == len(set(evaluated)) == 18
    best = strategy.best()
    assert best is not None
    assert best.params == {"x": 3, "y": "b"}


async def test_optuna_prunes_a_bad_curve_and_finds_the_optimum() -> None:
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = SearchSpace(x=Int(0, 9))
    never = threading.Event()

    def train(params: dict[str, Any]) -> float:
        value = -float((params["x"] - 7) ** 2)
        for epoch in range(4):
            aionas.report_intermediate_result(value + epoch * 0.1)
            if value < -4 and epoch < 3:
                # A bad model trains slowly, so a prune lands while it runs: it polls
                # for cancellation for up to 0.5 s (the pruner answers within ms).
                for _ in range(100):
                    never.wait(0.005)
                    aionas.check_cancelled()
        return value + 0.3

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
    )
    search = OptunaSearch(study, space, lambda p: aionas.FunctionModel(train, p))
    async with SequentialExecutionEngine(max_model_count=25) as engine:
        await search.run(engine)
    best = search.best()
    assert best is not None
    assert best.params == {"x": 7}
    pruned = [m for m in engine.list_models() if m.status is ModelStatus.Interrupted]
    assert pruned, "no curve was pruned"
    assert search.pruned == len(pruned)
    states = [t.state.name for t in study.trials]
    assert states.count("PRUNED") == len(pruned)
    assert study.best_params == {"x": 7}


async def test_optuna_on_a_resumed_journal_learns_history_and_never_reruns(
    tmp_path: Path,
) -> None:
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = SearchSpace(x=Int(0, 5))
    db = tmp_path / "search.db"

    def make() -> OptunaSearch:
        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0)
        )
        return OptunaSearch(study, space, lambda p: aionas.FunctionModel(score_x, p))

    first = make()
    async with SequentialExecutionEngine(
        max_model_count=3, journal=SqliteJournal(db), model_factory=factory
    ) as engine:
        await first.run(engine)
    second = make()
    async with SequentialExecutionEngine(
        max_model_count=50, journal=SqliteJournal(db), model_factory=factory
    ) as engine:
        await second.run(engine)  # returns once every point is known
    evaluated = keys(engine.list_models())
    assert len(evaluated) == len(set(evaluated)) == 6
    told = [t for t in second.study.trials if t.state.name == "COMPLETE"]
    assert len(told) >= 6  # the three restored ones were added before asking
    best = second.best()
    assert best is not None
    assert best.params == {"x": 3}


def score_x(params: dict[str, Any]) -> float:
    return -float((params["x"] - 3) ** 2)


@pytest.mark.parametrize("mode", ["max", "min"])
async def test_best_never_picks_nan_or_infinity(mode: str) -> None:
    def odd(params: dict[str, Any]) -> float:
        x = params["x"]
        return [float("nan"), float("inf"), float("-inf")][x % 3] if x % 2 else float(x)

    space = SearchSpace(x=Int(0, 9))
    grid = GridSearch(space, lambda p: aionas.FunctionModel(odd, p), mode=mode)  # type: ignore[arg-type]
    async with SequentialExecutionEngine() as engine:
        await grid.run(engine)
    best = grid.best()
    assert best is not None
    assert best.metric == (8.0 if mode == "max" else 0.0)
