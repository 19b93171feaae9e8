"""Semantics 7 and 8: events, callbacks, subscribers, lossless backpressure, no loop hop."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator

import anyio
import pytest

import aionas
from aionas import ModelEventType, ModelStatus, SequentialExecutionEngine

from .helpers import Boom, Gate, Recorder, Reporter

pytestmark = pytest.mark.anyio


async def test_event_is_applied_to_the_model_before_anyone_sees_it() -> None:
    # The worker may run ahead of delivery, so a model can be further along than an
    # event; it is never behind it.
    checks: list[bool] = []
    seen_intermediates: dict[int, int] = {}

    def check(event: aionas.ModelEvent) -> None:
        model = event.model
        if isinstance(event, aionas.TrainingStartEvent):
            checks.append(model.status is not ModelStatus.Frozen)
        elif isinstance(event, aionas.IntermediateMetricEvent):
            index = seen_intermediates.get(id(model), 0)
            seen_intermediates[id(model)] = index + 1
            checks.append(model.metrics.intermediates[index] == event.metric)
        elif isinstance(event, aionas.FinalMetricEvent):
            checks.append(model.metrics.final == event.metric)
        elif isinstance(event, aionas.TrainingEndEvent):
            checks.append(model.status is event.status)

    models = [Reporter({"n": 4}), Gate()]
    async with SequentialExecutionEngine() as engine:
        for kind in ModelEventType:
            engine.register_model_event_callback(kind, check)
        await engine.submit_models(*models)
        await models[1].wait_started()
        engine.cancel_model(models[1])
    assert len(checks) == 1 + 4 + 1 + 1 + 2
    assert all(checks)


async def test_events_carry_the_raw_metric() -> None:
    class Raw(aionas.Model):
        def execute(self) -> None:
            aionas.report_intermediate_result({"default": 1, "loss": 0.2})
            aionas.report_final_result(2)

    model = Raw()
    async with SequentialExecutionEngine() as engine:
        recorder = Recorder(engine)
        await engine.submit_models(model)
    metrics = [e.metric for e in recorder.of(model) if hasattr(e, "metric")]
    assert metrics == [{"default": 1, "loss": 0.2}, 2]
    assert model.metrics == aionas.Metrics([1.0], 2.0)


async def test_callbacks_sync_and_async_by_enum_or_string_in_order() -> None:
    calls: list[tuple[str, int]] = []

    def sync_cb(event: aionas.ModelEvent) -> None:
        calls.append(("sync", event.seq))

    async def async_cb(event: aionas.ModelEvent) -> None:
        await anyio.lowlevel.checkpoint()
        calls.append(("async", event.seq))

    async with SequentialExecutionEngine() as engine:
        engine.register_model_event_callback(ModelEventType.IntermediateMetric, sync_cb)
        engine.register_model_event_callback("intermediate_metric", async_cb)
        await engine.submit_models(Reporter({"n": 3}), Reporter({"n": 2}))
    seqs = [seq for _, seq in calls]
    assert seqs == sorted(seqs)
    assert [name for name, _ in calls] == ["sync", "async"] * 5


async def test_unregister() -> None:
    got: list[aionas.ModelEvent] = []
    async with SequentialExecutionEngine() as engine:
        engine.register_model_event_callback("training_end", got.append)
        await engine.submit_models(Reporter())
        await engine.wait_models()
        engine.unregister_model_event_callback(ModelEventType.TrainingEnd, got.append)
        await engine.submit_models(Reporter())
    assert len(got) == 1


def test_bad_event_types_and_unregistering_unknown_callbacks() -> None:
    engine = SequentialExecutionEngine()
    with pytest.raises(ValueError, match="unknown event type 'training_stop'"):
        engine.register_model_event_callback("training_stop", print)
    with pytest.raises(ValueError, match="not registered"):
        engine.unregister_model_event_callback("training_end", print)
    with pytest.raises(TypeError, match="callable"):
        engine.register_model_event_callback("training_end", 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown event type"):
        engine.subscribe("nope")


async def test_raising_callback_is_logged_counted_and_harmless(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def bad(event: aionas.ModelEvent) -> None:
        raise RuntimeError("callback bug")

    async def bad_async(event: aionas.ModelEvent) -> None:
        raise RuntimeError("async callback bug")

    model = Reporter({"n": 2})
    async with SequentialExecutionEngine() as engine:
        engine.register_model_event_callback("training_end", bad)
        engine.register_model_event_callback("training_end", bad_async)
        recorder = Recorder(engine)
        async with engine.subscribe("training_end") as events:
            await engine.submit_models(model)
            received = await events.__anext__()
    assert model.status is ModelStatus.Trained
    assert received.model is model
    assert recorder.end(model).status is ModelStatus.Trained
    assert engine.statistics().callback_errors == 2
    logged = [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
    assert logged == ["callback bug", "async callback bug"]


async def test_subscribe_filters_types_and_ends_when_engine_closes() -> None:
    received: list[aionas.ModelEvent] = []
    everything: list[aionas.ModelEvent] = []

    async def consume_ends(engine: SequentialExecutionEngine, ready: anyio.Event) -> None:
        async with engine.subscribe("training_end", ModelEventType.TrainingStart) as events:
            ready.set()
            async for event in events:
                received.append(event)

    async def consume_all(engine: SequentialExecutionEngine, ready: anyio.Event) -> None:
        async with engine.subscribe() as events:
            ready.set()
            async for event in events:
                everything.append(event)

    models = [Reporter({"n": 2}) for _ in range(3)]
    async with anyio.create_task_group() as tg:
        async with SequentialExecutionEngine() as engine:
            ready_a, ready_b = anyio.Event(), anyio.Event()
            tg.start_soon(consume_ends, engine, ready_a)
            tg.start_soon(consume_all, engine, ready_b)
            await ready_a.wait()
            await ready_b.wait()
            await engine.submit_models(*models)
    assert [e.event_type.value for e in received] == ["training_start", "training_end"] * 3
    assert len(everything) == 3 * (1 + 2 + 1 + 1)
    assert [e.seq for e in everything] == list(range(len(everything)))


async def test_subscribing_after_close_ends_at_once() -> None:
    async with SequentialExecutionEngine() as engine:
        await engine.submit_models(Reporter())
    async with engine.subscribe() as events:
        assert [e async for e in events] == []


async def test_slow_subscriber_loses_nothing_and_holds_the_worker_back() -> None:
    count = 3_000
    model = Reporter({"n": count})
    got: list[float] = []
    peak = 0
    async with SequentialExecutionEngine(event_buffer_size=8) as engine:
        async with engine.subscribe("intermediate_metric", buffer_size=2) as events:
            await engine.submit_models(model)
            async for event in events:
                peak = max(peak, events.buffered() + 1)
                got.append(event.metric)
                if len(got) % 100 == 0:
                    # While we hold back, the worker has to wait: nothing may be lost.
                    # At most: our buffer, the batch being delivered, the engine's buffer.
                    assert len(model.metrics.intermediates) <= len(got) + 2 + 8 + 8 + 1
                await anyio.lowlevel.checkpoint()
                if len(got) == count:
                    break
    assert got == [float(i) for i in range(count)]
    assert peak <= 2 + 1
    assert model.status is ModelStatus.Trained


async def test_subscriber_that_leaves_does_not_block_the_engine() -> None:
    model = Reporter({"n": 500})
    async with SequentialExecutionEngine(event_buffer_size=4) as engine:
        async with engine.subscribe(buffer_size=1) as events:
            await engine.submit_models(model)
            await events.__anext__()
        await engine.wait_models(model)
    assert model.status is ModelStatus.Trained


async def test_reports_do_not_wait_for_the_event_loop() -> None:
    """With the loop blocked, the worker can still report: no loop round trip per report."""
    reported = threading.Event()
    outcome: list[bool] = []

    class Chatty(aionas.Model):
        def execute(self) -> None:
            for i in range(200):
                aionas.report_intermediate_result(i)
            reported.set()

    def block_loop_until_reported(event: aionas.ModelEvent) -> None:
        outcome.append(reported.wait(10))  # blocks the event loop on purpose

    model = Chatty()
    async with SequentialExecutionEngine(event_buffer_size=1_000) as engine:
        engine.register_model_event_callback("training_start", block_loop_until_reported)
        await engine.submit_models(model)
    assert outcome == [True]
    assert len(model.metrics.intermediates) == 200


async def test_retrying_model_resubmitted_from_an_end_callback() -> None:
    attempts: list[int] = []

    class Flaky(aionas.Model):
        def execute(self) -> None:
            attempts.append(len(attempts))
            if len(attempts) < 3:
                raise RuntimeError("flaky")
            aionas.report_final_result(1.0)

    async def retry(event: aionas.TrainingEndEvent) -> None:
        if event.status is ModelStatus.Failed:
            event.model.status = ModelStatus.Retrying
            await engine.submit_models(event.model)

    model = Flaky()
    async with SequentialExecutionEngine(continue_on_failure=True, max_queue_size=1) as engine:
        recorder = Recorder(engine)
        engine.register_model_event_callback("training_end", retry)
        await engine.submit_models(model)
        await engine.wait_models(model)
        assert model.status is ModelStatus.Trained
    assert attempts == [0, 1, 2]
    assert [e.status for e in recorder.ends(model)] == [
        ModelStatus.Failed,
        ModelStatus.Failed,
        ModelStatus.Trained,
    ]
    assert model.metric == 1.0
    assert model.error is None


async def test_callback_calling_shutdown_does_not_deadlock() -> None:
    gate, queued = Gate(), Reporter()

    async def stop(event: aionas.ModelEvent) -> None:
        await engine.shutdown()

    async with SequentialExecutionEngine(event_buffer_size=1) as engine:
        engine.register_model_event_callback("training_start", stop)
        await engine.submit_models(gate, queued)
    assert gate.status is ModelStatus.Interrupted
    assert queued.status is ModelStatus.Interrupted


def test_logging_name() -> None:
    assert logging.getLogger("aionas.engine").name == "aionas.engine"


async def test_subscription_ends_when_the_engine_stops_inside_the_block() -> None:
    """After a failure stops the engine, a subscriber's loop ends; the block then raises."""
    boom, queued = Boom(), Reporter()
    kinds: list[str] = []
    with pytest.raises(ValueError, match="boom"):
        async with SequentialExecutionEngine() as engine:
            async with engine.subscribe("training_end") as events:
                await engine.submit_models(boom, queued)
                async for event in events:
                    kinds.append(f"{event.status.value}:{event.reason}")
            kinds.append("loop ended")
    assert kinds == ["failed:failed", "interrupted:shutdown", "loop ended"]


