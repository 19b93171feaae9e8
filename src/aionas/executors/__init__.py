"""Executors: where models run. The engine's one extension point for it.

- :class:`ThreadExecutor` (the default): one long-lived worker thread, pipelined.
- :class:`ProcessExecutor`: a reused worker process; a crash costs one model, and
  a model that ignores a stop request is killed.
- :class:`LoopExecutor`: ``async def execute`` models, awaited on the event loop.

Write your own by subclassing :class:`Executor`: implement :meth:`Executor.start`
(and optionally ``open``, ``cancel``, ``kill``, ``aclose``), run the model with the
trial API bound (:func:`bind_run`), and report its end with
:meth:`RunHandle.finish`.
"""

from __future__ import annotations

from ._base import Executor, RunHandle, bind_run
from ._loop import LoopExecutor
from ._process import ProcessExecutor, ProcessExecutorStatistics
from ._thread import ThreadExecutor

__all__ = [
    "Executor",
    "LoopExecutor",
    "ProcessExecutor",
    "ProcessExecutorStatistics",
    "RunHandle",
    "ThreadExecutor",
    "bind_run",
]
