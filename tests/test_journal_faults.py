"""A journal write that fails mid-run: the engine stops, and nobody sees an uncommitted event.

Two ways to make a write fail:

- a ``SqliteJournal`` subclass (the ``Journal`` interface) whose ``record_events`` or
  ``record_submissions`` raises ``OSError("disk full")`` from its N-th call on (the
  disk stays full), optionally after committing half of the batch;
- a trigger in the file that aborts inserts from some point on, as a full disk
  would, whatever code writes them (this one needs nothing but the schema).

Then: the ``async with`` block raises :class:`aionas.JournalError`; ``wait_models()``
raises it or returns, never hangs (and returns only once what it waited for was
delivered); every event any consumer (sync and async callbacks, a fast and a slow
subscriber) received is committed (checked when each arrives, from another
connection, and against the file afterwards); they all received the same events; a
failing submission raises ``JournalError`` and queues nothing; the file stays
readable, and the next engine on it ends what the failure left unfinished
``Interrupted``/``'crash'``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio
import pytest

import aionas
from aionas import ModelEventType, ModelStatus, SequentialExecutionEngine, SqliteJournal

from .test_stress import (
    ENDED,
    Ledger,
    Reader,
    Scripted,
    SyncRecorder,
    check_runs,
    read_subscription,
    rows,
)

pytestmark = pytest.mark.anyio


def reporter(n: int) -> Scripted:
    """Reports ``0.0 ... n - 1``, then the final ``n``."""
    return Scripted({"kind": "report", "n": n, "final": True})


class FullDisk(SqliteJournal):
    """A journal whose writes fail from the N-th call of one kind on: the disk is full."""

    def __init__(
        self,
        path: Path,
        *,
        events_fail_at: int | None = None,
        submissions_fail_at: int | None = None,
        partial: bool = False,
    ) -> None:
        super().__init__(path)
        self.events_fail_at = events_fail_at
        self.submissions_fail_at = submissions_fail_at
        self.partial = partial
        self.calls = {"events": 0, "submissions": 0}
        self.failures = 0
        self._count_lock = threading.Lock()  # the engine may call both kinds at once
        #: Called (in the writer's thread) just before a write fails: the engine stops
        #: after it, so a test's ledger learns of the stop before any end it causes.
        self.before_failing: Callable[[], None] = lambda: None

    def _fails(self, kind: str, at: int | None) -> bool:
        with self._count_lock:
            self.calls[kind] += 1
            failing = at is not None and self.calls[kind] >= at
            self.failures += failing
            return failing

    def record_events(self, events: Sequence[aionas.ModelEvent], total_duration: float) -> None:
        if self._fails("events", self.events_fail_at):
            if self.partial and len(events) > 1 and self.failures == 1:
                super().record_events(events[: len(events) // 2], total_duration)
            raise OSError(28, "No space left on device (disk full)")
        super().record_events(events, total_duration)

    def record_submissions(
        self,
        new: Sequence[tuple[int, str, str, float]],
        resubmitted: Sequence[int],
        model_count: int,
    ) -> None:
        if self._fails("submissions", self.submissions_fail_at):
            self.before_failing()
            raise OSError(28, "No space left on device (disk full)")
        super().record_submissions(new, resubmitted, model_count)


def fill_disk_after(db: Path, table: str, condition: str) -> None:
    """From now on, inserts into ``table`` matching ``condition`` fail as on a full disk."""
    with sqlite3.connect(db) as conn:
        conn.execute(
            f"CREATE TRIGGER full_disk BEFORE INSERT ON {table} WHEN {condition} "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )


def free_disk(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER full_disk")


async def create_journal(db: Path) -> None:
    """An empty journal file (the schema, one experiment)."""
    async with SequentialExecutionEngine(journal=SqliteJournal(db)):
        pass


class Consumers:
    """A sync callback that checks each event is committed as it arrives, an async
    callback, and a fast and a slow subscriber (started with :meth:`start`)."""

    def __init__(self, engine: SequentialExecutionEngine, db: Path) -> None:
        self.db = db
        self.sync: list[aionas.ModelEvent] = []
        self.uncommitted: list[int] = []
        self.reader: sqlite3.Connection | None = None  # read-only, sees only what is committed
        self.async_: list[aionas.ModelEvent] = []
        self.fast, self.slow = Reader("fast subscriber"), Reader("slow subscriber")
        self.engine = engine
        for kind in ModelEventType:
            engine.register_model_event_callback(kind, self.check_committed)
            engine.register_model_event_callback(kind, self.record_async)

    def check_committed(self, event: aionas.ModelEvent) -> None:
        # Another connection sees it: it is committed, not just written.
        self.sync.append(event)
        if self.reader is None:
            uri = f"file:{self.db}?mode=ro"
            self.reader = sqlite3.connect(uri, uri=True, isolation_level=None)
        found = self.reader.execute("SELECT COUNT(*) FROM events WHERE seq = ?", (event.seq,))
        if found.fetchall() != [(1,)]:
            self.uncommitted.append(event.seq)

    async def record_async(self, event: aionas.ModelEvent) -> None:
        self.async_.append(event)
        await anyio.lowlevel.checkpoint()

    async def start(self, tg: anyio.abc.TaskGroup) -> None:
        engine = self.engine

        async def fast(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            await read_subscription(engine.subscribe(), self.fast, task_status=task_status)

        async def slow(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            subscription = engine.subscribe(buffer_size=1)
            await read_subscription(subscription, self.slow, every=1, task_status=task_status)

        await tg.start(fast)
        await tg.start(slow)

    def check(self) -> list[str]:
        """All got the same events, each committed when it arrived and still in the file."""
        if self.reader is not None:
            self.reader.close()
        problems = [f"events delivered before they were committed: seq {self.uncommitted}"]
        problems = problems if self.uncommitted else []
        committed = {seq for (seq,) in rows(self.db, "SELECT seq FROM events")}
        top = max(committed, default=-1)
        reference = [(e.seq, e.event_type) for e in self.sync]
        for name, events, error in (
            ("sync callback", self.sync, None),
            ("async callback", self.async_, None),
            (self.fast.name, self.fast.events, self.fast.error),
            (self.slow.name, self.slow.events, self.slow.error),
        ):
            if error is not None:
                problems.append(f"{name} raised {error!r}")
            seqs = [e.seq for e in events]
            if seqs and max(seqs) > top:
                problems.append(f"{name} received seq {max(seqs)}; the journal holds up to {top}")
            missing = sorted(set(seqs) - committed)
            if missing:
                problems.append(f"{name} received seq {missing[:10]}, which are not in the file")
            if seqs and seqs != list(range(seqs[0], seqs[0] + len(seqs))):
                problems.append(f"{name}: seq not contiguous: {seqs[:20]}...")
            if [(e.seq, e.event_type) for e in events] != reference:
                problems.append(
                    f"{name} received {len(events)} events, the sync callback {len(reference)}"
                )
        return problems


def caused_by_the_disk(error: BaseException) -> bool:
    """The error says what really failed: the full disk is in its message or its causes."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError | sqlite3.Error) or "full" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def drive_until_it_stops(
    engine: SequentialExecutionEngine, consumers: Consumers, limit: int, n: int = 3
) -> tuple[list[aionas.Model], list[str]]:
    """One model at a time, each waited for, until the journal's failure stops the engine.

    Each model's events are new, so each wait needs at least one more commit: the
    failing write comes by ``limit`` models. ``wait_models`` may raise ``JournalError``
    or return, and returns only once the model's end has been delivered.
    """
    problems: list[str] = []
    accepted: list[aionas.Model] = []
    for _ in range(limit):
        model = reporter(n)
        try:
            await engine.submit_models(model)
        except (aionas.JournalError, aionas.EngineClosedError) as error:
            if "None failed" in str(error) or "journal" not in str(error).lower():
                problems.append(f"the refusal does not name the journal's failure: {error}")
            return accepted, problems
        accepted.append(model)
        try:
            await engine.wait_models(model)
        except aionas.JournalError as error:
            if not caused_by_the_disk(error):
                problems.append(f"wait_models raised {error!r}, which hides the full disk")
            return accepted, problems
        if not any(
            e.model is model and e.event_type is ModelEventType.TrainingEnd for e in consumers.sync
        ):
            problems.append(f"wait_models({model!r}) returned, but its end was never delivered")
    problems.append(f"no journal failure stopped the engine within {limit} models")
    return accepted, problems


