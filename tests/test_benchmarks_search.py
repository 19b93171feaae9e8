"""The search benchmark (figure 6): aionas's ``RandomSearch`` beside Optuna, per trial.

The figure must run every search it names to the end (on both backends), judge
its two targets from its own ratios, leave Optuna's logging as it found it, and
write the journal it claims to time.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import anyio
import pytest

pytest.importorskip("optuna")
pytest.importorskip("rich")

import optuna
from benchmarks import run, search
from benchmarks._common import Result

import aionas


def by_name(rows: list[Result]) -> dict[str, Result]:
    return {row.name.strip(): row for row in rows}


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_figure_times_both_searches_and_judges_the_targets(backend: str) -> None:
    rows = anyio.run(
        partial(search.measure, backend, quick=True, repeat=1, trials=20, sqlite_trials=3),
        backend=backend,
    )
    assert {row.figure for row in rows} == {"6 search overhead"}
    assert {row.backend for row in rows} == {backend}
    assert {row.unit for row in rows} == {"us/trial"}
    assert all(row.value > 0 for row in rows)
    found = by_name(rows)
    assert len(found) == len(rows) == 5
    memory = found["Optuna in memory (RandomSampler), 20 trials"]
    sqlite = found["Optuna on SQLite (RandomSampler), 3 trials"]
    plain = found["RandomSearch, 20 no-op trials, vs Optuna in memory"]
    journal = found["with an SQLite journal, vs Optuna in memory"]
    persisted = found["with an SQLite journal, vs Optuna on SQLite"]
    assert (memory.ratio, memory.met, sqlite.ratio, sqlite.met) == (None, None, None, None)
    # one repetition: each ratio is the quotient of the values shown
    assert plain.ratio == pytest.approx(plain.value / memory.value)
    assert (plain.target, plain.met) == ("<= 0.1x", plain.ratio <= 0.1)
    assert journal.ratio == pytest.approx(journal.value / memory.value)
    assert (journal.target, journal.met) == ("<= 1.0x", journal.ratio <= 1.0)
    assert persisted.value == journal.value
    assert persisted.ratio == pytest.approx(journal.value / sqlite.value)
    assert (persisted.target, persisted.met) == ("(reported)", None)


def test_the_figure_leaves_optunas_logging_as_it_found_it() -> None:
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.DEBUG)
    try:
        anyio.run(
            partial(search.measure, "asyncio", quick=True, repeat=1, trials=2, sqlite_trials=1)
        )
        assert optuna.logging.get_verbosity() == logging.DEBUG
    finally:
        optuna.logging.set_verbosity(before)


def test_the_journaled_search_writes_every_trial(tmp_path: Path) -> None:
    path = tmp_path / "search.db"
    per_trial = anyio.run(search.aionas_per_trial, 7, aionas.SqliteJournal(path))
    assert per_trial > 0
    models, summary = aionas.load_history(path)
    assert len(models) == 7
    assert summary.by_status == {"trained": 7}
    assert all(m.metric == m.params["x"] for m in models)


def test_the_search_figure_is_wired_and_runs_once_when_quick() -> None:
    assert "search" in [name for name, _, _ in run.FIGURES]
    assert run.figure_repeat("search", quick=False, asked=None) == 5
    assert run.figure_repeat("search", quick=True, asked=None) == 1
    results = Path(run.__file__).resolve().parent / "results"
    assert run.default_output(["search"], quick=False) == results / "latest-search.json"
