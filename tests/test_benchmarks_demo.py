"""The demo's benchmark (figure 5) and what it relies on in ``examples/digits_mlp.py``.

The example must train each model with one BLAS thread (two fight over a small
machine's cores) and give the same curve for the same params on every run (so a
seed gives the same leaderboard); the figure must time the real command and check
its journal against a bare loop.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import anyio
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("rich")

from benchmarks import demo, run
from benchmarks._common import Result

import aionas

SMALL = {"depth": 1, "width": 32, "activation": "relu", "lr": 0.003, "weight_decay": 1e-4}


def blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def test_the_example_trains_with_one_blas_thread_and_gives_the_rest_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    example = demo.load_example()
    seen: list[list[int]] = []
    monkeypatch.setattr(aionas, "report_intermediate_result", lambda _: seen.append(blas_threads()))
    before = blas_threads()
    example.evaluate(SMALL)
    assert len(seen) == example.EPOCHS
    assert all(threads and set(threads) == {1} for threads in seen)
    assert blas_threads() == before


def test_the_example_gives_the_same_curve_for_the_same_params(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    example = demo.load_example()
    runs = []
    for _ in range(2):
        reported: list[float] = []
        monkeypatch.setattr(aionas, "report_intermediate_result", reported.append)
        final = example.evaluate(SMALL)
        runs.append((reported, final))
    assert runs[0] == runs[1]
    assert len(runs[0][0]) == example.EPOCHS
    assert runs[0][1] == max(runs[0][0])


def by_name(rows: list[Result]) -> dict[str, Result]:
    return {row.name.strip(): row for row in rows}


def test_the_figure_times_the_real_command_and_replays_its_models() -> None:
    rows = anyio.run(partial(demo.measure, "asyncio", quick=True, repeat=1, max_models=3))
    found = by_name(rows)
    wall = found["aionas demo --max-models 3: wall, 3 models"]
    assert wall.value > 0
    assert wall.met is None  # no target below the full budget
    cpu = found["CPU of its process, vs wall"]
    assert cpu.value > 0
    assert cpu.ratio == pytest.approx(cpu.value / wall.value)
    replay = found["bare loop reproduces the final metrics (of 3)"]
    assert replay.value == 3
    assert replay.met is True
    best = found["best model"]
    assert best.value in {1, 2, 3}
    assert best.met is None  # one run cannot disagree with itself
    assert 0.5 < found["its validation accuracy"].value <= 1.0


def test_a_failing_command_is_an_error_with_its_stderr() -> None:
    with pytest.raises(RuntimeError, match="must be a finite number > 0"):
        demo.run_demo(0)


def test_a_partial_run_never_overwrites_the_full_figures() -> None:
    results = Path(run.__file__).resolve().parent / "results"
    assert run.default_output(None, quick=False) == results / "latest.json"
    assert run.default_output(None, quick=True) == results / "latest-quick.json"
    assert run.default_output(["demo"], quick=False) == results / "latest-demo.json"
    assert run.default_output(["reports", "demo"], quick=True) == (
        results / "latest-demo-reports-quick.json"
    )


def test_the_demo_runs_three_times_one_when_quick_unless_told() -> None:
    assert run.figure_repeat("demo", quick=False, asked=None) == 3
    assert run.figure_repeat("demo", quick=True, asked=None) == 1
    assert run.figure_repeat("demo", quick=True, asked=4) == 4
    assert run.figure_repeat("reports", quick=False, asked=None) == 5
    assert run.figure_repeat("reports", quick=True, asked=None) == 2


def test_the_table_shows_ids_accuracies_and_counts() -> None:
    assert run._format(29, "id") == "#29"
    assert run._format(0.98666, "accuracy") == "0.9867"
    assert run._format(100, "models") == "100 models"
