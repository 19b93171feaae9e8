"""What the engine does with a journal's history: rebuilding models, choosing what runs again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from .journal._base import Restored, RestoredModel
from .journal._rows import params_json
from .journal.history import to_record
from .metrics import Metrics, check_storable
from .model import Model
from .status import ModelStatus

__all__ = [
    "ModelFactory",
    "Restored",
    "ResumePolicy",
    "check_metric_json",
    "params_json",
    "rebuild",
    "to_requeue",
]

#: What to do with models that were queued or running when the last writer stopped.
ResumePolicy = Literal["interrupt", "requeue"]

#: Builds an executable model from the params a journal kept.
ModelFactory = Callable[[dict[str, Any]], Model]

# TODO(v2): remove once the engine calls aionas.metrics.check_storable itself.
check_metric_json = check_storable


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
    """Requeued on resume: unfinished, or interrupted by a shutdown or a crash."""
    return model.unfinished or (
        model.status is ModelStatus.Interrupted and model.reason in ("shutdown", "crash")
    )
