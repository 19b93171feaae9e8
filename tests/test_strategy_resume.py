"""A resumed search continues the sequence an uninterrupted run with the same seed makes.

Each search runs ``N`` models on a journal, three ways: uninterrupted; interrupted
while model ``k`` runs (a shutdown, or a cancel around the engine's block) or
stopped by a budget of ``k``; then resumed by a fresh strategy with the same seed
on a new engine (``resume="requeue"``). The models (ids, params, statuses,
metrics) and what the strategy knows must be the same. The interruption is
deterministic: the ``k``-th model to run signals that it started and blocks until
it is cancelled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest

import aionas
from aionas import ModelStatus, SequentialExecutionEngine, SqliteJournal
from aionas.space import Choice, Float, Int, SearchSpace
from aionas.strategy import GridSearch, RandomSearch, RegularizedEvolution, Strategy, point_key
from aionas.strategy import ModelFactory as Factory

pytestmark = pytest.mark.anyio

N = 20  # models per search
K = 12  # the model an interruption hits (past the evolution's random start of 4)

FINITE = SearchSpace(x=Int(0, 9), y=Choice(["a", "b", "c"]))  # 30 points
SMALL = SearchSpace(x=Int(0, 5), y=Choice(["a", "b", "c"]))  # 18 points: fewer than N
INFINITE = SearchSpace(x=Float(0.0, 6.0), y=Choice(["a", "b", "c"]))

Make = Callable[[Factory, int], Strategy]  # (model factory, seed) -> a fresh strategy
How = Literal["shutdown", "cancel", "budget"]


def score(params: dict[str, Any]) -> float:
    """Deterministic for given params: the best point is x=3, y="b"."""
    return float(-((params["x"] - 3) ** 2) + {"a": 0.0, "b": 1.0, "c": 0.5}[params["y"]])


class Objective(aionas.Model):
    """Reports ``score(params)``; the run's ``block_at``-th model to execute blocks instead."""

    def __init__(self, params: dict[str, Any], run: Run | None = None) -> None:
        super().__init__(params)
        self.run = run

    def execute(self) -> None:
        run = self.run
        if run is not None:
            run.executed += 1  # models execute one at a time
            if run.executed == run.block_at:
                run.blocked.set()
                never = threading.Event()
                while not never.wait(0.002):
                    aionas.check_cancelled()  # raises once the engine stops it
        aionas.report_final_result(score(self.params))


class Run:
    """The factory of a first run whose ``block_at``-th model blocks until cancelled."""

    def __init__(self, block_at: int | None) -> None:
        self.block_at = block_at
        self.executed = 0
        self.blocked = threading.Event()

    def factory(self, params: dict[str, Any]) -> aionas.Model:
        return Objective(params, self)

    async def wait_blocked(self) -> None:
        assert await anyio.to_thread.run_sync(self.blocked.wait, 10), "model never blocked"


def plain(params: dict[str, Any]) -> aionas.Model:
    return Objective(params)


def random_search(space: SearchSpace, *, dedup: bool) -> Make:
    return lambda factory, seed: RandomSearch(space, factory, dedup=dedup, seed=seed)


def grid_search(space: SearchSpace) -> Make:
    return lambda factory, seed: GridSearch(space, factory, shuffle=True, seed=seed)


def evolution(space: SearchSpace, *, dedup: bool, crossover: bool = False) -> Make:
    def make(factory: Factory, seed: int) -> Strategy:
        return RegularizedEvolution(
            space,
            factory,
            population_size=4,
            sample_size=2,
            mutation_prob=0.5,
            crossover=crossover,
            dedup=dedup,
            seed=seed,
        )

    return make


SEARCHES: dict[str, Make] = {
    "random-dedup-finite": random_search(FINITE, dedup=True),
    "random-dedup-exhausted": random_search(SMALL, dedup=True),
    "random-dedup-infinite": random_search(INFINITE, dedup=True),
    "random-repeats-finite": random_search(SMALL, dedup=False),
    "random-repeats-infinite": random_search(INFINITE, dedup=False),
    "grid-shuffled": grid_search(FINITE),
    "grid-exhausted": grid_search(SMALL),
    "evolution": evolution(FINITE, dedup=False),
    "evolution-dedup": evolution(FINITE, dedup=True),
    "evolution-dedup-exhausted": evolution(SMALL, dedup=True, crossover=True),
    "evolution-crossover-infinite": evolution(INFINITE, dedup=False, crossover=True),
}


def engine_on(db: Path, budget: int = N, **resume: Any) -> SequentialExecutionEngine:
    return SequentialExecutionEngine(max_model_count=budget, journal=SqliteJournal(db), **resume)


