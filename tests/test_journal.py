"""The SQLite journal: round trips, resume, budgets, concurrent readers, bad input."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

import aionas
from aionas import ModelStatus, SequentialExecutionEngine, SqliteJournal

from .helpers import Boom, Gate, Recorder, Reporter

pytestmark = pytest.mark.anyio


def factory(params: dict[str, Any]) -> aionas.Model:
    return Reporter(params)


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def submissions_and_ends(db: Path) -> list[tuple[Any, ...]]:
    """``[(model id, submissions)]``, checked to match the end events of each model."""
    counts = rows(db, "SELECT id, submissions FROM models ORDER BY id")
    ends = rows(
        db,
        "SELECT model_id, COUNT(*) FROM events WHERE type = 'training_end' "
        "GROUP BY model_id ORDER BY model_id",
    )
    assert counts == ends, "every submission must have exactly one end event"
    return counts


async def test_every_event_type_and_status_round_trips(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    trained, failed, cancelled, timed_out = Reporter({"n": 2}), Boom(), Gate(), Gate()
    trained.params["nested"] = {"a": [1, 2.5, None, True], "b": "text"}

    class Raw(aionas.Model):
        def execute(self) -> None:
            aionas.report_intermediate_result({"default": 0.25, "loss": math.nan})
            aionas.report_final_result(math.inf)

    raw = Raw({"x": math.nan})
    journal = SqliteJournal(db, experiment="exp")
    async with SequentialExecutionEngine(
        journal=journal, continue_on_failure=True, max_model_duration=5
    ) as engine:
        recorder = Recorder(engine)
        await engine.submit_models(trained, failed, raw, cancelled)
        await cancelled.wait_started()
        engine.cancel_model(cancelled)
        await engine.wait_models()
    assert engine.statistics().journaled_events == len(recorder.events)
    del timed_out

    models, summary = aionas.load_history(db)
    by_id = {m.model_id: m for m in models}
    assert [m.model_id for m in models] == [1, 2, 3, 4]
    assert by_id[1].params == trained.params
    assert by_id[1].status is ModelStatus.Trained
    assert by_id[1].metrics == trained.metrics
    assert by_id[2].status is ModelStatus.Failed
    assert isinstance(by_id[2].error, aionas.RestoredError)
    assert by_id[2].error.type_name == "ValueError"
    assert "boom" in str(by_id[2].error)
    assert "Traceback" in by_id[2].error.traceback
    assert math.isnan(by_id[3].params["x"])
    assert by_id[3].metrics.intermediates == [0.25]
    assert by_id[3].metric == math.inf
    assert by_id[4].status is ModelStatus.Interrupted
    assert summary.by_status == {"trained": 2, "failed": 1, "interrupted": 1}
    assert summary.model_count == 4
    assert summary.experiments == ("exp",)
    assert summary.best_model_id == 1  # an infinite metric (#3) never ranks

    stored = rows(
        db,
        "SELECT seq, type, data, "
        "CASE type WHEN 'training_end' THEN json_extract(data, '$.status') END, "
        "CASE type WHEN 'training_end' THEN json_extract(data, '$.reason') END "
        "FROM events ORDER BY seq",
    )
    assert [r[0] for r in stored] == [e.seq for e in recorder.events]
    assert [r[1] for r in stored] == [e.event_type.value for e in recorder.events]
    ends = [r for r in stored if r[1] == "training_end"]
    assert [(r[3], r[4]) for r in ends] == [
        ("trained", "completed"),
        ("failed", "failed"),
        ("trained", "completed"),
        ("interrupted", "cancelled"),
    ]
    assert any(r[2] == '{"default": 0.25, "loss": NaN}' for r in stored)
    durations = rows(db, "SELECT duration, ended - started FROM model_status ORDER BY id")
    assert all(d is not None and d >= 0 and d == pytest.approx(e) for d, e in durations)
    statuses = rows(db, "SELECT id, status, reason, error_type FROM model_status ORDER BY id")
    assert statuses == [
        (1, "trained", "completed", None),
        (2, "failed", "failed", "ValueError"),
        (3, "trained", "completed", None),
        (4, "interrupted", "cancelled", "ModelInterrupted"),
    ]


async def test_every_received_event_is_already_committed(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    checked: list[bool] = []

    def check(event: aionas.ModelEvent) -> None:
        # Another connection sees it: it is committed, not just written.
        found = rows(db, f"SELECT COUNT(*) FROM events WHERE seq = {event.seq}")
        checked.append(found == [(1,)])

    async with SequentialExecutionEngine(journal=SqliteJournal(db)) as engine:
        for kind in aionas.ModelEventType:
            engine.register_model_event_callback(kind, check)
        await engine.submit_models(*(Reporter({"n": 5}) for _ in range(4)))
    assert len(checked) == 4 * (1 + 5 + 1 + 1)
    assert all(checked)


async def test_resume_restores_history_budgets_and_sequence(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    async with SequentialExecutionEngine(
        journal=SqliteJournal(db), max_model_count=4, continue_on_failure=True
    ) as first:
        await first.submit_models(Reporter({"n": 1}), Boom(), Reporter({"n": 3}))
    spent = first.state_dict()

    resumed = SequentialExecutionEngine(journal=SqliteJournal(db), max_model_count=4)
    async with resumed:
        recorder = Recorder(resumed)
        history = resumed.list_models()
        assert [m.status for m in history] == [
            ModelStatus.Trained,
            ModelStatus.Failed,
            ModelStatus.Trained,
        ]
        assert all(isinstance(m, aionas.ModelRecord) for m in history)
        assert history[2].metrics == aionas.Metrics([0.0, 1.0, 2.0], 3.0)
        assert resumed.state_dict()["model_count"] == 3
        assert resumed.state_dict()["total_duration"] == pytest.approx(spent["total_duration"])
        fresh = Reporter()
        await resumed.submit_models(fresh)
        assert fresh.model_id == 4
        assert not resumed.budget_available()
        with pytest.raises(aionas.BudgetExhaustedError):
            await resumed.submit_models(Reporter())
        with pytest.raises(aionas.ModelStateError, match="record restored from a journal"):
            history[0].status = ModelStatus.Retrying
            await resumed.submit_models(history[0])
    assert recorder.events[0].seq == 4 + 3 + 6  # continues after the first run's 13 events
    assert [m.model_id for m in resumed.list_models()] == [1, 2, 3, 4]


async def test_resume_with_a_factory_gives_executable_models(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    async with SequentialExecutionEngine(journal=SqliteJournal(db)) as first:
        await first.submit_models(Reporter({"n": 2}))
    async with SequentialExecutionEngine(
        journal=SqliteJournal(db), model_factory=factory
    ) as second:
        (model,) = second.list_models()
        assert type(model) is Reporter
        assert model.status is ModelStatus.Trained
        model.status = ModelStatus.Retrying
        await second.submit_models(model)
    assert model.status is ModelStatus.Trained
    _, summary = aionas.load_history(db)
    assert summary.model_count == 2
    assert rows(db, "SELECT submissions FROM models") == [(2,)]


CRASH_SCRIPT = Path(__file__).with_name("crash_search.py")


def run_until(db: Path, mode: str, *, lines: int, sig: int = signal.SIGKILL) -> list[str]:
    """Run the crash script until it printed ``lines`` events, then send it ``sig``.

    Returns every complete line it printed (a line cut by SIGKILL is left out).
    """
    with subprocess.Popen(
        [sys.executable, str(CRASH_SCRIPT), str(db), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        assert process.stdout is not None
        watchdog = threading.Timer(30, process.kill)  # a hang fails the test, never CI
        watchdog.start()
        try:
            seen = []
            while len(seen) < lines:
                line = process.stdout.readline()
                assert line.endswith("\n"), f"the search ended early after {len(seen)} lines"
                seen.append(line.rstrip("\n"))
            process.send_signal(sig)
            rest = process.stdout.read()  # through the same buffer as readline
        finally:
            watchdog.cancel()
            process.kill()
    tail = rest.split("\n")
    return seen + tail[:-1]  # the last piece is empty, or a line cut short


def crash_while_running(db: Path) -> None:
    """A journal as a killed process leaves it: model 1 done, 2 running, 3 queued."""
    # start 1, 4 metrics... : wait for model 2's start and its first metric
    seen = run_until(db, "hang", lines=1 + 20 + 1 + 1 + 2)
    assert seen[-2:] == [f"{seen[-2].split()[0]} training_start 2", seen[-1]], seen[-3:]


async def test_resume_interrupt_ends_unfinished_models_as_crash(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    crash_while_running(db)
    async with SequentialExecutionEngine(journal=SqliteJournal(db)) as engine:
        recorder = Recorder(engine)
        done, running, queued = engine.list_models()
        await engine.wait_models()
    assert done.status is ModelStatus.Trained
    assert running.status is ModelStatus.Interrupted
    assert queued.status is ModelStatus.Interrupted
    assert running.metrics.intermediates == [1.0]
    assert recorder.end(running).reason == "crash"
    assert recorder.end(queued).reason == "crash"
    models, _ = aionas.load_history(db)
    assert [m.status for m in models] == [
        ModelStatus.Trained,
        ModelStatus.Interrupted,
        ModelStatus.Interrupted,
    ]


async def test_resume_requeue_runs_unfinished_models_again(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    crash_while_running(db)
    ran: list[int] = []

    def counting_factory(params: dict[str, Any]) -> aionas.Model:
        def run(p: dict[str, Any]) -> float:
            ran.append(p["i"])
            return 1.0

        return aionas.FunctionModel(run, params)

    async with SequentialExecutionEngine(
        journal=SqliteJournal(db), resume="requeue", model_factory=counting_factory
    ) as engine:
        recorder = Recorder(engine)
    done, running, queued = engine.list_models()
    assert ran == [1, 2]  # the running and the queued model, not the finished one
    assert done.status is ModelStatus.Trained
    assert recorder.of(done) == []
    assert running.status is ModelStatus.Trained
    assert queued.status is ModelStatus.Trained
    assert engine.state_dict()["model_count"] == 3  # a requeue is not a new submission
    assert submissions_and_ends(db)  # every submission has exactly one end


async def test_requeue_after_a_clean_shutdown(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    gate, queued = Gate(), Reporter()
    async with SequentialExecutionEngine(journal=SqliteJournal(db)) as engine:
        await engine.submit_models(gate, queued)
        await gate.wait_started()
        await engine.shutdown()
    assert {m.status for m in (gate, queued)} == {ModelStatus.Interrupted}
    async with SequentialExecutionEngine(
        journal=SqliteJournal(db), resume="requeue", model_factory=factory
    ) as engine:
        pass
    assert [m.status for m in engine.list_models()] == [ModelStatus.Trained] * 2
    assert submissions_and_ends(db) == [(1, 2), (2, 2)]


async def test_max_duration_continues_after_resume(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    async with SequentialExecutionEngine(journal=SqliteJournal(db), max_duration=0.05) as first:
        await first.submit_models(Gate())  # runs until the budget interrupts it
    async with SequentialExecutionEngine(journal=SqliteJournal(db), max_duration=0.05) as again:
        assert not again.budget_available()
        with pytest.raises(aionas.BudgetExhaustedError, match="max_duration"):
            await again.submit_models(Reporter())


async def test_reader_works_while_an_engine_writes(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    gate = Gate()
    async with SequentialExecutionEngine(journal=SqliteJournal(db)) as engine:
        await engine.submit_models(Reporter({"n": 2}), gate)
        await gate.wait_started()
        await engine.wait_models(engine.list_models()[0])
        models, summary = await anyio.to_thread.run_sync(aionas.load_history, db)
        assert [m.status for m in models] == [ModelStatus.Trained, ModelStatus.Training]
        assert summary.by_status == {"trained": 1, "training": 1}
        gate.release.set()
    models, _ = aionas.load_history(db, experiment="default")
    assert [m.status for m in models] == [ModelStatus.Trained] * 2


async def test_two_experiments_share_a_file(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    async with (
        SequentialExecutionEngine(journal=SqliteJournal(db, "a")) as a,
        SequentialExecutionEngine(journal=SqliteJournal(db, "b")) as b,
    ):
        await a.submit_models(Reporter())
        await b.submit_models(Reporter(), Reporter())
    assert len(aionas.load_history(db, "a").models) == 1
    assert len(aionas.load_history(db, "b").models) == 2
    models, summary = aionas.load_history(db)
    assert summary.experiments == ("a", "b")
    assert sorted(m.experiment for m in models) == ["a", "b", "b"]  # type: ignore[attr-defined]


async def test_second_writer_of_an_experiment_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    async with SequentialExecutionEngine(journal=SqliteJournal(db)) as engine:
        await engine.submit_models(Reporter())
        other = SequentialExecutionEngine(journal=SqliteJournal(db))
        with pytest.raises(aionas.JournalError, match=r"search\.db.*already open for writing"):
            async with other:
                pass
    async with SequentialExecutionEngine(journal=SqliteJournal(db)) as later:
        assert len(later.list_models()) == 1  # free again once the first one closed


def test_second_writer_in_another_process_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    script = f"""
import sys, anyio, aionas, threading
async def main():
    async with aionas.SequentialExecutionEngine(journal=aionas.SqliteJournal({str(db)!r})):
        print("open", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
anyio.run(main)
"""
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "open"

        async def try_open() -> None:
            async with SequentialExecutionEngine(journal=SqliteJournal(db)):
                pass

        with pytest.raises(aionas.JournalError, match=f"process {process.pid}"):
            anyio.run(try_open)
    finally:
        process.communicate("\n", timeout=20)
    assert process.returncode == 0


async def test_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    async with SequentialExecutionEngine(journal=SqliteJournal(db)) as engine:
        await engine.submit_models(Reporter())
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    before = db.read_bytes()
    with pytest.raises(aionas.JournalError, match=r"search\.db.*newer aionas"):
        async with SequentialExecutionEngine(journal=SqliteJournal(db)):
            pass
    with pytest.raises(aionas.JournalError, match="newer aionas"):
        aionas.load_history(db)
    assert db.read_bytes() == before


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"this is not a database at all, just some text" * 20, "not a SQLite database"),
        (b"SQLite format 3\x00" + b"\xff" * 200, "not a SQLite database"),
    ],
)
async def test_corrupt_file_is_refused_and_left_untouched(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    db = tmp_path / "broken.db"
    await anyio.Path(db).write_bytes(content)
    with pytest.raises(aionas.JournalError, match=rf"broken\.db.*{problem}"):
        async with SequentialExecutionEngine(journal=SqliteJournal(db)):
            pass
    assert await anyio.Path(db).read_bytes() == content
    assert sorted(os.listdir(tmp_path)) == ["broken.db"]


async def test_other_sqlite_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    before = db.read_bytes()
    with pytest.raises(aionas.JournalError, match="not an aionas journal"):
        async with SequentialExecutionEngine(journal=SqliteJournal(db)):
            pass
    assert db.read_bytes() == before


async def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(aionas.JournalError, match=r"x\.db.*does not exist"):
        async with SequentialExecutionEngine(journal=SqliteJournal(tmp_path / "no" / "x.db")):
            pass


async def test_path_that_is_a_directory(tmp_path: Path) -> None:
    # A directory this user cannot write: see test_journal_readonly.py.
    target = tmp_path / "is_a_directory.db"
    target.mkdir()
    with pytest.raises(aionas.JournalError, match=r"is_a_directory\.db.*is a directory"):
        async with SequentialExecutionEngine(journal=SqliteJournal(target)):
            pass


async def test_non_json_params_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    async with SequentialExecutionEngine(journal=SqliteJournal(db)) as engine:
        bad = Reporter({"lr": 0.1, "optimizer": object()})
        with pytest.raises(TypeError, match="'optimizer'"):
            await engine.submit_models(Reporter(), bad)
        with pytest.raises(TypeError, match="not a string"):
            await engine.submit_models(Reporter({1: 2}))  # type: ignore[dict-item]
        assert engine.list_models() == []
        assert rows(db, "SELECT COUNT(*) FROM models") == [(0,)]
        good = Reporter()
        await engine.submit_models(good)
    assert good.model_id == 1
    assert rows(db, "SELECT id FROM models") == [(1,)]


async def test_non_json_metric_fails_the_model(tmp_path: Path) -> None:
    class Odd(aionas.Model):
        def execute(self) -> None:
            aionas.report_intermediate_result({"default": 1.0, "blob": object()})

    model = Odd()
    async with SequentialExecutionEngine(
        journal=SqliteJournal(tmp_path / "s.db"), continue_on_failure=True
    ) as engine:
        await engine.submit_models(model, Reporter())
    assert model.status is ModelStatus.Failed
    assert isinstance(model.error, TypeError)
    assert "JSON" in str(model.error)


def test_bad_journal_arguments() -> None:
    with pytest.raises(ValueError, match="experiment"):
        SqliteJournal("x.db", experiment="")
    with pytest.raises(TypeError, match="path"):
        SqliteJournal(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="SqliteJournal"):
        SequentialExecutionEngine(journal="x.db")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="model_factory"):
        SequentialExecutionEngine(journal=SqliteJournal("x.db"), resume="requeue")
    with pytest.raises(ValueError, match="'interrupt' or 'requeue'"):
        SequentialExecutionEngine(resume="again")  # type: ignore[arg-type]


def test_load_history_errors(tmp_path: Path) -> None:
    with pytest.raises(aionas.JournalError, match="does not exist"):
        aionas.load_history(tmp_path / "missing.db")


async def test_load_history_unknown_experiment(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    async with SequentialExecutionEngine(journal=SqliteJournal(db, "real")) as engine:
        await engine.submit_models(Reporter())
    with pytest.raises(aionas.JournalError, match="no experiment 'typo'"):
        aionas.load_history(db, "typo")


async def test_one_journal_object_per_engine(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "s.db")
    async with SequentialExecutionEngine(journal=journal):
        with pytest.raises(aionas.JournalError, match="already"):
            async with SequentialExecutionEngine(journal=journal):
                pass


class FailingJournal(SqliteJournal):
    """Its event writes fail once ``broken`` is set, as on a full disk."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.broken = threading.Event()
        self.failed = threading.Event()

    def record_events(self, events: Sequence[aionas.ModelEvent], total_duration: float) -> None:
        if self.broken.is_set():
            self.failed.set()
            raise sqlite3.OperationalError("database or disk is full")
        super().record_events(events, total_duration)


async def test_journal_write_failure_stops_the_engine_loudly(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    journal = FailingJournal(db)
    gate = Gate()
    with pytest.raises(aionas.JournalError, match="writing to"):
        async with SequentialExecutionEngine(journal=journal) as engine:
            recorder = Recorder(engine)
            await engine.submit_models(gate)
            await gate.wait_started()
            journal.broken.set()
            gate.release.set()
            await engine.wait_models()
    assert journal.failed.is_set()
    committed = {r[0] for r in rows(db, "SELECT seq FROM events")}
    assert [e.seq for e in recorder.events if e.seq not in committed] == []  # none unseen
    assert recorder.ends(gate) == []  # its end was never committed, so never delivered


async def test_requeued_models_have_strict_metrics(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    gate = Gate({"kind": "strict"})
    async with SequentialExecutionEngine(journal=SqliteJournal(db)) as engine:
        await engine.submit_models(gate)
        await gate.wait_started()
        await engine.shutdown()
    assert gate.status is ModelStatus.Interrupted

    class Wrong(aionas.Model):
        def execute(self) -> None:
            aionas.report_intermediate_result(0.5)
            aionas.report_intermediate_result("text")

    class WrongFinal(aionas.Model):
        def execute(self) -> None:
            aionas.report_final_result(True)

    for kind in (Wrong, WrongFinal):
        copy = tmp_path / f"{kind.__name__}.db"
        copy.write_bytes(db.read_bytes())
        async with SequentialExecutionEngine(
            journal=SqliteJournal(copy),
            resume="requeue",
            model_factory=kind,
            continue_on_failure=True,
        ) as again:
            pass
        (model,) = again.list_models()
        assert type(model) is kind
        assert model.status is ModelStatus.Failed, f"{kind.__name__} reported a non-number"
        assert isinstance(model.error, ValueError)
        assert "not a number" in str(model.error)


async def test_numpy_metrics_are_accepted_and_stored(tmp_path: Path) -> None:
    class Numpy(aionas.Model):
        def execute(self) -> None:
            aionas.report_intermediate_result(np.float32(0.5))
            aionas.report_intermediate_result(np.int64(3))
            aionas.report_final_result({"default": np.float64(0.75), "epochs": np.int64(2)})

    db = tmp_path / "s.db"
    model = Numpy()
    async with SequentialExecutionEngine(journal=SqliteJournal(db)) as engine:
        await engine.submit_models(model)
    assert model.status is ModelStatus.Trained, model.error
    assert model.metrics == aionas.Metrics([0.5, 3.0], 0.75)
    (record,), _ = aionas.load_history(db)
    assert record.metrics == model.metrics
    stored = rows(db, "SELECT value, data FROM events WHERE type LIKE '%metric' ORDER BY seq")
    assert stored == [(0.5, "0.5"), (3.0, "3"), (0.75, '{"default": 0.75, "epochs": 2}')]


@pytest.mark.parametrize("journaled", [False, True])
async def test_a_metric_too_large_for_a_float_fails_with_value_error(
    tmp_path: Path, journaled: bool
) -> None:
    class Huge(aionas.Model):
        def execute(self) -> None:
            aionas.report_final_result(10**400)

    model = Huge()
    journal = SqliteJournal(tmp_path / "s.db") if journaled else None
    async with SequentialExecutionEngine(journal=journal, continue_on_failure=True) as engine:
        await engine.submit_models(model)
    assert model.status is ModelStatus.Failed
    assert type(model.error) is ValueError
    assert "10**400" in str(model.error)
    assert len(str(model.error)) < 200
