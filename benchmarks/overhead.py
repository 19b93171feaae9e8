"""Figure 1: the engine's own cost per model, with no-op models."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import aionas

from ._baselines import BareInlineEngine, InlineEngine, to_thread_hop
from ._common import Result, median

BATCH = 1_000


class Noop(aionas.Model):
    def execute(self) -> None:
        pass


def _ignore(event: aionas.ModelEvent) -> None:
    pass


async def engine_per_model(count: int, journal: aionas.SqliteJournal | None = None) -> float:
    """Seconds per model: submitted in batches of 1,000, then awaited."""
    models = [Noop() for _ in range(count)]
    async with aionas.SequentialExecutionEngine(journal=journal) as engine:
        engine.register_model_event_callback("training_end", _ignore)
        start = time.perf_counter()
        for index in range(0, count, BATCH):
            await engine.submit_models(*models[index : index + BATCH])
        await engine.wait_models()
        elapsed = time.perf_counter() - start
    assert all(m.status is aionas.ModelStatus.Trained for m in models)
    return elapsed / count


def inline_per_model(engine: InlineEngine | BareInlineEngine, count: int) -> float:
    models = [Noop() for _ in range(count)]
    engine.register_model_event_callback("training_end", _ignore)
    start = time.perf_counter()
    for index in range(0, count, BATCH):
        engine.submit_models(*models[index : index + BATCH])
    elapsed = time.perf_counter() - start
    assert all(m.status is aionas.ModelStatus.Trained for m in models)
    return elapsed / count


async def measure(backend: str, *, quick: bool, repeat: int) -> list[Result]:
    count = 5_000 if quick else 20_000
    hops = count // 10
    rows: dict[str, list[float]] = {k: [] for k in ("engine", "inline", "bare", "hop", "journal")}
    folder = Path(tempfile.mkdtemp(prefix="aionas-bench-"))
    for index in range(repeat):
        rows["engine"].append(await engine_per_model(count))
        journal = aionas.SqliteJournal(folder / f"overhead-{index}.db")
        rows["journal"].append(await engine_per_model(count, journal))
        rows["inline"].append(inline_per_model(InlineEngine(), count))
        rows["bare"].append(inline_per_model(BareInlineEngine(), count))
        rows["hop"].append(await to_thread_hop(hops))
    shutil.rmtree(folder, ignore_errors=True)
    ratio = {
        k: median([e / b for e, b in zip(rows["engine"], rows[k], strict=True)])
        for k in ("inline", "bare", "hop")
    }
    with_journal = median([j / e for e, j in zip(rows["engine"], rows["journal"], strict=True)])
    engine_us = median(rows["engine"]) * 1e6
    figure = "1 per-model overhead"
    return [
        Result(figure, f"engine, {count:,} no-op models", backend, engine_us, "us/model"),
        Result(
            figure,
            "  vs to_thread hop",
            backend,
            median(rows["hop"]) * 1e6,
            "us/hop",
            "to_thread",
            ratio["hop"],
            "<= 1.0x",
            ratio["hop"] <= 1.0,
        ),
        Result(
            figure,
            "  vs inline (NNI's algorithm)",
            backend,
            median(rows["inline"]) * 1e6,
            "us/model",
            "inline",
            ratio["inline"],
            "<= 3x (stretch 1.0x)",
            ratio["inline"] <= 3.0,
        ),
        Result(
            figure,
            "engine with an SQLite journal, vs without",
            backend,
            median(rows["journal"]) * 1e6,
            "us/model",
            "no journal",
            with_journal,
            "<= 2x",
            with_journal <= 2.0,
        ),
        Result(
            figure,
            "  vs bare inline loop (floor)",
            backend,
            median(rows["bare"]) * 1e6,
            "us/model",
            "bare inline",
            ratio["bare"],
            "(reported)",
            None,
        ),
    ]
