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

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ._tracebacks import user_traceback
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

    ``seq`` is assigned by the engine (monotonically increasing per engine, and
    per experiment across resumes with a journal); ``timestamp`` is wall-clock
    seconds since the epoch (``time.time()``); ``model_id`` is the id the engine
    gave the model (fixed on the event, even if the model later moves to
    another engine).
    """

    event_type: ClassVar[ModelEventType]

    model: Model
    seq: int = field(default=-1, kw_only=True)
    timestamp: float = field(default=0.0, kw_only=True)
    model_id: int | None = field(default=None, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON-safe plain dict, for a web service or a log line.

        ``json.dumps(event.to_dict(), allow_nan=False)`` always works. The keys are
        ``type`` (``'training_end'``, ...), ``seq``, ``timestamp`` and ``model_id``,
        then the event's own fields: ``metric`` for metric events; ``status``,
        ``reason`` and ``error`` for end events. The model itself is left out: its
        ``model_id`` names it (see :meth:`Model.to_dict`).

        Values are encoded by :func:`json_safe`: NaN and infinities become the
        strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (at any depth, in
        dict metrics too), numpy scalars become Python numbers, the ``status``
        its string value, an ``error`` ``{"type": "ValueError", "message": "..."}``
        (never the exception object), and anything else JSON cannot hold its
        ``repr()``.

        >>> import aionas
        >>> event = aionas.FinalMetricEvent(
        ...     aionas.Model(), metric=float("nan"), seq=3, timestamp=1.5, model_id=7
        ... )
        >>> event.to_dict()
        {'type': 'final_metric', 'seq': 3, 'timestamp': 1.5, 'model_id': 7, 'metric': 'NaN'}
        """
        data: dict[str, Any] = {
            "type": self.event_type.value,
            "seq": self.seq,
            "timestamp": json_safe(self.timestamp),
            "model_id": self.model_id,
        }
        cls = type(self)
        names = _OWN_FIELDS.get(cls)
        if names is None:
            names = _OWN_FIELDS[cls] = tuple(
                f.name for f in fields(cls) if f.name not in _BASE_FIELDS
            )
        for name in names:
            data[name] = json_safe(getattr(self, name))
        return data


_BASE_FIELDS = frozenset({"model", "seq", "timestamp", "model_id"})
#: The fields of each event class beyond the base ones, in declaration order.
_OWN_FIELDS: dict[type[ModelEvent], tuple[str, ...]] = {}


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


def json_safe(value: Any) -> Any:
    """``value`` as plain data that ``json.dumps(..., allow_nan=False)`` accepts.

    The encoding behind :meth:`ModelEvent.to_dict` and :meth:`Model.to_dict`:

    - ``None``, booleans, strings, ints and finite floats are kept.
    - NaN, ``inf`` and ``-inf`` become the strings ``"NaN"``, ``"Infinity"`` and
      ``"-Infinity"`` (JavaScript's names; Python's ``float()`` reads them back). A
      string that was already ``"NaN"`` reads the same: where a number is
      expected, read these three strings as the floats they name.
    - numpy scalars and other real numbers (``numbers.Integral``, ``numbers.Real``)
      become Python ints and floats (then as above); numpy arrays nested lists.
    - An enum member becomes its value (a status becomes ``'trained'``).
    - Dicts, and any other mapping, become dicts, encoded recursively; a key that
      is not a string becomes ``str(key)``. Lists and tuples become lists.
    - An exception becomes ``{"type": "ValueError", "message": "..."}`` (its class's
      qualified name and ``str()``; for an error restored from a journal, the
      original type name and message). Never the exception object, nor its traceback.
    - Anything else (a set, a tensor, a user object, a container that contains
      itself) becomes its ``repr()``.

    >>> json_safe({"default": float("inf"), "curve": (1, float("-inf"))})
    {'default': 'Infinity', 'curve': [1, '-Infinity']}
    """
    return _encode(value, set())


