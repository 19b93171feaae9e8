"""Models as a journal remembers them, and reading a journal without an engine."""

from __future__ import annotations

import math
import os
import socket
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..exceptions import ModelStateError
from ..metrics import Metrics
from ..model import Model
from ..status import ModelStatus
from ._base import RestoredError, RestoredModel
from ._rows import load, read_metadata
from ._schema import fail, reading
from ._sqlite import pid_alive

if TYPE_CHECKING:
    from os import PathLike

__all__ = [
    "History",
    "HistorySummary",
    "ModelRecord",
    "RestoredError",
    "best_model",
    "experiment_record",
    "list_experiments",
    "load_history",
    "score",
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
    #: Why its last run ended (``'completed'``, ``'failed'``, ...), or None if it never ended.
    reason: str | None = None

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
    #: The ``model_id`` of the trained model with the best final metric, if any
    #: (highest, or lowest if the experiment's metadata says ``mode: 'min'``; NaN
    #: and infinities are never best).
    best_model_id: int | None = None
    #: Its final metric.
    best_metric: float | None = None
    #: What the writer recorded with the experiment (one experiment only, else ``{}``).
    metadata: dict[str, Any] = field(default_factory=dict)
    #: When the experiment was created (``time.time()``; one experiment only).
    created: float | None = None

    @property
    def mode(self) -> str:
        """``'max'`` or ``'min'``: the recorded direction (``'max'`` if none)."""
        return "min" if self.metadata.get("mode") == "min" else "max"


class History(NamedTuple):
    """What :func:`load_history` returns: ``models, summary = load_history(path)``."""

    models: list[Model]
    summary: HistorySummary

    def to_dataframe(self) -> Any:
        """A ``pandas.DataFrame`` with one row per model, in order.

        Its columns are ``id, experiment, status, reason, metric, epochs, error``
        (``epochs``: how many intermediate metrics; ``error``: ``"Type: message"``),
        then ``params_<name>`` for every parameter name (None where a model lacks
        it). Numeric metrics stay numbers (NaN too); dict metrics are JSON text.

        :raises ImportError: if pandas is not installed, saying ``pip install pandas``.
        """
        from ._table import to_dataframe

        return to_dataframe(self.models)


def score(model: Model) -> float | None:
    """A model's final metric if it can be ranked: trained, a finite number.

    NaN and infinities never rank (a diverged run's ``inf`` is not a best result).
    """
    metric = model.metric
    if model.status is not ModelStatus.Trained or isinstance(metric, bool):
        return None
    if not isinstance(metric, int | float) or not math.isfinite(metric):
        return None
    return float(metric)


def best_model(models: Iterable[Model], mode: str = "max") -> Model | None:
    """The trained model with the best rankable final metric (the first of ties)."""
    best: tuple[float, Model] | None = None
    for model in models:
        value = score(model)
        if value is None:
            continue
        if best is None or (value > best[0] if mode == "max" else value < best[0]):
            best = (value, model)
    return None if best is None else best[1]


def summarize(
    models: list[Model],
    experiments: tuple[str, ...],
    model_count: int,
    total_duration: float,
    *,
    metadata: dict[str, Any] | None = None,
    created: float | None = None,
) -> HistorySummary:
    """Count ``models`` by status and find the best trained one."""
    metadata = metadata or {}
    best = best_model(models, "min" if metadata.get("mode") == "min" else "max")
    return HistorySummary(
        experiments=experiments,
        models=len(models),
        by_status=dict(Counter(m.status.value for m in models)),
        model_count=model_count,
        total_duration=total_duration,
        best_model_id=None if best is None else best.model_id,
        best_metric=None if best is None else best.metric,
        metadata=metadata,
        created=created,
    )


def to_record(model: RestoredModel, experiment: str) -> ModelRecord:
    """A :class:`ModelRecord` of a journal's row (its metrics as stored, unchecked)."""
    record = ModelRecord(model.params)
    record.model_id = model.model_id
    record.status = model.status
    record.metrics = Metrics(model.metrics.intermediates, model.metrics.final, strict=False)
    record.error = model.error
    record.reason = model.reason
    record.experiment = experiment
    return record


def load_history(path: str | PathLike[str], experiment: str | None = None) -> History:
    """Read the models of a journal file, without an engine.

    Opens the file read-only, so it works while an engine writes to it (it sees
    everything committed so far), and where nothing can be written (a read-only
    results folder: it then reads the file as it is, or a private copy of the
    file and its write-ahead log). With ``experiment=None`` it reads every
    experiment in the file; each record's ``experiment`` attribute says which.
    Reading one experiment, the summary carries its metadata, and best follows
    its recorded direction (highest if none). A model that a writer which has
    died left queued or running shows as ``Interrupted`` with reason ``'crash'``,
    as the next engine on the journal records it (never ``training`` for ever).

    :raises JournalError: if the file is missing, not readable (saying why: not a
        journal, corrupt, from a newer aionas, permissions), or holds no such
        experiment.
    """
    path = Path(path)
    with reading(path) as conn:
        found = _experiments(conn)
        names = list(found)
        if experiment is not None:
            if experiment not in found:
                raise fail(path, f"holds no experiment {experiment!r} (it holds {names})")
            names = [experiment]
        histories = [_read(conn, path, name, found[name]) for name in names]
    if len(histories) == 1:
        return histories[0]
    models = [model for history in histories for model in history.models]
    summary = summarize(
        models,
        tuple(names),
        sum(h.summary.model_count for h in histories),
        sum(h.summary.total_duration for h in histories),
    )
    return History(models, summary)


def list_experiments(path: str | PathLike[str]) -> list[HistorySummary]:
    """A summary of every experiment in a journal file, oldest first.

    Each has the experiment's name (``experiments[0]``), counts, best model
    (by its recorded direction), metadata and creation time.

    :raises JournalError: as :func:`load_history` does.
    """
    path = Path(path)
    with reading(path) as conn:
        found = _experiments(conn)
        summaries = [_read(conn, path, name, row).summary for name, row in found.items()]
    return sorted(summaries, key=lambda s: (s.created or 0.0, s.experiments))


_Row = tuple[int, float, int | None, str | None]


def experiment_record(path: str | PathLike[str], experiment: str) -> tuple[dict[str, Any], int]:
    """What ``experiment`` recorded (its metadata) and how many models it has, read
    without loading them; ``({}, 0)`` if the file or the experiment does not exist.

    :raises JournalError: if the file exists but cannot be read as a journal.
    """
    path = Path(path)
    if not path.exists():
        return {}, 0
    with reading(path) as conn:
        row = conn.execute("SELECT id FROM experiments WHERE name = ?", (experiment,)).fetchone()
        if row is None:
            return {}, 0
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM models WHERE experiment = ?", (row[0],)
        ).fetchone()
        return read_metadata(conn, path, row[0]), int(count)


