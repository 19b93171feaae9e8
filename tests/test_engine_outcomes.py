"""Semantics 4: how a run ends: Trained, Failed, and interrupts from inside execute()."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import aionas
from aionas import ModelStatus, SequentialExecutionEngine

from .helpers import Boom, Gate, Recorder, Reporter

pytestmark = pytest.mark.anyio


async def test_normal_return_is_trained_even_without_final_metric() -> None:
    class Silent(aionas.Model):
        def execute(self) -> None:
            aionas.report_intermediate_result(0.3)

    model = Silent()
    async with SequentialExecutionEngine() as engine:
        recorder = Recorder(engine)
        await engine.submit_models(model)
    assert model.status is ModelStatus.Trained
    assert model.metric is None
    assert model.metrics.intermediates == [0.3]
    end = recorder.end(model)
    assert (end.status, end.reason, end.error) == (ModelStatus.Trained, "completed", None)


async def test_function_model_return_value_becomes_final_metric() -> None:
    reported = aionas.FunctionModel(lambda p: aionas.report_final_result(0.9) or 0.1, {})
    returned = aionas.FunctionModel(lambda p: p["x"] + 1, {"x": 1})
    async with SequentialExecutionEngine() as engine:
        recorder = Recorder(engine)
        await engine.submit_models(reported, returned)
    assert reported.metric == 0.9  # a reported final metric wins over the return value
    assert returned.metric == 2.0
    assert recorder.kinds(returned) == ["training_start", "final_metric", "training_end"]


async def test_trial_api_is_bound_to_the_running_model() -> None:
    seen: list[Any] = []

    class Introspect(aionas.Model):
        def execute(self) -> None:
            seen.append((aionas.get_next_parameter(), aionas.current_model()))

    model = Introspect({"depth": 3})
    async with SequentialExecutionEngine() as engine:
        await engine.submit_models(model)
    assert seen == [({"depth": 3}, model)]


async def test_exception_fails_the_model_and_stops_the_engine(
    caplog: pytest.LogCaptureFixture,
) -> None:
    boom, queued = Boom(), Reporter()
    with pytest.raises(ValueError, match="boom") as info:
        async with SequentialExecutionEngine() as engine:
            recorder = Recorder(engine)
            await engine.submit_models(boom, queued)
            await engine.wait_models()
            with pytest.raises(aionas.EngineClosedError, match="continue_on_failure"):
                await engine.submit_models(Reporter())
    assert type(info.value) is ValueError  # the original, not an ExceptionGroup
    assert boom.status is ModelStatus.Failed
    assert boom.error is info.value
    assert boom.metrics.intermediates == [1.0]
    end = recorder.end(boom)
    assert (end.status, end.reason, end.error) == (ModelStatus.Failed, "failed", info.value)
    assert queued.status is ModelStatus.Interrupted
    assert recorder.end(queued).reason == "shutdown"
    failures = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    assert failures
    assert failures[0].exc_info is not None
    assert failures[0].exc_info[1] is info.value


async def test_continue_on_failure_goes_on() -> None:
    boom, after = Boom(), Reporter()
    async with SequentialExecutionEngine(continue_on_failure=True) as engine:
        await engine.submit_models(boom, after)
    assert boom.status is ModelStatus.Failed
    assert isinstance(boom.error, ValueError)
    assert after.status is ModelStatus.Trained
    assert after.error is None
    stats = engine.statistics()
    assert (stats.trained, stats.failed, stats.interrupted) == (1, 1, 0)


async def test_bad_metric_fails_the_model_and_engine_stays_usable() -> None:
    class BadMetric(aionas.Model):
        def execute(self) -> None:
            aionas.report_intermediate_result({"acc": 0.5})

    class NotNumber(aionas.Model):
        def execute(self) -> None:
            aionas.report_final_result("0.5")

    bad, not_number, good = BadMetric(), NotNumber(), Reporter()
    async with SequentialExecutionEngine(continue_on_failure=True) as engine:
        recorder = Recorder(engine)
        await engine.submit_models(bad, not_number, good)
    assert bad.status is ModelStatus.Failed
    assert "'default'" in str(bad.error)
    assert "not a number" in str(not_number.error)
    assert bad.metrics.intermediates == []  # nothing half-applied
    assert recorder.kinds(bad) == ["training_start", "training_end"]
    assert good.status is ModelStatus.Trained


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
async def test_interrupt_inside_execute_is_interrupted_and_reraised(
    interrupt: type[BaseException],
) -> None:
    class Interrupting(aionas.Model):
        def execute(self) -> None:
            raise interrupt()

    model, queued = Interrupting(), Gate()
    with pytest.raises(interrupt):
        async with SequentialExecutionEngine(continue_on_failure=True) as engine:
            recorder = Recorder(engine)
            await engine.submit_models(model, queued)
            await engine.wait_models()
    assert model.status is ModelStatus.Interrupted
    assert model.error is None
    assert isinstance(recorder.end(model).error, interrupt)
    assert queued.status is ModelStatus.Interrupted
    assert not queued.started.is_set()


async def test_async_execute_runs_on_the_loop() -> None:
    import threading

    threads: list[int] = []

    class AsyncModel(aionas.Model):
        async def execute(self) -> None:
            threads.append(threading.get_ident())
            aionas.report_intermediate_result(0.5)
            aionas.report_final_result(aionas.get_next_parameter()["x"])  # type: ignore[index]

    async def fn(params: dict[str, Any]) -> float:
        return float(params["x"])

    model, function = AsyncModel({"x": 3}), aionas.FunctionModel(fn, {"x": 4})
    async with SequentialExecutionEngine() as engine:
        recorder = Recorder(engine)
        await engine.submit_models(model, Reporter(), function)
    assert threads == [threading.get_ident()]
    assert model.status is ModelStatus.Trained
    assert model.metrics == aionas.Metrics([0.5], 3.0)
    assert recorder.kinds(model) == [
        "training_start",
        "intermediate_metric",
        "final_metric",
        "training_end",
    ]
    assert function.metric == 4.0
