"""Stress: thousands of models, with failures, cancels, timeouts, resubmits and stops.

Each test runs a few engines ("rounds"), each driven by a seeded random *program*:
batches of scripted models (reporting, failing, retried from a callback, or
looping until ``max_model_duration`` stops them), cancels from the main task and
from callbacks, and, depending on the round, a ``shutdown()`` from the main task or
from a callback, or a failure under ``continue_on_failure=False``. Four consumers
watch everything: a sync callback, an async callback, a fast subscriber and a slow
one (small buffer, a checkpoint every few events). After each round:

- every consumer saw the same events, ``seq`` going up by one, never repeating;
- exactly one end event per accepted submission, and nothing for a model after
  its end until its next submission's start;
- statuses only move forward (each model checks every assignment), and a model's
  status equals its end event's when the first callback gets it;
- each end is true to the model's script and to what the test did (``'cancelled'``
  only after a ``cancel_model``, ``'shutdown'`` only after a stop, ...);
- budgets are never exceeded (``test_stress_budgets``);
- the ``async with`` block exits (within a generous ``fail_after``);
- with a journal, the file holds exactly the events the consumers saw, and
  ``load_history`` agrees on statuses and submission counts.

``test_stress`` repeats everything with ``sys.setswitchinterval(1e-5)``, which makes
the worker thread and the loop switch often enough to expose unguarded windows.
``test_stress_models_equal_by_value`` uses models that compare equal by params: the
engine must tell them apart by identity. ``test_stress_with_stalled_subscribers``
adds the v2 API: ``cancel_model``'s result checked against what happened,
``receive_batch``, an ``on_full="close"`` subscriber that stops reading (detached,
then caught up with ``since_seq`` when there is a journal) and a "wait" subscriber
that stalls the exit (closed after ``subscriber_grace``). The other tests use only
what the engine has always had.

``pytest tests/test_stress.py --stress-models 20000`` runs more models per test (the
timeouts grow with it); ``--stress-seed TEXT`` changes the programs. A failure names
its seed and round; the program replays with them, the thread interleaving does not.
"""

from __future__ import annotations

import random
import sqlite3
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

import aionas
from aionas import ModelEventType, ModelStatus, SequentialExecutionEngine, SqliteJournal

pytestmark = pytest.mark.anyio

#: Models per test (one backend, journal or not, one switch interval) by default.
DEFAULT_MODELS = 1_000
#: Engines per test; the models are shared out among them.
ROUNDS = 4
#: Every model runs at most this long (the looping models need it to end).
MODEL_TIMEOUT = 0.02


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``stress_models`` and ``stress_seed`` from the command line; timeouts grow with size."""
    if "stress_models" in metafunc.fixturenames:
        models = metafunc.config.getoption("--stress-models", default=None) or DEFAULT_MODELS
        # Generous: a loaded 2-core machine must not fail a correct engine.
        limit = 120 + models * 0.1
        metafunc.parametrize(
            "stress_models",
            [pytest.param(models, marks=pytest.mark.timeout(limit), id=f"{models}models")],
        )
    if "stress_seed" in metafunc.fixturenames:
        seed = metafunc.config.getoption("--stress-seed", default=None)
        metafunc.parametrize("stress_seed", [seed or "aionas"], ids=["seed"])


# ---------------------------------------------------------------------------- models

STOP_REASONS = frozenset({"cancelled", "timeout", "budget", "shutdown"})
ENDED = (ModelStatus.Trained, ModelStatus.Failed, ModelStatus.Interrupted)

#: The moves an engine may make (and the test's own: an ended model set to Retrying).
FORWARD = {
    ModelStatus.Frozen: {ModelStatus.Training, ModelStatus.Interrupted},
    ModelStatus.Retrying: {ModelStatus.Training, ModelStatus.Interrupted},
    ModelStatus.Training: set(ENDED),
    ModelStatus.Trained: {ModelStatus.Retrying},
    ModelStatus.Failed: {ModelStatus.Retrying},
    ModelStatus.Interrupted: {ModelStatus.Retrying},
}


class Tracked(aionas.Model):
    """A model that checks every status it is given: statuses only move forward."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.backwards: list[tuple[ModelStatus, ModelStatus]] = []
        super().__init__(params)

    @property  # type: ignore[override]
    def status(self) -> ModelStatus:
        return self.__dict__["_tracked_status"]  # type: ignore[no-any-return]

    @status.setter
    def status(self, value: ModelStatus) -> None:
        old = self.__dict__.get("_tracked_status")
        if old is not None and value is not old and value not in FORWARD.get(old, ()):
            self.backwards.append((old, value))
        self.__dict__["_tracked_status"] = value


class Scripted(Tracked):
    """Runs the script in its params; every run reports ``0.0, 1.0, ...`` in order.

    - ``report``: ``n`` intermediates, then the final ``n`` if ``final``;
    - ``fail``: raises ``ValueError`` instead of reporting intermediate ``at``;
    - ``retry``: fails its first ``fails`` runs after ``n`` intermediates, then trains;
    - ``loop``: reports ``0.0``, then checks for cancellation until it is stopped.
    """

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(params)
        #: Runs that ended before this one (counted by the test's callback, so that
        #: a worker process's copy of the model knows it too).
        self.runs = 0

    def execute(self) -> None:
        p = self.params
        kind, n = p["kind"], p["n"]
        if kind == "loop":
            aionas.report_intermediate_result(0.0)
            while True:
                time.sleep(0.0005)  # a little work between checks
                aionas.check_cancelled()
        for i in range(n):
            if kind == "fail" and i == p["at"]:
                raise ValueError(f"boom at {i}")
            aionas.report_intermediate_result(float(i))
        if kind == "fail":
            raise ValueError("boom at the end")
        if kind == "retry" and self.runs < p["fails"]:
            raise RuntimeError(f"flaky run {self.runs + 1}")
        if p["final"]:
            aionas.report_final_result(float(n))


