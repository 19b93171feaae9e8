"""Semantics 1: starting, leaving the block, shutdown, cancellation of the host."""

from __future__ import annotations

import anyio
import pytest

import aionas
from aionas import ModelStatus, SequentialExecutionEngine

from .helpers import Gate, Recorder, Reporter

pytestmark = pytest.mark.anyio


async def test_leaving_block_waits_for_every_model_and_event() -> None:
    models = [Reporter({"n": 5}) for _ in range(4)]
    async with SequentialExecutionEngine() as engine:
        recorder = Recorder(engine)
        await engine.submit_models(*models)
    for model in models:
        assert model.status is ModelStatus.Trained
        assert recorder.kinds(model)[-1] == "training_end"
        assert len(recorder.of(model)) == 1 + 5 + 1 + 1


async def test_leaving_block_waits_for_models_submitted_by_callbacks() -> None:
    first, follow_up = Reporter(), Reporter()

    async def on_end(event: aionas.TrainingEndEvent) -> None:
        if event.model is first:
            await engine.submit_models(follow_up)

    async with SequentialExecutionEngine() as engine:
        recorder = Recorder(engine)
        engine.register_model_event_callback("training_end", on_end)
        await engine.submit_models(first)
    assert follow_up.status is ModelStatus.Trained
    assert recorder.end(follow_up).status is ModelStatus.Trained


async def test_shutdown_interrupts_running_and_ends_queued() -> None:
    running, queued = Gate(), Reporter()
    async with SequentialExecutionEngine() as engine:
        recorder = Recorder(engine)
        await engine.submit_models(running, queued)
        await running.wait_started()
        await engine.shutdown()
        assert engine.idle_worker_available()
        with pytest.raises(aionas.EngineClosedError):
            await engine.submit_models(Reporter())
    assert running.status is ModelStatus.Interrupted
    assert queued.status is ModelStatus.Interrupted
    assert recorder.end(running).reason == "shutdown"
    assert recorder.end(queued).reason == "shutdown"
    assert recorder.kinds(queued) == ["training_end"]


async def test_shutdown_twice_and_before_start_is_harmless() -> None:
    engine = SequentialExecutionEngine()
    await engine.shutdown()
    await engine.shutdown()
    with pytest.raises(aionas.EngineClosedError):
        await engine.submit_models(Reporter())


async def test_exception_in_block_shuts_down_and_propagates() -> None:
    running, queued = Gate(), Reporter()
    with pytest.raises(KeyError, match="strategy bug"):
        async with SequentialExecutionEngine() as engine:
            recorder = Recorder(engine)
            await engine.submit_models(running, queued)
            await running.wait_started()
            raise KeyError("strategy bug")
    assert running.status is ModelStatus.Interrupted
    assert queued.status is ModelStatus.Interrupted
    assert recorder.end(running).reason == "shutdown"
    assert recorder.end(queued).reason == "shutdown"


async def test_cancelling_the_host_scope_interrupts_and_still_delivers() -> None:
    running, queued = Gate(), Reporter()
    received: list[aionas.ModelEvent] = []
    with anyio.CancelScope() as scope:
        async with SequentialExecutionEngine() as engine:
            engine.register_model_event_callback("training_end", received.append)
            await engine.submit_models(running, queued)
            await running.wait_started()
            scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert running.status is ModelStatus.Interrupted
    assert queued.status is ModelStatus.Interrupted
    # The queued model is ended at once; the running one when its thread notices.
    assert [e.model for e in received] == [queued, running]
    assert all(e.status is ModelStatus.Interrupted for e in received)


async def test_cancelling_while_the_block_exits_normally() -> None:
    running = Gate()
    with anyio.CancelScope() as scope:
        async with SequentialExecutionEngine() as engine:
            recorder = Recorder(engine)
            await engine.submit_models(running)
            await running.wait_started()
            scope.cancel()  # takes effect while __aexit__ waits for the model
    assert scope.cancelled_caught
    assert running.status is ModelStatus.Interrupted
    assert len(recorder.ends(running)) == 1


async def test_use_outside_the_block_raises_engine_closed() -> None:
    engine = SequentialExecutionEngine()
    with pytest.raises(aionas.EngineClosedError, match="async with"):
        await engine.submit_models(Reporter())
    async with engine:
        await engine.submit_models(Reporter())
    with pytest.raises(aionas.EngineClosedError):
        await engine.submit_models(Reporter())
    with pytest.raises(aionas.EngineClosedError, match="runs once"):
        async with engine:
            pass


async def test_empty_block() -> None:
    async with SequentialExecutionEngine() as engine:
        assert engine.idle_worker_available()
    assert engine.list_models() == []


def test_settings_have_one_source_of_truth_and_are_fixed_at_creation() -> None:
    engine = SequentialExecutionEngine(max_model_count=3, cancel_grace=0.5)
    assert (engine.max_model_count, engine.cancel_grace) == (3, 0.5)
    with pytest.raises(AttributeError, match="fixed when the engine is created"):
        engine.max_model_count = 10  # type: ignore[misc]
