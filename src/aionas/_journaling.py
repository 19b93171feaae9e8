"""What the engine does with a journal: checking what it will store, rebuilding models."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from ._sqlite import Restored, RestoredModel, to_record
from .metrics import Metrics
from .model import Model
from .status import ModelStatus

__all__ = ["ModelFactory", "ResumePolicy", "check_metric_json", "params_json", "rebuild"]

#: What to do with models that were queued or running when the last writer stopped.
ResumePolicy = Literal["interrupt", "requeue"]

#: Builds an executable model from the params a journal kept.
ModelFactory = Callable[[dict[str, Any]], Model]

_HINT = "a journal stores them as JSON: use numbers, strings, booleans, None, lists and dicts"


def params_json(model: Model) -> str:
    """``model.params`` as JSON text.

    :raises TypeError: naming the first key whose value JSON cannot hold.
    """
    params = model.params
    if not params:
        return "{}"
    for key in params:
        if not isinstance(key, str):
            raise TypeError(f"param name {key!r} of {model!r} is not a string; {_HINT}")
    try:
        return json.dumps(params)  # NaN and infinities are allowed by default
    except (TypeError, ValueError):
        for key, value in params.items():
            try:
                json.dumps(value)
            except (TypeError, ValueError) as error:
                raise TypeError(
                    f"param {key!r} of {model!r} is not JSON-serialisable ({error}); {_HINT}"
                ) from None
        raise


def check_metric_json(metric: Any) -> None:
    """:raises TypeError: if a reported metric (a dict, say) cannot be stored as JSON."""
    try:
        json.dumps(metric)
    except (TypeError, ValueError) as error:
        raise TypeError(f"metric {metric!r} is not JSON-serialisable ({error}); {_HINT}") from None


def rebuild(restored: RestoredModel, factory: ModelFactory | None, experiment: str) -> Model:
    """A model object for a journal's row: built by ``factory``, else a record."""
    if factory is None:
        return to_record(restored, experiment)
    model = factory(dict(restored.params))
    if not isinstance(model, Model):
        raise TypeError(f"model_factory must return an aionas.Model, got {model!r}")
    model.model_id = restored.model_id
    model.status = restored.status
    model.metrics = Metrics(restored.metrics.intermediates, restored.metrics.final, strict=False)
    model.error = restored.error
    return model


def to_requeue(model: RestoredModel) -> bool:
    """Requeued on resume: unfinished, or interrupted by a shutdown or a crash."""
    return model.unfinished or (
        model.status is ModelStatus.Interrupted and model.reason in ("shutdown", "crash")
    )


__all__ += ["Restored", "to_requeue"]