async def check_after_the_stop(engine: SequentialExecutionEngine) -> list[str]:
    """Once stopped: waiting does not hang, and a submission is refused naming the journal."""
    problems: list[str] = []
    with contextlib.suppress(aionas.JournalError):  # raising is fine; returning too
        await engine.wait_models()
    try:
        await engine.submit_models(reporter(1))
    except (aionas.JournalError, aionas.EngineClosedError) as error:
        if "None failed" in str(error) or "journal" not in str(error).lower():
            problems.append(f"the refusal does not name the journal's failure: {error}")
    else:
        problems.append("a submission was accepted after the journal failed")
    return problems


async def check_the_file_and_resume(db: Path, accepted: list[aionas.Model]) -> list[str]:
    """The history stays readable; the next engine ends what was left unfinished ('crash')."""
    problems: list[str] = []
    models, _ = aionas.load_history(db)
    ids = {m.model_id for m in models}
    for model in accepted:
        if model.status not in ENDED:
            problems.append(f"{model!r} was left {model.status} by the stop")
        if model.model_id not in ids:
            problems.append(f"accepted {model!r} is not in the journal")
    # As stored: submitted more often than ended. Read back, they show as the next
    # engine will record them: Interrupted ('crash'), never still training.
    unfinished = {
        model_id
        for (model_id,) in rows(
            db,
            "SELECT m.id FROM models AS m WHERE m.submissions > (SELECT COUNT(*) FROM events "
            "AS e WHERE e.model_id = m.id AND e.type = 'training_end')",
        )
    }
    for model in models:
        if model.model_id in unfinished and (model.status, getattr(model, "reason", None)) != (
            ModelStatus.Interrupted,
            "crash",
        ):
            problems.append(f"unfinished {model!r} does not read as Interrupted ('crash')")
    top = rows(db, "SELECT MAX(seq) FROM events")[0][0]
    async with SequentialExecutionEngine(journal=SqliteJournal(db)) as resumed:
        left = [m for m in resumed.list_models() if m.status not in ENDED]
        if left:
            problems.append(f"after resume, still unfinished: {left!r}")
    models, _ = aionas.load_history(db)
    for model in models:
        if model.status not in ENDED:
            problems.append(f"after resume, the journal still says {model!r}")
    crash_ends = rows(
        db,
        "SELECT model_id, json_extract(data, '$.reason') FROM events "
        f"WHERE type = 'training_end' AND seq > {int(top if top is not None else -1)}",
    )
    if sorted(crash_ends) != sorted((i, "crash") for i in unfinished):
        problems.append(f"unfinished {sorted(unfinished)}; ends written on resume {crash_ends}")
    return problems


