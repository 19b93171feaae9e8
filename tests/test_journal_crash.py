"""A search killed at random moments loses nothing anyone saw, and resumes right."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path
from typing import Any

import anyio
import pytest

import aionas
from aionas import ModelStatus, SequentialExecutionEngine, SqliteJournal

from .test_journal import rows, run_until, submissions_and_ends


def copy_journal(source: Path, target: Path) -> None:
    for suffix in ("", "-wal"):
        if Path(f"{source}{suffix}").exists():
            shutil.copy(f"{source}{suffix}", f"{target}{suffix}")


def unfinished(db: Path) -> dict[int, bool]:
    """Models without an end event: id -> whether they had started."""
    ended = {r[0] for r in rows(db, "SELECT model_id FROM events WHERE type = 'training_end'")}
    started = {r[0] for r in rows(db, "SELECT model_id FROM events WHERE type = 'training_start'")}
    ids = [r[0] for r in rows(db, "SELECT id FROM models")]
    return {i: i in started for i in ids if i not in ended}


@pytest.mark.parametrize("kill_after", [1, 23, 230, 1_100, 2_900])
def test_sigkill_loses_nothing_that_was_seen(tmp_path: Path, kill_after: int) -> None:
    db = tmp_path / "search.db"
    seen = run_until(db, "steady", lines=kill_after, sig=signal.SIGKILL)
    printed = [int(line.split()[0]) for line in seen]
    assert len(printed) >= kill_after
    journaled = {r[0] for r in rows(db, "SELECT seq FROM events")}
    missing = sorted(set(printed) - journaled)
    assert missing == [], f"killed after {kill_after} lines: seen but not journaled {missing[:10]}"

    left = unfinished(db)
    running = [i for i, started in left.items() if started]
    assert len(running) <= 1
    ended_before = {
        r[0] for r in rows(db, "SELECT model_id FROM events WHERE type = 'training_end'")
    }
    requeue_db = tmp_path / "requeue.db"
    copy_journal(db, requeue_db)

    async def resume_interrupt() -> list[aionas.Model]:
        async with SequentialExecutionEngine(journal=SqliteJournal(db)) as engine:
            pass
        return engine.list_models()

    models = {m.model_id: m for m in anyio.run(resume_interrupt)}
    for model_id in left:
        assert models[model_id].status is ModelStatus.Interrupted
    for model_id in running:
        reasons = rows(
            db,
            "SELECT json_extract(data, '$.reason') FROM events "
            f"WHERE model_id = {model_id} AND type = 'training_end'",
        )
        assert reasons == [("crash",)]
    assert unfinished(db) == {}

    ran: list[int] = []

    def factory(params: dict[str, Any]) -> aionas.Model:
        def train(p: dict[str, Any]) -> float:
            ran.append(p["i"])
            return 0.0

        return aionas.FunctionModel(train, params)

    async def resume_requeue() -> list[aionas.Model]:
        journal = SqliteJournal(requeue_db)
        async with SequentialExecutionEngine(
            journal=journal, resume="requeue", model_factory=factory
        ) as engine:
            pass
        return engine.list_models()

    requeued = anyio.run(resume_requeue)
    ids_run = {m.model_id for m in requeued if m.params["i"] in ran}
    assert ids_run == set(left)
    assert not ids_run & ended_before
    assert all(m.status is ModelStatus.Trained for m in requeued)


def test_sigint_stops_cleanly_and_leaves_a_consistent_journal(tmp_path: Path) -> None:
    db = tmp_path / "search.db"
    seen = run_until(db, "steady", lines=500, sig=signal.SIGINT)
    assert seen[-1] == "interrupted"
    assert unfinished(db) == {}
    assert submissions_and_ends(db)  # every submission has exactly one end
    models, summary = aionas.load_history(db)
    interrupted = [m for m in models if m.status is ModelStatus.Interrupted]
    assert interrupted
    assert summary.by_status["trained"] + len(interrupted) == 200
    reasons = {
        r[0] for r in rows(db, "SELECT reason FROM model_status WHERE status = 'interrupted'")
    }
    assert reasons == {"shutdown"}
    # the model that was running ended interrupted after it had started
    started_and_interrupted = rows(
        db,
        "SELECT COUNT(DISTINCT e.model_id) FROM events AS e JOIN events AS s "
        "ON s.model_id = e.model_id AND s.type = 'training_start' "
        "WHERE e.type = 'training_end' AND json_extract(e.data, '$.status') = 'interrupted'",
    )
    assert started_and_interrupted == [(1,)]
    owner = rows(db, "SELECT owner_pid FROM experiments")
    assert owner == [(None,)]  # released on the way out
