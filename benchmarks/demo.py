"""Figure 5: ``aionas demo`` end to end, beside the same training in a bare loop.

The real command, ``python -m aionas.cli demo --journal DIR/aionas.db``, runs in a
fresh temporary folder with its output piped (so it prints one line per event),
once per repetition. Timed from outside: the wall time, and the CPU time of the
command's process (user + system, from ``getrusage(RUSAGE_CHILDREN)``): CPU well
above wall means threads fighting over the cores. The best model is read back from
the journal with :func:`aionas.load_history`.

The baseline is the example's own ``evaluate(params)`` called in a plain loop in
this process, on the params the command ran, in its order: the training alone,
without the interpreter's start, the imports, the engine, the journal or the
display. It also checks that training is deterministic: the loop must reproduce
every final metric the command recorded.
"""

from __future__ import annotations

import importlib.util
import logging
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio

import aionas

from ._common import Result, median

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits_mlp.py"
#: The models ``aionas demo`` trains (its ``--max-models`` default).
DEMO_MODELS = 100
#: The smaller budget of a ``--quick`` run: enough to run every step, in seconds.
QUICK_MODELS = 20
#: How many models the demo's evolution draws at random before it starts to mutate.
POPULATION = 10
#: What the README promises for the full demo on a 2-core machine.
TARGET_SECONDS = 30.0
#: CPU per wall second above which threads compete for the cores.
TARGET_CPU_RATIO = 1.1


@dataclass(frozen=True)
class DemoRun:
    """One run of the command: its cost, and what it trained, in model-id order."""

    wall: float
    cpu: float
    best_id: int
    best_metric: float
    params: list[dict[str, Any]]
    finals: list[float | None]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_demo(max_models: int | None = None, *, timeout: float = 600.0) -> DemoRun:
    """Run ``aionas demo`` (``--max-models`` if given) in a new folder, and read its journal.

    :raises RuntimeError: if the command fails, with the end of what it wrote to stderr.
    """
    folder = Path(tempfile.mkdtemp(prefix="aionas-bench-demo-"))
    try:
        journal = folder / "aionas.db"
        command = [sys.executable, "-m", "aionas.cli", "demo", "--journal", str(journal)]
        if max_models is not None:
            command += ["--max-models", str(max_models)]
        cpu_before = _children_cpu()
        start = time.perf_counter()
        done = subprocess.run(
            command,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        wall = time.perf_counter() - start
        cpu = _children_cpu() - cpu_before
        if done.returncode != 0:
            tail = " | ".join(done.stderr.strip().splitlines()[-5:])
            raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {tail}")
        models, summary = aionas.load_history(journal)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if summary.best_model_id is None or summary.best_metric is None:
        raise RuntimeError(f"the demo trained no model: {summary.by_status}")
    ordered = sorted(models, key=lambda m: m.model_id or 0)
    return DemoRun(
        wall=wall,
        cpu=cpu,
        best_id=summary.best_model_id,
        best_metric=summary.best_metric,
        params=[dict(m.params) for m in ordered],
        finals=[m.metric if isinstance(m.metric, float) else None for m in ordered],
    )


def load_example() -> ModuleType:
    """The demo's search file as a module, its data already loaded."""
    spec = importlib.util.spec_from_file_location("aionas_bench_digits_mlp", EXAMPLE)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {EXAMPLE} as Python")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.data()
    return module


def bare_loop(params: list[dict[str, Any]]) -> tuple[float, float, list[float]]:
    """(wall s, CPU s, final metrics) of ``evaluate(p)`` for each ``p`` in a plain loop.

    Without an engine, ``report_intermediate_result`` logs each report at INFO and
    warns once on the ``aionas.trial`` logger; that logger is quiet while this runs.
    """
    example = load_example()
    trial_logger = logging.getLogger("aionas.trial")
    level = trial_logger.level
    trial_logger.setLevel(logging.ERROR)
    try:
        cpu_start, start = time.process_time(), time.perf_counter()
        finals = [float(example.evaluate(p)) for p in params]
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    finally:
        trial_logger.setLevel(level)
    return wall, cpu, finals


def best_of(finals: list[float | None]) -> float:
    return max((f for f in finals if f is not None), default=float("nan"))


async def measure(
    backend: str, *, quick: bool, repeat: int, max_models: int | None = None
) -> list[Result]:
    """``repeat`` runs of the command, each followed by its bare loop; medians of both."""
    if max_models is None and quick:
        max_models = QUICK_MODELS
    runs: list[DemoRun] = []
    bare: list[tuple[float, float, list[float]]] = []
    for _ in range(repeat):
        run = await anyio.to_thread.run_sync(run_demo, max_models)
        runs.append(run)
        bare.append(await anyio.to_thread.run_sync(bare_loop, run.params))
    count = len(runs[0].params)
    first = runs[0]
    agree = all((r.best_id, r.best_metric) == (first.best_id, first.best_metric) for r in runs)
    reproduced = min(
        sum(a == b for a, b in zip(run.finals, finals, strict=True))
        for run, (_, _, finals) in zip(runs, bare, strict=True)
    )
    wall = median([r.wall for r in runs])
    cpu_ratio = median([r.cpu / r.wall for r in runs])
    bare_ratio = median([r.wall / b[0] for r, b in zip(runs, bare, strict=True)])
    full = count >= DEMO_MODELS
    command = "aionas demo" if max_models is None else f"aionas demo --max-models {max_models}"
    figure = "5 demo"
    return [
        Result(
            figure,
            f"{command}: wall, {count} models",
            backend,
            wall,
            "s",
            target=f"<= {TARGET_SECONDS:.0f} s" if full else "",
            met=wall <= TARGET_SECONDS if full else None,
        ),
        Result(
            figure,
            "  CPU of its process, vs wall",
            backend,
            median([r.cpu for r in runs]),
            "s",
            "wall",
            cpu_ratio,
            f"<= {TARGET_CPU_RATIO}x",
            cpu_ratio <= TARGET_CPU_RATIO,
        ),
        Result(
            figure,
            "  vs the same training in a bare loop",
            backend,
            median([b[0] for b in bare]),
            "s",
            "bare loop",
            bare_ratio,
            "(reported)",
        ),
        Result(
            figure,
            f"  bare loop reproduces the final metrics (of {count})",
            backend,
            reproduced,
            "models",
            target="all",
            met=reproduced == count,
        ),
        Result(
            figure,
            "best model",
            backend,
            first.best_id,
            "id",
            target="the same in every run",
            met=agree if len(runs) > 1 else None,
        ),
        Result(figure, "  its validation accuracy", backend, first.best_metric, "accuracy"),
        Result(
            figure,
            f"  best of the first {POPULATION} (random) models",
            backend,
            best_of(first.finals[:POPULATION]),
            "accuracy",
        ),
    ]
