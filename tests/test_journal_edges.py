"""The engine with a journal at its edges: stops during commits, crashes, resume, failed writes.

Each test pins one of the bugs of issue 8 (numbered in a comment) and failed on the
engine before v2. Windows between two threads are held open with a journal whose
writes wait for the test (``HookedJournal``), never with sleeps.
"""

from __future__ import annotations

import errno
import functools
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

import aionas
from aionas import ModelStatus, SequentialExecutionEngine, SqliteJournal

from .helpers import Boom, Gate, Recorder, Reporter

pytestmark = pytest.mark.anyio


class HookedJournal(SqliteJournal):
    """A SQLite journal whose writes the test can hold or break.

    ``hold_submission()`` makes the next submission write wait, before it writes
    anything, until ``release`` is set (``holding`` is set while it waits).
    ``fail_events_from = n`` makes the n-th event write and every later one fail, as
    a full disk does. Both hook the Journal interface (``record_submissions``,
    ``record_events``) and the writer that engines before v2 used (``_writer()``);
    a write that passes through both is hooked once.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.holding = threading.Event()
        self.release = threading.Event()
        self.event_writes = 0
        self.fail_events_from: int | None = None
        self._hold_next = False
        self._inside = threading.local()

    def hold_submission(self) -> None:
        self.holding.clear()
        self.release.clear()
        self._hold_next = True

    def _write(self, kind: str, write: Callable[[], Any]) -> Any:
        if getattr(self._inside, "write", False):
            return write()  # the same write, one layer down
        self._inside.write = True
        try:
            if kind == "submissions" and self._hold_next:
                self._hold_next = False
                self.holding.set()
                self.release.wait(10)
            elif kind == "events":
                self.event_writes += 1
                if self.fail_events_from is not None and self.event_writes >= self.fail_events_from:
                    raise OSError(errno.ENOSPC, "No space left on device")
            return write()
        finally:
            self._inside.write = False

    def record_submissions(self, *args: Any) -> None:
        self._write("submissions", functools.partial(super().record_submissions, *args))

    def record_events(self, *args: Any) -> None:
        self._write("events", functools.partial(super().record_events, *args))

    def _writer(self) -> Any:  # what engines before v2 called; kept to show the bugs there
        return _HookedWriter(self, super()._writer())  # type: ignore[misc]


class _HookedWriter:
    def __init__(self, journal: HookedJournal, writer: Any) -> None:
        self._journal = journal
        self._writer = writer

    def record_submissions(self, *args: Any) -> Any:
        return self._journal._write(
            "submissions", functools.partial(self._writer.record_submissions, *args)
        )

    def record_events(self, *args: Any) -> Any:
        return self._journal._write("events", functools.partial(self._writer.record_events, *args))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)


class FailsWhenReleased(Gate):
    def execute(self) -> None:
        super().execute()
        raise ValueError("boom")


def rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, args).fetchall()


def submissions_and_ends(db: Path) -> list[tuple[int, int]]:
    """``[(model id, submissions)]``, checked to match the end events of each model."""
    counts = rows(db, "SELECT id, submissions FROM models ORDER BY id")
    ends = rows(
        db,
        "SELECT model_id, COUNT(*) FROM events WHERE type = 'training_end' "
        "GROUP BY model_id ORDER BY model_id",
    )
    assert counts == ends, "every submission must have exactly one end event"
    return counts


def runs_of(db: Path, model_id: int) -> list[str]:
    """The model's starts and ends in the journal, in order."""
    return [
        kind
        for (kind,) in rows(
            db,
            "SELECT type FROM events WHERE model_id = ? AND type IN "
            "('training_start', 'training_end') ORDER BY seq",
            model_id,
        )
    ]


def every_run_closed(kinds: list[str]) -> bool:
    """Each start is followed by exactly one end before anything else starts."""
    open_run = False
    for kind in kinds:
        if kind == "training_start":
            if open_run:
                return False
            open_run = True
        else:
            open_run = False
    return not open_run


async def submit(
    engine: SequentialExecutionEngine, model: aionas.Model, outcome: dict[str, Any]
) -> None:
    """Submit, noting whether the engine refused (it may, once it has stopped)."""
    try:
        await engine.submit_models(model)
    except aionas.EngineClosedError as error:
        outcome["refused"] = error
    else:
        outcome["refused"] = None