class ScriptedAsync(Scripted):
    """The same scripts (but ``loop``) in an ``async def execute``, run on the event loop."""

    async def execute(self) -> None:  # type: ignore[override]
        p = self.params
        kind, n = p["kind"], p["n"]
        for i in range(n):
            await anyio.lowlevel.checkpoint()
            if kind == "fail" and i == p["at"]:
                raise ValueError(f"boom at {i}")
            aionas.report_intermediate_result(float(i))
        if kind == "fail":
            raise ValueError("boom at the end")
        if kind == "retry" and self.runs < p["fails"]:
            raise RuntimeError(f"flaky run {self.runs + 1}")
        if p["final"]:
            aionas.report_final_result(float(n))


class ValueEqual:
    """Equal to any model with the same params, as a user's value-like model may be.

    The engine must find models by identity, never with ``==``: with these, a lookup
    by equality cancels, removes or waits for the wrong model.
    """

    params: dict[str, Any]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ValueEqual) and other.params == self.params

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.params.items())))


class EqScripted(ValueEqual, Scripted):
    pass


class EqScriptedAsync(ValueEqual, ScriptedAsync):
    pass


def expected_outcomes(model: aionas.Model, attempt: int) -> set[ModelStatus]:
    """How the ``attempt``-th started run (1-based) of a script may end."""
    p = model.params
    kind = p.get("kind")
    if kind == "loop":
        return {ModelStatus.Interrupted}
    if kind == "fail":
        return {ModelStatus.Failed, ModelStatus.Interrupted}
    if kind == "retry":
        done = ModelStatus.Failed if attempt <= p["fails"] else ModelStatus.Trained
        return {done, ModelStatus.Interrupted}
    return {ModelStatus.Trained, ModelStatus.Interrupted}


def expected_metrics(model: aionas.Model, attempt: int, status: ModelStatus) -> list[float] | None:
    """The intermediates a run must have reported to end ``status`` (None: any prefix)."""
    p = model.params
    if status is ModelStatus.Trained:
        return [float(i) for i in range(p["n"])]
    if status is ModelStatus.Failed and p["kind"] == "fail":
        return [float(i) for i in range(p["at"])]
    if status is ModelStatus.Failed:
        return [float(i) for i in range(p["n"])]
    return None


# ---------------------------------------------------------------------------- the ledger


@dataclass(eq=False)
class CancelCall:
    """One ``cancel_model`` call, and what was known when it was made."""

    model: aionas.Model
    #: Which submission of the model it meant (0-based): the latest accepted one.
    run_index: int
    #: End events of the model the first callback had received before the call.
    ends_delivered: int
    #: A submission of the model was being made at the time (which run it meant is unclear).
    in_flight: bool
    origin: str
    result: Any = None
    status_after: ModelStatus | None = None


@dataclass(eq=False)
class Fact:
    """What held when the first callback received an end event."""

    status: ModelStatus
    cancels: int  # cancel_model calls made so far
    stopped: bool  # a stop (shutdown, host cancellation) requested so far


class Ledger:
    """What the test did to an engine, to judge what its consumers saw."""

    def __init__(
        self,
        *,
        max_model_count: int | None = None,
        max_duration: float | None = None,
        max_model_duration: float | None = None,
        continue_on_failure: bool = True,
    ) -> None:
        self.max_model_count = max_model_count
        self.max_duration = max_duration
        self.max_model_duration = max_model_duration
        self.continue_on_failure = continue_on_failure
        self.models: list[aionas.Model] = []  # accepted at least once, in order
        self.accepted: Counter[int] = Counter()  # id(model) -> accepted submissions
        self.in_flight: Counter[int] = Counter()
        self.refused: set[int] = set()  # a resubmission was refused: it stays Retrying
        self.cancels: list[CancelCall] = []
        self.ends_delivered: Counter[int] = Counter()
        self.facts: dict[int, Fact] = {}  # by seq
        self.stopped = False
        self.budget_end_seen = False
        self.failed_submitted = False  # a model that may fail, with continue_on_failure=False
        self.problems: list[str] = []

    @property
    def submissions(self) -> int:
        return sum(self.accepted.values())

    async def submit(self, engine: SequentialExecutionEngine, *models: aionas.Model) -> bool:
        """Submit; True if accepted. A refusal must have a reason the test knows of."""
        budget_spent = self.budget_end_seen
        for model in models:
            self.in_flight[id(model)] += 1
        try:
            await engine.submit_models(*models)
        except aionas.EngineClosedError as error:
            if not (self.stopped or self.failed_submitted):
                self.problems.append(f"submit refused with no stop requested: {error}")
            return False
        except aionas.BudgetExhaustedError as error:
            count = self.max_model_count
            over = count is not None and self.submissions + sum(self.in_flight.values()) > count
            if not (over or self.max_duration is not None):
                self.problems.append(f"submit refused with budget left: {error}")
            return False
        finally:
            for model in models:
                self.in_flight[id(model)] -= 1
        if budget_spent:
            self.problems.append(f"{models!r} accepted after max_duration was spent")
        for model in models:
            if not self.accepted[id(model)]:
                self.models.append(model)
            self.accepted[id(model)] += 1
        if self.max_model_count is not None and self.submissions > self.max_model_count:
            self.problems.append(
                f"{self.submissions} submissions accepted, max_model_count={self.max_model_count}"
            )
        return True

    def cancel(self, engine: SequentialExecutionEngine, model: aionas.Model, origin: str) -> Any:
        key = id(model)
        call = CancelCall(
            model,
            self.accepted[key] - 1,
            self.ends_delivered[key],
            self.in_flight[key] > 0,
            origin,
        )
        self.cancels.append(call)
        call.result = engine.cancel_model(model)
        call.status_after = model.status
        return call.result


