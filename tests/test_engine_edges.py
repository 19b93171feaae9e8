"""The engine at its edges: races, identity, stalled consumers, failed commits, counters.

Each test pins one of the bugs of issue 8 (numbered in a comment) and failed on the
engine before v2. Races are driven by events where the public API allows it; where
only the timing of two threads decides, the test repeats the race many times with
a short switch interval (``sys.setswitchinterval(1e-5)``), which is what exposes it.
"""

from __future__ import annotations

import errno
import itertools
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

import aionas
from aionas import ModelStatus, SequentialExecutionEngine

from .helpers import Gate, Recorder, Reporter

pytestmark = pytest.mark.anyio


@contextmanager
def short_switch_interval() -> Iterator[None]:
    """Let the interpreter switch threads every 10 µs, so that race windows open."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


async def collect(
    engine: aionas.SequentialExecutionEngine,
    into: list[aionas.ModelEvent],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """A subscriber that reads everything until the engine ends its iteration."""
    async with engine.subscribe() as events:
        task_status.started()
        async for event in events:
            into.append(event)


def check_stream(events: Sequence[aionas.ModelEvent], models: Sequence[aionas.Model]) -> None:
    """What every consumer must see: seq up by one each time, one end per model, last."""
    jumps = [(a.seq, b.seq) for a, b in itertools.pairwise(events) if b.seq != a.seq + 1]
    assert not jumps[:5], f"seq must go up by exactly one; {len(jumps)} jumps"
    ended: set[int] = set()
    after_end = []
    for event in events:
        if id(event.model) in ended:
            after_end.append(event)
        if isinstance(event, aionas.TrainingEndEvent):
            ended.add(id(event.model))
    assert not after_end[:5], f"{len(after_end)} events after their model's end"
    assert ended == {id(model) for model in models}, "every model ends, once"


# ---------------------------------------------------------------------- bug 4: stop vs. natural end


@pytest.mark.parametrize("stop", ["cancel", "shutdown"])
async def test_a_stop_reaching_a_model_that_still_trains_wins_over_its_return(stop: str) -> None:
    # Bug 4: an ``async def execute`` returns, and a stop lands before the engine has
    # recorded the end. Whichever is recorded first wins: a model that still shows
    # ``Training`` when the stop arrives must end Interrupted (it used to end Trained).
    seen: dict[str, Any] = {}
    stopped = anyio.Event()
    engine = SequentialExecutionEngine()

    async def stop_it(model: aionas.Model) -> None:
        if stop == "cancel":
            seen["result"] = engine.cancel_model(model)
            # Still training after the cancel: its end, if any, is recorded after it.
            seen["stopped_first"] = model.status is ModelStatus.Training
        else:
            # The model runs on the loop, as does this task: nothing ends it in between.
            seen["stopped_first"] = model.status is ModelStatus.Training
            await engine.shutdown()
        stopped.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:

            class ReturnsAsStopped(aionas.Model):
                async def execute(self) -> None:
                    aionas.report_intermediate_result(1.0)
                    tasks.start_soon(stop_it, self)  # runs right after execute() returns

            model = ReturnsAsStopped()
            async with engine:
                recorder = Recorder(engine)
                await engine.submit_models(model)
                await engine.wait_models(model)
                await stopped.wait()
    end = recorder.end(model)
    reason = "cancelled" if stop == "cancel" else "shutdown"
    if seen["stopped_first"]:
        assert (end.status, end.reason) == (ModelStatus.Interrupted, reason)
        assert model.status is ModelStatus.Interrupted
        if stop == "cancel":
            assert seen["result"] is aionas.CancelResult.Stopping
    else:  # the end was recorded first: it stands
        assert (end.status, end.reason) == (ModelStatus.Trained, "completed")
        if stop == "cancel":
            assert seen["result"] is aionas.CancelResult.AlreadyEnded


async def test_cancel_result_says_what_happened_when_it_races_the_end() -> None:
    # Bug 4, by repetition: thread models return just as cancel_model() reaches them.
    # ``Stopping`` means the model ends Interrupted; a model whose end was recorded
    # first keeps Trained and the cancel says ``AlreadyEnded``. A model still
    # ``Training`` right after cancel_model() returned had its end recorded after the
    # cancel, so it too must end Interrupted.
    seen: dict[int, tuple[Any, ModelStatus]] = {}

    with short_switch_interval(), anyio.fail_after(20):
        async with anyio.create_task_group() as tasks:
            async with SequentialExecutionEngine() as engine:

                async def cancel(model: aionas.Model) -> None:
                    result = engine.cancel_model(model)
                    seen[id(model)] = (result, model.status)

                class ReturnsAsCancelled(aionas.Model):
                    def execute(self) -> None:
                        aionas.report_intermediate_result(1.0)
                        anyio.from_thread.run_sync(tasks.start_soon, cancel, self)

                recorder = Recorder(engine)
                models = [ReturnsAsCancelled() for _ in range(2000)]
                await engine.submit_models(*models)
                await engine.wait_models()
    cancelled_first = [m for m in models if seen[id(m)][1] is ModelStatus.Training]
    wrong = [m for m in cancelled_first if recorder.end(m).status is not ModelStatus.Interrupted]
    assert not wrong, f"{len(wrong)} models cancelled before their end was recorded ended Trained"
    for model in models:
        end = recorder.end(model)
        result = seen[id(model)][0]
        if result is aionas.CancelResult.Stopping:
            assert (end.status, end.reason) == (ModelStatus.Interrupted, "cancelled")
        else:
            assert result is aionas.CancelResult.AlreadyEnded
            assert end.status is ModelStatus.Trained


# ---------------------------------------------------------------------- bug 5: identity


class AllEqual(Gate):
    """A model that equals every other of its class, as some user dataclasses do."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AllEqual)

    def __hash__(self) -> int:
        return 0


