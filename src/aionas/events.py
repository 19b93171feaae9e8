"""Events: what happened to which model, in the order it happened.

An engine publishes, for each run of a model, one :class:`TrainingStartEvent`, then
the metrics in the order they were reported, then exactly one
:class:`TrainingEndEvent`. A model that is cancelled before it starts gets only the
end event. ``seq`` increases by one with every event an engine publishes, so events
from one engine can be totally ordered.

The engine applies an event to its model (metric appended, final set, status
changed) before any subscriber sees it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from .status import ModelStatus

if TYPE_CHECKING:
    from .model import Model

__all__ = [
    "EndReason",
    "FinalMetricEvent",
    "IntermediateMetricEvent",
    "ModelEvent",
    "ModelEventType",
    "TrainingEndEvent",
    "TrainingStartEvent",
]

#: Why a run ended: ``'completed'`` (returned normally), ``'failed'`` (raised),
#: ``'cancelled'`` (``cancel_model``, a cancelled host scope, or an interrupt),
#: ``'timeout'`` (``max_model_duration``), ``'budget'`` (``max_duration`` spent),
#: ``'shutdown'`` (the engine stopped before or while the model ran), ``'crash'``
#: (the process died while the model was queued or running; set on resume).
EndReason = Literal["completed", "failed", "cancelled", "timeout", "budget", "shutdown", "crash"]


class ModelEventType(str, Enum):
    """The kinds of event, as NNI names them."""

    TrainingStart = "training_start"
    IntermediateMetric = "intermediate_metric"
    FinalMetric = "final_metric"
    TrainingEnd = "training_end"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: ModelEventType | str) -> ModelEventType:
        """Accept an enum member or its string value (``'training_end'``).

        :raises ValueError: for an unknown string, listing the valid ones.
        """
        if isinstance(value, ModelEventType):
            return value
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(repr(m.value) for m in cls)
            raise ValueError(f"unknown event type {value!r}; use one of {valid}") from None


@dataclass(frozen=True, slots=True)
class ModelEvent:
    """Base of every event: the ``model`` it is about, its ``seq`` and ``timestamp``.

    ``seq`` is assigned by the engine (monotonically increasing per engine);
    ``timestamp`` is wall-clock seconds since the epoch (``time.time()``).
    """

    event_type: ClassVar[ModelEventType]

    model: Model
    seq: int = field(default=-1, kw_only=True)
    timestamp: float = field(default=0.0, kw_only=True)


@dataclass(frozen=True, slots=True)
class TrainingStartEvent(ModelEvent):
    """The model's status became ``Training``; its ``execute()`` is about to run."""

    event_type: ClassVar[ModelEventType] = ModelEventType.TrainingStart


@dataclass(frozen=True, slots=True)
class IntermediateMetricEvent(ModelEvent):
    """The model reported an intermediate metric; ``metric`` is the raw value."""

    event_type: ClassVar[ModelEventType] = ModelEventType.IntermediateMetric

    metric: Any


@dataclass(frozen=True, slots=True)
class FinalMetricEvent(ModelEvent):
    """The model reported its final metric; ``metric`` is the raw value."""

    event_type: ClassVar[ModelEventType] = ModelEventType.FinalMetric

    metric: Any


@dataclass(frozen=True, slots=True)
class TrainingEndEvent(ModelEvent):
    """The run ended; ``status`` is the model's final status, ``reason`` says why.

    ``error`` is the exception of a ``Failed`` model (or the interrupt that ended
    it), else None. Every submitted model gets exactly one of these per submission.
    """

    event_type: ClassVar[ModelEventType] = ModelEventType.TrainingEnd

    status: ModelStatus
    reason: EndReason = "completed"
    error: BaseException | None = None


# Fast construction for the engine's hot paths. A frozen dataclass's ``__init__``
# sets each field through ``object.__setattr__``; setting the slots directly makes
# the same immutable object in half the time. Only the engine uses these. They are
# written out rather than sharing a helper on purpose: one runs per report, and an
# extra call there is a measurable share of its cost.
_new = object.__new__


def _slot(cls: type, name: str) -> Callable[[object, Any], None]:
    setter: Callable[[object, Any], None] = cls.__dict__[name].__set__
    return setter


_model = _slot(ModelEvent, "model")
_seq = _slot(ModelEvent, "seq")
_timestamp = _slot(ModelEvent, "timestamp")
_intermediate_metric = _slot(IntermediateMetricEvent, "metric")
_final_metric = _slot(FinalMetricEvent, "metric")
_status = _slot(TrainingEndEvent, "status")
_reason = _slot(TrainingEndEvent, "reason")
_error = _slot(TrainingEndEvent, "error")


def new_start(model: Model, seq: int, timestamp: float) -> TrainingStartEvent:
    event: TrainingStartEvent = _new(TrainingStartEvent)
    _model(event, model)
    _seq(event, seq)
    _timestamp(event, timestamp)
    return event


def new_intermediate(model: Model, metric: Any, seq: int, timestamp: float) -> ModelEvent:
    event: ModelEvent = _new(IntermediateMetricEvent)
    _model(event, model)
    _intermediate_metric(event, metric)
    _seq(event, seq)
    _timestamp(event, timestamp)
    return event


def new_final(model: Model, metric: Any, seq: int, timestamp: float) -> ModelEvent:
    event: ModelEvent = _new(FinalMetricEvent)
    _model(event, model)
    _final_metric(event, metric)
    _seq(event, seq)
    _timestamp(event, timestamp)
    return event


def new_end(
    model: Model,
    status: ModelStatus,
    reason: EndReason,
    error: BaseException | None,
    seq: int,
    timestamp: float,
) -> TrainingEndEvent:
    event: TrainingEndEvent = _new(TrainingEndEvent)
    _model(event, model)
    _status(event, status)
    _reason(event, reason)
    _error(event, error)
    _seq(event, seq)
    _timestamp(event, timestamp)
    return event
