"""Taking over a journal's history when an engine starts: what to end, what to run again.

A pure plan, computed before the engine starts; the engine commits it in order:
first the end of every model a crash left queued or running
(``Interrupted``/``'crash'``), then the new submissions of the models to run
again, and only then queues them. A crash at any point of that sequence leaves a
journal that the next open repairs the same way; nothing stays ``training``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ._scheduler import Entry
from .events import TrainingEndEvent, new_end
from .journal import Restored, RestoredModel
from .journal.history import to_record
from .metrics import Metrics
from .model import Model
from .status import ModelStatus

__all__ = [
    "ModelFactory",
    "ResumePlan",
    "ResumePolicy",
    "plan_resume",
    "rebuild",
    "to_requeue",
]

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


@dataclass
class ResumePlan:
    """What an engine does with a journal's history before it starts."""

    #: Every model of the experiment, in id order.
    entries: list[Entry] = field(default_factory=list)
    #: End events for what a crash left unfinished, to commit first (all of them) ...
    all_ends: list[TrainingEndEvent] = field(default_factory=list)
    #: ... and to deliver to this engine's consumers (those not run again).
    ends: list[TrainingEndEvent] = field(default_factory=list)
    #: Models to run again, in id order; and the ids whose submission is recorded anew.
    requeue: list[Entry] = field(default_factory=list)
    resubmitted: list[int] = field(default_factory=list)
    next_seq: int = 0


def plan_resume(
    restored: Restored, policy: ResumePolicy, factory: ModelFactory | None, experiment: str
) -> ResumePlan:
    """Plan the resume of ``restored`` under ``policy`` (``'interrupt'`` or ``'requeue'``)."""
    plan = ResumePlan(next_seq=restored.next_seq)
    now = time.time()
    for row in restored.models:
        model = rebuild(row, factory, experiment)
        entry = Entry(model, row.model_id)
        plan.entries.append(entry)
        again = policy == "requeue" and to_requeue(row)
        if row.running or (row.unfinished and not again):
            # Left queued or running by a crash: its submission ends here.
            model.status = ModelStatus.Interrupted
            end = new_end(
                model, row.model_id, ModelStatus.Interrupted, "crash", None, plan.next_seq, now
            )
            plan.next_seq += 1
            plan.all_ends.append(end)
            if not again:
                plan.ends.append(end)
            else:
                plan.resubmitted.append(row.model_id)  # runs again: a new submission
        elif again and not row.unfinished:
            plan.resubmitted.append(row.model_id)  # not counted again toward the budget
        if again:
            model.status = ModelStatus.Retrying
            model._aionas_busy = True
            plan.requeue.append(entry)
    return plan
