"""An experiment's metadata, the list of a file's experiments, and ranking that skips NaN."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import anyio
import pytest

import aionas
from aionas import (
    FunctionModel,
    JournalError,
    SequentialExecutionEngine,
    SqliteJournal,
    list_experiments,
    load_history,
)
from aionas.journal.history import best_model


def run(path: Path, experiment: str, metrics: list[float], **journal: object) -> None:
    async def main() -> None:
        async with SequentialExecutionEngine(
            journal=SqliteJournal(path, experiment, **journal)  # type: ignore[arg-type]
        ) as engine:
            models = [FunctionModel(lambda p: p["m"], {"m": m}) for m in metrics]
            await engine.submit_models(*models)
            await engine.wait_models(*models)

    anyio.run(main)


def test_metadata_is_recorded_replaced_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    run(path, "a", [1.0], metadata={"mode": "min", "seed": 3, "space": {"x": "Int(0, 4)"}})
    history = load_history(path, "a")
    assert history.summary.metadata == {"mode": "min", "seed": 3, "space": {"x": "Int(0, 4)"}}
    assert history.summary.mode == "min"
    journal = SqliteJournal(path, "a", metadata={"mode": "max"})
    assert journal.open().metadata["mode"] == "min"  # what was recorded before
    journal.close()
    assert load_history(path, "a").summary.metadata == {"mode": "max"}
    journal = SqliteJournal(path, "a")  # no metadata: keeps what is there
    journal.open()
    journal.close()
    assert load_history(path, "a").summary.metadata == {"mode": "max"}


def test_metadata_must_be_plain_json(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="plain JSON"):
        SqliteJournal(tmp_path / "j.db", metadata={"x": object()})
    with pytest.raises(TypeError, match="plain JSON"):
        SqliteJournal(tmp_path / "j.db", metadata={"x": math.nan})
    with pytest.raises(TypeError, match="mapping"):
        SqliteJournal(tmp_path / "j.db", metadata=[("a", 1)])  # type: ignore[arg-type]
    assert not (tmp_path / "j.db").exists()


def test_best_follows_the_recorded_mode_and_never_picks_nan(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    run(path, "low", [math.nan, 0.5, 0.1, math.nan, 0.9], metadata={"mode": "min"})
    run(path, "high", [math.nan, 0.5, 0.1, math.nan, 0.9])
    low, high = load_history(path, "low").summary, load_history(path, "high").summary
    assert (low.best_model_id, low.best_metric) == (3, 0.1)
    assert (high.best_model_id, high.best_metric) == (5, 0.9)
    nan_first = load_history(path, "high").models
    assert best_model(nan_first, "max") is nan_first[4]
    assert best_model(nan_first[:1], "max") is None


def test_list_experiments_summarises_each_one_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    run(path, "zeta", [1.0, 2.0], metadata={"strategy": "grid"})
    run(path, "alpha", [3.0])
    found = list_experiments(path)
    assert [s.experiments for s in found] == [("zeta",), ("alpha",)]
    assert [s.models for s in found] == [2, 1]
    assert found[0].metadata == {"strategy": "grid"}
    assert found[1].metadata == {}
    assert found[0].best_model_id == 2
    assert found[0].created is not None
    assert found[0].created <= (found[1].created or 0)
    assert aionas.list_experiments is list_experiments


def _downgrade_to_version_1(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE experiments DROP COLUMN metadata")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def test_a_version_1_file_is_read_as_is_and_upgraded_by_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    run(path, "old", [1.0, 2.0])
    _downgrade_to_version_1(path)
    before = path.read_bytes()
    history = load_history(path, "old")  # read-only: no upgrade, no metadata
    assert history.summary.metadata == {}
    assert history.summary.models == 2
    assert list_experiments(path)[0].metadata == {}
    assert path.read_bytes() == before
    run(path, "old", [3.0], metadata={"mode": "max"})  # a writer upgrades it
    assert load_history(path, "old").summary.metadata == {"mode": "max"}
    assert load_history(path, "old").summary.models == 3
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == aionas.journal.SCHEMA_VERSION
    conn.close()


def test_metadata_that_is_not_json_is_a_clear_journal_error(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    run(path, "a", [1.0])
    conn = sqlite3.connect(path)
    conn.execute("UPDATE experiments SET metadata = '{broken'")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="metadata that is not JSON"):
        load_history(path, "a")


def test_experiment_record_reads_metadata_and_count_only(tmp_path: Path) -> None:
    from aionas.journal.history import experiment_record

    path = tmp_path / "j.db"
    assert experiment_record(path, "a") == ({}, 0)  # no file yet: nothing recorded
    run(path, "a", [1.0, 2.0, 3.0], metadata={"mode": "min"})
    assert experiment_record(path, "a") == ({"mode": "min"}, 3)
    assert experiment_record(path, "other") == ({}, 0)
    _downgrade_to_version_1(path)
    assert experiment_record(path, "a") == ({}, 3)
