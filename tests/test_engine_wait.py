"""Semantics 9: waiting without polling, and what an engine reports about itself."""

from __future__ import annotations

import anyio
import pytest

import aionas
from aionas import ModelStatus, SequentialExecutionEngine

from .helpers import Boom, Gate, Reporter

pytestmark = pytest.mark.anyio


async def test_wait_models_returns_after_callbacks_have_seen_the_end() -> None:
    best: list[float] = []

    async def update_state(event: aionas.TrainingEndEvent) -> None:
        await anyio.lowlevel.checkpoint()
        best.append(event.model.metric)

    models = [Reporter({"n": i}) for i in range(1, 4)]
    async with SequentialExecutionEngine() as engine:
        engine.register_model_event_callback("training_end", update_state)
        await engine.submit_models(*models)
        await engine.wait_models(models[0])
        assert best[:1] == [1.0]
        await engine.wait_models()
        assert best == [1.0, 2.0, 3.0]


async def test_wait_models_waits_only_for_the_given_models() -> None:
    quick, slow = Reporter(), Gate()
    async with SequentialExecutionEngine() as engine:
        await engine.submit_models(quick, slow)
        await engine.wait_models(quick)
        assert quick.status is ModelStatus.Trained
        assert slow.status is ModelStatus.Training
        slow.release.set()
        await engine.wait_models(slow)
        assert slow.status is ModelStatus.Trained


async def test_wait_models_timeout() -> None:
    gate = Gate()
    async with SequentialExecutionEngine() as engine:
        await engine.submit_models(gate)
        with pytest.raises(TimeoutError):
            await engine.wait_models(gate, timeout=0.01)
        assert gate.status is ModelStatus.Training  # waiting timed out, the model did not
        gate.release.set()


async def test_wait_models_with_no_models_waits_for_everything() -> None:
    async with SequentialExecutionEngine() as engine:
        await engine.wait_models()  # nothing submitted: returns at once
        models = [Reporter() for _ in range(5)]
        await engine.submit_models(*models)
        await engine.wait_models()
        assert all(m.status is ModelStatus.Trained for m in models)


async def test_wait_models_rejects_unknown_models_and_callbacks() -> None:
    problems: list[BaseException] = []

    async def waits_in_callback(event: aionas.ModelEvent) -> None:
        try:
            await engine.wait_models(event.model)
        except aionas.ModelStateError as error:
            problems.append(error)

    async with SequentialExecutionEngine() as engine:
        with pytest.raises(aionas.ModelStateError, match="never submitted"):
            await engine.wait_models(Reporter())
        with pytest.raises(TypeError):
            await engine.wait_models("model")  # type: ignore[arg-type]
        engine.register_model_event_callback("training_end", waits_in_callback)
        await engine.submit_models(Reporter())
    assert len(problems) == 1
    assert "callback" in str(problems[0])


async def test_list_models_is_a_new_list_in_submission_order() -> None:
    models = [Reporter(), Boom(), Reporter()]
    async with SequentialExecutionEngine(continue_on_failure=True) as engine:
        await engine.submit_models(*models)
        await engine.wait_models()
        listed = engine.list_models()
        assert listed == models
        listed.clear()
        assert engine.list_models() == models
        assert engine.list_models(ModelStatus.Trained) == [models[0], models[2]]
        assert engine.list_models("failed") == [models[1]]
        assert engine.list_models(ModelStatus.Interrupted) == []
        with pytest.raises(ValueError, match="bogus"):
            engine.list_models("bogus")


async def test_idle_worker_available_and_statistics() -> None:
    gate, queued = Gate(), Reporter({"n": 2})
    async with SequentialExecutionEngine(continue_on_failure=True) as engine:
        assert engine.idle_worker_available()
        await engine.submit_models(gate, queued, Boom())
        await gate.wait_started()
        stats = engine.statistics()
        assert (stats.submitted, stats.queued, stats.running) == (3, 2, 1)
        assert not engine.idle_worker_available()
        gate.release.set()
        await engine.wait_models()
        assert engine.idle_worker_available()
        stats = engine.statistics()
    assert (stats.submitted, stats.queued, stats.running) == (3, 0, 0)
    assert (stats.trained, stats.failed, stats.interrupted) == (2, 1, 0)
    # start+end for all three, two intermediates and a final, one intermediate of Boom
    assert stats.events_published == 3 * 2 + 3 + 1
    assert stats.events_delivered == stats.events_published
    assert stats.total_duration > 0
    assert stats.callback_errors == 0
    assert stats.dropped_reports == 0
