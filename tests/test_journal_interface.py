"""The Journal interface, driven directly (no engine): write events, read them back."""

from __future__ import annotations

import inspect
import json
import math
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aionas
from aionas import ModelStatus
from aionas.events import (
    FinalMetricEvent,
    IntermediateMetricEvent,
    ModelEvent,
    TrainingEndEvent,
    TrainingStartEvent,
)
from aionas.journal import (
    Journal,
    Restored,
    RestoredError,
    RestoredModel,
    SqliteJournal,
    load_history,
)

from .helpers import Reporter


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SqliteJournal]:
    journal = SqliteJournal(tmp_path / "search.db", experiment="exp")
    journal.open()
    try:
        yield journal
    finally:
        journal.close()


def submit(journal: Journal, *models: aionas.Model, first_id: int = 1) -> dict[int, aionas.Model]:
    """Record ``models`` as new submissions; returns them by the ids they got."""
    by_id = dict(enumerate(models, start=first_id))
    for model_id, model in by_id.items():
        model.model_id = model_id
    rows = [(i, json.dumps(m.params), type(m).__qualname__, 1.0) for i, m in by_id.items()]
    journal.record_submissions(rows, [], first_id - 1 + len(models))
    return by_id


def run_events(model_id: int, model: aionas.Model, seq: int, *metrics: Any) -> list[ModelEvent]:
    """A start, ``metrics`` (the last one final), and a ``Trained`` end, from ``seq``."""
    events: list[ModelEvent] = [
        TrainingStartEvent(model, seq=seq, timestamp=seq, model_id=model_id)
    ]
    for i, metric in enumerate(metrics, start=seq + 1):
        kind = FinalMetricEvent if i == seq + len(metrics) else IntermediateMetricEvent
        events.append(kind(model, metric, seq=i, timestamp=i, model_id=model_id))
    end = seq + len(metrics) + 1
    events.append(
        TrainingEndEvent(model, ModelStatus.Trained, seq=end, timestamp=end, model_id=model_id)
    )
    return events


def same(read: Sequence[ModelEvent], written: Sequence[ModelEvent]) -> None:
    """``read`` are ``written`` rebuilt: same class, fields and model object."""
    assert [type(e) for e in read] == [type(e) for e in written]
    for got, want in zip(read, written, strict=True):
        assert got.model is want.model
        assert (got.seq, got.timestamp, got.model_id) == (want.seq, want.timestamp, want.model_id)
        if isinstance(want, IntermediateMetricEvent | FinalMetricEvent):
            assert isinstance(got, IntermediateMetricEvent | FinalMetricEvent)
            assert got.metric == want.metric
            assert type(got.metric) is type(want.metric)
        if isinstance(want, TrainingEndEvent):
            assert isinstance(got, TrainingEndEvent)
            assert (got.status, got.reason) == (want.status, want.reason)


def test_sqlite_journal_implements_the_interface(tmp_path: Path) -> None:
    assert issubclass(SqliteJournal, Journal)
    assert Journal.__abstractmethods__ == {
        "open",
        "record_submissions",
        "record_events",
        "read_events",
        "close",
    }
    for name in Journal.__abstractmethods__:
        assert inspect.signature(getattr(SqliteJournal, name)).parameters.keys() == (
            inspect.signature(getattr(Journal, name)).parameters.keys()
        ), name
        assert getattr(Journal, name).__doc__, f"Journal.{name} states its guarantees"

    class Incomplete(Journal):
        experiment = "x"

        def open(self) -> Restored:
            return Restored([], 0, 0.0, 0, 1)

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]
    assert aionas.Journal is Journal
    assert aionas.SqliteJournal is SqliteJournal


