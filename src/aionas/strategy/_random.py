"""Random search: independent draws from the space, by default never the same point twice."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

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

    def _propose(self) -> dict[str, Any] | None:
        return self._unseen_sample(self.rng) if self.dedup else self.space.sample(self.rng)

    async def run(self, engine: ExecutionEngine) -> None:
        """Draw and evaluate points until the budget is spent (or, with dedup, the space).

        On a resumed engine, the same seed continues the same sequence (see
        :meth:`Strategy._search`).
        """
        await self._search(engine)
