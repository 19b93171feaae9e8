"""Property-based: random interleavings of submit / cancel / report / fail / shutdown.

Hypothesis draws a *program*: steps such as "submit these scripted models" (each
reports a few metrics, may fail at a given report, may block on a gate until the
test releases it), "cancel model i", "release model i's gate", "wait until model i
has started", "resubmit model i" (now, or from its next end callback), "when model j
starts, cancel model i from that callback", "submit from the next end callback",
"shutdown"; and how the block is left (every gate released, everything cancelled,
``shutdown()``, the host scope cancelled, or an exception). One example runs its
program against a fresh engine (on asyncio and on trio) and checks what the stress
test checks (``tests/test_stress.py``): every consumer got the same events, ``seq``
by one, exactly one end per accepted submission, nothing after an end, statuses
only forward, reasons and metrics true to the scripts; and here also:

- ``cancel_model`` told the truth: ``Ended`` means it ended Interrupted/'cancelled'
  without a start event, ``Stopping`` that it will end Interrupted, ``AlreadyEnded``
  that it had ended before;
- a run nobody cancelled or stopped ends as its script says (Trained or Failed);
- ``wait_models(model)`` returns only once that model's end has been delivered;
- a refused submission changes nothing;
- the block exits, and raises what it should (the failure under
  ``continue_on_failure=False``, the test's own exception, or nothing).

Synchronisation is by gates and delivered events, never by time. A wait step is run
only when nothing can hold it up (no unreleased, uncancelled gate ahead of it), so a
program never deadlocks by itself; what remains is the engine's doing.
"""

from __future__ import annotations

import tempfile
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import aionas
from aionas import ModelStatus, SequentialExecutionEngine, SqliteJournal

from .test_stress import (
    Ledger,
    Reader,
    Run,
    SyncRecorder,
    Tracked,
    check_journal,
    check_runs,
    check_same_events,
    check_seq,
    check_statistics,
    read_subscription,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]

# ---------------------------------------------------------------------------- scripts


@dataclass(frozen=True)
class Script:
    """What one model does in each run (params, so a journal keeps it)."""

    reports: int
    fail_at: int | None  # raise instead of reporting this intermediate (reports: at the end)
    gate: int | None  # block before this intermediate (reports: before the end) until released
    final: bool
    on_loop: bool  # an ``async def execute``

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"kind": "report", "n": self.reports, "final": self.final}
        if self.fail_at is not None:
            params.update(kind="fail", at=min(self.fail_at, self.reports))
        if self.gate is not None:
            params["gate"] = min(self.gate, self.reports)
        return params


class GatedThread(Tracked):
    """Runs its script in the worker thread; its gate is a ``threading.Event``."""

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(params)
        self.gate = threading.Event()

    def release(self) -> None:
        self.gate.set()

    def wait_gate(self) -> None:
        while not self.gate.wait(0.001):  # like training: check for cancellation as it goes
            aionas.check_cancelled()

    def execute(self) -> None:
        p = self.params
        n, gate, fail_at = p["n"], p.get("gate"), p.get("at")
        for i in range(n + 1):
            if gate == i:
                self.wait_gate()
            if fail_at == i:
                raise ValueError(f"script fails at {i}")
            if i < n:
                aionas.report_intermediate_result(float(i))
        if p["final"]:
            aionas.report_final_result(float(n))


class GatedLoop(Tracked):
    """The same script in an ``async def execute``; its gate is an ``anyio.Event``."""

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(params)
        self.gate = anyio.Event()

    def release(self) -> None:
        self.gate.set()

    async def execute(self) -> None:  # type: ignore[override]
        p = self.params
        n, gate, fail_at = p["n"], p.get("gate"), p.get("at")
        for i in range(n + 1):
            await anyio.lowlevel.checkpoint()
            if gate == i:
                await self.gate.wait()
            if fail_at == i:
                raise ValueError(f"script fails at {i}")
            if i < n:
                aionas.report_intermediate_result(float(i))
        if p["final"]:
            aionas.report_final_result(float(n))


def build(script: Script) -> GatedThread | GatedLoop:
    return (GatedLoop if script.on_loop else GatedThread)(script.params())


# ---------------------------------------------------------------------------- programs


@dataclass(frozen=True)
class Submit:
    scripts: tuple[Script, ...]