async def collect(
    engine: SequentialExecutionEngine,
    into: list[aionas.ModelEvent],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    async with engine.subscribe() as events:
        task_status.started()
        async for event in events:
            into.append(event)


# ---------------------------------------------------------------------- bugs 1, 2: stop vs. commit


async def test_shutdown_while_a_submission_commits_ends_that_model_and_the_block_exits(
    tmp_path: Path,
) -> None:
    # Bug 1: the model was ended Interrupted/'shutdown', but its end event went into an
    # outbox nobody drained any more: leaving the block hung forever.
    db = tmp_path / "s.db"
    journal = HookedJournal(db)
    late = Reporter()
    outcome: dict[str, Any] = {}
    with anyio.fail_after(10):  # a hang is the bug
        async with SequentialExecutionEngine(journal=journal) as engine:
            recorder = Recorder(engine)
            async with anyio.create_task_group() as tasks:
                journal.hold_submission()
                tasks.start_soon(submit, engine, late, outcome)
                assert await anyio.to_thread.run_sync(journal.holding.wait, 10)
                await engine.shutdown()  # from another task than the submitting one
                journal.release.set()
    assert "refused" in outcome
    assert [(e.status, e.reason) for e in recorder.ends(late)] == [
        (ModelStatus.Interrupted, "shutdown")
    ]
    assert "training_start" not in recorder.kinds(late)
    assert submissions_and_ends(db) == [(1, 1)]


async def test_a_model_failure_while_a_submission_commits_never_orphans_that_model(
    tmp_path: Path,
) -> None:
    # Bugs 1 and 2: a submit passed the "still accepting?" check, then a model failed
    # (continue_on_failure=False) and stopped the engine before the submit was queued.
    # The late model must end once, Interrupted/'shutdown', and the block must exit
    # with the model's error (it hung forever).
    db = tmp_path / "s.db"
    journal = HookedJournal(db)
    failing, late = FailsWhenReleased(), Reporter()
    outcome: dict[str, Any] = {}
    failing_ended = anyio.Event()

    def on_end(event: aionas.TrainingEndEvent) -> None:
        if event.model is failing:
            failing_ended.set()

    with anyio.fail_after(10) as watchdog:
        with pytest.raises(ValueError, match="boom"):
            async with SequentialExecutionEngine(journal=journal) as engine:
                recorder = Recorder(engine)
                engine.register_model_event_callback("training_end", on_end)
                await engine.submit_models(failing)
                await failing.wait_started()
                async with anyio.create_task_group() as tasks:
                    journal.hold_submission()
                    tasks.start_soon(submit, engine, late, outcome)
                    assert await anyio.to_thread.run_sync(journal.holding.wait, 10)
                    failing.release.set()  # it raises: the engine stops
                    await failing_ended.wait()  # the stop is recorded
                    await engine.shutdown()  # a no-op stop that returns once no model runs
                    journal.release.set()
    assert not watchdog.cancel_called, "leaving the engine hung until the test's deadline"
    assert "refused" in outcome
    assert recorder.end(failing).status is ModelStatus.Failed
    assert [(e.status, e.reason) for e in recorder.ends(late)] == [
        (ModelStatus.Interrupted, "shutdown")
    ]
    assert "training_start" not in recorder.kinds(late)
    assert submissions_and_ends(db) == [(1, 1), (2, 1)]


# ---------------------------------------------------------------------- bug 3: rows left training


def start_again_after_the_end(db: Path, model_id: int) -> None:
    """Leave what a crash left with the old resume order: the model's requeued run had
    started (and its start was committed) before its new submission was committed."""
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(
            "INSERT INTO events (experiment, seq, model_id, type, time) "
            "SELECT experiment, MAX(seq) + 1, ?, 'training_start', ? FROM events",
            (model_id, time.time()),
        )


async def shut_down_while_running(db: Path) -> None:
    gate = Gate()
    async with SequentialExecutionEngine(journal=SqliteJournal(db)) as engine:
        await engine.submit_models(gate)
        await gate.wait_started()
        await engine.shutdown()
    assert runs_of(db, 1) == ["training_start", "training_end"]


async def test_a_run_a_crash_left_open_after_an_end_ends_as_crash_at_the_next_open(
    tmp_path: Path,
) -> None:
    # Bug 3: such a row stayed 'training' forever; neither resume policy repaired it.
    db = tmp_path / "s.db"
    await shut_down_while_running(db)
    start_again_after_the_end(db, 1)
    async with SequentialExecutionEngine(journal=SqliteJournal(db)) as engine:
        (model,) = engine.list_models()
        assert model.status is ModelStatus.Interrupted
    assert every_run_closed(runs_of(db, 1))
    last_end = rows(
        db,
        "SELECT json_extract(data, '$.status'), json_extract(data, '$.reason') FROM events "
        "WHERE model_id = 1 AND type = 'training_end' ORDER BY seq DESC LIMIT 1",
    )
    assert last_end == [("interrupted", "crash")]
    (restored,), _ = aionas.load_history(db)
    assert restored.status is ModelStatus.Interrupted


async def test_requeue_closes_a_run_a_crash_left_open_and_runs_the_model_again(
    tmp_path: Path,
) -> None:
    # Bug 3, with resume="requeue": the open run ends 'crash' first, then the model runs.
    db = tmp_path / "s.db"
    await shut_down_while_running(db)
    start_again_after_the_end(db, 1)
    async with SequentialExecutionEngine(
        journal=SqliteJournal(db), resume="requeue", model_factory=Reporter
    ) as engine:
        pass
    (model,) = engine.list_models()
    assert model.status is ModelStatus.Trained
    kinds = runs_of(db, 1)
    assert every_run_closed(kinds)
    reasons = rows(
        db,
        "SELECT json_extract(data, '$.reason') FROM events "
        "WHERE model_id = 1 AND type = 'training_end' ORDER BY seq",
    )
    assert reasons == [("shutdown",), ("crash",), ("completed",)]


# ---------------------------------------------------------------------- bug 6: strict metrics


async def test_models_requeued_on_resume_refuse_metrics_that_are_not_numbers(
    tmp_path: Path,
) -> None:
    # Bug 6: models rebuilt by resume="requeue" accepted "text" and True as metrics.
    db = tmp_path / "s.db"
    await shut_down_while_running(db)
    refused: list[tuple[str, Any]] = []

    class Probe(aionas.Model):
        def execute(self) -> None:
            for bad in ("text", True):
                try:
                    aionas.report_intermediate_result(bad)
                except ValueError:
                    refused.append(("intermediate", bad))
            try:
                aionas.report_final_result(True)
            except ValueError:
                refused.append(("final", True))
            aionas.report_final_result(0.5)

    async with SequentialExecutionEngine(
        journal=SqliteJournal(db), resume="requeue", model_factory=Probe
    ) as engine:
        pass
    (model,) = engine.list_models()
    assert refused == [("intermediate", "text"), ("intermediate", True), ("final", True)]
    assert model.status is ModelStatus.Trained
    assert model.metrics == aionas.Metrics([], 0.5)


# ---------------------------------------------------------------------- bug 7: catching up


async def test_a_subscriber_closed_as_too_slow_catches_up_from_the_journal(
    tmp_path: Path,
) -> None:
    # Bug 7's remedy: the error names the last seq it yielded, and since_seq replays
    # from the journal from there, then goes on live: no gap, no duplicate.
    model, later = Reporter({"n": 10}), Reporter({"n": 2})
    with anyio.fail_after(10):
        async with SequentialExecutionEngine(journal=SqliteJournal(tmp_path / "s.db")) as engine:
            recorder = Recorder(engine)
            async with engine.subscribe(buffer_size=2, on_full="close") as behind:
                await engine.submit_models(model)
                await engine.wait_models(model)
                got = [await behind.__anext__(), await behind.__anext__()]
                with pytest.raises(aionas.SlowSubscriberError) as closed:
                    await behind.__anext__()
            assert closed.value.last_seq == got[-1].seq
            async with engine.subscribe(since_seq=closed.value.last_seq) as rest:
                await engine.submit_models(later)  # live events follow the replay
                while len(got) < 13 + 5:
                    got.append(await rest.__anext__())
    assert [e.seq for e in got] == [e.seq for e in recorder.events]
    assert [type(e) for e in got] == [type(e) for e in recorder.events]
    assert all(e.model is r.model for e, r in zip(got, recorder.events, strict=True))
    assert all(e.model_id == r.model_id for e, r in zip(got, recorder.events, strict=True))


# ---------------------------------------------------------------------- bug 8: failed commits


async def test_after_a_failed_commit_no_consumer_receives_an_uncommitted_event(
    tmp_path: Path,
) -> None:
    # Bug 8: events after the failed commit were still delivered to callbacks and
    # subscribers ("every event anyone received is committed" was broken), and the
    # follow-up EngineClosedError said "the engine stopped because None failed".
    db = tmp_path / "s.db"
    journal = HookedJournal(db)
    first, second = Reporter({"n": 2}), Reporter({"n": 5})
    received: list[aionas.ModelEvent] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            with pytest.raises(aionas.JournalError) as stopped:
                async with SequentialExecutionEngine(journal=journal) as engine:
                    recorder = Recorder(engine)
                    await tasks.start(collect, engine, received)
                    await engine.submit_models(first)
                    await engine.wait_models(first)
                    journal.fail_events_from = journal.event_writes + 1  # the disk is full
                    await engine.submit_models(second)
                    with suppress(aionas.JournalError):
                        await engine.wait_models(second)
                    with pytest.raises(aionas.AionasError) as refused:
                        await engine.submit_models(Reporter())
    assert "None failed" not in str(refused.value)
    assert "No space left on device" in str(stopped.value)
    committed = {seq for (seq,) in rows(db, "SELECT seq FROM events")}
    for consumer in (recorder.events, received):
        assert [e.seq for e in consumer if e.seq not in committed] == []
    assert recorder.kinds(first) == ["training_start"] + ["intermediate_metric"] * 2 + [
        "final_metric",
        "training_end",
    ]


async def test_wait_models_raises_the_journal_failure_instead_of_waiting(tmp_path: Path) -> None:
    # Bug 8: wait_models() returned as if the model's end had been made durable.
    journal = HookedJournal(tmp_path / "s.db")
    journal.fail_events_from = 1
    model = Reporter()
    with anyio.fail_after(10):
        with pytest.raises(aionas.JournalError):
            async with SequentialExecutionEngine(journal=journal) as engine:
                await engine.submit_models(model)
                with pytest.raises(aionas.JournalError, match="No space left on device"):
                    await engine.wait_models(model)


# ---------------------------------------------------------------------- bug 9: counters, resumed


async def test_statistics_after_resume_count_this_engine_and_carry_the_budget(
    tmp_path: Path,
) -> None:
    # Bug 9: after a resume, ``submitted`` and ``events_published`` counted the whole
    # experiment while ``trained`` and ``events_delivered`` counted only this run.
    db = tmp_path / "s.db"
    async with SequentialExecutionEngine(
        journal=SqliteJournal(db), continue_on_failure=True
    ) as first:
        await first.submit_models(Reporter({"n": 1}), Boom(), Reporter({"n": 3}))
    spent = first.state_dict()["total_duration"]
    async with SequentialExecutionEngine(journal=SqliteJournal(db)) as engine:
        await engine.submit_models(Reporter({"n": 1}))
        await engine.wait_models()
        stats = engine.statistics()
    assert (stats.submitted, stats.trained, stats.failed, stats.interrupted) == (1, 1, 0, 0)
    assert (stats.events_published, stats.events_delivered, stats.journaled_events) == (4, 4, 4)
    assert stats.model_count == 4  # the budget counters carry over
    assert stats.total_duration >= spent


# ---------------------------------------------------------------------- bug 10: metrics


async def run_with_and_without_a_journal(
    tmp_path: Path, model_class: type[aionas.Model]
) -> list[aionas.Model]:
    """Run the same model class once without a journal and once with one."""
    models = []
    for journal in (None, SqliteJournal(tmp_path / "s.db")):
        model = model_class()
        async with SequentialExecutionEngine(journal=journal, continue_on_failure=True) as engine:
            await engine.submit_models(model)
        models.append(model)
    return models


async def test_numpy_scalar_metrics_are_accepted_and_stored_with_or_without_a_journal(
    tmp_path: Path,
) -> None:
    # Bug 10: they worked without a journal and failed the model with one.
    class NumpyReporter(aionas.Model):
        def execute(self) -> None:
            aionas.report_intermediate_result(np.float32(0.5))
            aionas.report_intermediate_result(np.int64(3))
            aionas.report_final_result(np.float64(0.25))

    for model in await run_with_and_without_a_journal(tmp_path, NumpyReporter):
        assert model.status is ModelStatus.Trained, model.error
        assert model.metrics == aionas.Metrics([0.5, 3.0], 0.25)
    (stored,), _ = aionas.load_history(tmp_path / "s.db")
    assert stored.metrics == aionas.Metrics([0.5, 3.0], 0.25)


async def test_a_metric_too_large_for_a_float_is_a_value_error_at_the_report(
    tmp_path: Path,
) -> None:
    # Bug 10: 10**400 raised OverflowError instead of the documented ValueError.
    caught: list[type[BaseException]] = []

    class TooLarge(aionas.Model):
        def execute(self) -> None:
            try:
                aionas.report_intermediate_result(10**400)
            except Exception as error:
                caught.append(type(error))
            aionas.report_final_result(10**400)  # not caught: the model fails

    for model in await run_with_and_without_a_journal(tmp_path, TooLarge):
        assert model.status is ModelStatus.Failed
        assert type(model.error) is ValueError
        assert model.metrics == aionas.Metrics()
    assert caught == [ValueError, ValueError]


async def test_a_dict_metric_json_cannot_hold_is_refused_with_or_without_a_journal(
    tmp_path: Path,
) -> None:
    # Bug 10: without a journal it was accepted; with one, it failed the model.
    caught: list[BaseException] = []

    class OddDict(aionas.Model):
        def execute(self) -> None:
            try:
                aionas.report_intermediate_result({"default": 0.5, "blob": object()})
            except Exception as error:
                caught.append(error)
            aionas.report_final_result(1.0)

    for model in await run_with_and_without_a_journal(tmp_path, OddDict):
        assert model.status is ModelStatus.Trained
        assert model.metrics == aionas.Metrics([], 1.0)
    assert [type(error) for error in caught] == [TypeError, TypeError]
    assert all("blob" in str(error) for error in caught)