class AllEqualUnhashable(Gate):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, AllEqualUnhashable)

    __hash__ = None  # type: ignore[assignment]


@pytest.mark.parametrize("kind", [AllEqual, AllEqualUnhashable])
async def test_cancelling_a_running_model_leaves_an_equal_queued_one_alone(
    kind: type[Gate],
) -> None:
    # Bug 5: cancel_model() used ``in``/``deque.remove``, which call ``__eq__``.
    running, queued = kind(), kind()
    queued.release.set()  # runs straight through once started
    with anyio.fail_after(10):
        async with SequentialExecutionEngine() as engine:
            recorder = Recorder(engine)
            await engine.submit_models(running, queued)
            await running.wait_started()
            result = engine.cancel_model(running)
            await engine.wait_models(running)
            assert running.returned.is_set(), "an end was published while the model still ran"
            await engine.wait_models(queued)
    assert result is aionas.CancelResult.Stopping
    assert recorder.kinds(running) == ["training_start", "training_end"]
    assert (recorder.end(running).status, recorder.end(running).reason) == (
        ModelStatus.Interrupted,
        "cancelled",
    )
    assert recorder.kinds(queued) == ["training_start", "training_end"]
    assert queued.status is ModelStatus.Trained


@pytest.mark.parametrize("kind", [AllEqual, AllEqualUnhashable])
async def test_cancelling_a_queued_model_removes_that_one_not_an_equal_one(
    kind: type[Gate],
) -> None:
    # Bug 5: with b == c queued, cancelling c removed b (which then never ran nor ended)
    # and c ran anyway, ending twice.
    first, kept, cancelled = kind(), kind(), kind()
    kept.release.set()
    cancelled.release.set()
    with anyio.fail_after(10):
        async with SequentialExecutionEngine() as engine:
            recorder = Recorder(engine)
            await engine.submit_models(first, kept, cancelled)
            await first.wait_started()
            result = engine.cancel_model(cancelled)
            first.release.set()
            await engine.wait_models()
    assert recorder.kinds(cancelled) == ["training_end"]
    assert recorder.end(cancelled).reason == "cancelled"
    assert not cancelled.started.is_set()
    assert recorder.kinds(kept) == ["training_start", "training_end"]
    assert kept.status is ModelStatus.Trained
    assert result is aionas.CancelResult.Ended


# ---------------------------------------------------------------------- bug 7: stalled subscribers


async def test_leaving_the_engine_closes_a_stalled_subscriber_after_the_grace() -> None:
    # Bug 7: a subscriber that stops reading hung the engine's exit forever, even inside
    # a host's ``move_on_after(2)``. Now it is closed after ``subscriber_grace``; the
    # callbacks and the other subscribers get everything.
    model = Reporter({"n": 3})
    read_now = anyio.Event()
    stalled: dict[str, Any] = {}
    everything: list[aionas.ModelEvent] = []

    async def stall(engine: SequentialExecutionEngine, *, task_status: Any) -> None:
        async with engine.subscribe(buffer_size=1) as events:
            task_status.started()
            await read_now.wait()
            got = []
            with pytest.raises(aionas.SlowSubscriberError) as closed:
                async for event in events:
                    got.append(event)
            stalled.update(got=got, last_seq=closed.value.last_seq)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            with anyio.move_on_after(2):  # the host gives up after 2 s, if it comes to that
                async with SequentialExecutionEngine(subscriber_grace=0.2) as engine:
                    recorder = Recorder(engine)
                    await tasks.start(stall, engine)
                    await tasks.start(collect, engine, everything)
                    await engine.submit_models(model)
            read_now.set()
    kinds = ["training_start"] + ["intermediate_metric"] * 3 + ["final_metric", "training_end"]
    assert recorder.kinds(model) == kinds
    assert [e.seq for e in everything] == [e.seq for e in recorder.events]
    assert [e.seq for e in stalled["got"]] == [everything[0].seq]  # its buffer held one
    assert stalled["last_seq"] == everything[0].seq
    assert engine.statistics().subscribers_closed == 1