# ---------------------------------------------------------------------------- event writes


@pytest.mark.parametrize("partial", [False, True], ids=["nothing-committed", "half-committed"])
@pytest.mark.parametrize("fail_at", [1, 2, 5])
async def test_failing_event_write_stops_the_engine(
    tmp_path: Path, fail_at: int, partial: bool
) -> None:
    """The ``fail_at``-th ``record_events`` fails (after committing half its batch, or
    nothing): the block raises ``JournalError`` naming the disk, nobody got what was not
    committed, waiting and submitting afterwards neither hang nor pretend."""
    db = tmp_path / "journal.db"
    journal = FullDisk(db, events_fail_at=fail_at, partial=partial)
    problems: list[str] = []
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            with pytest.raises(aionas.JournalError) as stopped:
                async with SequentialExecutionEngine(
                    journal=journal, event_buffer_size=4
                ) as engine:
                    consumers = Consumers(engine, db)
                    await consumers.start(tg)
                    accepted, problems = await drive_until_it_stops(engine, consumers, fail_at + 3)
                    problems += await check_after_the_stop(engine)
    assert journal.failures, "the journal was never asked to write"
    assert caused_by_the_disk(stopped.value), f"{stopped.value!r} hides the full disk"
    problems += consumers.check()
    problems += await check_the_file_and_resume(db, accepted)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("partial", [False, True], ids=["nothing-committed", "half-committed"])