@dataclass(frozen=True)
class Cancel:
    index: int


@dataclass(frozen=True)
class Release:
    index: int


@dataclass(frozen=True)
class WaitStarted:
    index: int


@dataclass(frozen=True)
class Wait:
    index: int


@dataclass(frozen=True)
class Checkpoints:
    count: int


@dataclass(frozen=True)
class Shutdown:
    pass


@dataclass(frozen=True)
class Resubmit:
    index: int


@dataclass(frozen=True)
class CallbackCancel:
    index: int  # cancel this model ...
    when_starts: int  # ... from the callback that gets this model's next start


@dataclass(frozen=True)
class CallbackSubmit:
    script: Script  # submitted from the callback that gets the next end event


Step = (
    Submit
    | Cancel
    | Release
    | WaitStarted
    | Wait
    | Checkpoints
    | Shutdown
    | Resubmit
    | CallbackCancel
    | CallbackSubmit
)
ENDINGS = ("release", "cancel", "shutdown", "host-cancel", "raise")


@dataclass(frozen=True)
class Program:
    continue_on_failure: bool
    event_buffer_size: int
    journal: bool
    ending: str
    wait_at_end: bool
    steps: tuple[Step, ...]


def scripts(*, gated: bool = True) -> st.SearchStrategy[Script]:
    small = st.integers(0, 3)
    sometimes = st.sampled_from((None, None, 0, 1, 3))  # None first: it shrinks to None
    return st.builds(
        Script,
        reports=small,
        fail_at=sometimes,
        gate=sometimes if gated else st.none(),
        final=st.booleans(),
        on_loop=st.booleans(),
    )


INDEX = st.integers(0, 15)
STEPS: st.SearchStrategy[Step] = st.one_of(
    st.builds(Submit, st.lists(scripts(), min_size=1, max_size=3).map(tuple)),
    st.builds(Submit, st.lists(scripts(), min_size=1, max_size=3).map(tuple)),
    st.builds(Cancel, INDEX),
    st.builds(Cancel, INDEX),
    st.builds(Release, INDEX),
    st.builds(WaitStarted, INDEX),
    st.builds(Wait, INDEX),
    st.builds(Checkpoints, st.integers(1, 5)),
    st.just(Shutdown()),
    st.builds(Resubmit, INDEX),
    st.builds(CallbackCancel, INDEX, INDEX),
    st.builds(CallbackSubmit, scripts(gated=False)),
)
PROGRAMS = st.builds(
    Program,
    continue_on_failure=st.booleans(),
    event_buffer_size=st.sampled_from((1, 3, 10_000)),
    journal=st.booleans(),
    ending=st.sampled_from(ENDINGS),
    wait_at_end=st.booleans(),
    steps=st.lists(STEPS, max_size=18).map(tuple),
)


# ---------------------------------------------------------------------------- running one


class LeaveTheBlock(Exception):
    """The test's own exception, raised inside the block by the ``"raise"`` ending."""


class Progress(SyncRecorder):
    """The first callback: also cuts runs as they are delivered, and wakes the waits."""

    def __init__(self, engine: SequentialExecutionEngine, ledger: Ledger) -> None:
        super().__init__(engine, ledger)
        self.runs: dict[int, list[Run]] = defaultdict(list)
        self.waiters: dict[tuple[int, int], anyio.Event] = {}

    def __call__(self, event: aionas.ModelEvent) -> None:
        super().__call__(event)
        runs = self.runs[id(event.model)]
        is_end = isinstance(event, aionas.TrainingEndEvent)
        if isinstance(event, aionas.TrainingStartEvent) or (
            is_end and (not runs or runs[-1].end is not None)
        ):
            runs.append(Run(started=not is_end))
            waiter = self.waiters.pop((id(event.model), len(runs) - 1), None)
            if waiter is not None:
                waiter.set()
        if is_end:
            runs[-1].end = event  # type: ignore[assignment]

    async def started_or_ended(self, model: aionas.Model, run_index: int) -> None:
        """Wait until the callbacks got the start (or the end) of that run."""
        if len(self.runs[id(model)]) > run_index:
            return
        waiter = self.waiters.setdefault((id(model), run_index), anyio.Event())
        await waiter.wait()