def resumed_engine(db: Path, budget: int = N) -> SequentialExecutionEngine:
    return engine_on(db, budget, resume="requeue", model_factory=plain)


def outcome(engine: SequentialExecutionEngine, strategy: Strategy) -> dict[str, Any]:
    """What must not depend on the interruption: the models and what the strategy knows."""
    best = strategy.best()
    return {
        "models": [(m.model_id, m.params, m.status, m.metric) for m in engine.list_models()],
        "known": [m.model_id for m in strategy.models],
        "best": None if best is None else best.model_id,
        "population": [m.model_id for m in getattr(strategy, "population", [])],
    }


async def uninterrupted(make: Make, db: Path, seed: int = 0) -> dict[str, Any]:
    strategy = make(plain, seed)
    async with engine_on(db) as engine:
        await strategy.run(engine)
    return outcome(engine, strategy)


async def interrupt(make: Make, db: Path, how: How, k: int, seed: int = 0) -> None:
    """Run the search until model ``k`` runs, then stop it ``how``: model ``k`` is unfinished."""
    if how == "budget":
        strategy = make(plain, seed)
        async with engine_on(db, budget=k) as engine:
            await strategy.run(engine)
        assert len(engine.list_models()) == k
        return
    run = Run(block_at=k)
    strategy = make(run.factory, seed)
    with anyio.CancelScope() as scope:
        async with engine_on(db) as engine:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(strategy.run, engine)
                await run.wait_blocked()
                if how == "shutdown":
                    await engine.shutdown()
                else:  # the strategy's task and the engine's block are cancelled
                    scope.cancel()
    models = engine.list_models()
    assert [m.status for m in models[:-1]] == [ModelStatus.Trained] * (len(models) - 1)
    assert models[-1].status is ModelStatus.Interrupted


async def resume(make: Make, db: Path, seed: int = 0, budget: int = N) -> dict[str, Any]:
    strategy = make(plain, seed)
    async with resumed_engine(db, budget) as engine:
        await strategy.run(engine)
    return outcome(engine, strategy)


@pytest.mark.parametrize("name", SEARCHES)
async def test_after_a_shutdown_resume_continues_the_same_sequence(
    tmp_path: Path, name: str
) -> None:
    make = SEARCHES[name]
    expected = await uninterrupted(make, tmp_path / "whole.db")
    assert expected["models"], "the search ran nothing"
    await interrupt(make, tmp_path / "cut.db", "shutdown", K)
    assert await resume(make, tmp_path / "cut.db") == expected


@pytest.mark.parametrize("how", ["cancel", "budget"])
@pytest.mark.parametrize("name", ["random-dedup-finite", "grid-shuffled", "evolution-dedup"])
async def test_after_a_cancel_or_a_spent_budget_resume_continues_the_same_sequence(
    tmp_path: Path, name: str, how: How
) -> None:
    make = SEARCHES[name]
    expected = await uninterrupted(make, tmp_path / "whole.db")
    await interrupt(make, tmp_path / "cut.db", how, K)
    assert await resume(make, tmp_path / "cut.db") == expected


@pytest.mark.parametrize("k", [1, N])
@pytest.mark.parametrize("name", ["random-repeats-finite", "grid-shuffled", "evolution"])
async def test_an_interruption_at_the_first_or_last_model_resumes_the_same(
    tmp_path: Path, name: str, k: int
) -> None:
    """At the last model the budget is spent already: the replay still runs it again."""
    make = SEARCHES[name]
    expected = await uninterrupted(make, tmp_path / "whole.db")
    await interrupt(make, tmp_path / "cut.db", "shutdown", k)
    assert await resume(make, tmp_path / "cut.db") == expected


async def test_a_search_without_dedup_replays_its_repeated_points(tmp_path: Path) -> None:
    make = SEARCHES["random-repeats-finite"]
    expected = await uninterrupted(make, tmp_path / "whole.db")
    points = [point_key(params) for _, params, _, _ in expected["models"]]
    assert len(set(points[:K])) < K  # a repeat before the interruption ...
    assert len(set(points)) < len(set(points[:K])) + N - K  # ... and one after it
    await interrupt(make, tmp_path / "cut.db", "shutdown", K)
    resumed = await resume(make, tmp_path / "cut.db")
    assert resumed == expected
    assert len(resumed["known"]) == N  # every model, repeats included


