"""The process executor against the thread executor, side by side in one run.

```sh
.venv/bin/python -m benchmarks.process_executor            # about a minute
.venv/bin/python -m benchmarks.process_executor --quick    # a smoke run
```

Prints one JSON object (and a short table):

- **worker start**: seconds for ``ProcessExecutor.open()`` (start a worker process
  and wait until it is ready), with ``spawn`` and ``forkserver``; medians.
- **per-model overhead**: microseconds per no-op model (reports one final metric),
  N models submitted at once, with each executor; medians of the repetitions,
  and their ratio. A reused worker pays no process start per model.
- **loop lateness** while one pure-Python CPU-bound model runs: a task sleeps
  1 ms at a time and records how late each wake-up is (p50, p99, max). With
  threads the model shares the GIL with the loop; with a process it does not
  (target: p99 <= 2 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from typing import Any

import anyio

import aionas

TICK = 0.001


class Noop(aionas.Model):
    def execute(self) -> None:
        aionas.report_final_result(0.0)


class Spin(aionas.Model):
    """Pure-Python CPU work for ``params['seconds']``: holds its interpreter's GIL."""

    def execute(self) -> None:
        end = time.perf_counter() + self.params["seconds"]
        count = 0
        while time.perf_counter() < end:
            count += 1
        aionas.report_final_result(float(count))


def _executor(kind: str) -> aionas.Executor:
    return aionas.ProcessExecutor() if kind == "process" else aionas.ThreadExecutor()


async def worker_start(context: str) -> tuple[float, float]:
    """Seconds to open a ProcessExecutor (worker ready), and to close it."""
    executor = aionas.ProcessExecutor(context=context)
    start = time.perf_counter()
    await executor.open(None)  # type: ignore[arg-type]
    opened = time.perf_counter() - start
    start = time.perf_counter()
    await executor.aclose()
    return opened, time.perf_counter() - start


async def per_model(kind: str, count: int) -> float:
    """Microseconds per no-op model, ``count`` submitted at once (the worker is warm)."""
    models = [Noop() for _ in range(count)]
    async with aionas.SequentialExecutionEngine(executor=_executor(kind)) as engine:
        await engine.submit_models(Noop())  # warm up: the first model imports things
        await engine.wait_models()
        start = time.perf_counter()
        await engine.submit_models(*models)
        await engine.wait_models()
        elapsed = time.perf_counter() - start
    assert all(m.status is aionas.ModelStatus.Trained for m in models)
    return elapsed / count * 1e6


async def one_at_a_time(kind: str, count: int) -> float:
    """Microseconds per no-op model, each submitted once the previous one has ended."""
    async with aionas.SequentialExecutionEngine(executor=_executor(kind)) as engine:
        await engine.submit_models(Noop())
        await engine.wait_models()
        start = time.perf_counter()
        for _ in range(count):
            model = Noop()
            await engine.submit_models(model)
            await engine.wait_models(model)
        elapsed = time.perf_counter() - start
    return elapsed / count * 1e6


async def lateness(kind: str, seconds: float) -> list[float]:
    """How late (seconds) each 1 ms sleep of the loop wakes while Spin runs."""
    late: list[float] = []
    done = anyio.Event()

    async def heartbeat() -> None:
        while not done.is_set():
            start = time.perf_counter()
            await anyio.sleep(TICK)
            late.append(time.perf_counter() - start - TICK)

    async with aionas.SequentialExecutionEngine(executor=_executor(kind)) as engine:
        async with anyio.create_task_group() as tasks:
            model = Spin({"seconds": seconds})
            await engine.submit_models(model)
            tasks.start_soon(heartbeat)
            await engine.wait_models(model)
            done.set()
    return late


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def measure(quick: bool) -> dict[str, Any]:
    repeat = 2 if quick else 5
    count = 300 if quick else 2000
    serial = 100 if quick else 500
    spin = 1.0 if quick else 3.0
    result: dict[str, Any] = {}

    for context in ("spawn", "forkserver"):
        await worker_start(context)  # the first forkserver start also starts the server
        runs = [await worker_start(context) for _ in range(repeat + 2)]
        result[f"worker start ({context}), s"] = statistics.median(r[0] for r in runs)
        result[f"worker close ({context}), s"] = statistics.median(r[1] for r in runs)

    for label, fn, n in (("batch", per_model, count), ("one at a time", one_at_a_time, serial)):
        process, thread, ratios = [], [], []
        for _ in range(repeat):  # interleaved, so both see the same machine
            p = await fn("process", n)
            t = await fn("thread", n)
            process.append(p)
            thread.append(t)
            ratios.append(p / t)
        result[f"per model, {label}, process executor, us"] = statistics.median(process)
        result[f"per model, {label}, thread executor, us"] = statistics.median(thread)
        result[f"per model, {label}, process / thread"] = statistics.median(ratios)

    for kind in ("process", "thread"):
        late = [x * 1e3 for x in await lateness(kind, spin)]
        result[f"loop lateness, {kind} executor, p50 ms"] = _percentile(late, 0.5)
        result[f"loop lateness, {kind} executor, p99 ms"] = _percentile(late, 0.99)
        result[f"loop lateness, {kind} executor, max ms"] = max(late)
        result[f"loop lateness, {kind} executor, samples"] = len(late)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    result = {
        "backend": args.backend,
        "python": sys.version.split()[0],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        **anyio.run(measure, args.quick, backend=args.backend),
    }
    width = max(map(len, result))
    for key, value in result.items():
        shown = f"{value:.4g}" if isinstance(value, float) else value
        print(f"{key:<{width}}  {shown}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
