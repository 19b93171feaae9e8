"""What a hostile user found: cancellation at awkward moments, odd callbacks and metrics."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

import aionas

from .helpers import Gate, Recorder, Reporter

pytestmark = pytest.mark.anyio


async def test_cancelling_the_host_while_the_engine_enters_never_hangs(tmp_path: Path) -> None:
    for delay in (0, 0.0005, 0.002):
        journal = aionas.SqliteJournal(tmp_path / "j.db")
        with anyio.fail_after(20):
            with anyio.move_on_after(delay):
                async with aionas.SequentialExecutionEngine(journal=journal):
                    await anyio.sleep(5)
    async with aionas.SequentialExecutionEngine(journal=aionas.SqliteJournal(tmp_path / "j.db")):
        pass  # the journal was released every time


class HeldSubmission(aionas.SqliteJournal):
    """A journal whose next submission write waits until released."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writing = threading.Event()
        self.release = threading.Event()

    def record_submissions(self, *args: Any) -> None:
        self.writing.set()
        assert self.release.wait(10)
        super().record_submissions(*args)


async def test_cancel_during_a_journaled_submit_ends_the_model_without_starting(
    tmp_path: Path,
) -> None:
    journal = HeldSubmission(tmp_path / "j.db")
    model = Reporter({"n": 1})
    with anyio.fail_after(20):
        async with aionas.SequentialExecutionEngine(journal=journal) as engine:
            recorder = Recorder(engine)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(engine.submit_models, model)
                assert await anyio.to_thread.run_sync(journal.writing.wait, 10)
                assert engine.cancel_model(model) is aionas.CancelResult.Ended
                journal.release.set()
    assert recorder.kinds(model) == ["training_end"]
    assert recorder.end(model).reason == "cancelled"


async def test_a_cancelled_journaled_submit_still_queues_or_ends_its_models(
    tmp_path: Path,
) -> None:
    journal = HeldSubmission(tmp_path / "j.db")
    model = Reporter({"n": 1})
    with anyio.fail_after(20):
        async with aionas.SequentialExecutionEngine(journal=journal) as engine:
            recorder = Recorder(engine)
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(engine.submit_models, model)
                    assert await anyio.to_thread.run_sync(journal.writing.wait, 10)
                    scope.cancel()
                    journal.release.set()
    assert len(recorder.ends(model)) == 1
    assert model.status is aionas.ModelStatus.Trained


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_asyncio_native_cancel_during_a_journaled_submit_never_orphans_it(
    tmp_path: Path,
) -> None:
    journal = HeldSubmission(tmp_path / "j.db")
    model = Reporter({"n": 1})
    with anyio.fail_after(20):
        async with aionas.SequentialExecutionEngine(journal=journal) as engine:
            recorder = Recorder(engine)
            task = asyncio.ensure_future(engine.submit_models(model))
            assert await anyio.to_thread.run_sync(journal.writing.wait, 10)
            task.cancel()  # asyncio's own cancellation goes through anyio's shield
            journal.release.set()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert len(recorder.ends(model)) == 1


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout")
async def test_asyncio_timeout_during_the_exit_still_ends_and_closes_everything(
    tmp_path: Path,
) -> None:
    model = Gate(heed_cancel=False)
    path = tmp_path / "j.db"
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            async with aionas.SequentialExecutionEngine(
                journal=aionas.SqliteJournal(path)
            ) as engine:
                recorder = Recorder(engine)
                await engine.submit_models(model)
                await model.wait_started()
                threading.Timer(0.5, model.release.set).start()  # notices only later
                await anyio.sleep(5)
    assert model.status is aionas.ModelStatus.Interrupted
    assert recorder.end(model).status is aionas.ModelStatus.Interrupted
    async with aionas.SequentialExecutionEngine(journal=aionas.SqliteJournal(path)):
        pass  # the journal was closed


async def test_a_dict_metric_changed_after_reporting_keeps_what_was_reported(
    tmp_path: Path,
) -> None:
    class Reuses(aionas.Model):
        def execute(self) -> None:
            metric: dict[str, Any] = {"default": 0.0, "extra": []}
            for epoch in range(3):
                metric["default"] = epoch / 10
                metric["extra"].append(epoch)
                aionas.report_intermediate_result(metric)
            metric["extra"].append(object())  # not storable, but after the reports

    model = Reuses()
    async with aionas.SequentialExecutionEngine(
        journal=aionas.SqliteJournal(tmp_path / "j.db")
    ) as engine:
        recorder = Recorder(engine)
        await engine.submit_models(model)
    seen = [e.metric for e in recorder.of(model) if isinstance(e, aionas.IntermediateMetricEvent)]
    assert [m["default"] for m in seen] == [0.0, 0.1, 0.2]
    assert [m["extra"] for m in seen] == [[0], [0, 1], [0, 1, 2]]
    (record,) = aionas.load_history(tmp_path / "j.db").models
    assert record.metrics.intermediates == [0.0, 0.1, 0.2]


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


async def test_an_error_that_cannot_be_printed_is_journaled_like_any(tmp_path: Path) -> None:
    class Fails(aionas.Model):
        def execute(self) -> None:
            raise Unprintable()

    async with aionas.SequentialExecutionEngine(
        journal=aionas.SqliteJournal(tmp_path / "j.db"), continue_on_failure=True
    ) as engine:
        await engine.submit_models(Fails(), Reporter({"n": 1}))
    statuses = [m.status for m in aionas.load_history(tmp_path / "j.db").models]
    assert statuses == [aionas.ModelStatus.Failed, aionas.ModelStatus.Trained]


async def test_a_callback_that_raises_system_exit_changes_nothing_else() -> None:
    def leaves(event: aionas.ModelEvent) -> None:
        raise SystemExit(3)

    models = [Reporter({"n": 1}) for _ in range(3)]
    async with aionas.SequentialExecutionEngine() as engine:
        engine.register_model_event_callback("training_end", leaves)
        recorder = Recorder(engine)
        await engine.submit_models(*models)
    assert [len(recorder.ends(m)) for m in models] == [1, 1, 1]
    assert engine.statistics().callback_errors == 3


async def test_an_async_callback_that_never_returns_cannot_hold_the_exit() -> None:
    async def stuck(event: aionas.ModelEvent) -> None:
        await anyio.sleep_forever()

    with anyio.fail_after(20):
        async with aionas.SequentialExecutionEngine(subscriber_grace=0.1) as engine:
            engine.register_model_event_callback("training_end", stuck)
            await engine.submit_models(Reporter({"n": 1}))
            with anyio.move_on_after(0.2):
                await engine.wait_models()
    assert engine.statistics().callback_errors == 1


async def test_statistics_after_requeue_count_the_resubmissions(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    gate = Gate()
    async with aionas.SequentialExecutionEngine(journal=aionas.SqliteJournal(path)) as engine:
        await engine.submit_models(gate, Reporter({"n": 1}))
        await gate.wait_started()
        await engine.shutdown()
    async with aionas.SequentialExecutionEngine(
        journal=aionas.SqliteJournal(path),
        resume="requeue",
        model_factory=lambda params: Reporter({"n": 1, **params}),
    ) as engine:
        await engine.wait_models()
    stats = engine.statistics()
    assert stats.submitted == stats.trained + stats.failed + stats.interrupted == 2
