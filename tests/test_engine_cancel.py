"""Semantics 5: cancellation maps to Interrupted; cancel_grace; late reports dropped."""

from __future__ import annotations

import contextvars
import threading

import anyio
import pytest

import aionas
from aionas import ModelStatus, SequentialExecutionEngine

from .helpers import Gate, Recorder, Reporter

pytestmark = pytest.mark.anyio


async def test_cancel_queued_model_ends_it_without_starting() -> None:
    gate, queued, after = Gate(), Reporter(), Reporter()
    async with SequentialExecutionEngine() as engine:
        recorder = Recorder(engine)
        await engine.submit_models(gate, queued, after)
        await gate.wait_started()
        engine.cancel_model(queued)
        assert queued.status is ModelStatus.Interrupted
        gate.release.set()
    assert recorder.kinds(queued) == ["training_end"]
    assert recorder.end(queued).reason == "cancelled"
    assert after.status is ModelStatus.Trained


async def test_cancel_running_model_raises_model_interrupted_inside_it() -> None:
    raised: list[BaseException] = []

    class Catching(Gate):
        def execute(self) -> None:
            try:
                super().execute()
            except aionas.ModelInterrupted as error:
                raised.append(error)
                raise

    gate, after = Catching(), Reporter()
    async with SequentialExecutionEngine() as engine:
        recorder = Recorder(engine)
        await engine.submit_models(gate, after)
        await gate.wait_started()
        engine.cancel_model(gate)
        await engine.wait_models(gate)
        assert gate.status is ModelStatus.Interrupted
    assert len(raised) == 1
    end = recorder.end(gate)
    assert (end.status, end.reason) == (ModelStatus.Interrupted, "cancelled")
    assert after.status is ModelStatus.Trained


async def test_report_after_cancel_raises_and_records_nothing() -> None:
    cancelled = threading.Event()
    outcome: list[str] = []

    class ReportsAfterCancel(aionas.Model):
        def execute(self) -> None:
            aionas.report_intermediate_result(1.0)
            cancelled.wait(10)
            try:
                aionas.report_intermediate_result(2.0)
            except aionas.ModelInterrupted:
                outcome.append("interrupted")
                raise

    model = ReportsAfterCancel()
    async with SequentialExecutionEngine() as engine:
        async with engine.subscribe("intermediate_metric") as events:
            await engine.submit_models(model)
            first = await events.__anext__()
            assert first.metric == 1.0
            engine.cancel_model(model)
            cancelled.set()
    assert outcome == ["interrupted"]
    assert model.metrics.intermediates == [1.0]
    assert model.status is ModelStatus.Interrupted


async def test_cancel_ended_model_is_a_no_op_and_unknown_model_an_error() -> None:
    model = Reporter()
    async with SequentialExecutionEngine() as engine:
        await engine.submit_models(model)
        await engine.wait_models(model)
        engine.cancel_model(model)
        assert model.status is ModelStatus.Trained
        with pytest.raises(aionas.ModelStateError, match="never submitted"):
            engine.cancel_model(Reporter())


async def test_model_returning_after_cancel_request_is_interrupted() -> None:
    gate = Gate(heed_cancel=False)
    async with SequentialExecutionEngine() as engine:
        recorder = Recorder(engine)
        await engine.submit_models(gate)
        await gate.wait_started()
        engine.cancel_model(gate)
        gate.release.set()
    assert gate.status is ModelStatus.Interrupted
    assert recorder.end(gate).reason == "cancelled"


async def test_without_grace_the_engine_waits_so_two_models_never_overlap() -> None:
    stubborn, after = Gate(heed_cancel=False), Gate()
    async with SequentialExecutionEngine() as engine:
        await engine.submit_models(stubborn, after)
        await stubborn.wait_started()
        engine.cancel_model(stubborn)
        await anyio.wait_all_tasks_blocked()
        assert stubborn.status is ModelStatus.Training
        assert not after.started.is_set()
        stubborn.release.set()
        await after.wait_started()
        assert stubborn.returned.is_set()
        after.release.set()
    assert stubborn.status is ModelStatus.Interrupted


async def test_cancel_grace_abandons_a_stuck_thread_and_drops_its_late_reports() -> None:
    late_outcome: list[str] = []

    class Stuck(Gate):
        def execute(self) -> None:
            super().execute()  # ignores cancellation until released
            try:
                aionas.report_intermediate_result(99.0)
            except aionas.ModelInterrupted:
                late_outcome.append("interrupted")

    stuck, after = Stuck(heed_cancel=False), Reporter({"n": 2})
    async with SequentialExecutionEngine(cancel_grace=0.05) as engine:
        recorder = Recorder(engine)
        await engine.submit_models(stuck, after)
        await stuck.wait_started()
        engine.cancel_model(stuck)
        await engine.wait_models(stuck, after)
        assert stuck.status is ModelStatus.Interrupted
        assert after.status is ModelStatus.Trained
        stuck.release.set()
        await stuck.wait_returned()
        stats = engine.statistics()
    assert late_outcome == ["interrupted"]
    assert stats.abandoned_threads == 1
    assert stats.dropped_reports == 1
    assert recorder.end(stuck).reason == "cancelled"
    assert 99.0 not in stuck.metrics.intermediates
    assert after.metrics.intermediates == [0.0, 1.0]
    assert all(getattr(e, "metric", None) != 99.0 for e in recorder.events)


async def test_thread_of_a_model_cannot_report_into_the_next_one() -> None:
    """The binding is per run: a helper thread of A reporting late is never B's."""
    helper_done = threading.Event()
    proceed = threading.Event()
    late: list[str] = []

    class Spawner(aionas.Model):
        def execute(self) -> None:
            context = contextvars.copy_context()

            def helper() -> None:
                proceed.wait(10)
                try:
                    aionas.report_intermediate_result(42.0)
                except aionas.ModelInterrupted:
                    late.append("dropped")
                helper_done.set()

            threading.Thread(target=lambda: context.run(helper)).start()

    spawner, second = Spawner(), Gate()
    async with SequentialExecutionEngine() as engine:
        recorder = Recorder(engine)
        await engine.submit_models(spawner, second)
        await second.wait_started()
        proceed.set()
        assert await anyio.to_thread.run_sync(helper_done.wait, 10)
        second.release.set()
    assert late == ["dropped"]
    assert second.metrics.intermediates == []
    assert all(getattr(e, "metric", None) != 42.0 for e in recorder.events)
    assert engine.statistics().dropped_reports == 1


class Sleeper(aionas.Model):
    """An ``async def execute`` that waits forever on the loop, until cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.started = anyio.Event()

    async def execute(self) -> None:
        self.started.set()
        await anyio.sleep_forever()


async def test_async_execute_is_cancelled_at_its_next_await() -> None:
    model = Sleeper()
    async with SequentialExecutionEngine() as engine:
        recorder = Recorder(engine)
        await engine.submit_models(model)
        await model.started.wait()
        engine.cancel_model(model)
    assert model.status is ModelStatus.Interrupted
    assert recorder.end(model).reason == "cancelled"


async def test_host_cancellation_interrupts_async_model() -> None:
    model = Sleeper()
    with anyio.move_on_after(30) as scope:
        async with SequentialExecutionEngine() as engine:
            await engine.submit_models(model)
            await model.started.wait()
            scope.cancel()
    assert model.status is ModelStatus.Interrupted