def test_events_written_through_the_interface_read_back(journal: SqliteJournal) -> None:
    models = submit(journal, Reporter({"n": 2}), Reporter({"lr": 0.1}), Reporter())
    one, two, three = models.values()
    boom = ValueError("boom")
    written = [
        *run_events(1, one, 0, 0.5, 2, {"default": 0.75, "loss": 0.25}),
        TrainingStartEvent(two, seq=5, timestamp=5.0, model_id=2),
        IntermediateMetricEvent(two, math.inf, seq=6, timestamp=6.0, model_id=2),
        TrainingEndEvent(two, ModelStatus.Failed, "failed", boom, seq=7, timestamp=7.0, model_id=2),
        TrainingEndEvent(three, ModelStatus.Interrupted, "cancelled", seq=8, model_id=3),
    ]
    journal.record_events(written[:4], 1.0)
    journal.record_events(written[4:], 2.5)

    everything = journal.read_events(-1, 8, models)
    same(everything, written)
    end = everything[7]
    assert isinstance(end, TrainingEndEvent)
    assert isinstance(end.error, RestoredError)
    assert (end.error.type_name, end.error.message) == ("ValueError", "boom")
    assert "ValueError: boom" in end.error.traceback
    assert isinstance(everything[8], TrainingEndEvent)
    assert everything[8].error is None

    same(journal.read_events(2, 6, models), written[3:7])  # after 2, through 6
    assert journal.read_events(8, 100, models) == []
    assert journal.read_events(5, 5, models) == []

    # The journal's own reading agrees: the same experiment, reopened.
    journal.close()
    restored = journal.open()
    assert (restored.next_seq, restored.next_id, restored.model_count) == (9, 4, 3)
    assert restored.total_duration == 2.5
    by_id = {m.model_id: m for m in restored.models}
    assert by_id[1].metrics == aionas.Metrics([0.5, 2.0], 0.75)
    assert by_id[2].status is ModelStatus.Failed
    assert isinstance(by_id[2].error, RestoredError)
    assert by_id[3].status is ModelStatus.Interrupted


def test_numpy_metrics_are_stored_as_numbers(journal: SqliteJournal) -> None:
    models = submit(journal, Reporter())
    (model,) = models.values()
    raw = [np.float32(0.5), np.int64(3), {"default": np.float64(0.75), "epochs": np.int64(2)}]
    journal.record_events(run_events(1, model, 0, *raw), 1.0)
    read = journal.read_events(-1, 10, models)
    metrics = [e.metric for e in read if isinstance(e, IntermediateMetricEvent | FinalMetricEvent)]
    assert metrics == [0.5, 3, {"default": 0.75, "epochs": 2}]
    assert [type(m) for m in metrics] == [float, int, dict]
    (record,) = load_history(journal.path).models
    assert record.metrics == aionas.Metrics([0.5, 3.0], 0.75)


def test_read_events_sees_only_committed_events_while_another_thread_writes(
    journal: SqliteJournal,
) -> None:
    models = submit(journal, *(Reporter() for _ in range(50)))
    batches = [run_events(i, models[i], (i - 1) * 5, 0.1, 0.2, 0.3) for i in models]
    total = sum(len(b) for b in batches)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for batch in batches:
                journal.record_events(batch, 1.0)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    writer = threading.Thread(target=write)
    writer.start()
    reads = 0
    while True:
        done = not writer.is_alive()
        seen = journal.read_events(-1, total, models)
        # Whole batches only, in order, from the start: never half a transaction.
        assert [e.seq for e in seen] == list(range(len(seen)))
        assert len(seen) % 5 == 0
        reads += 1
        if done:
            break
    writer.join()
    assert errors == []
    assert len(seen) == total
    assert reads >= 1


def test_read_events_needs_an_open_journal_and_every_model(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "s.db")
    with pytest.raises(aionas.JournalError, match="not open"):
        journal.read_events(-1, 10, {})
    with pytest.raises(aionas.JournalError, match="not open"):
        journal.record_events([], 0.0)
    journal.open()
    try:
        models = submit(journal, Reporter())
        journal.record_events(run_events(1, models[1], 0, 1.0), 1.0)
        with pytest.raises(KeyError, match="model 1"):
            journal.read_events(-1, 10, {})
        with pytest.raises(aionas.JournalError, match="already in use"):
            journal.open()
    finally:
        journal.close()
    journal.close()  # twice is fine
    # What it committed stays readable (a subscription catching up as the engine exits).
    assert [e.seq for e in journal.read_events(-1, 10, models)] == [0, 1, 2]


