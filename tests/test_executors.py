"""The executor seam: the engine runs models through any :class:`aionas.Executor`.

The test executor below starts a fresh thread per run (unlike the pipelined
``ThreadExecutor``) and can hold a run between the end of ``execute()`` and the
report of that end, which makes the race between a stop request and a natural
end deterministic.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

import aionas
from aionas.executors import bind_run

from .helpers import Gate, Recorder, Reporter

pytestmark = pytest.mark.anyio


class ThreadPerRun(aionas.Executor):
    """Runs each model in a new thread; optionally holds its end until released."""

    def __init__(self, *, hold_end: bool = False) -> None:
        self.hold_end = hold_end
        self.returned = threading.Event()  # execute() has returned (the end is held)
        self.release = threading.Event()
        self.started: list[aionas.RunHandle] = []
        self.cancelled: list[aionas.RunHandle] = []
        self.threads: list[threading.Thread] = []
        self.opened = self.closed = False

    async def open(self, tasks: Any) -> None:
        self.opened = True

    def start(self, run: aionas.RunHandle) -> None:
        self.started.append(run)
        thread = threading.Thread(target=self._run, args=(run,), daemon=True)
        self.threads.append(thread)
        thread.start()

    def _run(self, run: aionas.RunHandle) -> None:
        error: BaseException | None = None
        with bind_run(run):
            try:
                run.model.execute()
            except BaseException as raised:
                error = raised
        if self.hold_end:
            self.returned.set()
            self.release.wait(10)
        run.finish(error)

    def cancel(self, run: aionas.RunHandle) -> None:
        self.cancelled.append(run)

    async def aclose(self) -> None:
        self.closed = True


async def test_a_custom_executor_runs_models_and_reports_through_the_handle() -> None:
    executor = ThreadPerRun()
    models = [Reporter({"n": 3}) for _ in range(4)]
    async with aionas.SequentialExecutionEngine(executor=executor) as engine:
        recorder = Recorder(engine)
        await engine.submit_models(*models)
        await engine.wait_models()
    assert executor.opened
    assert executor.closed
    assert [run.model for run in executor.started] == models  # in order, one at a time
    assert {run.model_id for run in executor.started} == {m.model_id for m in models}
    for model in models:
        assert recorder.kinds(model) == ["training_start"] + ["intermediate_metric"] * 3 + [
            "final_metric",
            "training_end",
        ]
        assert model.status is aionas.ModelStatus.Trained
        assert model.metric == 3.0
    assert len(executor.threads) == len(models)  # a thread per run: not the default executor


async def test_the_executor_is_told_of_a_stop_request() -> None:
    executor = ThreadPerRun()
    model = Gate()
    async with aionas.SequentialExecutionEngine(executor=executor) as engine:
        await engine.submit_models(model)
        await model.wait_started()
        assert engine.cancel_model(model) is aionas.CancelResult.Stopping
        await engine.wait_models()
    assert [run.model for run in executor.cancelled] == [model]
    assert executor.cancelled[0].cancel_reason == "cancelled"
    assert model.status is aionas.ModelStatus.Interrupted


async def test_a_stop_recorded_before_the_end_wins_even_after_execute_returned() -> None:
    # The rule for a stop that races a natural end: whichever is recorded first wins.
    executor = ThreadPerRun(hold_end=True)
    model = Reporter({"n": 2})
    async with aionas.SequentialExecutionEngine(executor=executor) as engine:
        recorder = Recorder(engine)
        await engine.submit_models(model)
        assert await anyio.to_thread.run_sync(executor.returned.wait, 10)
        assert engine.cancel_model(model) is aionas.CancelResult.Stopping
        executor.release.set()
        await engine.wait_models()
    end = recorder.end(model)
    assert (end.status, end.reason) == (aionas.ModelStatus.Interrupted, "cancelled")
    assert model.status is aionas.ModelStatus.Interrupted


async def test_an_end_recorded_before_the_stop_keeps_its_status() -> None:
    model = Reporter({"n": 1})
    async with aionas.SequentialExecutionEngine() as engine:
        await engine.submit_models(model)
        await engine.wait_models()
        assert engine.cancel_model(model) is aionas.CancelResult.AlreadyEnded
    assert model.status is aionas.ModelStatus.Trained


async def test_an_executor_that_cannot_kill_is_waited_for_after_cancel_grace() -> None:
    executor = ThreadPerRun()
    model = Gate(heed_cancel=False)
    async with aionas.SequentialExecutionEngine(
        executor=executor, max_model_duration=0.05, cancel_grace=0.01
    ) as engine:
        recorder = Recorder(engine)
        await engine.submit_models(model)
        await model.wait_started()
        with anyio.move_on_after(0.3):  # long past the grace: the run is still waited for
            await engine.wait_models()
        assert model.status is aionas.ModelStatus.Training
        model.release.set()
    assert recorder.end(model).reason == "timeout"
    assert engine.statistics().abandoned_threads == 0


async def test_a_thread_executor_serves_one_engine_once() -> None:
    executor = aionas.ThreadExecutor()
    async with aionas.SequentialExecutionEngine(executor=executor):
        pass
    with pytest.raises(RuntimeError, match="one engine"):
        async with aionas.SequentialExecutionEngine(executor=executor):
            pass


def test_executor_must_be_an_executor() -> None:
    with pytest.raises(TypeError, match=r"aionas\.Executor"):
        aionas.SequentialExecutionEngine(executor=object())  # type: ignore[arg-type]


class RefusesToStart(aionas.Executor):
    def start(self, run: aionas.RunHandle) -> None:
        raise RuntimeError("no room on this cluster")


async def test_an_executor_that_cannot_start_a_run_fails_that_model_only() -> None:
    models = [Reporter({"n": 1}) for _ in range(2)]
    async with aionas.SequentialExecutionEngine(
        executor=RefusesToStart(), continue_on_failure=True
    ) as engine:
        recorder = Recorder(engine)
        await engine.submit_models(*models)
        await engine.wait_models()
    for model in models:
        end = recorder.end(model)
        assert (end.status, end.reason) == (aionas.ModelStatus.Failed, "failed")
        assert isinstance(model.error, RuntimeError)
        assert recorder.kinds(model) == ["training_start", "training_end"]


class FailsToOpen(ThreadPerRun):
    async def open(self, tasks: Any) -> None:
        raise OSError("no GPU here")


async def test_an_executor_that_fails_to_open_leaves_the_engine_closed(tmp_path: Any) -> None:
    journal = aionas.SqliteJournal(tmp_path / "j.db")
    engine = aionas.SequentialExecutionEngine(executor=FailsToOpen(), journal=journal)
    with pytest.raises(OSError, match="no GPU"):
        async with engine:
            pass
    with pytest.raises(aionas.EngineClosedError):
        await engine.submit_models(Reporter())
    async with aionas.SequentialExecutionEngine(journal=aionas.SqliteJournal(tmp_path / "j.db")):
        pass  # the journal was released


class EndsAtOnceWhenCancelled(ThreadPerRun):
    """Reports the end from inside cancel(), as a process executor that kills might."""

    def cancel(self, run: aionas.RunHandle) -> None:
        super().cancel(run)
        run.finish(None)


async def test_an_executor_may_report_the_end_from_inside_cancel() -> None:
    model = Gate(heed_cancel=False)
    with anyio.fail_after(20):
        async with aionas.SequentialExecutionEngine(executor=EndsAtOnceWhenCancelled()) as engine:
            recorder = Recorder(engine)
            await engine.submit_models(model, Reporter({"n": 1}))
            await model.wait_started()
            assert engine.cancel_model(model) is aionas.CancelResult.Stopping
            await engine.wait_models()
            model.release.set()
    assert (recorder.end(model).status, recorder.end(model).reason) == (
        aionas.ModelStatus.Interrupted,
        "cancelled",
    )


class RunsInsideStart(aionas.Executor):
    def start(self, run: aionas.RunHandle) -> None:
        error: BaseException | None = None
        with bind_run(run):
            try:
                run.model.execute()
            except BaseException as raised:
                error = raised
        run.finish(error)


async def test_an_executor_that_runs_the_model_inside_start_gets_a_clear_error() -> None:
    models = [Reporter({"n": 1}) for _ in range(3)]
    with anyio.fail_after(20):
        async with aionas.SequentialExecutionEngine(
            executor=RunsInsideStart(), continue_on_failure=True
        ) as engine:
            await engine.submit_models(*models)
    assert all(m.status is aionas.ModelStatus.Failed for m in models)
    assert "must hand the run over" in str(models[0].error)


class Picky(ThreadPerRun):
    """Refuses, at submission, models whose params say so."""

    def __init__(self) -> None:
        super().__init__()
        self.checked: list[aionas.Model] = []

    def check(self, model: aionas.Model) -> None:
        self.checked.append(model)
        if model.params.get("refuse"):
            raise TypeError(f"{type(model).__name__} cannot run here")


async def test_an_executor_check_refuses_a_submission_whole_and_the_engine_goes_on() -> None:
    picky = Picky()
    good, bad, later = Reporter(), Reporter({"refuse": True}), Reporter()

    class Async(aionas.Model):
        async def execute(self) -> None:
            aionas.report_final_result(1.0)

    on_loop = Async({"refuse": True})  # async models run on the loop: not this executor's
    async with aionas.SequentialExecutionEngine(executor=picky) as engine:
        with pytest.raises(TypeError, match="Reporter cannot run here"):
            await engine.submit_models(good, bad)
        assert engine.list_models() == []  # all or nothing
        await engine.submit_models(later, on_loop)
        await engine.wait_models(later, on_loop)
    assert good.status is aionas.ModelStatus.Frozen
    assert later.status is on_loop.status is aionas.ModelStatus.Trained
    assert on_loop not in picky.checked
