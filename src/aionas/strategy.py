"""Async search strategies that drive an engine, reacting to each model's end.

Each strategy is run as ``await strategy.run(engine)`` inside the engine's block.
It submits a model, waits (event-driven, never polling) for its end to be
delivered, learns from it, and submits the next, until it has nothing more to
submit: the engine's budget is spent, a grid is done, or a deduplicating
strategy has exhausted a finite space. Strategies maximise by default
(``mode="min"`` minimises) and ``best()`` is the best trained model.

On a resumed engine (one with a journal) a strategy starts from the history the
engine restored: deduplicating strategies never evaluate a point twice.

>>> import anyio, aionas
>>> from aionas.space import Int, SearchSpace
>>> from aionas.strategy import GridSearch
>>> def score(params):
...     return -(params["x"] - 3) ** 2
>>> async def main():
...     grid = GridSearch(SearchSpace(x=Int(0, 5)), lambda p: aionas.FunctionModel(score, p))
...     async with aionas.SequentialExecutionEngine() as engine:
...         await grid.run(engine)
...     print(grid.best().params)
>>> anyio.run(main)
{'x': 3}
"""

from __future__ import annotations

import json
import random
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from .engine import ExecutionEngine
from .events import IntermediateMetricEvent, ModelEventType
from .exceptions import BudgetExhaustedError, EngineClosedError
from .model import Model
from .space import Choice, Float, Int, Param, SearchSpace
from .status import ModelStatus

if TYPE_CHECKING:
    import optuna

__all__ = ["GridSearch", "OptunaSearch", "RandomSearch", "RegularizedEvolution", "Strategy"]

Mode = Literal["max", "min"]
ModelFactory = Callable[[dict[str, Any]], Model]

#: How many draws a deduplicating strategy tries for an unseen point of an infinite space.
MAX_DRAWS = 1_000


def point_key(params: Mapping[str, Any]) -> str:
    """A canonical text for a point, to recognise it again."""
    return json.dumps(params, sort_keys=True, default=repr)


class Strategy(ABC):
    """What every strategy shares: the space, the factory, the mode, and ``best()``."""

    def __init__(
        self,
        space: SearchSpace | Mapping[str, Param],
        model_factory: ModelFactory,
        *,
        mode: Mode = "max",
    ) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        if not callable(model_factory):
            raise TypeError(f"model_factory must be callable, got {model_factory!r}")
        self.space = SearchSpace.of(space)
        self.model_factory = model_factory
        self.mode: Mode = mode
        self.models: list[Model] = []  # every model this strategy knows, in order
        self._seen: set[str] = set()

    @abstractmethod
    async def run(self, engine: ExecutionEngine) -> None:
        """Submit models until there is nothing more to submit."""

    def best(self) -> Model | None:
        """The trained model with the best final metric (None before any)."""
        trained = [m for m in self.models if self._score(m) is not None]
        if not trained:
            return None
        pick = max if self.mode == "max" else min
        return pick(trained, key=lambda m: self._score(m) or 0.0)

    def _score(self, model: Model) -> float | None:
        metric = model.metric
        if model.status is not ModelStatus.Trained or not isinstance(metric, int | float):
            return None
        return float(metric)

    def _better(self, a: Model, b: Model) -> Model:
        sa, sb = self._score(a), self._score(b)
        if sb is None:
            return a
        if sa is None:
            return b
        return a if (sa >= sb if self.mode == "max" else sa <= sb) else b

    def _learn_history(self, engine: ExecutionEngine) -> None:
        """Take in the models the engine already has (restored from a journal)."""
        for model in engine.list_models():
            if self.space.contains(model.params) and point_key(model.params) not in self._seen:
                self._seen.add(point_key(model.params))
                self.models.append(model)

    async def _evaluate(self, engine: ExecutionEngine, params: dict[str, Any]) -> Model | None:
        """Run one model to its end; None if the engine takes no more."""
        if not engine.budget_available():
            return None
        model = self.model_factory(dict(params))
        try:
            await engine.submit_models(model)
        except (BudgetExhaustedError, EngineClosedError):
            return None
        self._seen.add(point_key(params))
        self.models.append(model)
        await engine.wait_models(model)
        return model

    def _unseen_sample(self, rng: random.Random) -> dict[str, Any] | None:
        """A point not evaluated yet; None once a finite space is exhausted."""
        size = self.space.size
        if size is not None and size <= 100_000:
            if len(self._seen) >= size:
                return None
            for _ in range(64):  # cheap while most points are unseen
                params = self.space.sample(rng)
                if point_key(params) not in self._seen:
                    return params
            left = [p for p in self.space.grid() if point_key(p) not in self._seen]
            return rng.choice(left) if left else None
        for _ in range(MAX_DRAWS):
            params = self.space.sample(rng)
            if point_key(params) not in self._seen:
                return params
        return None


