"""The strategy loop every strategy shares: submit one model, wait for its end, learn from it.

:class:`Strategy` holds the space, the model factory and the mode, knows every
model it has seen (``point_key`` recognises a point again), takes in the history a
resumed engine restored, and ranks trained models for ``best()``. It drives the
engine through its public interface only.
"""

from __future__ import annotations

import json
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, Literal

from .. import BudgetExhaustedError, EngineClosedError, ExecutionEngine, Model, ModelStatus
from ..space import Param, SearchSpace

__all__ = ["MAX_DRAWS", "Mode", "ModelFactory", "Strategy", "point_key"]

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