def _encode(value: Any, active: set[int]) -> Any:
    """:func:`json_safe`; ``active`` holds the ids of the containers being encoded."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if value - value == 0.0:  # finite (inf - inf and NaN - NaN are NaN)
            return value
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if kind is dict or kind is list or kind is tuple:
        return _container(value, active)
    if isinstance(value, Enum):
        return _encode(value.value, active)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return _encode(float(value), active)
    if isinstance(value, BaseException):
        return error_dict(value)
    if isinstance(value, Mapping | list | tuple):
        return _container(value, active)
    if kind.__module__ == "numpy" and hasattr(value, "tolist"):
        return _encode(value.tolist(), active)  # a numpy bool, an array, ...
    return _repr(value)


def _container(value: Any, active: set[int]) -> Any:
    if id(value) in active:  # it contains itself
        return _repr(value)
    active.add(id(value))
    try:
        if isinstance(value, Mapping):
            return {
                key if type(key) is str else _key(key): _encode(item, active)
                for key, item in value.items()
            }
        return [_encode(item, active) for item in value]
    finally:
        active.discard(id(value))


def _key(key: Any) -> str:
    if isinstance(key, Enum):
        key = key.value
    return str.__str__(key) if isinstance(key, str) else str(key)


def _repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__qualname__} object (repr failed)>"


def error_dict(error: BaseException) -> dict[str, str]:
    """An exception as text: ``{"type": "ValueError", "message": "..."}``.

    ``type`` is the class's qualified name, ``message`` its ``str()``. An error
    restored from a journal (:class:`aionas.RestoredError`) gives the original
    type name and message.
    """
    from . import RestoredError  # where it lives is the journal's business

    if isinstance(error, RestoredError):
        return {"type": error.type_name, "message": error.message}
    try:
        message = str(error)
        if not isinstance(message, str):
            raise TypeError("__str__ returned a non-string")
    except Exception:
        message = "(str() of the exception failed)"
    return {"type": type(error).__qualname__, "message": message}


def error_traceback(error: BaseException) -> str:
    """The traceback text kept for a failed model: from the user's code on.

    As ``traceback.format_exception(error)``, without the leading frames inside
    aionas (the executor, ``Model.execute``) that lead to the user's first frame;
    every frame is kept when all are aionas's, and so is everything after the
    user's first frame. An error restored from a journal gives the traceback it
    was stored with. Never raises (``""`` if the error cannot be formatted).
    """
    from . import RestoredError

    if isinstance(error, RestoredError):
        return error.traceback
    return user_traceback(error)


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
_model_id = _slot(ModelEvent, "model_id")
_intermediate_metric = _slot(IntermediateMetricEvent, "metric")
_final_metric = _slot(FinalMetricEvent, "metric")
_status = _slot(TrainingEndEvent, "status")
_reason = _slot(TrainingEndEvent, "reason")
_error = _slot(TrainingEndEvent, "error")


def new_start(model: Model, model_id: int, seq: int, timestamp: float) -> TrainingStartEvent:
    event: TrainingStartEvent = _new(TrainingStartEvent)
    _model(event, model)
    _model_id(event, model_id)
    _seq(event, seq)
    _timestamp(event, timestamp)
    return event


def new_intermediate(
    model: Model, model_id: int, metric: Any, seq: int, timestamp: float
) -> ModelEvent:
    event: ModelEvent = _new(IntermediateMetricEvent)
    _model(event, model)
    _model_id(event, model_id)
    _intermediate_metric(event, metric)
    _seq(event, seq)
    _timestamp(event, timestamp)
    return event


def new_final(model: Model, model_id: int, metric: Any, seq: int, timestamp: float) -> ModelEvent:
    event: ModelEvent = _new(FinalMetricEvent)
    _model(event, model)
    _model_id(event, model_id)
    _final_metric(event, metric)
    _seq(event, seq)
    _timestamp(event, timestamp)
    return event


def new_end(
    model: Model,
    model_id: int,
    status: ModelStatus,
    reason: EndReason,
    error: BaseException | None,
    seq: int,
    timestamp: float,
) -> TrainingEndEvent:
    event: TrainingEndEvent = _new(TrainingEndEvent)
    _model(event, model)
    _model_id(event, model_id)
    _status(event, status)
    _reason(event, reason)
    _error(event, error)
    _seq(event, seq)
    _timestamp(event, timestamp)
    return event