@pytest.mark.parametrize("fail_at", [1, 10])
async def test_failing_event_write_in_a_burst(tmp_path: Path, fail_at: int, partial: bool) -> None:
    """Many models queued and reporting fast when the write fails: none of what follows
    the failure reaches anyone, and nothing hangs."""
    db = tmp_path / "journal.db"
    journal = FullDisk(db, events_fail_at=fail_at, partial=partial)
    models = [reporter(40) for _ in range(20)]
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            with pytest.raises(aionas.JournalError):
                async with SequentialExecutionEngine(
                    journal=journal, event_buffer_size=16, continue_on_failure=True
                ) as engine:
                    consumers = Consumers(engine, db)
                    await consumers.start(tg)
                    await engine.submit_models(*models)
                    problems = await check_after_the_stop(engine)
    assert journal.failures
    problems += consumers.check()
    ends = [e for e in consumers.sync if isinstance(e, aionas.TrainingEndEvent)]
    if any(e.model is m for e in ends for m in models[-1:]):
        problems.append("the last model ended and was delivered: the failure came too late")
    problems += await check_the_file_and_resume(db, models)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("fail_from_seq", [0, 7, 30])
async def test_full_disk_in_the_file_stops_the_engine(tmp_path: Path, fail_from_seq: int) -> None:
    """The same, with the failure inside SQLite (any journal code): inserts of events from
    ``seq`` ``fail_from_seq`` on abort."""
    db = tmp_path / "journal.db"
    await create_journal(db)
    fill_disk_after(db, "events", f"NEW.seq >= {fail_from_seq}")
    problems: list[str] = []
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            with pytest.raises(aionas.JournalError) as stopped:
                async with SequentialExecutionEngine(
                    journal=SqliteJournal(db), event_buffer_size=4
                ) as engine:
                    consumers = Consumers(engine, db)
                    await consumers.start(tg)
                    accepted, problems = await drive_until_it_stops(engine, consumers, 30)
                    problems += await check_after_the_stop(engine)
    assert caused_by_the_disk(stopped.value), f"{stopped.value!r} hides the full disk"
    problems += consumers.check()
    top = rows(db, "SELECT MAX(seq) FROM events")[0][0]
    if top is not None and top >= fail_from_seq:
        problems.append(f"the trigger let seq {top} in")
    free_disk(db)
    problems += await check_the_file_and_resume(db, accepted)
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------- submissions


