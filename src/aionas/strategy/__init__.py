"""Async search strategies that drive an engine, reacting to each model's end.

Each strategy is run as ``await strategy.run(engine)`` inside the engine's block.
It submits a model, waits (event-driven, never polling) for its end to be
delivered, learns from it, and submits the next, until it has nothing more to
submit: the engine's budget is spent, a grid is done, or a deduplicating
strategy has exhausted a finite space. Strategies maximise by default
(``mode="min"`` minimises) and ``best()`` is the best trained model.

On a resumed engine (one with a journal) ``RandomSearch``, ``GridSearch`` and
``RegularizedEvolution`` replay the history the engine restored: made afresh with
the same seed and settings, they propose what an uninterrupted run would have, take
each restored model's outcome instead of running it again (waiting for one that
``resume="requeue"`` runs again), and so continue the same sequence, given an
evaluation that is deterministic for its params. The first proposal that differs
from the history (another seed, other settings) ends the replay; the rest of the
history is then taken in as known points. ``OptunaSearch`` does not replay: it adds
the restored trained models to an empty study. Either way, deduplicating
strategies never evaluate a point twice.

One module per strategy: ``_base`` (the shared loop, :class:`Strategy`), ``_random``,
``_grid``, ``_evolution`` and ``_optuna`` (which imports Optuna only when used).

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

from ._base import MAX_DRAWS as MAX_DRAWS
from ._base import Mode as Mode
from ._base import ModelFactory as ModelFactory
from ._base import Strategy
from ._base import point_key as point_key
from ._evolution import RegularizedEvolution
from ._grid import GridSearch
from ._optuna import OptunaSearch
from ._random import RandomSearch

__all__ = ["GridSearch", "OptunaSearch", "RandomSearch", "RegularizedEvolution", "Strategy"]