@dataclass(eq=False)
class Runner:
    program: Program
    engine: SequentialExecutionEngine
    ledger: Ledger
    progress: Progress
    models: list[GatedThread | GatedLoop] = field(default_factory=list)  # main-task models
    extra: list[aionas.Model] = field(default_factory=list)  # submitted by callbacks
    order: dict[int, int] = field(default_factory=dict)  # id -> when last accepted
    released: set[int] = field(default_factory=set)
    resubmit_on_end: set[int] = field(default_factory=set)
    cancel_on_start: dict[int, list[aionas.Model]] = field(
        default_factory=lambda: defaultdict(list)
    )
    submit_on_end: list[Script] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    accepted_count: int = 0
    waits: Counter[str] = field(default_factory=Counter)  # wait steps run or skipped

    def register_callbacks(self) -> None:
        self.engine.register_model_event_callback("training_start", self.on_start)
        self.engine.register_model_event_callback("training_end", self.on_end)

    def on_start(self, event: aionas.ModelEvent) -> None:
        for target in self.cancel_on_start.pop(id(event.model), []):
            self.ledger.cancel(self.engine, target, "a start callback")

    async def on_end(self, event: aionas.TrainingEndEvent) -> None:
        model = event.model
        if id(model) in self.resubmit_on_end:
            self.resubmit_on_end.discard(id(model))
            await self.resubmit(model)
        if self.submit_on_end:
            new = build(self.submit_on_end.pop(0))
            self.extra.append(new)
            await self.submit(new)

    async def submit(self, *models: aionas.Model) -> bool:
        if not await self.ledger.submit(self.engine, *models):
            changed = [
                m for m in models if m.status not in (ModelStatus.Frozen, ModelStatus.Retrying)
            ]
            if changed:
                self.problems.append(f"a refused submission changed {changed!r}")
            return False
        for model in models:
            self.accepted_count += 1
            self.order[id(model)] = self.accepted_count
        return True

    async def resubmit(self, model: aionas.Model) -> None:
        model.status = ModelStatus.Retrying
        if not await self.submit(model):
            self.ledger.refused.add(id(model))

    def pick(self, index: int) -> GatedThread | GatedLoop | None:
        accepted = [m for m in self.models if self.ledger.accepted[id(m)]]
        return accepted[index % len(accepted)] if accepted else None

    def current(self, model: aionas.Model) -> int:
        return self.ledger.accepted[id(model)] - 1

    def settled(self, model: aionas.Model) -> bool:
        """Its latest submission's end has been delivered, and none is being made."""
        key = id(model)
        return (
            self.ledger.ends_delivered[key] > self.current(model) and not self.ledger.in_flight[key]
        )

    def will_end(self, model: aionas.Model) -> bool:
        """Its current run cannot block on its gate: none, released, or cancelled."""
        return (
            model.params.get("gate") is None
            or id(model) in self.released
            or self.cancelled_this_run(model)
        )

    def cancelled_this_run(self, model: aionas.Model) -> bool:
        run = self.current(model)
        return any(c.model is model and c.run_index == run for c in self.ledger.cancels)

    def free_to_start(self, model: aionas.Model) -> bool:
        """Nothing ahead of it can block: every gated model ahead will end by itself."""
        if self.ledger.stopped:
            return True
        mine = self.order.get(id(model), 0)
        return all(
            self.will_end(other) or self.settled(other) or self.order.get(id(other), 0) >= mine
            for other in self.models
            if other is not model and self.ledger.accepted[id(other)]
        )

    async def step(self, step: Step) -> None:
        engine, ledger = self.engine, self.ledger
        if isinstance(step, Submit):
            batch = [build(s) for s in step.scripts]
            self.models += batch
            await self.submit(*batch)
        elif isinstance(step, Checkpoints):
            for _ in range(step.count):
                await anyio.lowlevel.checkpoint()
        elif isinstance(step, Shutdown):
            ledger.stopped = True
            await engine.shutdown()
        elif isinstance(step, CallbackSubmit):
            self.submit_on_end.append(step.script)
        elif (model := self.pick(step.index)) is None:
            return
        elif isinstance(step, Cancel):
            if not ledger.in_flight[id(model)]:
                ledger.cancel(engine, model, "the main task")
        elif isinstance(step, Release):
            self.released.add(id(model))
            model.release()
        elif isinstance(step, CallbackCancel):
            trigger = self.pick(step.when_starts)
            assert trigger is not None
            self.cancel_on_start[id(trigger)].append(model)
        elif isinstance(step, Resubmit):
            if ledger.in_flight[id(model)] or id(model) in self.resubmit_on_end:
                return
            if self.settled(model):
                await self.resubmit(model)
            else:
                self.resubmit_on_end.add(id(model))
        elif isinstance(step, WaitStarted):
            if self.free_to_start(model) and not ledger.in_flight[id(model)]:
                self.waits["run"] += 1
                await self.progress.started_or_ended(model, self.current(model))
            else:
                self.waits["skipped"] += 1
        elif isinstance(step, Wait):
            armed = id(model) in self.resubmit_on_end and model.params.get("gate") is not None
            if (
                self.free_to_start(model)
                and (self.will_end(model) or ledger.stopped)
                and not ledger.in_flight[id(model)]
                and not (armed and id(model) not in self.released)
            ):
                self.waits["run"] += 1
                run = self.current(model)
                await engine.wait_models(model)
                if ledger.ends_delivered[id(model)] <= run:
                    self.problems.append(f"wait_models({model!r}) returned before its end came")

    async def end(self, scope: anyio.CancelScope) -> None:
        """Leave the block as the program says; nothing may be left blocking."""
        ending, ledger = self.program.ending, self.ledger
        self.resubmit_on_end.clear()
        self.cancel_on_start.clear()
        if ending == "cancel":
            for model in self.models:
                if ledger.accepted[id(model)] and not ledger.in_flight[id(model)]:
                    ledger.cancel(self.engine, model, "the ending")
        if ending in ("release", "cancel"):
            for model in self.models:
                self.released.add(id(model))
                model.release()
            if self.program.wait_at_end:
                await self.engine.wait_models()
                for model in ledger.models:
                    if ledger.ends_delivered[id(model)] < ledger.accepted[id(model)]:
                        self.problems.append(f"wait_models() returned before {model!r} ended")
        elif ending == "shutdown":
            ledger.stopped = True
            await self.engine.shutdown()
        elif ending == "host-cancel":
            ledger.stopped = True
            scope.cancel()
            await anyio.lowlevel.checkpoint()
        else:
            ledger.stopped = True
            raise LeaveTheBlock