class RandomSearch(Strategy):
    """Independent random draws; with ``dedup`` (the default) never the same point twice."""

    def __init__(
        self,
        space: SearchSpace | Mapping[str, Param],
        model_factory: ModelFactory,
        dedup: bool = True,
        seed: int | None = None,
        *,
        mode: Mode = "max",
    ) -> None:
        super().__init__(space, model_factory, mode=mode)
        self.dedup = dedup
        self.rng = random.Random(seed)

    async def run(self, engine: ExecutionEngine) -> None:
        self._learn_history(engine)
        while engine.budget_available():
            params = self._unseen_sample(self.rng) if self.dedup else self.space.sample(self.rng)
            if params is None or await self._evaluate(engine, params) is None:
                return


class GridSearch(Strategy):
    """Every point of a finite space once, in order (or shuffled with ``shuffle=True``).

    :raises ValueError: at construction, if the space has a continuous parameter.
    """

    def __init__(
        self,
        space: SearchSpace | Mapping[str, Param],
        model_factory: ModelFactory,
        shuffle: bool = False,
        seed: int | None = None,
        *,
        mode: Mode = "max",
    ) -> None:
        super().__init__(space, model_factory, mode=mode)
        self.points = list(self.space.grid())
        if shuffle:
            random.Random(seed).shuffle(self.points)

    async def run(self, engine: ExecutionEngine) -> None:
        self._learn_history(engine)
        for params in self.points:
            if point_key(params) in self._seen:
                continue
            if await self._evaluate(engine, params) is None:
                return


class RegularizedEvolution(Strategy):
    """Aging evolution (Real et al., 2019): tournament selection, mutation, oldest dies.

    Until the population holds ``population_size`` trained models it draws random
    points; then each child mutates the best of ``sample_size`` random members
    (with ``crossover``, mixed first with the runner-up). Each child's end, as it
    is delivered, decides the next one.
    """

    def __init__(
        self,
        space: SearchSpace | Mapping[str, Param],
        model_factory: ModelFactory,
        population_size: int = 20,
        sample_size: int = 5,
        mutation_prob: float = 0.5,
        crossover: bool = False,
        dedup: bool = False,
        seed: int | None = None,
        *,
        mode: Mode = "max",
    ) -> None:
        super().__init__(space, model_factory, mode=mode)
        if population_size < 2 or not 1 <= sample_size <= population_size:
            raise ValueError(
                "need population_size >= 2 and 1 <= sample_size <= population_size, got "
                f"{population_size} and {sample_size}"
            )
        if not 0.0 <= mutation_prob <= 1.0:
            raise ValueError(f"mutation_prob must be between 0 and 1, got {mutation_prob}")
        self.population_size = population_size
        self.sample_size = sample_size
        self.mutation_prob = mutation_prob
        self.crossover = crossover
        self.dedup = dedup
        self.rng = random.Random(seed)
        self.population: deque[Model] = deque(maxlen=population_size)

    def _child(self) -> dict[str, Any]:
        rng = self.rng
        if len(self.population) < self.population_size:
            return self.space.sample(rng)
        contenders = rng.sample(list(self.population), self.sample_size)
        ranked = sorted(contenders, key=lambda m: self._score(m) or 0.0, reverse=self.mode == "max")
        params = dict(ranked[0].params)
        if self.crossover and len(ranked) > 1:
            other = ranked[1].params
            params = {name: rng.choice((value, other[name])) for name, value in params.items()}
        return self.space.mutate(params, rng, self.mutation_prob)

    def _next(self) -> dict[str, Any] | None:
        if not self.dedup:
            return self._child()
        for _ in range(MAX_DRAWS):
            params = self._child()
            if point_key(params) not in self._seen:
                return params
        return self._unseen_sample(self.rng)

    async def run(self, engine: ExecutionEngine) -> None:
        self._learn_history(engine)
        for known in self.models:
            if self._score(known) is not None:
                self.population.append(known)
        while engine.budget_available():
            params = self._next()
            if params is None:
                return
            model = await self._evaluate(engine, params)
            if model is None:
                return
            if self._score(model) is not None:
                self.population.append(model)  # the oldest leaves


