"""Grid search: every point of a finite space once, in order or shuffled."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

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
        self._cursor = 0  # every point before it is evaluated (or was known)

    def _propose(self) -> dict[str, Any] | None:
        while self._cursor < len(self.points):
            params = self.points[self._cursor]
            if point_key(params) not in self._seen:
                return params
            self._cursor += 1
        return None

    async def run(self, engine: ExecutionEngine) -> None:
        """Evaluate the points not evaluated yet, in order, until the budget is spent.

        On a resumed engine, the same order (same ``shuffle`` and ``seed``) goes on
        where it stopped (see :meth:`Strategy._search`).
        """
        await self._search(engine)
