"""What the engine does with a journal's history: rebuilding models, choosing what runs again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from .journal._base import RestoredModel
from .journal.history import to_record
from .metrics import Metrics
from .model import Model
from .status import ModelStatus

__all__ = ["ModelFactory", "ResumePolicy", "rebuild", "to_requeue"]

#: What to do with models that were queued or running when the last writer stopped.
ResumePolicy = Literal["interrupt", "requeue"]

#: Builds an executable model from the params a journal kept.
ModelFactory = Callable[[dict[str, Any]], Model]


def rebuild(restored: RestoredModel, factory: ModelFactory | None, experiment: str) -> Model:
    """A model object for a journal's row: built by ``factory``, else a record.

    A built model has strict metrics, as a fresh one does: what it reports when
    it runs again is checked (the values restored from the journal are kept as
    they were stored).
    """
    if factory is None:
        return to_record(restored, experiment)
    model = factory(dict(restored.params))
    if not isinstance(model, Model):
        raise TypeError(f"model_factory must return an aionas.Model, got {model!r}")
    model.model_id = restored.model_id
    model.status = restored.status
    metrics = Metrics()  # strict
    metrics.intermediates = list(restored.metrics.intermediates)
    metrics._final = restored.metrics.final
    model.metrics = metrics
    model.error = restored.error
    return model


def to_requeue(model: RestoredModel) -> bool:
    """Whether ``resume="requeue"`` runs it again: unfinished, left running, or stopped.

    Stopped means ended ``Interrupted`` by a shutdown or a crash.
    """
    return (
        model.unfinished
        or model.running
        or (model.status is ModelStatus.Interrupted and model.reason in ("shutdown", "crash"))
    )