def test_second_writer_through_a_hard_link_is_refused_clearly(tmp_path: Path) -> None:
    db, link = tmp_path / "search.db", tmp_path / "link.db"
    first = SqliteJournal(db)
    first.open()
    try:
        os.link(db, link)
        same_path = SqliteJournal(db)
        with pytest.raises(aionas.JournalError, match="already open for writing") as direct:
            same_path.open()
        through_link = SqliteJournal(link)
        with pytest.raises(aionas.JournalError, match="already open for writing") as linked:
            through_link.open()
        for caught in (direct, linked):
            assert "I/O" not in str(caught.value)
        assert str(db) in str(linked.value)  # names the name it is open under
        other_experiment = SqliteJournal(link, experiment="other")
        with pytest.raises(aionas.JournalError, match=r"link\.db.*hard link.*search\.db"):
            other_experiment.open()
        same_name = SqliteJournal(db, experiment="other")
        same_name.open()  # the same name: as before, fine
        same_name.close()
    finally:
        first.close()
    second = SqliteJournal(link)  # free once the first writer closed
    second.open()
    second.close()


def test_restored_models_are_plain_data() -> None:
    row = RestoredModel(1, {"x": 1}, "Reporter", submissions=2, ends=1)
    assert row.unfinished
    assert row.metrics.strict is False
    assert row.status is ModelStatus.Frozen


def test_rebuilt_models_have_strict_metrics() -> None:
    from aionas._resume import rebuild

    row = RestoredModel(1, {"n": 2}, "Reporter", submissions=1, ends=1)
    row.status = ModelStatus.Interrupted
    row.metrics.add_intermediate("kept as stored")
    model = rebuild(row, Reporter, "exp")
    assert type(model) is Reporter
    assert model.metrics.intermediates == ["kept as stored"]
    with pytest.raises(ValueError, match="not a number"):
        model.metrics.add_intermediate("text")
    with pytest.raises(ValueError, match="not a number"):
        model.metrics.final = True
    record = rebuild(row, None, "exp")
    assert isinstance(record, aionas.ModelRecord)


def test_what_requeue_runs_again() -> None:
    from aionas._resume import to_requeue

    def row(status: ModelStatus, reason: str | None, **fields: Any) -> RestoredModel:
        fields = {"submissions": 1, "ends": 1, **fields}
        model = RestoredModel(1, {}, "Reporter", **fields)
        model.status, model.reason = status, reason
        return model

    assert to_requeue(row(ModelStatus.Frozen, None, ends=0))  # queued
    assert to_requeue(row(ModelStatus.Training, "shutdown", running=True))  # a run left open
    assert to_requeue(row(ModelStatus.Interrupted, "shutdown"))
    assert to_requeue(row(ModelStatus.Interrupted, "crash"))
    assert not to_requeue(row(ModelStatus.Interrupted, "cancelled"))
    assert not to_requeue(row(ModelStatus.Trained, "completed"))
    assert not to_requeue(row(ModelStatus.Failed, "failed"))


class MemoryJournal(Journal):
    """A journal that keeps everything in lists: the interface is small enough."""

    def __init__(self) -> None:
        self.experiment = "memory"
        self.events: list[ModelEvent] = []

    def open(self) -> Restored:
        return Restored([], 0, 0.0, 0, 1)

    def record_submissions(
        self, new: Sequence[tuple[int, str, str, float]], resubmitted: Sequence[int], count: int
    ) -> None:
        pass

    def record_events(self, events: Sequence[ModelEvent], total_duration: float) -> None:
        self.events.extend(events)

    def read_events(
        self, after_seq: int, through_seq: int, models: Mapping[int, aionas.Model]
    ) -> list[ModelEvent]:
        return [e for e in self.events if after_seq < e.seq <= through_seq]

    def close(self) -> None:
        pass


def test_another_journal_can_implement_the_interface() -> None:
    journal = MemoryJournal()
    model = Reporter()
    journal.record_events(run_events(1, model, 0, 1.0), 0.0)
    assert [e.seq for e in journal.read_events(0, 2, {1: model})] == [1, 2]