def _experiments(conn: sqlite3.Connection) -> dict[str, _Row]:
    """``{name: (row id, created, owner pid, owner host)}`` of a journal's experiments."""
    rows = conn.execute(
        "SELECT name, id, created, owner_pid, owner_host FROM experiments ORDER BY name"
    ).fetchall()
    return {name: (eid, created, pid, host) for name, eid, created, pid, host in rows}


def _writer_gone(pid: int | None, host: str | None) -> bool:
    """Whether the experiment's writer is known to have stopped (closed, or died here)."""
    if pid is None:
        return True
    if pid == os.getpid():
        return False
    return host == socket.gethostname() and not pid_alive(pid)


def _read(conn: sqlite3.Connection, path: Path, name: str, row: _Row) -> History:
    restored = load(conn, path, row[0])
    if _writer_gone(row[2], row[3]):
        # What its next engine records first: a dead writer's queued or running
        # models ended Interrupted ('crash'). Never shown `training` for ever.
        for model in restored.models:
            if model.unfinished:
                model.status, model.reason, model.running = ModelStatus.Interrupted, "crash", False
    models: list[Model] = [to_record(model, name) for model in restored.models]
    summary = summarize(
        models,
        (name,),
        restored.model_count,
        restored.total_duration,
        metadata=restored.metadata,
        created=row[1],
    )
    return History(models, summary)
