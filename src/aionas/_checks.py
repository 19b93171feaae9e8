"""Checking what users hand the engine, with errors that say what to do instead."""

from __future__ import annotations

import math

from .exceptions import ModelStateError
from .journal import ModelRecord
from .model import Model
from .status import ModelStatus

__all__ = ["check_models", "check_positive", "check_seconds"]

#: Statuses a model may be submitted with (others get a precise error).
_READY = frozenset({ModelStatus.Frozen, ModelStatus.Retrying})


def check_positive(name: str, value: float | None, *, integer: bool = False) -> None:
    if value is None:
        return
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        need = "a positive int" if integer else "a positive number of seconds"
        raise TypeError(f"{name} must be {need} or None, got {value!r}")
    if not value > 0 or (not integer and not math.isfinite(value)):
        raise ValueError(f"{name} must be > 0 (use None for no limit), got {value!r}")


def check_seconds(name: str, value: float | None, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be seconds{' or None' if optional else ''}, got {value!r}")
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be >= 0 seconds, got {value!r}")


def check_models(models: tuple[Model, ...]) -> None:
    """Check models before any is queued (all or nothing), saying what is wrong.

    :raises TypeError: for an object that is not a model.
    :raises ModelStateError: for a model that cannot be submitted now.
    """
    for model in models:
        if (
            isinstance(model, Model)
            and getattr(model, "_aionas_busy", None) is False
            and not isinstance(model, ModelRecord)
            and model.status in _READY
        ):
            continue  # the common case, checked cheaply; the rest says what is wrong
        if isinstance(model, ModelRecord):
            raise ModelStateError(
                f"{model!r} is a record restored from a journal and cannot run; pass "
                "model_factory=... to the engine to get executable models back"
            )
        if not isinstance(model, Model):
            raise TypeError(
                f"submit_models takes aionas.Model instances, got {type(model).__name__} "
                f"{model!r}; wrap a function in aionas.FunctionModel(fn, params)"
            )
        if not hasattr(model, "metrics") or not hasattr(model, "_aionas_busy"):
            raise ModelStateError(
                f"{type(model).__name__}.__init__ did not call Model.__init__; "
                "add super().__init__(params) to it"
            )
        status = model.status
        if not isinstance(status, ModelStatus) or not status.frozen():
            raise ModelStateError(
                f"{model!r} is not frozen (status {status!s}); only frozen models can run"
            )
        if status.completed():
            raise ModelStateError(
                f"{model!r} has already completed; to run it again, set "
                "model.status = ModelStatus.Retrying and submit it again"
            )
        if model._aionas_busy:
            raise ModelStateError(f"{model!r} is already queued or running; submit it once")
    if len(models) > 1 and len({id(model) for model in models}) != len(models):
        twice = next(m for i, m in enumerate(models) if any(m is o for o in models[:i]))
        raise ModelStateError(f"{twice!r} is already queued or running; submit it once")
