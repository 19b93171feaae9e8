"""The strategy loop every strategy shares: propose a point, run it (or replay it), learn.

:class:`Strategy` holds the space, the model factory and the mode, knows every
model it has seen (``point_key`` recognises a point again), and ranks trained
models for ``best()``. It drives the engine through its public interface only.

On a resumed engine a fresh strategy *replays* the history the engine restored
(see :meth:`Strategy._search`): it proposes exactly as an uninterrupted run
would, and each proposal equal to the next restored model takes that model's
outcome instead of being submitted. So a deterministic strategy with the same
seed and settings continues the same sequence. The first proposal that differs
ends the replay, and the rest of the history is taken in as known points.
"""

from __future__ import annotations

import json
import random
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Literal

from .. import BudgetExhaustedError, EngineClosedError, ExecutionEngine, Model
from ..journal.history import score
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
    """What every strategy shares: the space, the factory, the mode, and ``best()``.

    A strategy whose choices follow from its seed, its settings and the outcomes it
    saw, in order, implements :meth:`_propose` (and :meth:`_learn`) and runs
    :meth:`_search`: it then continues the same sequence on a resumed engine.
    """

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
        self._replay: deque[Model] = deque()  # restored models not replayed yet, in id order

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
        """Its final metric if it can be ranked (trained, finite: never NaN), else None."""
        return score(model)

    def _better(self, a: Model, b: Model) -> Model:
        sa, sb = self._score(a), self._score(b)
        if sb is None:
            return a
        if sa is None:
            return b
        return a if (sa >= sb if self.mode == "max" else sa <= sb) else b

    # ------------------------------------------------------------------ the shared loop

    def _propose(self) -> dict[str, Any] | None:
        """The point to evaluate next, from what was learnt so far; None when there is none.

        Deterministic given the seed, the settings and the models learnt, in order:
        that is what lets :meth:`_search` replay a resumed history.
        """
        raise NotImplementedError(f"{type(self).__name__} does not propose points")

    def _learn(self, model: Model) -> None:
        """Take in an ended model (run, replayed, or restored); the default keeps nothing more."""
        return None

    async def _search(self, engine: ExecutionEngine) -> None:
        """Propose, evaluate, learn, until nothing more is to be submitted.

        Stops when the engine's budget is spent or takes no more, or when
        :meth:`_propose` has nothing left. On an engine that already has models (a
        resumed journal), a fresh strategy first replays them in id order: while a
        proposal's point is that of the next restored model, the model is not
        submitted again; its end is awaited (a model ``resume="requeue"`` runs again
        is waited for) and learnt as if just run. Replaying submits nothing, so the
        budget does not stop it; it is checked again once the replay is over. The
        first proposal that differs (another seed, other settings, a changed
        strategy) ends the replay: every remaining restored model is awaited and
        taken in as known (:meth:`_learn_history`), and the strategy proposes again
        and goes on live.
        """
        self._begin_replay(engine)
        while self._replay or engine.budget_available():
            params = self._propose()
            if params is None:
                await self._end_replay(engine)
                return
            if self._replay:
                model = await self._replayed(engine, params)
                if model is None:
                    continue  # the replay ended: propose again, knowing the whole history
            else:
                model = await self._evaluate(engine, params)
                if model is None:
                    return
            self._learn(model)

    def _begin_replay(self, engine: ExecutionEngine) -> None:
        """Queue the engine's models for replay; a strategy that knows models learns instead."""
        if self.models:  # run before: its proposals no longer start from the beginning
            self._replay.clear()
            self._learn_history(engine)
        else:
            self._replay = deque(engine.list_models())

    async def _replayed(self, engine: ExecutionEngine, params: dict[str, Any]) -> Model | None:
        """The next restored model, ended, if ``params`` is its point; else None, replay over."""
        model = self._replay[0]
        key = point_key(params)
        if point_key(model.params) != key:
            await self._end_replay(engine)
            return None
        self._replay.popleft()
        self._seen.add(key)
        self.models.append(model)
        await engine.wait_models(model)  # at once unless it was queued to run again
        return model

    async def _end_replay(self, engine: ExecutionEngine) -> None:
        """Stop replaying: wait for the remaining restored models, then take them in."""
        rest = list(self._replay)
        self._replay.clear()
        if rest:
            await engine.wait_models(*rest)
        for model in rest:
            self._take_in(model)

    def _learn_history(self, engine: ExecutionEngine) -> None:
        """Take in the models the engine already has (restored from a journal)."""
        for model in engine.list_models():
            self._take_in(model)

    def _take_in(self, model: Model) -> None:
        """Know a model of the history, unless its point is known or outside the space."""
        if self.space.contains(model.params) and point_key(model.params) not in self._seen:
            self._seen.add(point_key(model.params))
            self.models.append(model)
            self._learn(model)

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
