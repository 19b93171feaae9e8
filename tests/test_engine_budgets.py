"""Semantics 2, 6, 10 and 11: budgets enforced, time budgets cut in, state carried over."""

from __future__ import annotations

import math

import pytest

import aionas
from aionas import ModelStatus, SequentialExecutionEngine

from .helpers import Gate, Recorder, Reporter

pytestmark = pytest.mark.anyio


async def test_max_model_count_is_enforced_all_or_nothing() -> None:
    async with SequentialExecutionEngine(max_model_count=3) as engine:
        await engine.submit_models(Reporter(), Reporter())
        assert engine.budget_available()
        with pytest.raises(aionas.BudgetExhaustedError, match="1 left"):
            await engine.submit_models(Reporter(), Reporter())
        assert len(engine.list_models()) == 2
        await engine.submit_models(Reporter())
        assert not engine.budget_available()
        with pytest.raises(aionas.BudgetExhaustedError, match="max_model_count=3"):
            await engine.submit_models(Reporter())
    assert [m.status for m in engine.list_models()] == [ModelStatus.Trained] * 3


async def test_max_model_duration_times_out_a_model() -> None:
    slow, after = Gate(), Reporter()
    async with SequentialExecutionEngine(max_model_duration=0.05) as engine:
        recorder = Recorder(engine)
        await engine.submit_models(slow, after)
    assert slow.status is ModelStatus.Interrupted
    assert recorder.end(slow).reason == "timeout"
    assert after.status is ModelStatus.Trained


async def test_max_duration_interrupts_running_ends_queued_and_blocks_submits() -> None:
    slow, queued = Gate(), Reporter()
    async with SequentialExecutionEngine(max_duration=0.05) as engine:
        recorder = Recorder(engine)
        await engine.submit_models(slow, queued)
        await engine.wait_models()
        assert not engine.budget_available()
        with pytest.raises(aionas.BudgetExhaustedError, match="max_duration"):
            await engine.submit_models(Reporter())
    assert slow.status is ModelStatus.Interrupted
    assert recorder.end(slow).reason == "budget"
    assert queued.status is ModelStatus.Interrupted
    assert recorder.end(queued).reason == "budget"
    assert recorder.kinds(queued) == ["training_end"]
    assert engine.statistics().total_duration >= 0.05


async def test_state_dict_carries_budgets_to_a_new_engine() -> None:
    async with SequentialExecutionEngine(max_model_count=3) as first:
        await first.submit_models(Reporter(), Reporter())
    state = first.state_dict()
    assert state["model_count"] == 2
    assert state["total_duration"] > 0

    second = SequentialExecutionEngine(max_model_count=3)
    second.load_state_dict(state)
    assert second.state_dict()["model_count"] == 2
    async with second:
        await second.submit_models(Reporter())
        assert not second.budget_available()
        with pytest.raises(aionas.BudgetExhaustedError):
            await second.submit_models(Reporter())


async def test_state_dict_carries_duration_budget() -> None:
    engine = SequentialExecutionEngine(max_duration=10)
    engine.load_state_dict({"model_count": 0, "total_duration": 10.0})
    assert not engine.budget_available()
    async with engine:
        with pytest.raises(aionas.BudgetExhaustedError, match="max_duration"):
            await engine.submit_models(Reporter())


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"model_count": 1},
        {"model_count": -1, "total_duration": 0.0},
        {"model_count": 1, "total_duration": -2.0},
        {"model_count": 1, "total_duration": "1"},
        {"model_count": 1.5, "total_duration": 0.0},
    ],
)
def test_bad_state_dict_is_rejected_and_state_kept(state: dict[str, object]) -> None:
    engine = SequentialExecutionEngine()
    engine.load_state_dict({"model_count": 4, "total_duration": 1.0})
    with pytest.raises(ValueError, match=r"model_count|total_duration"):
        engine.load_state_dict(state)
    assert engine.state_dict() == {"model_count": 4, "total_duration": 1.0}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_model_count", 0),
        ("max_model_count", -1),
        ("max_duration", 0),
        ("max_duration", -1.0),
        ("max_duration", math.inf),
        ("max_model_duration", 0.0),
        ("max_queue_size", 0),
        ("event_buffer_size", 0),
        ("cancel_grace", -1),
    ],
)
def test_bad_budgets_at_construction(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=name):
        SequentialExecutionEngine(**{name: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "value"),
    [("max_model_count", 1.5), ("max_model_count", True), ("max_duration", "10")],
)
def test_wrong_budget_types_at_construction(name: str, value: object) -> None:
    with pytest.raises(TypeError, match=name):
        SequentialExecutionEngine(**{name: value})  # type: ignore[arg-type]
