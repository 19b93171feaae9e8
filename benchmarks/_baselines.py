"""Baselines that the engine's figures are measured against, in the same run.

- ``InlineEngine``: the sequential algorithm done synchronously on the loop thread,
  as NNI's ``SequentialExecutionEngine`` does it (written here from that
  description): for each model, bind the trial channel, call ``execute()``, and
  dispatch the events to sync callbacks. It publishes the same events as aionas
  (start, metrics, end), built by the same fast constructors, so both do the same
  observable work; it skips what only an async engine needs (timestamps, sequence
  numbers, a queue, bookkeeping for waiters).
- ``to_thread_hop``: a bare ``await anyio.to_thread.run_sync(noop)``.
- ``call_soon_cost`` / ``blocking_hop_cost``: the cheapest non-blocking way, and the
  blocking way, to hand one item from a worker thread to the loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import anyio

import aionas
from aionas import events
from aionas._context import current_run
from aionas.events import ModelEvent, ModelEventType

__all__ = ["InlineEngine", "blocking_hop_cost", "call_soon_cost", "to_thread_hop"]


class _InlineRun:
    """The trial channel of the inline engine: reports dispatch synchronously."""

    def __init__(self, engine: InlineEngine, model: aionas.Model) -> None:
        self.engine = engine
        self.model = model

    def report_intermediate(self, metric: Any) -> None:
        self.model.metrics.add_intermediate(metric)
        self.engine.dispatch(events.new_intermediate(self.model, metric, 0, 0.0))

    def report_final(self, metric: Any) -> None:
        self.model.metrics.final = metric
        self.engine.dispatch(events.new_final(self.model, metric, 0, 0.0))

    def check_cancelled(self) -> None:
        pass


class InlineEngine:
    """NNI's synchronous algorithm: blocks the caller for every model it runs."""

    def __init__(self) -> None:
        self.callbacks: dict[ModelEventType, list[Callable[[Any], None]]] = {
            kind: [] for kind in ModelEventType
        }
        self.history: list[aionas.Model] = []
        self.total_duration = 0.0

    def register_model_event_callback(
        self, kind: ModelEventType | str, callback: Callable[[Any], None]
    ) -> None:
        self.callbacks[ModelEventType.parse(kind)].append(callback)

    def dispatch(self, event: ModelEvent) -> None:
        for callback in self.callbacks[event.event_type]:
            callback(event)

    def submit_models(self, *models: aionas.Model) -> None:
        for model in models:
            if not model.status.frozen() or model.status.completed():
                raise aionas.ModelStateError(f"not frozen: {model!r}")
            self.history.append(model)
            self._run(model)

    def _run(self, model: aionas.Model) -> None:
        model.status = aionas.ModelStatus.Training
        self.dispatch(events.new_start(model, 0, 0.0))
        start = time.monotonic()
        token = current_run.set(_InlineRun(self, model))
        try:
            model.execute()
            status = aionas.ModelStatus.Trained
        except Exception as error:
            model.error = error
            status = aionas.ModelStatus.Failed
        finally:
            current_run.reset(token)
        self.total_duration += time.monotonic() - start
        model.status = status
        self.dispatch(events.new_end(model, status, "completed", None, 0, 0.0))


def _noop() -> None:
    pass


async def to_thread_hop(count: int) -> float:
    """Seconds per bare ``to_thread.run_sync`` round trip."""
    start = time.perf_counter()
    for _ in range(count):
        await anyio.to_thread.run_sync(_noop)
    return (time.perf_counter() - start) / count


async def call_soon_cost(count: int) -> float:
    """Worker-side seconds per non-blocking hand-off (``call_soon_threadsafe`` or trio's
    ``run_sync_soon``), the loop running the calls meanwhile."""
    try:
        loop = asyncio.get_running_loop()
        call: Callable[[Callable[[], None]], object] = loop.call_soon_threadsafe
    except RuntimeError:
        import trio

        call = trio.lowlevel.current_trio_token().run_sync_soon
    done = anyio.Event()
    received = 0

    def on_loop() -> None:
        nonlocal received
        received += 1

    def worker() -> float:
        start = time.perf_counter()
        for _ in range(count):
            call(on_loop)
        elapsed = time.perf_counter() - start
        call(done.set)
        return elapsed

    elapsed = await anyio.to_thread.run_sync(worker)
    await done.wait()
    assert received == count
    return elapsed / count


async def blocking_hop_cost(count: int) -> float:
    """Worker-side seconds per blocking hand-off (``anyio.from_thread.run_sync``)."""

    def worker() -> float:
        start = time.perf_counter()
        for _ in range(count):
            anyio.from_thread.run_sync(_noop)
        return time.perf_counter() - start

    return await anyio.to_thread.run_sync(worker) / count