class SyncRecorder:
    """The first callback of every type: keeps every event and what held when it came."""

    def __init__(self, engine: SequentialExecutionEngine, ledger: Ledger) -> None:
        self.events: list[aionas.ModelEvent] = []
        self.ledger = ledger
        for kind in ModelEventType:
            engine.register_model_event_callback(kind, self)

    def __call__(self, event: aionas.ModelEvent) -> None:
        self.events.append(event)
        if isinstance(event, aionas.TrainingEndEvent):
            ledger = self.ledger
            ledger.ends_delivered[id(event.model)] += 1
            ledger.facts[event.seq] = Fact(event.model.status, len(ledger.cancels), ledger.stopped)
            if event.reason == "budget":
                ledger.budget_end_seen = True


class AsyncRecorder:
    """An async callback of every type that passes a checkpoint every ``every`` events."""

    def __init__(self, engine: SequentialExecutionEngine, every: int) -> None:
        self.events: list[aionas.ModelEvent] = []
        self.every = every
        for kind in ModelEventType:
            engine.register_model_event_callback(kind, self.record)

    async def record(self, event: aionas.ModelEvent) -> None:
        self.events.append(event)
        if len(self.events) % self.every == 0:
            await anyio.lowlevel.checkpoint()


@dataclass(eq=False)
class Reader:
    """What one subscriber received, and how its subscription ended."""

    name: str
    events: list[aionas.ModelEvent] = field(default_factory=list)
    error: BaseException | None = None


