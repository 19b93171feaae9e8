"""Figure 3: how late the event loop is while a model burns CPU in pure Python."""

from __future__ import annotations

import time

import anyio

import aionas

from ._baselines import InlineEngine
from ._common import Result, median, percentile

TICK = 0.001


class Spin(aionas.Model):
    """Pure-Python CPU work for ``params['seconds']``: holds the GIL as training code does."""

    def execute(self) -> None:
        end = time.perf_counter() + self.params["seconds"]
        count = 0
        while time.perf_counter() < end:
            count += 1


async def heartbeat(done: anyio.Event, lateness: list[float]) -> None:
    """Sleep 1 ms at a time and record how late each wake-up is."""
    while not done.is_set():
        start = time.perf_counter()
        await anyio.sleep(TICK)
        lateness.append(time.perf_counter() - start - TICK)


async def engine_lateness(seconds: float) -> list[float]:
    lateness: list[float] = []
    done = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(heartbeat, done, lateness)
        async with aionas.SequentialExecutionEngine() as engine:
            model = Spin({"seconds": seconds})
            await engine.submit_models(model)
            await engine.wait_models()
        done.set()
    return lateness


async def inline_lateness(seconds: float) -> list[float]:
    lateness: list[float] = []
    done = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(heartbeat, done, lateness)
        await anyio.sleep(0.02)  # let the heartbeat run first
        InlineEngine().submit_models(Spin({"seconds": seconds}))  # blocks the loop
        await anyio.sleep(0.02)
        done.set()
    return lateness


async def measure(backend: str, *, quick: bool, repeat: int) -> list[Result]:
    """Engine: the median over repetitions of each percentile, and the worst wake-up of all."""
    seconds = 1.0 if quick else 3.0
    runs = [await engine_lateness(seconds) for _ in range(min(repeat, 3))]
    p50 = median([percentile(run, 0.5) for run in runs]) * 1e3
    p99 = median([percentile(run, 0.99) for run in runs]) * 1e3
    worst = max(max(run) for run in runs) * 1e3
    inline = await inline_lateness(seconds)
    figure = "3 loop latency"
    engine = f"engine, {seconds:g} s model x{len(runs)}"
    name = f"inline, {seconds:g} s model"
    return [
        Result(figure, f"{engine}: p50 lateness", backend, p50, "ms"),
        Result(
            figure, f"{engine}: p99 lateness", backend, p99, "ms", "", None, "<= 10 ms", p99 <= 10
        ),
        Result(
            figure,
            f"{engine}: max lateness",
            backend,
            worst,
            "ms",
            "",
            None,
            "<= 50 ms",
            worst <= 50,
        ),
        Result(figure, f"{name}: p50 lateness", backend, percentile(inline, 0.5) * 1e3, "ms"),
        Result(figure, f"{name}: max lateness", backend, max(inline) * 1e3, "ms"),
    ]
