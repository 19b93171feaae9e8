"""``collect_events``: record every event an engine delivers, and check their order."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .. import (
    FinalMetricEvent,
    IntermediateMetricEvent,
    Model,
    ModelEvent,
    ModelEventType,
    SequentialExecutionEngine,
    TrainingEndEvent,
    TrainingStartEvent,
)

__all__ = ["EventLog", "collect_events"]


class EventLog:
    """The events an engine delivered while :func:`collect_events` was open.

    ``events`` is the list in delivery order, which is ``seq`` order; the methods
    select from it. Models are matched by identity, never ``==``.
    """

    def __init__(self) -> None:
        self.events: list[ModelEvent] = []

    def __len__(self) -> int:
        return len(self.events)

    def of(self, model: Model) -> list[ModelEvent]:
        """The events of ``model``, in order."""
        return [event for event in self.events if event.model is model]

    def kinds(self, model: Model) -> list[str]:
        """The event types of ``model`` as strings (``['training_start', ...]``)."""
        return [event.event_type.value for event in self.of(model)]

    def intermediates(self, model: Model) -> list[Any]:
        """The intermediate metrics delivered for ``model``, in order."""
        return [e.metric for e in self.of(model) if isinstance(e, IntermediateMetricEvent)]

    def ends(self, model: Model) -> list[TrainingEndEvent]:
        """The end events of ``model`` (one per run that ended)."""
        return [e for e in self.of(model) if isinstance(e, TrainingEndEvent)]

    def end(self, model: Model) -> TrainingEndEvent:
        """The one end event of ``model``.

        :raises AssertionError: if there is none or more than one.
        """
        ends = self.ends(model)
        if len(ends) != 1:
            raise AssertionError(f"expected one end event for {model!r}, got {len(ends)}: {ends}")
        return ends[0]

    def assert_consistent(self) -> None:
        """Check what the engine promises about the recorded events.

        ``seq`` strictly increases; per model, each run is an optional
        ``TrainingStartEvent`` (absent when the model ended before it started),
        its metrics, then exactly one ``TrainingEndEvent``, with nothing of that
        model between an end and the next start; each end's ``status`` is a
        completed one. A run still going when the log stopped may lack its end.

        :raises AssertionError: naming the first event that breaks a rule.
        """
        last_seq: int | None = None
        running: dict[int, Model] = {}
        for event in self.events:
            if last_seq is not None and event.seq <= last_seq:
                raise AssertionError(f"seq went from {last_seq} to {event.seq} at {event!r}")
            last_seq = event.seq
            key = id(event.model)
            if isinstance(event, TrainingStartEvent):
                if key in running:
                    raise AssertionError(f"a second start before the end: {event!r}")
                running[key] = event.model
            elif isinstance(event, IntermediateMetricEvent | FinalMetricEvent):
                if key not in running:
                    raise AssertionError(f"a metric outside a run (no start): {event!r}")
            elif isinstance(event, TrainingEndEvent):
                running.pop(key, None)
                if not event.status.completed():
                    raise AssertionError(f"an end with status {event.status}: {event!r}")


@contextmanager
def collect_events(engine: SequentialExecutionEngine) -> Iterator[EventLog]:
    """``with collect_events(engine) as log:`` records every event delivered meanwhile.

    It registers a sync callback for every event type (callbacks are lossless and
    called on the event loop in event order) and unregisters it when the block
    ends. Events are recorded when delivered, which may be a little after a model
    reported them: ``await engine.wait_models()`` inside the block, or leaving the
    engine's block, guarantees that every end event is in the log. May be used
    before the engine is entered, and left after it has exited.
    """
    log = EventLog()
    record = log.events.append  # one object, so that it is unregistered by identity
    for kind in ModelEventType:
        engine.register_model_event_callback(kind, record)
    try:
        yield log
    finally:
        for kind in ModelEventType:
            engine.unregister_model_event_callback(kind, record)
