"""Models and recorders shared by the engine tests.

Synchronisation is by events, never by sleeping: a model signals that it started
with a ``threading.Event``, and the test waits for that signal off the loop.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import anyio

import aionas
from aionas import ModelStatus
from aionas.journal.history import ModelRecord
from aionas.metrics import Metrics


class Gate(aionas.Model):
    """Runs until ``release`` is set, checking for cancellation as training would."""

    def __init__(self, params: dict[str, Any] | None = None, *, heed_cancel: bool = True) -> None:
        super().__init__(params)
        self.started = threading.Event()
        self.release = threading.Event()
        self.returned = threading.Event()
        self.heed_cancel = heed_cancel

    def execute(self) -> None:
        self.started.set()
        try:
            while not self.release.wait(0.002):
                if self.heed_cancel:
                    aionas.check_cancelled()
        finally:
            self.returned.set()

    async def wait_started(self) -> None:
        assert await anyio.to_thread.run_sync(self.started.wait, 10), "model never started"

    async def wait_returned(self) -> None:
        assert await anyio.to_thread.run_sync(self.returned.wait, 10), "model never returned"


class Reporter(aionas.Model):
    """Reports ``params['n']`` intermediate metrics 0..n-1, then a final one."""

    def execute(self) -> None:
        n = self.params.get("n", 3)
        for i in range(n):
            aionas.report_intermediate_result(float(i))
        aionas.report_final_result(float(n))


class Boom(aionas.Model):
    def execute(self) -> None:
        aionas.report_intermediate_result(1.0)
        raise ValueError("boom")


class Recorder:
    """A sync callback that keeps every event it is given, for every type."""

    def __init__(self, engine: aionas.SequentialExecutionEngine) -> None:
        self.events: list[aionas.ModelEvent] = []
        for kind in aionas.ModelEventType:
            engine.register_model_event_callback(kind, self.events.append)

    def of(self, model: aionas.Model) -> list[aionas.ModelEvent]:
        return [e for e in self.events if e.model is model]

    def kinds(self, model: aionas.Model) -> list[str]:
        return [e.event_type.value for e in self.of(model)]

    def ends(self, model: aionas.Model) -> list[aionas.TrainingEndEvent]:
        return [e for e in self.of(model) if isinstance(e, aionas.TrainingEndEvent)]

    def end(self, model: aionas.Model) -> aionas.TrainingEndEvent:
        (end,) = self.ends(model)
        return end


def record(
    model_id: int,
    params: dict[str, Any],
    intermediates: Sequence[Any] = (),
    final: Any = None,
    status: ModelStatus = ModelStatus.Trained,
    **attrs: Any,
) -> ModelRecord:
    """A model as a journal gives it back, built by hand: for reading and drawing tests."""
    model = ModelRecord(params)
    model.model_id = model_id
    model.status = status
    model.metrics = Metrics(intermediates, final, strict=False)
    for name, value in attrs.items():
        setattr(model, name, value)
    return model