async def run_program(program: Program, db: Path | None) -> tuple[list[str], Runner]:
    """Run ``program`` against a fresh engine; what is wrong, and the runner to inspect."""
    ledger = Ledger(continue_on_failure=program.continue_on_failure)
    ledger.failed_submitted = not program.continue_on_failure  # any script may fail
    engine = SequentialExecutionEngine(
        continue_on_failure=program.continue_on_failure,
        event_buffer_size=program.event_buffer_size,
        journal=None if db is None else SqliteJournal(db),
    )
    fast, slow = Reader("fast subscriber"), Reader("slow subscriber")
    raised: BaseException | None = None
    runner: Runner | None = None

    async def fast_reader(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        await read_subscription(engine.subscribe(), fast, task_status=task_status)

    async def slow_reader(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        subscription = engine.subscribe(buffer_size=1)
        await read_subscription(subscription, slow, every=1, task_status=task_status)

    with anyio.fail_after(30):  # generous: the block must always exit
        async with anyio.create_task_group() as tg:
            try:
                with anyio.CancelScope() as scope:
                    async with engine:
                        runner = Runner(program, engine, ledger, Progress(engine, ledger))
                        runner.register_callbacks()
                        await tg.start(fast_reader)
                        await tg.start(slow_reader)
                        for step in program.steps:
                            await runner.step(step)
                        await runner.end(scope)
            except Exception as error:
                raised = error
    assert runner is not None
    return judge(program, runner, runner.progress, [fast, slow], raised, db), runner


def judge(
    program: Program,
    runner: Runner,
    progress: Progress,
    readers: list[Reader],
    raised: BaseException | None,
    db: Path | None,
) -> list[str]:
    ledger, log = runner.ledger, progress.events
    problems = runner.problems + ledger.problems + check_seq("first callback", log)
    for reader in readers:
        if reader.error is not None:
            problems.append(f"{reader.name} raised {reader.error!r}")
        problems += check_same_events(reader.name, reader.events, log)
    runs, more = check_runs(
        ledger, log, failure_stop=not program.continue_on_failure, cancel_results=True
    )
    problems += more
    failed = [
        e for e in log if isinstance(e, aionas.TrainingEndEvent) and e.status is ModelStatus.Failed
    ]
    failure_stop = bool(failed) and not program.continue_on_failure
    if failure_stop and len(failed) > 1:
        problems.append(f"continue_on_failure=False, yet {len(failed)} models ended Failed")
    problems += check_untouched_runs(ledger, runs, failure_stop)
    if program.ending == "raise":
        if not isinstance(raised, LeaveTheBlock):
            problems.append(f"the block raised {raised!r}, not the test's own exception")
    elif failure_stop:
        allowed = (failed[0].error, None) if program.ending == "host-cancel" else (failed[0].error,)
        if raised not in allowed:
            problems.append(f"the block raised {raised!r}; a model failed with {failed[0].error!r}")
    elif raised is not None:
        problems.append(f"the block raised {raised!r}")
    problems += check_statistics(runner.engine, ledger, log, db is not None)
    if db is not None:
        problems += check_journal(db, ledger, log)
    return problems


def check_untouched_runs(
    ledger: Ledger, runs: dict[int, list[Run]], failure_stop: bool
) -> list[str]:
    """A run that no cancel, shutdown or failure touched ends as its script says."""
    if ledger.stopped or failure_stop:
        return []
    problems: list[str] = []
    cancelled: Counter[tuple[int, int]] = Counter()
    for call in ledger.cancels:
        cancelled[id(call.model), call.run_index] += 1
        if call.in_flight:
            cancelled[id(call.model), call.run_index + 1] += 1
    for model in ledger.models:
        for index, run in enumerate(runs.get(id(model), [])):
            if cancelled[id(model), index] or run.end is None:
                continue
            natural = ModelStatus.Failed if model.params["kind"] == "fail" else ModelStatus.Trained
            if not run.started or run.end.status is not natural:
                problems.append(
                    f"{model!r} run {index}: nothing stopped it, yet it ended {run.end!r} "
                    f"(started={run.started}); its script ends {natural}"
                )
    return problems


# ---------------------------------------------------------------------------- the test


@settings(
    max_examples=100,
    deadline=None,
    database=None,  # keeps the repository clean; a failure prints its example to replay
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(program=PROGRAMS)
async def test_interleavings_keep_every_guarantee(anyio_backend: str, program: Program) -> None:
    with tempfile.TemporaryDirectory() as directory:
        db = Path(directory) / "journal.db" if program.journal else None
        problems, runner = await run_program(program, db)
    # What the examples covered: pytest --hypothesis-show-statistics
    event(f"ending: {program.ending}")
    for result in sorted({str(call.result) for call in runner.ledger.cancels}):
        event(f"cancel_model returned {result}")
    event(f"wait steps run: {min(runner.waits['run'], 3)}+")
    assert not problems, "\n".join(problems[:25])


async def test_a_fixed_program_runs_as_its_script_says(anyio_backend: str) -> None:
    """The runner itself: a known program, every outcome known in advance."""
    gated = Script(reports=2, fail_at=None, gate=1, final=True, on_loop=False)
    plain = Script(reports=1, fail_at=None, gate=None, final=False, on_loop=True)
    failing = Script(reports=2, fail_at=1, gate=None, final=True, on_loop=False)
    program = Program(
        continue_on_failure=True,
        event_buffer_size=3,
        journal=False,
        ending="release",
        wait_at_end=True,
        steps=(
            Submit((gated, plain, failing)),
            WaitStarted(0),
            Cancel(1),  # queued behind the gate: ended at once
            Release(0),
            Wait(0),
            Wait(2),
            Resubmit(2),
        ),
    )
    problems, runner = await run_program(program, None)
    assert not problems, "\n".join(problems)
    ends = {
        name: [(r.end.status.value, r.end.reason) for r in runner.progress.runs[id(m)] if r.end]
        for name, m in zip(("gated", "plain", "failing"), runner.models, strict=True)
    }
    assert ends == {
        "gated": [("trained", "completed")],
        "plain": [("interrupted", "cancelled")],
        "failing": [("failed", "failed"), ("failed", "failed")],
    }
    (cancel,) = runner.ledger.cancels
    assert cancel.result is aionas.CancelResult.Ended
    assert runner.models[0].metrics == aionas.Metrics([0.0, 1.0], 2.0)
