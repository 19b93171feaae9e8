"""Random search: independent draws from the space, by default never the same point twice."""

from __future__ import annotations

import random
from collections.abc import Mapping

from .. import ExecutionEngine
from ..space import Param, SearchSpace
from ._base import Mode, ModelFactory, Strategy

__all__ = ["RandomSearch"]


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
