"""Models as a journal remembers them, and reading a journal without an engine."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ..exceptions import ModelStateError
from ..metrics import Metrics
from ..model import Model
from ..status import ModelStatus
from ._base import RestoredError, RestoredModel
from ._rows import load
from ._schema import fail, reading

if TYPE_CHECKING:
    from os import PathLike

__all__ = [
    "History",
    "HistorySummary",
    "ModelRecord",
    "RestoredError",
    "load_history",
    "summarize",
    "to_record",
]


class ModelRecord(Model):
    """A model restored from a journal without a ``model_factory``.

    It has ``params``, ``status``, ``metrics``, ``error`` and ``model_id``; it
    cannot run, so it cannot be submitted. Give the engine a
    ``model_factory(params) -> Model`` to get executable models back instead.
    """

    experiment: str = ""

    def execute(self) -> None:
        raise ModelStateError(
            f"{self!r} is a record restored from a journal and cannot run; pass "
            "model_factory=... to the engine to rebuild executable models from params"
        )


@dataclass(frozen=True)
class HistorySummary:
    """Counts and the best result of a journal's models."""

    #: The experiments the models come from.
    experiments: tuple[str, ...]
    #: Models in the history.
    models: int
    #: How many models have each status (``'trained'``, ``'failed'``, ...).
    by_status: dict[str, int] = field(default_factory=dict)
    #: Submissions counted against ``max_model_count`` (retries count again).
    model_count: int = 0
    #: Execution seconds counted against ``max_duration``.
    total_duration: float = 0.0
    #: The ``model_id`` of the trained model with the highest final metric, if any.
    best_model_id: int | None = None
    #: Its final metric.
    best_metric: float | None = None


class History(NamedTuple):
    """What :func:`load_history` returns: ``models, summary = load_history(path)``."""

    models: list[Model]
    summary: HistorySummary


def summarize(
    models: list[Model], experiments: tuple[str, ...], model_count: int, total_duration: float
) -> HistorySummary:
    """Count ``models`` by status and find the best trained one."""
    trained = [m for m in models if m.status is ModelStatus.Trained and isinstance(m.metric, float)]
    best = max(trained, key=lambda m: m.metric, default=None)
    return HistorySummary(
        experiments=experiments,
        models=len(models),
        by_status=dict(Counter(m.status.value for m in models)),
        model_count=model_count,
        total_duration=total_duration,
        best_model_id=None if best is None else best.model_id,
        best_metric=None if best is None else best.metric,
    )


def to_record(model: RestoredModel, experiment: str) -> ModelRecord:
    """A :class:`ModelRecord` of a journal's row (its metrics as stored, unchecked)."""
    record = ModelRecord(model.params)
    record.model_id = model.model_id
    record.status = model.status
    record.metrics = Metrics(model.metrics.intermediates, model.metrics.final, strict=False)
    record.error = model.error
    record.experiment = experiment
    return record


def load_history(path: str | PathLike[str], experiment: str | None = None) -> History:
    """Read the models of a journal file, without an engine.

    Opens the file read-only, so it works while an engine writes to it (it sees
    everything committed so far), and where nothing can be written (a read-only
    results folder: it then reads the file as it is, or a private copy of the
    file and its write-ahead log). With ``experiment=None`` it reads every
    experiment in the file; each record's ``experiment`` attribute says which.
    Best means the highest final metric among trained models.

    :raises JournalError: if the file is missing, not readable (saying why: not a
        journal, corrupt, from a newer aionas, permissions), or holds no such
        experiment.
    """
    path = Path(path)
    with reading(path) as conn:
        found = conn.execute("SELECT name, id FROM experiments ORDER BY name").fetchall()
        ids = dict(found)
        names = list(ids)
        if experiment is not None:
            if experiment not in ids:
                raise fail(path, f"holds no experiment {experiment!r} (it holds {names})")
            names = [experiment]
        models: list[Model] = []
        model_count, total_duration = 0, 0.0
        for name in names:
            restored = load(conn, path, ids[name])
            models.extend(to_record(model, name) for model in restored.models)
            model_count += restored.model_count
            total_duration += restored.total_duration
    return History(models, summarize(models, tuple(names), model_count, total_duration))