async def run_with_failing_submission(
    db: Path, journal: FullDisk, *, from_callback: bool, fail_on: int
) -> tuple[list[str], BaseException | None]:
    """Submit models one batch at a time (or resubmit from an end callback); the
    ``fail_on``-th submission fails. Returns the problems and what the block raised."""
    ledger = Ledger()
    journal.before_failing = lambda: setattr(ledger, "stopped", True)  # it stops the engine
    problems: list[str] = []
    raised: BaseException | None = None
    refused: list[aionas.Model] = []
    retrying: list[aionas.Model] = []  # resubmitted from its end callback, until refused

    async def retry(event: aionas.TrainingEndEvent) -> None:
        model = event.model
        if any(model is m for m in retrying) and not refused and len(recorder.events) < 100:
            model.status = ModelStatus.Retrying
            try:
                if not await ledger.submit(engine, model):
                    ledger.refused.add(id(model))
            except aionas.JournalError:
                ledger.refused.add(id(model))
                refused.append(model)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            try:
                async with SequentialExecutionEngine(
                    journal=journal, continue_on_failure=True
                ) as engine:
                    recorder = SyncRecorder(engine, ledger)
                    engine.register_model_event_callback("training_end", retry)
                    consumers = Consumers(engine, db)
                    await consumers.start(tg)
                    if from_callback:
                        retrying.append(reporter(2))
                        await ledger.submit(engine, *retrying)
                    else:
                        for _ in range(fail_on + 2):
                            batch = [reporter(2) for _ in range(3)]
                            try:
                                if not await ledger.submit(engine, *batch):
                                    break
                            except aionas.JournalError as error:
                                refused += batch
                                if not caused_by_the_disk(error):
                                    problems.append(f"{error!r} hides the full disk")
                                break
                    with contextlib.suppress(aionas.JournalError):
                        await engine.wait_models()
            except Exception as error:
                raised = error
    if not refused:
        problems.append("no submission failed")
    for model in refused:
        if id(model) not in ledger.refused and model.status is not ModelStatus.Frozen:
            problems.append(f"the failed submission changed {model!r}")
        if any(e.model is model for e in recorder.events) and id(model) not in ledger.refused:
            problems.append(f"events for {model!r}, whose submission failed")
        if any(m is model for m in engine.list_models()) and id(model) not in ledger.refused:
            problems.append(f"{model!r}, whose submission failed, is listed by the engine")
    # Every accepted submission ended once, for everyone, and it is all committed.
    _, more = check_runs(ledger, recorder.events)
    problems += more + consumers.check()
    stored = rows(db, "SELECT seq, type FROM events ORDER BY seq")
    if stored != [(e.seq, e.event_type.value) for e in recorder.events]:
        problems.append("the journal's events are not the ones delivered")
    aionas.load_history(db)  # still readable
    return problems, raised


@pytest.mark.parametrize("fail_on", [1, 3])
@pytest.mark.parametrize("origin", ["main-task", "end-callback"])
async def test_failing_submission_raises_and_queues_nothing(
    tmp_path: Path, origin: str, fail_on: int
) -> None:
    db = tmp_path / "journal.db"
    from_callback = origin == "end-callback"
    # From a callback: the main task's first submission comes first.
    journal = FullDisk(db, submissions_fail_at=fail_on + from_callback)
    problems, _ = await run_with_failing_submission(
        db, journal, from_callback=from_callback, fail_on=fail_on
    )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("fail_on", [1, 3])
async def test_failing_submission_stops_the_engine(tmp_path: Path, fail_on: int) -> None:
    """A failed submission is a journal failure like any: the block raises ``JournalError``."""
    db = tmp_path / "journal.db"
    journal = FullDisk(db, submissions_fail_at=fail_on)
    _, raised = await run_with_failing_submission(db, journal, from_callback=False, fail_on=fail_on)
    assert isinstance(raised, aionas.JournalError), f"the block raised {raised!r}"


async def test_full_disk_in_the_file_refuses_a_submission(tmp_path: Path) -> None:
    """The failure inside SQLite (any journal code): new model rows from id 4 on abort."""
    db = tmp_path / "journal.db"
    await create_journal(db)
    fill_disk_after(db, "models", "NEW.id >= 4")
    problems, _ = await run_with_failing_submission(
        db, SqliteJournal(db), from_callback=False, fail_on=2
    )
    assert not problems, "\n".join(problems)