async def test_a_host_cancelling_the_block_is_not_held_by_a_stalled_subscriber() -> None:
    # Bug 7: while the engine runs, a "wait" subscriber holds delivery back (lossless
    # backpressure), so wait_models() waits; the host then gives up, and leaving the
    # engine closes the stalled subscriber after the grace instead of hanging.
    model = Reporter({"n": 3})
    read_now = anyio.Event()
    stalled: dict[str, Any] = {}

    async def stall(engine: SequentialExecutionEngine, *, task_status: Any) -> None:
        async with engine.subscribe(buffer_size=1) as events:
            task_status.started()
            await read_now.wait()
            with pytest.raises(aionas.SlowSubscriberError) as closed:
                async for _ in events:
                    pass
            stalled["last_seq"] = closed.value.last_seq

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            with anyio.move_on_after(0.5) as host:
                async with SequentialExecutionEngine(subscriber_grace=0.2) as engine:
                    recorder = Recorder(engine)
                    await tasks.start(stall, engine)
                    await engine.submit_models(model)
                    await engine.wait_models(model)  # held back by the stalled subscriber
            read_now.set()
    assert host.cancelled_caught
    assert recorder.kinds(model)[-1] == "training_end"  # callbacks got everything
    assert len(recorder.of(model)) == 6
    assert stalled["last_seq"] == recorder.events[0].seq


async def test_a_subscriber_that_never_reads_cannot_hold_the_engine_forever() -> None:
    # Bug 7 with the default grace (5 s): the old engine hung here for good. A watchdog
    # unstalls the subscriber after 15 s so that a hung engine still lets the test report.
    model = Reporter({"n": 3})
    read_now = anyio.Event()
    exited = anyio.Event()
    outcome: dict[str, Any] = {}

    async def stall(engine: SequentialExecutionEngine, *, task_status: Any) -> None:
        async with engine.subscribe(buffer_size=1) as events:
            task_status.started()
            await read_now.wait()
            try:
                async for _ in events:
                    pass
            except Exception as error:
                outcome["closed"] = error

    async def watchdog() -> None:
        with anyio.move_on_after(15):
            await exited.wait()
        outcome["hung"] = not exited.is_set()
        read_now.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(watchdog)
        async with SequentialExecutionEngine() as engine:
            await tasks.start(stall, engine)
            await engine.submit_models(model)
        exited.set()
    assert outcome["hung"] is False, "leaving the engine waited for a subscriber that never read"
    assert isinstance(outcome.get("closed"), aionas.SlowSubscriberError)
    assert model.status is ModelStatus.Trained


async def test_a_closing_subscriber_never_slows_the_engine_and_learns_where_it_stopped() -> None:
    # Bug 7: ``on_full="close"`` detaches a subscriber that falls a full buffer behind,
    # instead of holding training back; it still yields what it buffered.
    model = Reporter({"n": 10})
    with anyio.fail_after(10):
        async with SequentialExecutionEngine() as engine:
            recorder = Recorder(engine)
            async with engine.subscribe(buffer_size=2, on_full="close") as behind:
                await engine.submit_models(model)
                await engine.wait_models(model)  # not held back by the subscriber
                got = [await behind.__anext__(), await behind.__anext__()]
                with pytest.raises(aionas.SlowSubscriberError) as closed:
                    await behind.__anext__()
            stats = engine.statistics()
    assert isinstance(closed.value, aionas.AionasError)
    assert [e.seq for e in got] == [e.seq for e in recorder.events[:2]]
    assert closed.value.last_seq == got[-1].seq
    assert len(recorder.of(model)) == 1 + 10 + 1 + 1
    assert stats.subscribers_closed == 1


async def test_catching_up_with_since_seq_needs_a_journal() -> None:
    # Bug 7's remedy (catch up from the journal) says so at the call without one.
    async with SequentialExecutionEngine() as engine:
        with pytest.raises(ValueError, match="journal"):
            engine.subscribe(since_seq=0)


# ---------------------------------------------------------------------- bug 8: failed commits