async def read_subscription(
    subscription: AbstractAsyncContextManager[aionas.Subscription],
    reader: Reader,
    *,
    every: int = 0,
    batch: int = 0,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Read until the subscription ends; a checkpoint every ``every`` events (if not 0).

    With ``batch``, reads with ``receive_batch(batch)`` (v2) instead of iterating.
    """
    async with subscription as events:
        task_status.started()
        try:
            if batch:
                while got := await events.receive_batch(batch):
                    reader.events.extend(got)
                    await anyio.lowlevel.checkpoint()
                return
            async for event in events:
                reader.events.append(event)
                if every and len(reader.events) % every == 0:
                    await anyio.lowlevel.checkpoint()
        except Exception as error:  # a healthy subscriber must not get one: checked later
            reader.error = error


# ---------------------------------------------------------------------------- the checks


@dataclass(eq=False)
class Run:
    """One submission of one model as a consumer saw it."""

    started: bool
    metrics: list[Any] = field(default_factory=list)
    final: Any = None
    end: aionas.TrainingEndEvent | None = None


def key(event: aionas.ModelEvent) -> tuple[int, str, int]:
    return (event.seq, event.event_type.value, id(event.model))


def check_same_events(name: str, got: list[aionas.ModelEvent], reference: list[Any]) -> list[str]:
    """A consumer saw exactly the reference's events (same seq, type and model)."""
    mine = [key(e) for e in got]
    theirs = [key(e) for e in reference]
    if mine == theirs:
        return []
    at = next((i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b), None)
    if at is None:
        at = min(len(mine), len(theirs))
    return [
        f"{name} saw {len(mine)} events, the first callback {len(theirs)}; first difference at "
        f"#{at}: {mine[at : at + 3]} vs {theirs[at : at + 3]}"
    ]


def check_seq(name: str, events: list[aionas.ModelEvent]) -> list[str]:
    """``seq`` strictly increasing by one: no repeat, no gap, never back."""
    seqs = [e.seq for e in events]
    for i in range(1, len(seqs)):
        if seqs[i] != seqs[i - 1] + 1:
            return [f"{name}: seq goes {seqs[max(0, i - 3) : i + 3]} at #{i}"]
    return []


def replay_runs(events: list[aionas.ModelEvent]) -> tuple[dict[int, list[Run]], list[str]]:
    """Cut each model's events into runs: [start, metrics..., end] or a lone end."""
    runs: dict[int, list[Run]] = defaultdict(list)
    problems: list[str] = []
    for event in events:
        model_runs = runs[id(event.model)]
        current = model_runs[-1] if model_runs and model_runs[-1].end is None else None
        if isinstance(event, aionas.TrainingStartEvent):
            if current is not None:
                problems.append(
                    f"seq {event.seq}: a second start of {event.model!r} before its end"
                )
            model_runs.append(Run(started=True))
        elif isinstance(event, aionas.TrainingEndEvent):
            if current is None:
                model_runs.append(Run(started=False, end=event))
            else:
                current.end = event
        elif current is None:
            problems.append(
                f"seq {event.seq}: {event.event_type.value} of {event.model!r} outside a run "
                "(after its end, or before its start)"
            )
        elif isinstance(event, aionas.IntermediateMetricEvent):
            current.metrics.append(event.metric)
        else:
            if current.final is not None:
                problems.append(f"seq {event.seq}: a second final metric of {event.model!r}")
            current.final = event.metric
    return runs, problems


def check_runs(
    ledger: Ledger,
    events: list[aionas.ModelEvent],
    *,
    failure_stop: bool = False,
    cancel_results: bool = False,
) -> tuple[dict[int, list[Run]], list[str]]:
    """Everything about each model's runs, as the first callback saw them."""
    runs, problems = replay_runs(events)
    known = {id(m) for m in ledger.models}
    for model_key in runs:
        if model_key not in known:
            model = next(e.model for e in events if id(e.model) == model_key)
            problems.append(f"events for {model!r}, which the engine never accepted")
    any_failed = any(
        isinstance(e, aionas.TrainingEndEvent) and e.status is ModelStatus.Failed for e in events
    )
    for model in ledger.models:
        model_runs = runs.get(id(model), [])
        accepted = ledger.accepted[id(model)]
        ends = sum(run.end is not None for run in model_runs)
        if ends != accepted or len(model_runs) != accepted:
            problems.append(
                f"{model!r}: {accepted} submissions accepted, {ends} end events "
                f"(runs: {[(r.started, r.end and r.end.seq) for r in model_runs]})"
            )
        backwards = getattr(model, "backwards", None)  # a Tracked model checks its statuses
        if backwards:
            problems.append(f"{model!r}: status moved backwards: {backwards}")
        attempt = 0
        for index, run in enumerate(model_runs):
            if run.end is None:
                continue
            attempt += run.started
            problems += check_end(ledger, model, index, attempt, run, failure_stop and any_failed)
        if model_runs and model_runs[-1].end is not None:
            last = model_runs[-1]
            status = model.status
            if status is not last.end.status and not (
                id(model) in ledger.refused and status is ModelStatus.Retrying
            ):
                problems.append(f"{model!r} is {status} after its last end {last.end!r}")
            metrics = [float(m) for m in last.metrics]
            if last.started and status in ENDED and model.metrics.intermediates != metrics:
                said = model.metrics.intermediates
                problems.append(f"{model!r}: metrics {said} but its events said {metrics}")
    if cancel_results:
        problems += check_cancel_results(ledger, runs)
    return runs, problems


def check_end(
    ledger: Ledger, model: aionas.Model, index: int, attempt: int, run: Run, failure_stop: bool
) -> list[str]:
    end = run.end
    assert end is not None
    status, reason = end.status, end.reason
    where = f"{model!r} run {index} (end seq {end.seq}, {status.value}/{reason})"
    problems: list[str] = []
    fact = ledger.facts.get(end.seq)
    if fact is not None and fact.status is not status:
        problems.append(f"{where}: the model was {fact.status} when the first callback got it")
    pairs = {ModelStatus.Trained: {"completed"}, ModelStatus.Failed: {"failed"}}
    if reason not in pairs.get(status, STOP_REASONS):
        problems.append(f"{where}: status and reason disagree")
    if not run.started and status is not ModelStatus.Interrupted:
        problems.append(f"{where}: ended {status} without starting")
    if not run.started and reason == "timeout":
        problems.append(f"{where}: timed out without starting")
    if reason == "timeout" and ledger.max_model_duration is None:
        problems.append(f"{where}: timed out with no max_model_duration")
    if reason == "budget" and ledger.max_duration is None:
        problems.append(f"{where}: out of budget with no max_duration")
    if reason == "cancelled" and fact is not None:
        meant = [
            c
            for c in ledger.cancels[: fact.cancels]
            if c.model is model
            and (c.run_index == index or (c.in_flight and c.run_index + 1 == index))
        ]
        if not meant:
            problems.append(f"{where}: no cancel_model call for this run came before")
    if reason == "shutdown" and fact is not None and not (fact.stopped or failure_stop):
        problems.append(f"{where}: no stop was requested")
    if run.started:
        if status not in expected_outcomes(model, attempt):
            problems.append(f"{where}: a {model.params} script cannot end so (attempt {attempt})")
        metrics = [float(m) for m in run.metrics]
        wanted = expected_metrics(model, attempt, status)
        if wanted is None:
            if metrics != [float(i) for i in range(len(metrics))]:
                problems.append(f"{where}: reported {metrics}, not a prefix of its script")
        elif metrics != wanted:
            problems.append(f"{where}: reported {metrics}, the script says {wanted}")
        final = float(model.params["n"]) if model.params.get("final") else None
        if status is ModelStatus.Trained and run.final != final:
            problems.append(f"{where}: final metric {run.final!r}, the script says {final!r}")
    elif run.metrics or run.final is not None:
        problems.append(f"{where}: metrics without a start")
    return problems


def check_cancel_results(ledger: Ledger, runs: dict[int, list[Run]]) -> list[str]:
    """``cancel_model`` told the truth (v2: it returns a ``CancelResult``)."""
    result_type = getattr(aionas, "CancelResult", None)
    if result_type is None and ledger.cancels:
        return ["aionas.CancelResult is missing: cancel_model returns nothing to check (v2 API)"]
    problems: list[str] = []
    by_run: dict[tuple[int, int], list[CancelCall]] = defaultdict(list)
    for call in ledger.cancels:
        where = f"cancel_model({call.model!r}) from {call.origin} -> {call.result!r}"
        if not isinstance(call.result, result_type):
            problems.append(f"{where}: not a CancelResult")
            continue
        if call.in_flight:
            continue  # which submission it meant is not defined: only the global checks
        by_run[id(call.model), call.run_index].append(call)
        model_runs = runs.get(id(call.model), [])
        if not 0 <= call.run_index < len(model_runs) or model_runs[call.run_index].end is None:
            problems.append(f"{where}: its run never ended")
            continue
        run = model_runs[call.run_index]
        end = run.end
        assert end is not None
        if call.ends_delivered > call.run_index and call.result is not result_type.AlreadyEnded:
            problems.append(f"{where}: the run's end {end!r} had been delivered before the call")
        if call.result is result_type.Ended:
            if run.started or (end.status, end.reason) != (ModelStatus.Interrupted, "cancelled"):
                problems.append(f"{where}: but the run started={run.started} and ended {end!r}")
            if call.status_after is not ModelStatus.Interrupted:
                problems.append(f"{where}: but the model was {call.status_after} on return")
        elif call.result is result_type.Stopping:
            if not run.started or end.status is not ModelStatus.Interrupted:
                problems.append(f"{where}: but the run started={run.started} and ended {end!r}")
        elif call.status_after not in ENDED and not (
            id(call.model) in ledger.refused and call.status_after is ModelStatus.Retrying
        ):  # (a refused resubmission leaves the Retrying the test set)
            problems.append(f"{where}: but the model was {call.status_after} on return")
    for (_, index), calls in by_run.items():
        run = runs[id(calls[0].model)][index]
        acted = [c for c in calls if c.result is not result_type.AlreadyEnded]
        end = run.end
        assert end is not None
        if end.reason == "cancelled" and not acted:
            problems.append(f"{end!r}: 'cancelled', but every cancel_model said already_ended")
        if len([c for c in calls if c.result is result_type.Ended]) > 1:
            problems.append(f"{end!r}: cancel_model said 'ended' twice for one run")
    return problems


def check_statistics(
    engine: SequentialExecutionEngine,
    ledger: Ledger,
    events: list[aionas.ModelEvent],
    journal: bool,
) -> list[str]:
    stats = engine.statistics()
    ends = Counter(e.status for e in events if isinstance(e, aionas.TrainingEndEvent))
    want = {
        "submitted": ledger.submissions,
        "queued": 0,
        "running": 0,
        "trained": ends[ModelStatus.Trained],
        "failed": ends[ModelStatus.Failed],
        "interrupted": ends[ModelStatus.Interrupted],
        "events_published": len(events),
        "events_delivered": len(events),
        "callback_errors": 0,
    }
    if journal:
        want["journaled_events"] = len(events)
    got = {name: getattr(stats, name) for name in want}
    return [] if got == want else [f"statistics {got}, expected {want}"]


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def check_journal(db: Path, ledger: Ledger, events: list[aionas.ModelEvent]) -> list[str]:
    """The file holds exactly what the consumers saw; ``load_history`` agrees."""
    problems: list[str] = []
    stored = rows(db, "SELECT seq, model_id, type FROM events ORDER BY seq")
    seen = [(e.seq, e.model.model_id, e.event_type.value) for e in events]
    if stored != seen:
        at = next((i for i, (a, b) in enumerate(zip(stored, seen, strict=False)) if a != b), None)
        at = min(len(stored), len(seen)) if at is None else at
        problems.append(
            f"journal holds {len(stored)} events, consumers saw {len(seen)}; first difference "
            f"at #{at}: {stored[at : at + 3]} vs {seen[at : at + 3]}"
        )
    models, summary = aionas.load_history(db)
    by_id = {m.model_id: m for m in models}
    if summary.model_count != ledger.submissions:
        problems.append(f"journal model_count {summary.model_count}, accepted {ledger.submissions}")
    submissions = dict(rows(db, "SELECT id, submissions FROM models"))
    for model in ledger.models:
        record = by_id.get(model.model_id)
        if record is None:
            problems.append(f"{model!r} is not in the journal")
            continue
        last = [e for e in events if e.model is model and isinstance(e, aionas.TrainingEndEvent)]
        if last and record.status is not last[-1].status:
            problems.append(f"journal says {record!r}, the last end seen was {last[-1]!r}")
        if submissions.get(model.model_id) != ledger.accepted[id(model)]:
            problems.append(
                f"journal counts {submissions.get(model.model_id)} submissions of {model!r}, "
                f"accepted {ledger.accepted[id(model)]}"
            )
    return problems


@contextmanager
def switch_interval(seconds: float | None) -> Iterator[None]:
    """Run with ``sys.setswitchinterval(seconds)`` (None: unchanged), restored after."""
    before = sys.getswitchinterval()
    if seconds is not None:
        sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


# ---------------------------------------------------------------------------- one round


@dataclass
class Config:
    seed: str
    models: int
    stop: str  # "none" | "main-shutdown" | "callback-shutdown" | "failure"
    db: Path | None
    loopers: bool = True
    max_model_count: int | None = None
    max_duration: float | None = None
    v2: bool = False  # cancel results, receive_batch
    detach: bool = False  # an on_full="close" subscriber that never reads (v2)
    stall_on_exit: bool = False  # a "wait" subscriber that stalls the exit (v2)
    value_equal: bool = False  # models compare equal by params (ValueEqual)
    process: bool = False  # models run in a worker process (ProcessExecutor)

    @property
    def deadline(self) -> float:
        return 60 + self.models * 0.05


@dataclass(eq=False)
class Outcome:
    engine: SequentialExecutionEngine
    ledger: Ledger
    recorder: SyncRecorder
    consumers: list[tuple[str, list[aionas.ModelEvent], BaseException | None]]
    raised: BaseException | None
    problems: list[str]


def make_model(rng: random.Random, cfg: Config, kind: str | None = None) -> Scripted:
    if kind is None:
        r = rng.random()
        may_fail = cfg.stop != "failure"
        if cfg.loopers and r < 0.006:
            kind = "loop"
        elif may_fail and r < 0.07:
            kind = "fail"
        elif may_fail and r < 0.11:
            kind = "retry"
        else:
            kind = "report"
    n = rng.choice((0, 1, 2, 3, 3, 5, 8))
    params: dict[str, Any] = {"kind": kind, "n": n, "final": rng.random() < 0.7}
    if kind == "fail":
        params["at"] = rng.randint(0, n)
    elif kind == "retry":
        params["fails"] = rng.randint(1, 2)
    on_loop = kind != "loop" and rng.random() < 0.03
    if cfg.value_equal:
        return EqScriptedAsync(params) if on_loop else EqScripted(params)
    return ScriptedAsync(params) if on_loop else Scripted(params)


async def stress_round(cfg: Config, rng: random.Random) -> Outcome:
    """Run one engine through a random program; return what everyone saw."""
    failure_mode = cfg.stop == "failure"
    ledger = Ledger(
        max_model_count=cfg.max_model_count,
        max_duration=cfg.max_duration,
        max_model_duration=MODEL_TIMEOUT if cfg.loopers and cfg.max_duration is None else None,
        continue_on_failure=not failure_mode,
    )
    kwargs: dict[str, Any] = {
        "continue_on_failure": ledger.continue_on_failure,
        "max_model_duration": ledger.max_model_duration,
        "max_model_count": cfg.max_model_count,
        "max_duration": cfg.max_duration,
        "event_buffer_size": rng.choice((4, 64, 10_000)),
        "max_queue_size": rng.choice((None, None, 32)),
    }
    if cfg.db is not None:
        kwargs["journal"] = SqliteJournal(cfg.db)
    if cfg.v2:
        # Only the stalled subscriber may be closed: the grace stays long enough that a
        # healthy one on a loaded machine is not (it never waits that long for the loop).
        kwargs["subscriber_grace"] = 0.5 if cfg.stall_on_exit else 5.0
    if cfg.process:
        kwargs["executor"] = aionas.ProcessExecutor()
    engine = SequentialExecutionEngine(**kwargs)
    callback_rng = random.Random(rng.random())
    fast, slow = Reader("fast subscriber"), Reader("slow subscriber")
    problems: list[str] = []
    raised: BaseException | None = None
    shutdown_at = rng.randrange(1, 6 * cfg.models) if cfg.stop == "callback-shutdown" else None
    stalled: aionas.Subscription | None = None
    stalled_from = 0
    batch = rng.choice((1, 7, 1000)) if cfg.v2 else 0
    slow_buffer, slow_every = rng.choice((1, 3, 8)), rng.choice((1, 2, 7))

    def cancel_some(event: aionas.ModelEvent) -> None:
        r = callback_rng.random()
        if r < 0.03:
            ledger.cancel(engine, event.model, "a callback, its own model")
        elif r < 0.05 and ledger.models:
            ledger.cancel(engine, callback_rng.choice(ledger.models), "a callback, any model")

    async def resubmit_failed(event: aionas.TrainingEndEvent) -> None:
        model = event.model
        if event.status is not ModelStatus.Failed or model.params.get("kind") != "retry":
            return
        model.runs += 1
        model.status = ModelStatus.Retrying
        if not await ledger.submit(engine, model):
            ledger.refused.add(id(model))

    async def maybe_shutdown(event: aionas.ModelEvent) -> None:
        assert recorder is not None
        if shutdown_at is not None and len(recorder.events) >= shutdown_at and not ledger.stopped:
            ledger.stopped = True
            await engine.shutdown()

    async def fast_reader(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        await read_subscription(engine.subscribe(), fast, batch=batch, task_status=task_status)

    async def slow_reader(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        subscription = engine.subscribe(buffer_size=slow_buffer)
        await read_subscription(subscription, slow, every=slow_every, task_status=task_status)

    recorder: SyncRecorder | None = None
    async_recorder: AsyncRecorder | None = None
    with anyio.fail_after(cfg.deadline):
        async with AsyncExitStack() as outlives_the_block:
            async with anyio.create_task_group() as tg:
                try:
                    async with engine:
                        # The first callback: it sees each event before anyone else.
                        recorder = SyncRecorder(engine, ledger)
                        async_recorder = AsyncRecorder(engine, every=rng.choice((1, 5, 50)))
                        for kind in (
                            ModelEventType.TrainingStart,
                            ModelEventType.IntermediateMetric,
                        ):
                            engine.register_model_event_callback(kind, cancel_some)
                        engine.register_model_event_callback("training_end", resubmit_failed)
                        if shutdown_at is not None:
                            for kind in ModelEventType:
                                engine.register_model_event_callback(kind, maybe_shutdown)
                        await tg.start(fast_reader)
                        await tg.start(slow_reader)
                        await drive(engine, ledger, recorder, rng, cfg, problems)
                        if cfg.stall_on_exit:
                            # Never read: leaving the block must close it after the grace.
                            stalled_from = len(recorder.events)
                            stalled = await outlives_the_block.enter_async_context(
                                engine.subscribe(buffer_size=1)
                            )
                except Exception as error:
                    raised = error
            if stalled is not None:
                assert recorder is not None
                problems += await check_stalled(stalled, recorder.events, stalled_from)
    assert recorder is not None
    assert async_recorder is not None
    consumers = [
        ("async callback", async_recorder.events, None),
        (fast.name, fast.events, fast.error),
        (slow.name, slow.events, slow.error),
    ]
    return Outcome(engine, ledger, recorder, consumers, raised, problems)


async def drive(
    engine: SequentialExecutionEngine,
    ledger: Ledger,
    recorder: SyncRecorder,
    rng: random.Random,
    cfg: Config,
    problems: list[str],
) -> None:
    """The main task's program."""
    stop_at = rng.randrange(cfg.models) if cfg.stop in ("main-shutdown", "failure") else None
    detach_at = rng.randrange(cfg.models) if cfg.detach else None
    made = 0
    detached: tuple[aionas.Subscription, int, int] | None = None
    async with AsyncExitStack() as stack:
        while made < cfg.models:
            if stop_at is not None and made >= stop_at:
                stop_at = None
                if cfg.stop == "main-shutdown":
                    ledger.stopped = True
                    await engine.shutdown()
                else:  # it fails at once, while the main task goes on submitting
                    ledger.failed_submitted = True
                    failing = Scripted({"kind": "fail", "n": 0, "at": 0, "final": False})
                    if not await ledger.submit(engine, failing):
                        break
            batch = [make_model(rng, cfg) for _ in range(rng.randint(1, 6))]
            if not await ledger.submit(engine, *batch):
                changed = [m for m in batch if m.status is not ModelStatus.Frozen]
                if changed:
                    problems.append(f"a refused submission changed {changed!r}")
                break
            made += len(batch)
            r = rng.random()
            if r < 0.1:
                ledger.cancel(engine, rng.choice(batch), "the main task, just submitted")
            elif r < 0.2:
                ledger.cancel(engine, rng.choice(ledger.models), "the main task, any model")
            for _ in range(rng.choice((0, 0, 0, 1, 2, 5))):
                await anyio.lowlevel.checkpoint()
            if rng.random() < 0.01:
                await engine.wait_models(rng.choice(batch))
            if detach_at is not None and made >= detach_at:
                detach_at = None
                detached = await never_read(engine, stack, recorder, rng)
        if cfg.detach:
            if detached is None:
                detached = await never_read(engine, stack, recorder, rng)
            await engine.wait_models()
            problems += await check_detached(engine, ledger, recorder, cfg, *detached)
        if cfg.stall_on_exit:  # leave work behind for the stalled subscriber
            await ledger.submit(engine, *(make_model(rng, cfg, "report") for _ in range(5)))
        elif rng.random() < 0.5:
            await engine.wait_models()


async def never_read(
    engine: SequentialExecutionEngine,
    stack: AsyncExitStack,
    recorder: SyncRecorder,
    rng: random.Random,
) -> tuple[aionas.Subscription, int, int]:
    """An ``on_full="close"`` subscriber that never reads while the engine runs."""
    size = rng.choice((1, 4, 16))
    subscription = engine.subscribe(buffer_size=size, on_full="close")
    return await stack.enter_async_context(subscription), size, len(recorder.events)


def slice_of(
    name: str, got: list[aionas.ModelEvent], log: list[aionas.ModelEvent], subscribed_at: int
) -> tuple[int, list[str]]:
    """Where ``got`` starts in ``log``: it must be a contiguous run of it, from no later
    than the first event the callbacks had not seen when it subscribed."""
    if not got:
        return subscribed_at, []
    first = got[0].seq - log[0].seq if log else 0
    if not 0 <= first <= subscribed_at or [key(e) for e in got] != [
        key(e) for e in log[first : first + len(got)]
    ]:
        return first, [
            f"{name} (subscribed at event #{subscribed_at}) got {len(got)} events from seq "
            f"{got[0].seq}, not a contiguous run of the {len(log)} published from there"
        ]
    return first, []


async def check_detached(
    engine: SequentialExecutionEngine,
    ledger: Ledger,
    recorder: SyncRecorder,
    cfg: Config,
    subscription: aionas.Subscription,
    size: int,
    subscribed_at: int,
) -> list[str]:
    """An ``on_full="close"`` subscriber that never read, now that all is delivered.

    It holds what its buffer took; if more was due, it was detached: the next receive
    raises ``SlowSubscriberError(last_seq)``, and with a journal it catches up from
    there with ``since_seq``, gapless, into the live events.
    """
    name = "on_full='close' subscriber"
    log = recorder.events
    got = [await subscription.__anext__() for _ in range(subscription.buffered())]
    first, problems = slice_of(name, got, log, subscribed_at)
    if problems:
        return problems
    if first + len(got) == len(log):
        return []  # never a full buffer behind: not detached (reading on would wait)
    if len(got) != size:
        problems.append(f"{name}: detached holding {len(got)} events, its buffer is {size}")
    last_seq = got[-1].seq if got else None
    try:
        extra = await subscription.__anext__()
    except aionas.SlowSubscriberError as error:
        if error.last_seq != last_seq:
            problems.append(
                f"{name}: SlowSubscriberError.last_seq {error.last_seq}, want {last_seq}"
            )
    except BaseException as error:
        problems.append(f"{name}: a full buffer behind, its next receive raised {error!r}")
    else:
        problems.append(f"{name}: a full buffer behind, but it went on with {extra!r}")
    if problems:
        return problems
    if cfg.db is None:
        with pytest.raises(ValueError, match="journal"):
            engine.subscribe(since_seq=last_seq)
        return []
    start = -1 if last_seq is None else last_seq
    async with engine.subscribe(since_seq=start, buffer_size=100_000) as catch_up:
        tail = await take(catch_up, len(log) - first - len(got))
        more = [Scripted({"kind": "report", "n": 2, "final": True}) for _ in range(3)]
        if not (ledger.stopped or ledger.failed_submitted):
            before = len(log)
            if await ledger.submit(engine, *more):
                await engine.wait_models(*more)
                tail += await take(catch_up, len(log) - before)
    problems += check_same_events("since_seq catch-up", tail, log[first + len(got) :])
    return problems


async def take(subscription: aionas.Subscription, count: int) -> list[aionas.ModelEvent]:
    """``count`` events with ``receive_batch`` (they are known to be there)."""
    got: list[aionas.ModelEvent] = []
    while len(got) < count:
        batch = await subscription.receive_batch(count - len(got))
        if not batch:
            break
        got += batch
    return got


async def check_stalled(
    subscription: aionas.Subscription, log: list[aionas.ModelEvent], subscribed_at: int
) -> list[str]:
    """A "wait" subscriber that never read while the engine exited: closed after the grace."""
    name = "stalled 'wait' subscriber"
    got: list[aionas.ModelEvent] = []
    error: BaseException | None = None
    try:
        async for event in subscription:  # the engine is closed: this never waits
            got.append(event)
    except Exception as caught:
        error = caught
    first, problems = slice_of(name, got, log, subscribed_at)
    if problems:
        return problems
    complete = first + len(got) == len(log)
    if error is None:
        if not complete:
            problems.append(f"{name}: ended normally after {len(got)} of {len(log) - first} events")
    elif not isinstance(error, aionas.SlowSubscriberError):
        problems.append(f"{name}: raised {error!r}")
    elif error.last_seq != (got[-1].seq if got else None):
        problems.append(f"{name}: last_seq {error.last_seq}, it got {[e.seq for e in got]}")
    elif complete:
        problems.append(f"{name}: closed as too slow, but it had received everything")
    return problems


# ---------------------------------------------------------------------------- judging a round


def judge(cfg: Config, out: Outcome) -> list[str]:
    """Every check, on every consumer; a list of what is wrong (empty: all good)."""
    ledger, log = out.ledger, out.recorder.events
    problems = list(out.problems) + list(ledger.problems)
    problems += check_seq("first callback", log)
    for name, events, error in out.consumers:
        if error is not None:
            problems.append(f"{name} raised {error!r}")
        problems += check_same_events(name, events, log)
    failed = [
        e for e in log if isinstance(e, aionas.TrainingEndEvent) and e.status is ModelStatus.Failed
    ]
    _, run_problems = check_runs(
        ledger, log, failure_stop=cfg.stop == "failure", cancel_results=cfg.v2
    )
    problems += run_problems
    if cfg.stop == "failure":
        if len(failed) > 1:
            problems.append(f"continue_on_failure=False, yet {len(failed)} models ended Failed")
        if failed and out.raised is not failed[0].error:
            problems.append(f"the block raised {out.raised!r}, not the failure {failed[0].error!r}")
        if not failed and out.raised is not None:
            problems.append(f"the block raised {out.raised!r}")
    elif out.raised is not None:
        problems.append(f"the block raised {out.raised!r}")
    problems += check_statistics(out.engine, ledger, log, cfg.db is not None)
    if cfg.db is not None:
        problems += check_journal(cfg.db, ledger, log)
    if cfg.max_duration is not None:
        budget = [i for i, e in enumerate(log) if getattr(e, "reason", None) == "budget"]
        late = (
            [e for e in log[budget[0] :] if isinstance(e, aionas.TrainingStartEvent)]
            if budget
            else []
        )
        if late:
            problems.append(f"{len(late)} models started after max_duration was spent: {late[:3]}")
    if cfg.max_model_count is not None:
        state = out.engine.state_dict()
        if not state["model_count"] <= cfg.max_model_count:
            problems.append(f"state_dict {state}, max_model_count={cfg.max_model_count}")
    return problems


def report(cfg: Config, round_no: int, problems: list[str]) -> str:
    shown = "\n  ".join(problems[:25])
    more = f"\n  ... and {len(problems) - 25} more" if len(problems) > 25 else ""
    return f"seed {cfg.seed!r}, round {round_no} ({cfg}):\n  {shown}{more}"


async def run_rounds(configs: list[Config], switch: float | None) -> None:
    with switch_interval(switch):
        for round_no, cfg in enumerate(configs):
            rng = random.Random(f"{cfg.seed}/{round_no}")
            out = await stress_round(cfg, rng)
            problems = judge(cfg, out)
            assert not problems, report(cfg, round_no, problems)


SWITCH = {"switch-default": None, "switch-1e-5": 1e-5}
STOPS = ("none", "main-shutdown", "callback-shutdown", "failure")


def plan(seed: str, models: int, db_dir: Path | None, **extra: Any) -> list[Config]:
    rng = random.Random(seed)
    stops = list(STOPS)
    rng.shuffle(stops)
    return [
        Config(
            seed=seed,
            models=max(1, models // ROUNDS),
            stop=stops[i % len(stops)],
            db=None if db_dir is None else db_dir / f"stress-{i}.db",
            **extra,
        )
        for i in range(ROUNDS)
    ]


# ---------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("switch", list(SWITCH))
@pytest.mark.parametrize("journal", ["memory", "journal"])
async def test_stress(
    journal: str,
    switch: str,
    stress_models: int,
    stress_seed: str,
    tmp_path: Path,
    anyio_backend: str,
) -> None:
    """Failures, cancels, timeouts, resubmits, shutdowns: every guarantee, every consumer."""
    seed = f"{stress_seed}/{anyio_backend}/{journal}/{switch}"
    db_dir = tmp_path if journal == "journal" else None
    await run_rounds(plan(seed, stress_models, db_dir), SWITCH[switch])


@pytest.mark.parametrize("journal", ["memory", "journal"])
async def test_stress_models_equal_by_value(
    journal: str, stress_models: int, stress_seed: str, tmp_path: Path, anyio_backend: str
) -> None:
    """Models that compare equal by params: the engine tells them apart by identity."""
    seed = f"{stress_seed}/{anyio_backend}/{journal}/value-equal"
    db_dir = tmp_path if journal == "journal" else None
    await run_rounds(plan(seed, stress_models // 4, db_dir, value_equal=True), None)


@pytest.mark.parametrize("journal", ["memory", "journal"])
async def test_stress_budgets(
    journal: str, stress_models: int, stress_seed: str, tmp_path: Path, anyio_backend: str
) -> None:
    """``max_model_count`` and ``max_duration`` are never exceeded, resubmits included."""
    seed = f"{stress_seed}/{anyio_backend}/{journal}/budgets"
    rng = random.Random(seed)
    dbs = [tmp_path / f"stress-{i}.db" if journal == "journal" else None for i in range(3)]
    models = max(10, stress_models // 4)
    counts = [rng.randint(models // 4, models // 2) for _ in range(2)]
    configs = [
        Config(seed, models, "none", dbs[0], max_model_count=counts[0]),
        Config(seed, models, "none", dbs[1], max_model_count=counts[1], loopers=False),
        Config(seed, models, "none", dbs[2], max_duration=0.05),
    ]
    await run_rounds(configs, SWITCH["switch-1e-5"] if rng.random() < 0.5 else None)


@pytest.mark.parametrize("journal", ["memory", "journal"])
async def test_stress_with_stalled_subscribers(
    journal: str, stress_models: int, stress_seed: str, tmp_path: Path, anyio_backend: str
) -> None:
    """v2: truthful ``cancel_model`` results, ``receive_batch``, and subscribers that stop
    reading: ``on_full="close"`` ones are detached (and catch up with ``since_seq``), a
    "wait" one that stalls the exit is closed after ``subscriber_grace``; the others,
    and the callbacks, still get everything."""
    seed = f"{stress_seed}/{anyio_backend}/{journal}/v2"
    db_dir = tmp_path if journal == "journal" else None
    configs = plan(seed, stress_models // 2, db_dir, v2=True)
    for i, cfg in enumerate(configs):
        cfg.detach = i % 2 == 0 or i == ROUNDS - 1
        cfg.stall_on_exit = i == 1
    await run_rounds(configs, None)


@pytest.mark.parametrize("journal", ["memory", "journal"])
async def test_stress_process_executor(
    journal: str, stress_models: int, stress_seed: str, tmp_path: Path, anyio_backend: str
) -> None:
    """The same programs with every (blocking) model run in a worker process."""
    seed = f"{stress_seed}/{anyio_backend}/{journal}/process"
    db_dir = tmp_path if journal == "journal" else None
    await run_rounds(plan(seed, stress_models // 2, db_dir, process=True), None)
