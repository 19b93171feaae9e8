"""Taking over a journal's history when an engine starts: what to end, what to run again.

A pure plan, computed before the engine starts; the engine commits it in order:
first the end of every model a crash left queued or running
(``Interrupted``/``'crash'``), then the new submissions of the models to run
again, and only then queues them. A crash at any point of that sequence leaves a
journal that the next open repairs the same way; nothing stays ``training``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ._journaling import ModelFactory, ResumePolicy, rebuild, to_requeue
from ._scheduler import Entry
from .events import TrainingEndEvent, new_end
from .journal import Restored
from .status import ModelStatus

__all__ = ["ModelFactory", "ResumePlan", "ResumePolicy", "plan_resume"]


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
