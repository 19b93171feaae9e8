"""Regularized (aging) evolution: tournament selection and mutation, the oldest member dies."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping
from typing import Any

from .. import ExecutionEngine, Model
from ..space import Param, SearchSpace
from ._base import MAX_DRAWS, Mode, ModelFactory, Strategy, point_key

__all__ = ["RegularizedEvolution"]


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

    def _propose(self) -> dict[str, Any] | None:
        if not self.dedup:
            return self._child()
        for _ in range(MAX_DRAWS):
            params = self._child()
            if point_key(params) not in self._seen:
                return params
        return self._unseen_sample(self.rng)

    def _learn(self, model: Model) -> None:
        if self._score(model) is not None:
            self.population.append(model)  # the oldest leaves

    async def run(self, engine: ExecutionEngine) -> None:
        """Evolve until the budget is spent (or, with dedup, the space is exhausted).

        On a resumed engine, the same seed and settings continue the same sequence,
        with the same population (see :meth:`Strategy._search`).
        """
        await self._search(engine)
