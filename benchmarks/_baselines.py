"""Baselines that the engine's figures are measured against, in the same run.

- ``InlineEngine``: NNI 3.0's sequential algorithm, done synchronously on the loop
  thread, written here from its description: for each model, check it is frozen,
  count it, check the budgets (and only log when they are exceeded), keep it in
  the history, mark it ``Training``, swap in a process-global trial channel bound
  to it, ask the channel for the parameters, call ``execute()``, account its
  duration, restore the channel, and dispatch the end event to sync callbacks,
  with NNI's debug-log calls (disabled, as in a normal run). Reports dispatch
  synchronously through the channel; default callbacks apply each event to the
  model, as NNI's base engine does. It builds events with the same fast
  constructors as aionas.
- ``BareInlineEngine``: the least a synchronous loop can do: bind, execute,
  dispatch start and end events. A floor, not an engine anyone ships.
- ``to_thread_hop``: a bare ``await anyio.to_thread.run_sync(noop)``.
- ``call_soon_cost`` / ``blocking_hop_cost``: the cheapest non-blocking way, and the
  blocking way, to hand one item from a worker thread to the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio

import aionas
from aionas import events
from aionas._context import current_run
from aionas.events import ModelEvent, ModelEventType

__all__ = [
    "BareInlineEngine",
    "InlineEngine",
    "blocking_hop_cost",
    "call_soon_cost",
    "to_thread_hop",
]

_logger = logging.getLogger("benchmarks.inline")
_default_channel: _Channel | None = None  # process-global, as in NNI


@dataclass
class _ParameterRecord:
    parameter_id: int | None
    parameters: Any


class _Channel:
    """The trial channel of the inline engines: reports dispatch synchronously."""

    def __init__(self, engine: _Dispatching, model: aionas.Model) -> None:
        self.engine = engine
        self.model = model

    def receive_parameter(self) -> _ParameterRecord:
        return _ParameterRecord(parameter_id=None, parameters=self.model)

    def report_intermediate(self, metric: Any) -> None:
        self.engine.dispatch(events.new_intermediate(self.model, 0, metric, 0, 0.0))

    def report_final(self, metric: Any) -> None:
        self.engine.dispatch(events.new_final(self.model, 0, metric, 0, 0.0))

    def check_cancelled(self) -> None:
        pass


class _Dispatching:
    def __init__(self) -> None:
        self.callbacks: dict[ModelEventType, list[Callable[[Any], None]]] = {
            kind: [] for kind in ModelEventType
        }

    def register_model_event_callback(
        self, kind: ModelEventType | str, callback: Callable[[Any], None]
    ) -> None:
        self.callbacks[ModelEventType.parse(kind)].append(callback)

    def dispatch(self, event: ModelEvent) -> None:
        for callback in self.callbacks[event.event_type]:
            callback(event)


class InlineEngine(_Dispatching):
    """NNI's synchronous algorithm: blocks the caller for every model it runs."""

    def __init__(
        self, max_model_count: int | None = None, max_duration: float | None = None
    ) -> None:
        super().__init__()
        self.max_model_count = max_model_count
        self.max_duration = max_duration
        self.history: list[aionas.Model] = []
        self.model_count = 0
        self.total_duration = 0.0
        # What NNI's base engine does by default: apply each event to its model.
        self.register_model_event_callback("intermediate_metric", self._apply_intermediate)
        self.register_model_event_callback("final_metric", self._apply_final)
        self.register_model_event_callback("training_end", self._apply_end)

    @staticmethod
    def _apply_intermediate(event: Any) -> None:
        event.model.metrics.add_intermediate(event.metric)

    @staticmethod
    def _apply_final(event: Any) -> None:
        event.model.metrics.final = event.metric

    @staticmethod
    def _apply_end(event: Any) -> None:
        event.model.status = event.status

    def submit_models(self, *models: aionas.Model) -> None:
        for model in models:
            if not model.status.frozen() or model.status.completed():
                raise RuntimeError(f"Model must be frozen before submitting, got {model!r}")
            self.model_count += 1
            if self.max_model_count is not None and self.model_count > self.max_model_count:
                _logger.error("Maximum number of models reached; running it anyway.")
            if self.max_duration is not None and self.total_duration > self.max_duration:
                _logger.error("Maximum duration reached; running it anyway.")
            self.history.append(model)
            _logger.debug("Running model %d: %s", self.model_count, model)
            self._run(model)

    def _run(self, model: aionas.Model) -> None:
        global _default_channel
        model.status = aionas.ModelStatus.Training
        start = time.time()
        previous = _default_channel
        channel = _default_channel = _Channel(self, model)
        token = current_run.set(channel)
        status = aionas.ModelStatus.Failed
        try:
            record = channel.receive_parameter()
            assert record.parameters is model
            model.execute()
            status = aionas.ModelStatus.Trained
            self.total_duration += time.time() - start
            _logger.debug("Execution time of model %d: %.2f s", self.model_count, time.time())
        except Exception:
            self.total_duration += time.time() - start
            _logger.error("Model %d fails to be executed.", self.model_count)
        finally:
            current_run.reset(token)
            _default_channel = previous
            self.dispatch(events.new_end(model, 0, status, "completed", None, 0, 0.0))
            _logger.debug("Training end callbacks of model %d are done.", self.model_count)


class BareInlineEngine(_Dispatching):
    """The least a synchronous loop can do per model: a floor for comparison."""

    def submit_models(self, *models: aionas.Model) -> None:
        for model in models:
            model.status = aionas.ModelStatus.Training
            self.dispatch(events.new_start(model, 0, 0, 0.0))
            token = current_run.set(_Channel(self, model))
            try:
                model.execute()
                status = aionas.ModelStatus.Trained
            except Exception:
                status = aionas.ModelStatus.Failed
            finally:
                current_run.reset(token)
            model.status = status
            self.dispatch(events.new_end(model, 0, status, "completed", None, 0, 0.0))


def _noop() -> None:
    pass


async def to_thread_hop(count: int) -> float:
    """Seconds per bare ``to_thread.run_sync`` round trip."""
    start = time.perf_counter()
    for _ in range(count):
        await anyio.to_thread.run_sync(_noop)
    return (time.perf_counter() - start) / count


def _loop_caller() -> Callable[[Callable[[], object]], object]:
    try:
        return asyncio.get_running_loop().call_soon_threadsafe
    except RuntimeError:
        import trio

        return trio.lowlevel.current_trio_token().run_sync_soon


async def call_soon_cost(count: int) -> float:
    """Worker-side seconds per non-blocking hand-off to the loop (asyncio's
    ``call_soon_threadsafe``, trio's ``run_sync_soon``), the loop running them meanwhile."""
    call = _loop_caller()
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
