"""Testing search code with aionas: a pytest plugin and scripted models.

Installing aionas registers this module as a pytest plugin (entry point
``pytest11``, plugin name ``aionas``; ``-p no:aionas`` turns it off). It only
*offers* things: it has no autouse fixture and no hook that changes collection
or how tests run, so a project that does not ask for its fixtures behaves
exactly as without it. It needs pytest; it never imports pytest-asyncio or trio
itself (the pytest-asyncio support is loaded only when that plugin is active).

Fixtures:

- ``aionas_engine``: a running :class:`~aionas.SequentialExecutionEngine`, entered
  with ``async with`` before the test and left after it, so that every submitted
  model has ended and every event has been delivered once the test is over. It
  works in ``@pytest.mark.asyncio`` tests (pytest-asyncio, strict or auto mode, any
  ``loop_scope``) and ``@pytest.mark.anyio`` tests (asyncio and trio). Configure
  it with ``@pytest.mark.aionas_engine(**options)`` on a test, class or module
  (the closest one wins per option), or with an indirect parameter
  (``@pytest.mark.parametrize("aionas_engine", [{...}], indirect=True)``, which wins
  over the marker). Options are the engine's keyword arguments plus
  ``exit_timeout`` (see :func:`running_engine`).
- ``aionas_engine_factory``: a plain (sync) fixture returning a callable that
  takes the same options and returns an async context manager giving a running
  engine (the marker's options are its defaults). It works under any async test
  plugin, and for tests that need several engines.

Helpers: :class:`ScriptedModel`, :class:`BlockingModel`, :func:`running_engine`,
:func:`collect_events` and :class:`EventLog`.

>>> from aionas.testing import ScriptedModel
>>> ScriptedModel(intermediates=[0.5, 0.7], final=0.8, params={"lr": 0.1})
ScriptedModel(params={'lr': 0.1}, status=frozen)
"""

from __future__ import annotations

from ._engine import EngineFactory, running_engine
from ._events import EventLog, collect_events
from ._models import BlockingModel, ScriptedModel

# The plugin's hook and fixtures: pytest finds them as names of this module (the
# entry point), so they are imported here, though they are not part of __all__.
from ._plugin import _aionas_engine_anyio as _aionas_engine_anyio
from ._plugin import aionas_engine as aionas_engine
from ._plugin import aionas_engine_factory as aionas_engine_factory
from ._plugin import pytest_configure as pytest_configure

__all__ = [
    "BlockingModel",
    "EngineFactory",
    "EventLog",
    "ScriptedModel",
    "collect_events",
    "running_engine",
]
