"""Semantics 2 and 3: submitting, validation, backpressure, order, one at a time."""

from __future__ import annotations

import threading

import anyio
import pytest
from anyio import wait_all_tasks_blocked

import aionas
from aionas import ModelStatus, SequentialExecutionEngine

from .helpers import Gate, Recorder, Reporter

pytestmark = pytest.mark.anyio


async def test_submit_returns_once_queued_not_trained() -> None:
    gate = Gate()
    async with SequentialExecutionEngine() as engine:
        await engine.submit_models(gate)
        assert gate.status in (ModelStatus.Frozen, ModelStatus.Training)
        await gate.wait_started()
        assert gate.status is ModelStatus.Training
        assert not engine.idle_worker_available()
        gate.release.set()
    assert gate.status is ModelStatus.Trained


async def test_non_model_is_a_type_error_and_nothing_is_queued() -> None:
    good = Reporter()
    async with SequentialExecutionEngine() as engine:
        with pytest.raises(TypeError, match="FunctionModel"):
            await engine.submit_models(good, "not a model")  # type: ignore[arg-type]
        assert engine.list_models() == []
        assert engine.statistics().submitted == 0
        await engine.submit_models(good)  # still usable
    assert good.status is ModelStatus.Trained


@pytest.mark.parametrize("status", [ModelStatus.Initialized, ModelStatus.Mutating])
async def test_unfrozen_model_is_rejected(status: ModelStatus) -> None:
    model = Reporter()
    model.status = status
    async with SequentialExecutionEngine() as engine:
        with pytest.raises(aionas.ModelStateError, match="not frozen"):
            await engine.submit_models(Reporter(), model)
        assert engine.list_models() == []


async def test_completed_model_is_rejected_until_retrying() -> None:
    model = Reporter()
    async with SequentialExecutionEngine() as engine:
        recorder = Recorder(engine)
        await engine.submit_models(model)
        await engine.wait_models(model)
        with pytest.raises(aionas.ModelStateError, match="Retrying"):
            await engine.submit_models(model)
        model.status = ModelStatus.Retrying
        await engine.submit_models(model)
    assert model.status is ModelStatus.Trained
    assert len(recorder.ends(model)) == 2
    assert engine.list_models() == [model]
    assert engine.statistics().submitted == 2


async def test_double_submission_is_rejected() -> None:
    gate, other = Gate(), Reporter()
    async with SequentialExecutionEngine() as engine:
        await engine.submit_models(gate, other)
        await gate.wait_started()
        for again in ((gate,), (other,), (Reporter(),) * 2):
            with pytest.raises(aionas.ModelStateError, match="already queued or running"):
                await engine.submit_models(*again)
        assert engine.list_models() == [gate, other]
        gate.release.set()


async def test_model_queued_in_one_engine_is_rejected_by_another() -> None:
    gate = Gate()
    async with SequentialExecutionEngine() as first, SequentialExecutionEngine() as second:
        await first.submit_models(gate)
        with pytest.raises(aionas.ModelStateError, match="already queued"):
            await second.submit_models(gate)
        gate.release.set()


async def test_subclass_that_skips_init_gets_a_clear_error() -> None:
    class Lazy(aionas.Model):
        def __init__(self) -> None:
            pass

        def execute(self) -> None:
            pass

    async with SequentialExecutionEngine() as engine:
        with pytest.raises(aionas.ModelStateError, match=r"super\(\).__init__"):
            await engine.submit_models(Lazy())


async def test_max_queue_size_makes_submit_wait_for_room() -> None:
    gate, queued, waiting = Gate(), Reporter(), Reporter()
    submitted = anyio.Event()

    async def submit_late() -> None:
        await engine.submit_models(waiting)
        submitted.set()

    async with SequentialExecutionEngine(max_queue_size=1) as engine:
        await engine.submit_models(gate)
        await gate.wait_started()
        await engine.submit_models(queued)  # fills the queue
        async with anyio.create_task_group() as tg:
            tg.start_soon(submit_late)
            await wait_all_tasks_blocked()
            assert not submitted.is_set()
            assert engine.statistics().queued == 1
            gate.release.set()
            await submitted.wait()
    assert [m.status for m in (gate, queued, waiting)] == [ModelStatus.Trained] * 3
    assert engine.list_models() == [gate, queued, waiting]


async def test_models_run_one_at_a_time_in_submission_order() -> None:
    lock = threading.Lock()
    active = 0
    peak = 0
    order: list[int] = []

    def train(params: dict[str, int]) -> float:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        order.append(params["i"])
        aionas.report_intermediate_result(params["i"])
        with lock:
            active -= 1
        return float(params["i"])

    models = [aionas.FunctionModel(train, {"i": i}) for i in range(30)]
    async with SequentialExecutionEngine() as engine:
        recorder = Recorder(engine)
        for chunk in (models[:10], models[10:25], models[25:]):
            await engine.submit_models(*chunk)
    assert order == list(range(30))
    assert peak == 1
    starts = [e.model for e in recorder.events if isinstance(e, aionas.TrainingStartEvent)]
    assert starts == models
    for model in models:
        assert recorder.kinds(model) == [
            "training_start",
            "intermediate_metric",
            "final_metric",
            "training_end",
        ]


async def test_seq_increases_by_one_per_event() -> None:
    async with SequentialExecutionEngine() as engine:
        recorder = Recorder(engine)
        await engine.submit_models(*(Reporter({"n": 3}) for _ in range(5)))
    seqs = [e.seq for e in recorder.events]
    assert seqs == list(range(len(seqs)))
    stamps = [e.timestamp for e in recorder.events]
    assert stamps == sorted(stamps)
    assert engine.statistics().events_published == len(seqs)