def _distribution(param: Param) -> Any:
    import optuna

    if isinstance(param, Choice):
        return optuna.distributions.CategoricalDistribution(list(param.choices))
    if isinstance(param, Int):
        return optuna.distributions.IntDistribution(param.low, param.high, step=param.step)
    if isinstance(param, Float):
        return optuna.distributions.FloatDistribution(param.low, param.high, log=param.log)
    raise TypeError(f"no Optuna distribution for {param!r}")


class OptunaSearch(Strategy):
    """Optuna's samplers and pruners driving the engine (needs ``pip install 'aionas[optuna]'``).

    Each model is one trial (``study.ask``). Its intermediate metrics are reported
    to the trial as they arrive; when ``trial.should_prune()`` says so the model is
    cancelled (it ends ``Interrupted``) and the trial told as pruned. A trained
    model is told with its final metric, anything else as failed. The mode follows
    the study's direction.

    On a resumed engine, an empty study first learns the restored trained models
    (``study.add_trial``), and a suggestion that was already evaluated is told its
    known result instead of being run again. Once ``MAX_DRAWS`` suggestions in a
    row were all known, the space counts as exhausted and ``run`` returns.
    """

    def __init__(
        self,
        study: optuna.Study,
        space: SearchSpace | Mapping[str, Param],
        model_factory: ModelFactory,
    ) -> None:
        import optuna

        direction = study.direction
        mode: Mode = "max" if direction == optuna.study.StudyDirection.MAXIMIZE else "min"
        super().__init__(space, model_factory, mode=mode)
        self.study = study
        self.distributions = {name: _distribution(p) for name, p in self.space.items()}
        self.pruned = 0

    async def run(self, engine: ExecutionEngine) -> None:
        import optuna
        from optuna.trial import TrialState

        self._learn_history(engine)
        known = {point_key(m.params): m for m in self.models}
        if not self.study.trials:
            for model in self.models:
                if self._score(model) is not None:
                    self.study.add_trial(
                        optuna.trial.create_trial(
                            params=dict(model.params),
                            distributions=self.distributions,
                            value=float(model.metric),
                        )
                    )
        current: dict[str, Any] = {}
        repeats = 0

        def report(event: IntermediateMetricEvent) -> None:
            if event.model is not current.get("model"):
                return
            trial, model = current["trial"], current["model"]
            value = model.metrics.intermediates[current["step"]]
            trial.report(value, current["step"])
            current["step"] += 1
            if trial.should_prune() and not current["pruned"]:
                current["pruned"] = True
                engine.cancel_model(model)

        engine.register_model_event_callback(ModelEventType.IntermediateMetric, report)
        try:
            while engine.budget_available():
                trial = self.study.ask(self.distributions)
                seen = known.get(point_key(trial.params))
                if seen is not None:  # evaluated before: tell, do not run again
                    score = self._score(seen)
                    if score is None:
                        self.study.tell(trial, state=TrialState.FAIL)
                    else:
                        self.study.tell(trial, score)
                    repeats += 1
                    if repeats >= MAX_DRAWS:
                        return
                    continue
                repeats = 0
                model = self.model_factory(dict(trial.params))
                current.update(trial=trial, model=model, step=0, pruned=False)
                try:
                    await engine.submit_models(model)
                except (BudgetExhaustedError, EngineClosedError):
                    self.study.tell(trial, state=TrialState.FAIL)
                    return
                self._seen.add(point_key(trial.params))
                known[point_key(trial.params)] = model
                self.models.append(model)
                await engine.wait_models(model)
                if current["pruned"] and model.status is ModelStatus.Interrupted:
                    self.pruned += 1
                    self.study.tell(trial, state=TrialState.PRUNED)
                elif self._score(model) is not None:  # (it may end before a prune lands)
                    self.study.tell(trial, float(model.metric))
                else:
                    self.study.tell(trial, state=TrialState.FAIL)
        finally:
            engine.unregister_model_event_callback(ModelEventType.IntermediateMetric, report)
