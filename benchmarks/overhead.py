"""Figure 1: the engine's own cost per model, with no-op models.

Beside the in-repo baselines, NNI 3.0's real ``SequentialExecutionEngine`` when an
interpreter with ``nni`` is given (``nni_python``): ``nni_engine.py`` runs there as a
subprocess once per repetition, on the same number of models doing the same work
(nothing, or report one final metric), submitted the same ways (in batches, or one
at a time).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

import aionas

from ._baselines import BareInlineEngine, InlineEngine, to_thread_hop
from ._common import Result, median

BATCH = 1_000
NNI_SCRIPT = Path(__file__).resolve().with_name("nni_engine.py")


class Noop(aionas.Model):
    def execute(self) -> None:
        pass


class FinalNoop(aionas.Model):
    """The work of NNI's benchmark model: report one final metric, return."""

    def execute(self) -> None:
        aionas.report_final_result(0.0)


def _ignore(event: aionas.ModelEvent) -> None:
    pass


async def engine_per_model(
    count: int,
    journal: aionas.SqliteJournal | None = None,
    model_class: type[aionas.Model] = Noop,
) -> float:
    """Seconds per model: submitted in batches of 1,000, then awaited."""
    models = [model_class() for _ in range(count)]
    async with aionas.SequentialExecutionEngine(journal=journal) as engine:
        engine.register_model_event_callback("training_end", _ignore)
        start = time.perf_counter()
        for index in range(0, count, BATCH):
            await engine.submit_models(*models[index : index + BATCH])
        await engine.wait_models()
        elapsed = time.perf_counter() - start
    assert all(m.status is aionas.ModelStatus.Trained for m in models)
    return elapsed / count


async def engine_one_at_a_time(count: int) -> float:
    """Seconds per model: each submitted, then awaited, before the next."""
    models = [FinalNoop() for _ in range(count)]
    async with aionas.SequentialExecutionEngine() as engine:
        engine.register_model_event_callback("training_end", _ignore)
        start = time.perf_counter()
        for model in models:
            await engine.submit_models(model)
            await engine.wait_models(model)
        elapsed = time.perf_counter() - start
    assert all(m.status is aionas.ModelStatus.Trained for m in models)
    return elapsed / count


async def nni_per_model(python: Path, count: int) -> dict[str, Any]:
    """One repetition of ``nni_engine.py`` under ``python``: microseconds per model by way."""
    env = {**os.environ, "NNI_FRAMEWORK": "none"}
    command = [str(python), str(NNI_SCRIPT), "--count", str(count), "--repeat", "1"]
    try:
        done = await anyio.run_process(command, env=env)
    except Exception as error:
        stderr = getattr(error, "stderr", b"") or b""
        tail = stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(command)} failed: {error} {' | '.join(tail)}") from None
    lines = done.stdout.decode().strip().splitlines()
    data: dict[str, Any] = json.loads(lines[-1])
    return data


def inline_per_model(engine: InlineEngine | BareInlineEngine, count: int) -> float:
    models = [Noop() for _ in range(count)]
    engine.register_model_event_callback("training_end", _ignore)
    start = time.perf_counter()
    for index in range(0, count, BATCH):
        engine.submit_models(*models[index : index + BATCH])
    elapsed = time.perf_counter() - start
    assert all(m.status is aionas.ModelStatus.Trained for m in models)
    return elapsed / count


async def measure(
    backend: str, *, quick: bool, repeat: int, nni_python: Path | None = None
) -> list[Result]:
    count = 5_000 if quick else 20_000
    hops = count // 10
    names = ("engine", "inline", "bare", "hop", "journal", "final", "single")
    nni_names = ("nni", "nni_evaluator", "nni_single", "nni_noop")
    rows: dict[str, list[float]] = {k: [] for k in names + nni_names}
    folder = Path(tempfile.mkdtemp(prefix="aionas-bench-"))
    for index in range(repeat):
        rows["engine"].append(await engine_per_model(count))
        journal = aionas.SqliteJournal(folder / f"overhead-{index}.db")
        rows["journal"].append(await engine_per_model(count, journal))
        rows["inline"].append(inline_per_model(InlineEngine(), count))
        rows["bare"].append(inline_per_model(BareInlineEngine(), count))
        rows["hop"].append(await to_thread_hop(hops))
        rows["final"].append(await engine_per_model(count, model_class=FinalNoop))
        rows["single"].append(await engine_one_at_a_time(count))
        if nni_python is not None:
            nni = (await nni_per_model(nni_python, count))["us_per_model"]
            rows["nni"].append(nni["batch"][0] / 1e6)
            rows["nni_evaluator"].append(nni["evaluator_batch"][0] / 1e6)
            rows["nni_single"].append(nni["one_at_a_time"][0] / 1e6)
            rows["nni_noop"].append(nni["noop_batch"][0] / 1e6)
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
        *_nni_noop_rows(rows, backend),
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
        *_nni_rows(rows, count, backend),
    ]


def _nni_noop_rows(rows: dict[str, list[float]], backend: str) -> list[Result]:
    """The no-op models beside NNI 3.0's real engine running the same no-op models."""
    if not rows["nni_noop"]:
        return []
    ratio = median([a / b for a, b in zip(rows["engine"], rows["nni_noop"], strict=True)])
    inline = median([a / b for a, b in zip(rows["inline"], rows["nni_noop"], strict=True)])
    nni_us = median(rows["nni_noop"]) * 1e6
    figure = "1 per-model overhead"
    return [
        Result(
            figure,
            "  vs NNI 3.0's real engine",
            backend,
            nni_us,
            "us/model",
            "NNI engine",
            ratio,
            "<= 2x",
            ratio <= 2.0,
        ),
        Result(
            figure,
            "inline re-creation, vs NNI's real engine",
            backend,
            median(rows["inline"]) * 1e6,
            "us/model",
            "NNI engine",
            inline,
            "(reported)",
            None,
        ),
    ]


def _nni_rows(rows: dict[str, list[float]], count: int, backend: str) -> list[Result]:
    """aionas beside NNI 3.0's real engine: the same models, submitted the same two ways."""

    def ratio(ours: str, theirs: str) -> float:
        return median([a / b for a, b in zip(rows[ours], rows[theirs], strict=True)])

    figure = "1 per-model overhead"
    us = {k: median(v) * 1e6 for k, v in rows.items() if v}
    final = f"engine, {count:,} models + a final metric"
    single = "engine, the same one at a time"
    if not rows["nni"]:
        return [
            Result(figure, final, backend, us["final"], "us/model"),
            Result(figure, single, backend, us["single"], "us/model"),
        ]
    batch = ratio("final", "nni")
    return [
        Result(figure, final, backend, us["final"], "us/model"),
        Result(
            figure,
            "  vs NNI 3.0's real engine",
            backend,
            us["nni"],
            "us/model",
            "NNI engine",
            batch,
            "<= 2x",
            batch <= 2.0,
        ),
        Result(
            figure,
            "  vs NNI 3.0, FunctionalEvaluator model",
            backend,
            us["nni_evaluator"],
            "us/model",
            "NNI evaluator",
            ratio("final", "nni_evaluator"),
            "(reported)",
            None,
        ),
        Result(figure, single, backend, us["single"], "us/model"),
        Result(
            figure,
            "  vs NNI 3.0, one at a time",
            backend,
            us["nni_single"],
            "us/model",
            "NNI engine",
            ratio("single", "nni_single"),
            "(reported)",
            None,
        ),
    ]