@pytest.mark.parametrize("name", ["random-dedup-finite", "grid-shuffled", "evolution-dedup"])
async def test_resuming_with_another_seed_goes_on_without_repeats(
    tmp_path: Path, name: str
) -> None:
    make = SEARCHES[name]
    db = tmp_path / "search.db"
    await interrupt(make, db, "shutdown", K, seed=0)
    strategy = make(plain, 1)
    async with resumed_engine(db) as engine:
        await strategy.run(engine)
    models = engine.list_models()
    assert len(models) == N  # the budget holds
    assert [m.status for m in models] == [ModelStatus.Trained] * N  # model K ran again
    assert len({point_key(m.params) for m in models}) == N  # no point evaluated twice
    assert [m.model_id for m in strategy.models] == [m.model_id for m in models]
    assert engine.statistics().submitted == N - K + 1  # model K again, and the new ones
    best = strategy.best()
    assert best is not None
    assert best.metric == max(m.metric for m in models)


async def test_a_grid_resumed_in_another_order_still_visits_every_point_once(
    tmp_path: Path,
) -> None:
    make = SEARCHES["grid-shuffled"]
    db = tmp_path / "search.db"
    await interrupt(make, db, "shutdown", K, seed=0)
    # Seed 2's order starts with seed 0's first point, then differs with a point not
    # visited yet: the replay ends there, and that point must still be visited.
    strategy = make(plain, 2)
    async with resumed_engine(db, budget=60) as engine:  # twice the grid
        await strategy.run(engine)  # returns once the grid is done
    visited = [point_key(m.params) for m in engine.list_models()]
    assert sorted(visited) == sorted(point_key(p) for p in FINITE.grid())


@pytest.mark.parametrize("name", ["random-dedup-finite", "evolution-dedup"])
async def test_resume_interrupt_replays_the_interrupted_model_as_it_ended(
    tmp_path: Path, name: str
) -> None:
    """Without requeue, model K stays Interrupted: replayed as such, its point never rerun."""
    make = SEARCHES[name]
    db = tmp_path / "search.db"
    await interrupt(make, db, "shutdown", K)
    strategy = make(plain, 0)
    async with engine_on(db) as engine:  # resume="interrupt", no model factory
        await strategy.run(engine)
    models = engine.list_models()
    assert len(models) == N
    assert [m.status for m in models] == [ModelStatus.Trained] * (K - 1) + [
        ModelStatus.Interrupted
    ] + [ModelStatus.Trained] * (N - K)
    assert len({point_key(m.params) for m in models}) == N
    assert strategy.models == models
    assert engine.statistics().submitted == N - K


@pytest.mark.parametrize("name", ["random-dedup-finite", "grid-shuffled", "evolution-dedup"])
async def test_a_replay_that_ends_early_waits_for_the_model_run_again(
    tmp_path: Path, name: str
) -> None:
    """Another seed, no budget left: the strategy still learns model K's new outcome."""
    make = SEARCHES[name]
    db = tmp_path / "search.db"
    await interrupt(make, db, "shutdown", K, seed=0)
    strategy = make(plain, 1)
    async with resumed_engine(db, budget=K) as engine:
        await strategy.run(engine)
    assert engine.statistics().submitted == 1  # model K, run again by the engine
    last = engine.get_model(K)
    assert last.status is ModelStatus.Trained
    assert strategy.models == engine.list_models()
    if isinstance(strategy, RegularizedEvolution):
        assert strategy.population[-1] is last  # learnt with its score, as the youngest


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", ["random-dedup-finite", "grid-shuffled", "evolution"])
async def test_a_restart_after_the_budget_is_spent_submits_nothing(
    tmp_path: Path, name: str, seed: int
) -> None:
    make = SEARCHES[name]
    db = tmp_path / "search.db"
    expected = await uninterrupted(make, db)
    strategy = make(plain, seed)
    async with resumed_engine(db) as engine:
        await strategy.run(engine)
    assert engine.statistics().submitted == 0
    if seed == 0:  # replayed: the same knowledge, population included
        assert outcome(engine, strategy) == expected
    else:  # taken in as history
        assert outcome(engine, strategy)["models"] == expected["models"]
        assert len(strategy.models) == len({point_key(p) for _, p, _, _ in expected["models"]})


async def test_a_strategy_run_again_learns_the_history_instead_of_replaying_it() -> None:
    """A strategy that knows models already does not propose from the start: no replay."""
    strategy = RandomSearch(SearchSpace(x=Int(0, 0)), plain_x, dedup=False, seed=0)
    async with SequentialExecutionEngine(max_model_count=3) as engine:
        await strategy.run(engine)
        await strategy.run(engine)  # its proposals equal every model's: no replaying them
    assert strategy.models == engine.list_models()
    assert len(strategy.models) == 3


def plain_x(params: dict[str, Any]) -> aionas.Model:
    return aionas.FunctionModel(lambda p: float(p["x"]), params)
