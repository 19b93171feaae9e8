"""Grid search: every point of a finite space once, in order or shuffled."""

from __future__ import annotations

import random
from collections.abc import Mapping

from .. import ExecutionEngine
from ..space import Param, SearchSpace
from ._base import Mode, ModelFactory, Strategy, point_key

__all__ = ["GridSearch"]


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
