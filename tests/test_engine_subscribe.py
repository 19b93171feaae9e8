"""Subscriptions for embedding: batches, catching up from the journal, lookups by id."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

import aionas

from .helpers import Gate, Recorder, Reporter

pytestmark = pytest.mark.anyio


async def test_receive_batch_takes_what_is_buffered_up_to_the_limit() -> None:
    models = [Reporter({"n": 5}) for _ in range(3)]
    async with aionas.SequentialExecutionEngine() as engine:
        async with engine.subscribe() as events:
            await engine.submit_models(*models)
            await engine.wait_models()  # everything is buffered now
            first = await events.receive_batch(4)
            rest = await events.receive_batch(1000)
            await engine.shutdown()
            assert await events.receive_batch() == []  # ended
    assert len(first) == 4
    seqs = [event.seq for event in first + rest]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert len(seqs) == 3 * (1 + 5 + 1 + 1)
    assert events.last_seq == seqs[-1]


async def test_receive_batch_rejects_a_bad_limit() -> None:
    async with aionas.SequentialExecutionEngine() as engine:
        async with engine.subscribe() as events:
            with pytest.raises(ValueError, match="max_items"):
                await events.receive_batch(0)


async def test_since_seq_needs_a_journal() -> None:
    engine = aionas.SequentialExecutionEngine()
    with pytest.raises(ValueError, match="journal"):
        engine.subscribe(since_seq=3)


async def test_on_full_must_be_wait_or_close() -> None:
    engine = aionas.SequentialExecutionEngine()
    with pytest.raises(ValueError, match="on_full"):
        engine.subscribe(on_full="drop")  # type: ignore[arg-type]


async def test_since_seq_replays_then_continues_live_with_no_gap_and_no_duplicate(
    tmp_path: Path,
) -> None:
    journal = aionas.SqliteJournal(tmp_path / "j.db", "exp")
    gate = Gate()
    early = [Reporter({"n": 4, "i": i}) for i in range(5)]
    async with aionas.SequentialExecutionEngine(journal=journal) as engine:
        recorder = Recorder(engine)
        await engine.submit_models(*early)
        await engine.wait_models()
        cursor = recorder.events[6].seq  # a browser saw up to here, then reconnects
        await engine.submit_models(gate)  # running while the subscriber catches up
        await gate.wait_started()
        late = [Reporter({"n": 3, "i": 10 + i}) for i in range(3)]
        seen: list[aionas.ModelEvent] = []
        async with engine.subscribe(since_seq=cursor) as events:
            gate.release.set()
            await engine.submit_models(*late)
            async for event in events:
                seen.append(event)
                if event.model is late[-1] and isinstance(event, aionas.TrainingEndEvent):
                    break
    expected = [e.seq for e in recorder.events if e.seq > cursor]
    assert [e.seq for e in seen] == expected
    # Replayed events carry the engine's own model objects and their ids.
    assert all(e.model is engine.get_model(e.model_id or -1) for e in seen)
    assert all(type(a) is type(b) for a, b in zip(seen, recorder.events[7:], strict=False))


async def test_since_seq_after_a_resume_reaches_back_into_the_earlier_run(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.db"
    async with aionas.SequentialExecutionEngine(
        journal=aionas.SqliteJournal(path, "exp")
    ) as engine:
        await engine.submit_models(Reporter({"n": 2}))
    async with aionas.SequentialExecutionEngine(
        journal=aionas.SqliteJournal(path, "exp")
    ) as engine:
        async with engine.subscribe("training_end", since_seq=-1) as events:
            (old_end,) = await events.receive_batch()
            await engine.submit_models(Reporter({"n": 1}))
            (new_end,) = await events.receive_batch()
    assert isinstance(old_end, aionas.TrainingEndEvent)
    assert old_end.status is aionas.ModelStatus.Trained
    assert old_end.seq == 4
    assert new_end.seq > old_end.seq
    assert new_end.model_id == 2


async def test_get_model_finds_a_model_by_id() -> None:
    model = Reporter({"n": 1})
    async with aionas.SequentialExecutionEngine() as engine:
        await engine.submit_models(model)
        assert model.model_id is not None
        assert engine.get_model(model.model_id) is model
        with pytest.raises(KeyError):
            engine.get_model(999)


async def test_a_close_subscriber_never_slows_training_and_says_where_it_stopped() -> None:
    models = [Reporter({"n": 50}) for _ in range(4)]
    async with aionas.SequentialExecutionEngine(event_buffer_size=1_000) as engine:
        async with engine.subscribe(buffer_size=8, on_full="close") as slow:
            recorder = Recorder(engine)
            await engine.submit_models(*models)
            await engine.wait_models()  # returns although nobody read `slow`
            got = []
            with pytest.raises(aionas.SlowSubscriberError) as caught:
                async for event in slow:
                    got.append(event)
    assert len(got) == 8
    assert caught.value.last_seq == got[-1].seq
    assert len(recorder.events) == 4 * 53  # everyone else got everything
    assert engine.statistics().subscribers_closed == 1


async def test_a_stalled_wait_subscriber_cannot_hold_up_the_exit() -> None:
    models = [Reporter({"n": 20}) for _ in range(3)]
    engine = aionas.SequentialExecutionEngine(subscriber_grace=0.1)
    with anyio.fail_after(20):
        async with engine.subscribe(buffer_size=2) as stalled:  # open across the exit
            async with engine:
                recorder = Recorder(engine)
                await engine.submit_models(*models)
            # Leaving the engine returned although `stalled` was never read.
            got = []
            with pytest.raises(aionas.SlowSubscriberError) as caught:
                async for event in stalled:
                    got.append(event)
    assert len(got) == 2
    assert caught.value.last_seq == got[-1].seq
    assert sum(isinstance(e, aionas.TrainingEndEvent) for e in recorder.events) == 3
    assert all(m.status is aionas.ModelStatus.Trained for m in models)


async def test_since_seq_needs_a_running_engine(tmp_path: Path) -> None:
    engine = aionas.SequentialExecutionEngine(journal=aionas.SqliteJournal(tmp_path / "j.db"))
    with pytest.raises(aionas.EngineClosedError, match="only inside"):
        async with engine.subscribe(since_seq=-1):
            pass


async def test_a_subscriber_catching_up_when_the_engine_exits_still_gets_everything(
    tmp_path: Path,
) -> None:
    journal = aionas.SqliteJournal(tmp_path / "j.db", "exp")
    got: list[int] = []
    async with aionas.SequentialExecutionEngine(journal=journal) as engine:
        recorder = Recorder(engine)
        await engine.submit_models(*[Reporter({"n": 50}) for _ in range(250)])
        await engine.wait_models()
        subscription = engine.subscribe(since_seq=-1, buffer_size=10)
        events = await subscription.__aenter__()
    try:  # the engine has exited and closed its journal; the replay reads on
        async for event in events:
            got.append(event.seq)
    finally:
        await subscription.__aexit__(None, None, None)
    assert got == [e.seq for e in recorder.events]