def full_disk_journal(path: Path) -> Any:
    """A journal (the public interface, over SQLite) whose event writes start failing."""

    class FullDisk(aionas.Journal):
        def __init__(self) -> None:
            self.inner = aionas.SqliteJournal(path)
            self.experiment = self.inner.experiment
            self.event_writes = 0
            self.fail_from: int | None = None

        def open(self) -> Any:
            return self.inner.open()

        def record_submissions(self, new: Any, resubmitted: Any, model_count: int) -> None:
            self.inner.record_submissions(new, resubmitted, model_count)

        def record_events(self, events: Any, total_duration: float) -> None:
            self.event_writes += 1
            if self.fail_from is not None and self.event_writes >= self.fail_from:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.inner.record_events(events, total_duration)

        def read_events(self, after_seq: int, through_seq: int, models: Any) -> Any:
            return self.inner.read_events(after_seq, through_seq, models)

        def close(self) -> None:
            self.inner.close()

    return FullDisk()


def committed_seqs(db: Path) -> set[int]:
    with closing(sqlite3.connect(db)) as conn:
        return {seq for (seq,) in conn.execute("SELECT seq FROM events")}


async def test_a_journal_that_cannot_commit_stops_the_engine_and_nobody_sees_the_rest(
    tmp_path: Path,
) -> None:
    # Bug 8: after a failed commit, later events still reached callbacks and
    # subscribers, and the follow-up error said "the engine stopped because None failed".
    db = tmp_path / "s.db"
    journal = full_disk_journal(db)
    first, second = Reporter({"n": 2}), Reporter({"n": 5})
    received: list[aionas.ModelEvent] = []
    waited = "returned"
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            with pytest.raises(aionas.JournalError):
                async with SequentialExecutionEngine(journal=journal) as engine:
                    recorder = Recorder(engine)
                    await tasks.start(collect, engine, received)
                    await engine.submit_models(first)
                    await engine.wait_models(first)
                    journal.fail_from = journal.event_writes + 1  # the disk is full from now on
                    await engine.submit_models(second)
                    try:
                        await engine.wait_models(second)
                    except aionas.JournalError:
                        waited = "raised"
                    with pytest.raises(aionas.AionasError) as refused:
                        await engine.submit_models(Reporter())
    assert "None failed" not in str(refused.value)
    assert waited == "raised"
    committed = committed_seqs(db)
    for consumer in (recorder.events, received):
        assert [e.seq for e in consumer if e.seq not in committed] == []
    assert [e.seq for e in recorder.events] == [e.seq for e in received]
    assert recorder.kinds(first)[-1] == "training_end"


# ---------------------------------------------------------------------- bug 9: counters' scope


async def test_statistics_count_this_engine_while_the_budget_carries_over() -> None:
    # Bug 9: ``submitted`` counted the carried-over budget, ``trained`` only this run.
    engine = SequentialExecutionEngine(max_model_count=10)
    engine.load_state_dict({"model_count": 5, "total_duration": 2.0})
    async with engine:
        await engine.submit_models(Reporter({"n": 1}), Reporter({"n": 1}))
        await engine.wait_models()
        stats = engine.statistics()
    assert (stats.submitted, stats.trained, stats.failed, stats.interrupted) == (2, 2, 0, 0)
    assert (stats.events_published, stats.events_delivered) == (8, 8)
    assert stats.model_count == 7
    assert stats.total_duration >= 2.0


# ---------------------------------------------------------------------- bug 12: each batch once


@pytest.mark.parametrize(
    ("models", "reports", "event_buffer_size", "subscribed"),
    [(400, 500, 10_000, True), (200, 100, 1, False)],
    ids=["400x500", "lockstep"],
)
async def test_every_consumer_sees_each_event_once_in_order_under_fast_reports(
    models: int, reports: int, event_buffer_size: int, subscribed: bool
) -> None:
    # Bug 12: the delivery task could deliver one batch twice (seq jumping back, events
    # after a model's end, ends counted twice). A one-event buffer, with one cheap
    # callback as the only consumer, makes the worker and the delivery task take turns
    # on every event, which opens that window most often.
    class Fast(aionas.Model):
        def execute(self) -> None:
            for step in range(reports):
                aionas.report_intermediate_result(float(step))
            aionas.report_final_result(1.0)

    batch = [Fast() for _ in range(models)]
    received: list[aionas.ModelEvent] = []
    with short_switch_interval(), anyio.fail_after(25):
        async with anyio.create_task_group() as tasks:
            async with SequentialExecutionEngine(event_buffer_size=event_buffer_size) as engine:
                recorder = Recorder(engine)
                if subscribed:
                    await tasks.start(collect, engine, received)
                await engine.submit_models(*batch)
                await engine.wait_models()
    expected = models * (reports + 3)
    for consumer in (recorder.events, received) if subscribed else (recorder.events,):
        check_stream(consumer, batch)
        assert len(consumer) == expected
