"""Figure 4: what finished models cost in memory, and a slow subscriber's footprint."""

from __future__ import annotations

import gc
import time
import tracemalloc

import anyio

import aionas
from aionas.events import ModelEvent

from ._common import Result

BATCH = 1_000


class TenReports(aionas.Model):
    def execute(self) -> None:
        for step in range(10):
            aionas.report_intermediate_result(step / 10)


def live_events() -> int:
    return sum(1 for obj in gc.get_objects() if isinstance(obj, ModelEvent))


async def retained_per_model(count: int) -> tuple[float, int]:
    """(bytes retained per finished model, event objects still alive after delivery)."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        models = [TenReports({"index": index}) for index in range(count)]
        async with aionas.SequentialExecutionEngine() as engine:
            for index in range(0, count, BATCH):
                await engine.submit_models(*models[index : index + BATCH])
            await engine.wait_models()
            gc.collect()
            retained = tracemalloc.get_traced_memory()[0] - base
            alive = live_events()
    finally:
        tracemalloc.stop()
    assert all(len(m.metrics.intermediates) == 10 for m in models)
    return retained / count, alive


class Chatty(aionas.Model):
    def execute(self) -> None:
        report = aionas.report_intermediate_result
        for index in range(self.params["n"]):
            report(index)


async def slow_subscriber(count: int, buffer: int) -> tuple[int, int, int, float]:
    """(events received, peak in the subscriber's buffer, peak held by the engine, MiB)."""
    model = Chatty({"n": count})
    received = peak_buffer = peak_held = 0
    in_order = True
    tracemalloc.start()
    try:
        async with aionas.SequentialExecutionEngine(event_buffer_size=buffer) as engine:
            async with engine.subscribe("intermediate_metric", buffer_size=buffer) as events:
                await engine.submit_models(model)
                async for event in events:
                    in_order = in_order and event.metric == received
                    received += 1
                    peak_buffer = max(peak_buffer, events.buffered())
                    held = len(model.metrics.intermediates) - received
                    peak_held = max(peak_held, held)
                    if received % 1_000 == 0:
                        await anyio.sleep(0.0005)  # a slow consumer
                    if received == count:
                        break
        peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert in_order
    return received, peak_buffer, peak_held, peak_mib


async def measure(backend: str, *, quick: bool, repeat: int) -> list[Result]:
    figure = "4 memory"
    count = 10_000 if quick else 100_000
    start = time.perf_counter()
    per_model, alive = await retained_per_model(count)
    reports = 100_000 if quick else 1_000_000
    buffer = 1_000
    received, peak_buffer, peak_held, peak_mib = await slow_subscriber(reports, buffer)
    del start
    return [
        Result(
            figure,
            f"retained per finished model ({count:,}, 10 metrics each)",
            backend,
            per_model / 1024,
            "KiB",
            target="<= 3 KiB",
            met=per_model <= 3 * 1024,
        ),
        Result(
            figure,
            "event objects alive after delivery",
            backend,
            alive,
            "events",
            target="0",
            met=alive == 0,
        ),
        Result(
            figure,
            f"slow subscriber: delivered of {reports:,}",
            backend,
            received,
            "events",
            target="all, in order",
            met=received == reports,
        ),
        Result(
            figure,
            f"slow subscriber: peak in its buffer (size {buffer:,})",
            backend,
            peak_buffer,
            "events",
            target=f"<= {buffer:,}",
            met=peak_buffer <= buffer,
        ),
        Result(
            figure,
            "slow subscriber: peak reported but not yet received",
            backend,
            peak_held,
            "events",
            target="bounded",
            met=peak_held <= 3 * buffer + 1,
        ),
        Result(figure, "slow subscriber: peak traced memory", backend, peak_mib, "MiB"),
    ]
