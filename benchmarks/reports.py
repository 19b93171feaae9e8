"""Figure 2: the cost of ``report_intermediate_result`` and its delivery."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import anyio

import aionas

from ._baselines import blocking_hop_cost, call_soon_cost
from ._common import Result, median


class Chatty(aionas.Model):
    """Reports ``n`` intermediate metrics and times its own reporting loop."""

    def execute(self) -> None:
        count = self.params["n"]
        report = aionas.report_intermediate_result
        start = time.perf_counter()
        for index in range(count):
            report(index)
        self.params["seconds"] = time.perf_counter() - start


async def one_run(count: int) -> tuple[float, float]:
    """(worker seconds per report, end-to-end seconds per delivered report)."""
    model = Chatty({"n": count})
    received = 0
    in_order = True
    async with aionas.SequentialExecutionEngine() as engine:
        async with engine.subscribe(aionas.ModelEventType.IntermediateMetric) as events:
            start = time.perf_counter()
            await engine.submit_models(model)
            async for event in events:
                in_order = in_order and event.metric == received
                received += 1
                if received == count:
                    break
            elapsed = time.perf_counter() - start
    assert in_order, "events arrived out of order"
    assert received == count == len(model.metrics.intermediates)
    return model.params["seconds"] / count, elapsed / count


async def journaled_rows_per_second(count: int, path: Path) -> float:
    """Metric rows committed per second: one model reports ``count`` metrics, all awaited."""
    model = Chatty({"n": count})
    async with aionas.SequentialExecutionEngine(journal=aionas.SqliteJournal(path)) as engine:
        start = time.perf_counter()
        await engine.submit_models(model)
        await engine.wait_models()
        elapsed = time.perf_counter() - start
        assert engine.statistics().journaled_events == count + 2
    return count / elapsed


class Busy(aionas.Model):
    """Pure-Python work (holding the GIL, as training code does), a report every ~100 us."""

    def execute(self) -> None:
        end = time.perf_counter() + self.params["seconds"]
        work = 0
        while time.perf_counter() < end:
            for _ in range(2_000):
                work += 1
            aionas.report_intermediate_result(work)
        self.params["work"] = work


async def busy_work(seconds: float, path: Path | None) -> int:
    """How much work a CPU-bound model gets done, with or without a journal."""
    model = Busy({"seconds": seconds})
    journal = None if path is None else aionas.SqliteJournal(path)
    async with aionas.SequentialExecutionEngine(journal=journal) as engine:
        await engine.submit_models(model)
    return int(model.params["work"])


async def measure(backend: str, *, quick: bool, repeat: int) -> list[Result]:
    count = 100_000 if quick else 1_000_000
    worker, end_to_end, soon, blocking, journaled = [], [], [], [], []
    folder = Path(tempfile.mkdtemp(prefix="aionas-bench-"))
    for index in range(repeat):
        journaled.append(await journaled_rows_per_second(count, folder / f"rows-{index}.db"))
        per_report, per_delivery = await one_run(count)
        worker.append(per_report)
        end_to_end.append(per_delivery)
        soon.append(await call_soon_cost(count // 10))
        blocking.append(await blocking_hop_cost(count // 100))
        await anyio.lowlevel.checkpoint()
    seconds = 0.5 if quick else 2.0
    kept = [
        await busy_work(seconds, folder / f"busy-{index}.db") / await busy_work(seconds, None)
        for index in range(min(repeat, 3))
    ]
    shutil.rmtree(folder, ignore_errors=True)
    rows_per_second = median(journaled)
    work_kept = median(kept)
    vs_soon = median([w / s for w, s in zip(worker, soon, strict=True)])
    vs_blocking = median([b / w for w, b in zip(worker, blocking, strict=True)])
    figure = "2 report throughput"
    return [
        Result(
            figure,
            f"worker cost per report ({count:,})",
            backend,
            median(worker) * 1e6,
            "us/report",
        ),
        Result(
            figure,
            "  vs call_soon_threadsafe",
            backend,
            median(soon) * 1e6,
            "us/call",
            "call_soon",
            vs_soon,
            "<= 1.0x",
            vs_soon <= 1.0,
        ),
        Result(
            figure,
            "  blocking from_thread.run_sync / ours",
            backend,
            median(blocking) * 1e6,
            "us/call",
            "from_thread",
            vs_blocking,
            ">= 10x",
            vs_blocking >= 10.0,
        ),
        Result(
            figure,
            "  end to end, all delivered in order",
            backend,
            median(end_to_end) * 1e6,
            "us/report",
        ),
        Result(
            figure,
            "metric rows committed to an SQLite journal",
            backend,
            rows_per_second,
            "rows/s",
            target=">= 100,000 rows/s",
            met=rows_per_second >= 100_000,
        ),
        Result(
            figure,
            "CPU-bound model: work done with a journal / without",
            backend,
            work_kept,
            "x",
            target=">= 0.8 (reported)",
            met=work_kept >= 0.8,
        ),
    ]
