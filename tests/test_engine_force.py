"""``shutdown(force=True)``: stop waiting for a model that has not noticed its stop."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import pytest

import aionas
from aionas import ModelStatus, SequentialExecutionEngine, SqliteJournal, load_history
from aionas.journal import Restored

from .helpers import Gate, Recorder, Reporter

pytestmark = pytest.mark.anyio


async def test_force_ends_a_deaf_model_interrupted_now_and_journals_it(tmp_path: Path) -> None:
    deaf, queued = Gate(heed_cancel=False), Reporter()
    journal = SqliteJournal(tmp_path / "j.db", "force")
    try:
        async with SequentialExecutionEngine(journal=journal) as engine:
            recorder = Recorder(engine)
            await engine.submit_models(deaf, queued)
            await deaf.wait_started()
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(engine.shutdown)  # waits: the model does not listen
                await engine.shutdown(force=True)
            # Both shutdowns returned while the model's code still runs.
            assert not deaf.returned.is_set()
            assert deaf.status is ModelStatus.Interrupted
            assert queued.status is ModelStatus.Interrupted
        end = recorder.end(deaf)
        assert (end.status, end.reason) == (ModelStatus.Interrupted, "shutdown")
        models, _ = load_history(tmp_path / "j.db", "force")
        assert [(m.status, getattr(m, "reason", None)) for m in models] == [
            (ModelStatus.Interrupted, "shutdown"),
            (ModelStatus.Interrupted, "shutdown"),
        ]
    finally:
        deaf.release.set()
        await deaf.wait_returned()


async def test_force_without_a_stuck_model_is_a_plain_shutdown() -> None:
    async with SequentialExecutionEngine() as engine:
        first = Reporter()
        await engine.submit_models(first)
        await engine.wait_models(first)
        await engine.shutdown(force=True)
        await engine.shutdown(force=True)  # again: nothing more
    assert first.status is ModelStatus.Trained


async def test_force_on_a_listening_model_ends_it_interrupted() -> None:
    gate = Gate()
    async with SequentialExecutionEngine() as engine:
        await engine.submit_models(gate)
        await gate.wait_started()
        await engine.shutdown(force=True)
        assert gate.status is ModelStatus.Interrupted
    gate.release.set()
    await gate.wait_returned()


class SlowToOpen(SqliteJournal):
    """A journal whose open() waits until the test lets it go on."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "slow")
        self.opening = threading.Event()
        self.go_on = threading.Event()

    def open(self) -> Restored:
        self.opening.set()
        assert self.go_on.wait(10), "the test never let open() go on"
        return super().open()


async def test_a_shutdown_while_starting_stops_it_once_started_and_runs_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.db"
    # A first run leaves a model interrupted by a shutdown: a resume would run it again.
    async with SequentialExecutionEngine(journal=SqliteJournal(path, "slow")) as engine:
        gate = Gate()
        await engine.submit_models(gate)
        await gate.wait_started()
        await engine.shutdown()
    journal = SlowToOpen(path)
    engine = SequentialExecutionEngine(
        journal=journal, resume="requeue", model_factory=lambda params: Gate(params)
    )
    stopped = anyio.Event()

    async def stop() -> None:
        await anyio.to_thread.run_sync(journal.opening.wait, 10)
        tasks.start_soon(engine.shutdown)  # while __aenter__ waits in open()
        await anyio.wait_all_tasks_blocked()
        journal.go_on.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(stop)
        async with engine:
            recorder = Recorder(engine)
            with pytest.raises(aionas.EngineClosedError):
                await engine.submit_models(Reporter())
            (again,) = engine.list_models()
            await engine.wait_models(again)
            stopped.set()
    assert (again.status, recorder.end(again).reason) == (ModelStatus.Interrupted, "shutdown")
    assert not again.started.is_set()  # type: ignore[attr-defined]
    with pytest.raises(aionas.EngineClosedError, match="runs once"):
        async with engine:
            pass