async def test_subscription_ends_after_shutdown_inside_the_block() -> None:
    gate = Gate()
    got: list[aionas.ModelEvent] = []
    async with SequentialExecutionEngine() as engine:
        async with engine.subscribe() as events:
            await engine.submit_models(gate)
            await gate.wait_started()
            await engine.shutdown()
            got.extend([event async for event in events])
    assert [e.event_type.value for e in got] == ["training_start", "training_end"]


async def test_a_busy_subscriber_still_lets_other_tasks_run() -> None:
    """Buffered events are taken without a loop trip, but with a checkpoint every so often."""
    ticks = 0
    stop = anyio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await anyio.lowlevel.checkpoint()

    model = Reporter({"n": 1_000})
    async with SequentialExecutionEngine() as engine:
        async with engine.subscribe("intermediate_metric", buffer_size=2_000) as events:
            await engine.submit_models(model)
            await engine.wait_models(model)  # every event is now buffered
            async with anyio.create_task_group() as tg:
                tg.start_soon(ticker)
                await anyio.lowlevel.checkpoint()
                before = ticks
                received = [event async for event in _take(events, 1_000)]
                during = ticks - before
                stop.set()
    assert [e.metric for e in received] == [float(i) for i in range(1_000)]
    assert during >= 1_000 // 64 - 1


async def _take(events: aionas.Subscription, count: int) -> AsyncIterator[aionas.ModelEvent]:
    async for event in events:
        yield event
        count -= 1
        if count == 0:
            return
