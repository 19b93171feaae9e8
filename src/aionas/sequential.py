"""The sequential engine: models run one at a time, in a worker thread, off the loop.

How it works. One long-lived worker thread takes queued models in order and runs
them back to back. Everything it reports goes into a lock-protected *outbox*; a
delivery task on the event loop drains the outbox in batches and hands each event
to the callbacks and subscribers. The worker wakes the loop (without waiting for
it) only when the delivery task is idle, so a report costs a lock and an append,
never a loop round trip. The outbox is bounded (``event_buffer_size``): while it is
full, the worker's next report waits, so a slow subscriber slows training down
instead of losing events or growing memory without bound.
"""

from __future__ import annotations

import inspect
import logging
import math
import threading
import time
from collections import deque
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Any, Self

import anyio

from ._bridge import LoopCaller, current_loop_caller, protect_from_keyboard_interrupt
from ._context import current_run
from ._dispatch import EventCallback, EventDispatcher, Subscription, in_dispatch
from ._journaling import (
    ModelFactory,
    Restored,
    ResumePolicy,
    check_metric_json,
    params_json,
    rebuild,
    to_requeue,
)
from ._run import Outcome, Run, classify
from .engine import EngineStatistics, ExecutionEngine
from .events import (
    EndReason,
    ModelEvent,
    ModelEventType,
    new_end,
    new_final,
    new_intermediate,
    new_start,
)
from .exceptions import BudgetExhaustedError, EngineClosedError, JournalError, ModelStateError
from .history import ModelRecord
from .journal import SqliteJournal
from .model import Model
from .status import ModelStatus

__all__ = ["SequentialExecutionEngine"]

_logger = logging.getLogger("aionas.engine")


class _Phase(Enum):
    NEW = "new"  # not started yet
    RUNNING = "running"  # inside ``async with``, accepting models
    STOPPING = "stopping"  # stopped accepting models (shutdown, failure); still delivering
    CLOSED = "closed"  # the ``async with`` block has been left


@dataclass(eq=False, slots=True)
class _Entry:
    """The engine's bookkeeping for one submitted model."""

    model: Model
    model_id: int
    # End events published or owed but not yet delivered (one per pending submission).
    pending_ends: int = 0


class _Worker:
    """One worker thread's lifetime; ``abandoned`` tells it to touch nothing more."""

    __slots__ = ("abandoned",)

    def __init__(self) -> None:
        self.abandoned = False


#: Statuses a model may be submitted with (others get a precise error).
_READY = frozenset({ModelStatus.Frozen, ModelStatus.Retrying})
_ASYNC_EXECUTE: dict[type[Model], bool] = {}
_TRAINED: Outcome = (ModelStatus.Trained, "completed", None)


def _runs_on_loop(model: Model) -> bool:
    """Whether ``model.execute`` is ``async def`` (cached per class)."""
    override = model.__dict__.get("execute")
    if override is not None:
        return inspect.iscoroutinefunction(override)
    cls = type(model)
    try:
        return _ASYNC_EXECUTE[cls]
    except KeyError:
        result = _ASYNC_EXECUTE[cls] = inspect.iscoroutinefunction(cls.execute)
        return result


def _positive(name: str, value: float | None, *, integer: bool = False) -> None:
    if value is None:
        return
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        need = "a positive int" if integer else "a positive number of seconds"
        raise TypeError(f"{name} must be {need} or None, got {value!r}")
    if not value > 0 or (not integer and not math.isfinite(value)):
        raise ValueError(f"{name} must be > 0 (use None for no limit), got {value!r}")


class SequentialExecutionEngine(ExecutionEngine):
    """Runs models one at a time, in submission order, each in a worker thread.

    >>> import anyio, aionas
    >>> async def main() -> None:
    ...     async with aionas.SequentialExecutionEngine(max_model_count=3) as engine:
    ...         models = [aionas.FunctionModel(lambda p: p["x"] ** 2, {"x": x}) for x in (1, 2, 3)]
    ...         await engine.submit_models(*models)
    ...         await engine.wait_models()
    ...         print([m.metric for m in engine.list_models()])
    >>> anyio.run(main)
    [1.0, 4.0, 9.0]

    Budgets are enforced: ``max_model_count`` caps the submissions (a submit that
    would pass it raises :class:`~aionas.BudgetExhaustedError` and queues nothing);
    ``max_duration`` caps the total execution seconds (when it is spent, the
    running model is interrupted and the queued ones end, reason ``'budget'``);
    ``max_model_duration`` caps each run (reason ``'timeout'``).

    ``continue_on_failure=False`` (the default, as in NNI) stops the engine at the
    first failed model, and its exception is raised when the ``async with`` block
    exits. ``cancel_grace`` (seconds) abandons a worker thread that has not
    noticed a cancellation after that long; with None the engine waits for it, so
    two models never run at once. ``max_queue_size`` makes ``submit_models`` wait
    for room. ``event_buffer_size`` bounds the events held between the worker and
    the loop, and is the default buffer of each subscriber.
    """

    def __init__(
        self,
        *,
        max_model_count: int | None = None,
        max_duration: float | None = None,
        max_model_duration: float | None = None,
        continue_on_failure: bool = False,
        cancel_grace: float | None = None,
        max_queue_size: int | None = None,
        event_buffer_size: int = 10_000,
        journal: SqliteJournal | None = None,
        resume: ResumePolicy = "interrupt",
        model_factory: ModelFactory | None = None,
    ) -> None:
        if journal is not None and not isinstance(journal, SqliteJournal):
            raise TypeError(f"journal must be an aionas.SqliteJournal or None, got {journal!r}")
        if resume not in ("interrupt", "requeue"):
            raise ValueError(f"resume must be 'interrupt' or 'requeue', got {resume!r}")
        if resume == "requeue" and model_factory is None:
            raise ValueError(
                "resume='requeue' runs unfinished models again, so it needs "
                "model_factory=lambda params: YourModel(params) to rebuild them"
            )
        if model_factory is not None and not callable(model_factory):
            raise TypeError(f"model_factory must be callable, got {model_factory!r}")
        _positive("max_model_count", max_model_count, integer=True)
        _positive("max_duration", max_duration)
        _positive("max_model_duration", max_model_duration)
        _positive("max_queue_size", max_queue_size, integer=True)
        _positive("event_buffer_size", event_buffer_size, integer=True)
        if cancel_grace is not None:
            if isinstance(cancel_grace, bool) or not isinstance(cancel_grace, int | float):
                raise TypeError(f"cancel_grace must be seconds or None, got {cancel_grace!r}")
            if not (cancel_grace >= 0 and math.isfinite(cancel_grace)):
                raise ValueError(f"cancel_grace must be >= 0 seconds or None, got {cancel_grace!r}")
        self.max_model_count = max_model_count
        self.max_duration = max_duration
        self.max_model_duration = max_model_duration
        self.continue_on_failure = continue_on_failure
        self.cancel_grace = cancel_grace
        self.max_queue_size = max_queue_size
        self.event_buffer_size = event_buffer_size
        self.journal = journal
        self.resume = resume
        self.model_factory = model_factory

        self._phase = _Phase.NEW
        # Everything below that the worker thread touches is guarded by this.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # worker threads wait on it, never the loop
        self._waiting = 0  # threads in self._cond.wait(): notify only when someone waits
        self._queue: deque[Model] = deque()
        self._running: Run | None = None
        self._history: list[Model] = []
        self._entries: dict[int, _Entry] = {}
        # id(model) -> this engine's id for it (a model may later move to another engine)
        self._ids: dict[int, int] = {}
        self._outbox: list[ModelEvent] = []
        self._closing = False  # the worker exits once the queue is empty
        self._model_count = 0
        self._total_duration = 0.0
        self._seq = 0
        self._next_id = 1
        self._journaled = 0  # event rows committed to the journal
        self._ended = {ModelStatus.Trained: 0, ModelStatus.Failed: 0, ModelStatus.Interrupted: 0}
        self._dropped_reports = 0
        self._abandoned_threads = 0
        self._undelivered = 0  # end events owed to subscribers, all models together
        self._fatal: BaseException | None = None  # raised when the block exits
        self._fatal_model: Model | None = None

        # Loop-side wake-ups, set by whoever changes the state they wait on.
        self._events_ready: anyio.Event | None = None  # the delivery task is idle
        self._state_changed: anyio.Event | None = None  # queue or running model changed
        self._delivered: anyio.Event | None = None  # an end event was delivered
        self._call_soon: LoopCaller | None = None
        self._loop_thread = 0
        self._watch_deadlines = (
            max_model_duration is not None or max_duration is not None or cancel_grace is not None
        )

        self._dispatcher = EventDispatcher()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._worker: _Worker | None = None
        self._worker_scope: anyio.CancelScope | None = None
        self._worker_done = anyio.Event()
        self._delivery_stop = False
        self._delivery_done = anyio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        if self._phase is not _Phase.NEW:
            raise EngineClosedError(
                f"this engine is {self._phase.value}; an engine runs once, so create a new "
                "SequentialExecutionEngine (carry budgets over with state_dict())"
            )
        restored = None
        if self.journal is not None:
            restored = await anyio.to_thread.run_sync(self.journal._open)
            try:
                self._restore(restored)
            except BaseException:
                await anyio.to_thread.run_sync(self.journal._close)
                raise
        self._call_soon = current_loop_caller()
        self._loop_thread = threading.get_ident()
        protect_from_keyboard_interrupt(
            SequentialExecutionEngine._supervise_worker,
            SequentialExecutionEngine._deliver_events,
            SequentialExecutionEngine._watch,
        )
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._phase = _Phase.RUNNING
        task_group.start_soon(self._supervise_worker, name="aionas worker")
        task_group.start_soon(self._deliver_events, name="aionas delivery")
        if self._watch_deadlines:
            task_group.start_soon(self._watch, name="aionas deadlines")
        if restored is not None:
            retried = self._resume_unfinished(restored)
            if retried:  # ended models that run again: count their new submission
                assert self.journal is not None
                await anyio.to_thread.run_sync(
                    self.journal._writer().record_submissions, [], retried, self._model_count
                )
        return self

    def _restore(self, restored: Restored) -> None:
        """Take over a journal's history, budgets and sequence numbers."""
        assert self.journal is not None
        experiment = self.journal.experiment
        self._model_count = restored.model_count
        self._total_duration = restored.total_duration
        self._seq = restored.next_seq
        self._next_id = restored.next_id
        self._restored_ids: dict[int, Model] = {}
        for row in restored.models:
            model = rebuild(row, self.model_factory, experiment)
            self._entries[id(model)] = _Entry(model, row.model_id)
            self._ids[id(model)] = row.model_id
            self._history.append(model)
            self._restored_ids[row.model_id] = model

    def _resume_unfinished(self, restored: Restored) -> list[int]:
        """End (``resume='interrupt'``) or queue again (``'requeue'``) what did not finish."""
        requeue: list[Model] = []
        retried: list[int] = []
        with self._lock:
            for row in restored.models:
                model = self._restored_ids[row.model_id]
                entry = self._entries[id(model)]
                if self.resume == "requeue" and to_requeue(row):
                    if not row.unfinished:
                        retried.append(row.model_id)  # a new submission of an ended model
                    model.status = ModelStatus.Retrying
                    model._aionas_busy = True
                    requeue.append(model)
                elif row.unfinished:
                    entry.pending_ends += 1
                    self._undelivered += 1
                    self._end_locked(model, ModelStatus.Interrupted, "crash", None)
            for model in requeue:
                self._entries[id(model)].pending_ends += 1
                self._undelivered += 1
            self._queue.extend(requeue)
            self._notify_locked()
        del self._restored_ids
        return retried

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        raised = exc
        if exc is None:
            try:
                await self._wait_settled(None)
            except BaseException as error:  # cancelled (or interrupted) while waiting
                raised = error
        with anyio.CancelScope(shield=True):
            with self._lock:
                if self._phase is _Phase.RUNNING:
                    self._phase = _Phase.STOPPING
                if raised is not None:
                    self._stop_locked("shutdown")
                self._closing = True
                self._cond.notify_all()
            self._cancel_async_run()
            interrupt = await self._wait_through_interrupts(self._worker_done)
            interrupt = await self._wait_through_interrupts(self._delivery_done) or interrupt
            if self.journal is not None:
                await anyio.to_thread.run_sync(self.journal._close)
        # Every task has finished (they are shielded and stopped above), so this only
        # joins them; it must run outside the shield to exit the right cancel scope.
        assert self._task_group is not None
        await self._task_group.__aexit__(None, None, None)
        self._phase = _Phase.CLOSED
        if interrupt is not None:
            raise interrupt
        if self._fatal is not None and (
            raised is None
            or isinstance(raised, EngineClosedError | anyio.get_cancelled_exc_class())
        ):
            raise self._fatal
        if raised is not exc and raised is not None:
            raise raised
        return None

    async def _wait_through_interrupts(self, done: anyio.Event) -> KeyboardInterrupt | None:
        """Wait for ``done`` even through Ctrl+C, so cleanup always completes.

        An interrupt meanwhile shuts the engine down (if it was not already) and is
        returned, to be raised once the block has been left cleanly.
        """
        interrupt: KeyboardInterrupt | None = None
        while True:
            try:
                await done.wait()
            except KeyboardInterrupt as error:
                interrupt = error
                with self._lock:
                    self._stop_locked("shutdown")
                    self._closing = True
                    self._cond.notify_all()
                self._cancel_async_run()
            else:
                return interrupt

    async def shutdown(self) -> None:
        """Stop accepting models, interrupt the running one, end the queued ones.

        Both end ``Interrupted`` with reason ``'shutdown'``. Returns once the worker
        is idle (with ``cancel_grace=None``, once the running model has noticed).
        Their end events are still delivered before the ``async with`` block exits.
        Calling it again, or on an engine never started, does nothing more.
        """
        if self._phase is _Phase.NEW:
            self._phase = _Phase.CLOSED
            return
        if self._phase is _Phase.CLOSED:
            return
        with self._lock:
            self._stop_locked("shutdown")
            self._closing = True
            self._cond.notify_all()
        self._cancel_async_run()
        await self._worker_done.wait()

    # ------------------------------------------------------------------ submitting

    async def submit_models(self, *models: Model) -> None:
        """Queue ``models`` to run in this order; returns once queued, not trained.

        All models are checked before any is queued: all or nothing. With
        ``max_queue_size``, waits for room (a batch larger than the bound is queued
        whole once the queue is empty); a callback submitting never waits.

        :raises TypeError: for an object that is not a :class:`~aionas.Model`.
        :raises ModelStateError: for a model that is not frozen, already completed
            (set its status to ``ModelStatus.Retrying`` to run it again), or
            already queued or running.
        :raises BudgetExhaustedError: if ``max_model_count`` would be exceeded or
            ``max_duration`` is spent.
        :raises EngineClosedError: outside ``async with``, or after the engine stopped.
        """
        self._check_loop_thread("submit_models")
        self._check_accepting()
        self._check_models(models)
        if not models:
            return
        waited = False
        if self.max_queue_size is not None and not in_dispatch.get():
            while True:
                with self._lock:
                    self._check_accepting()
                    self._check_budget_locked(len(models))
                    if not self._queue or len(self._queue) + len(models) <= self.max_queue_size:
                        break
                    changed = self._state_event_locked()
                waited = True
                await changed.wait()
        params = [params_json(model) for model in models] if self.journal is not None else []
        new: list[_Entry] = []
        with self._lock:
            if waited:  # a callback may have queued one of them meanwhile
                self._check_accepting()
                self._check_models(models)
            self._check_budget_locked(len(models))
            entries = self._entries
            for model in models:
                model._aionas_busy = True
                entry = entries.get(id(model))
                if entry is None:
                    entry = entries[id(model)] = _Entry(model, self._next_id)
                    self._ids[id(model)] = model.model_id = self._next_id
                    self._next_id += 1
                    self._history.append(model)
                    new.append(entry)
                entry.pending_ends += 1
            self._undelivered += len(models)
            self._model_count += len(models)
            if self.journal is None:
                self._queue.extend(models)
                self._notify_locked()
                return
            count = self._model_count
        await self._journal_submissions(models, params, new, count)

    async def _journal_submissions(
        self, models: tuple[Model, ...], params: list[str], new: list[_Entry], count: int
    ) -> None:
        """Commit the submissions, then queue the models: a crash never forgets one."""
        assert self.journal is not None
        now = time.time()
        text = dict(zip(map(id, models), params, strict=True))
        rows = [
            (entry.model_id, text[id(entry.model)], type(entry.model).__qualname__, now)
            for entry in new
        ]
        retried = []
        if len(new) < len(models):
            fresh = {id(entry.model) for entry in new}
            entries = self._entries
            retried = [entries[id(m)].model_id for m in models if id(m) not in fresh]
        with anyio.CancelScope(shield=True):  # once reserved, the models are queued or ended
            try:
                await anyio.to_thread.run_sync(
                    self.journal._writer().record_submissions, rows, retried, count
                )
            except Exception as error:
                self._unreserve(models, new)
                raise JournalError(
                    f"could not record the submission in {self.journal!r}: "
                    f"{type(error).__name__}: {error}; nothing was queued"
                ) from error
            with self._lock:
                if self._phase is _Phase.RUNNING:
                    self._queue.extend(models)
                    self._notify_locked()
                else:  # the engine stopped while we were writing
                    for model in models:
                        self._end_unstarted_locked(model, "shutdown")

    def _unreserve(self, models: tuple[Model, ...], new: list[_Entry]) -> None:
        with self._lock:
            for model in models:
                model._aionas_busy = False
                self._entries[id(model)].pending_ends -= 1
            for entry in new:
                del self._entries[id(entry.model)]
                del self._ids[id(entry.model)]
                self._history.remove(entry.model)
                entry.model.model_id = None
            self._undelivered -= len(models)
            self._model_count -= len(models)

    def _check_models(self, models: tuple[Model, ...]) -> None:
        for model in models:
            if (
                isinstance(model, Model)
                and getattr(model, "_aionas_busy", None) is False
                and not isinstance(model, ModelRecord)
                and model.status in _READY
            ):
                continue  # the common case, checked cheaply; the rest says what is wrong
            if isinstance(model, ModelRecord):
                raise ModelStateError(
                    f"{model!r} is a record restored from a journal and cannot run; pass "
                    "model_factory=... to the engine to get executable models back"
                )
            if not isinstance(model, Model):
                raise TypeError(
                    f"submit_models takes aionas.Model instances, got {type(model).__name__} "
                    f"{model!r}; wrap a function in aionas.FunctionModel(fn, params)"
                )
            if not hasattr(model, "metrics") or not hasattr(model, "_aionas_busy"):
                raise ModelStateError(
                    f"{type(model).__name__}.__init__ did not call Model.__init__; "
                    "add super().__init__(params) to it"
                )
            status = model.status
            if not isinstance(status, ModelStatus) or not status.frozen():
                raise ModelStateError(
                    f"{model!r} is not frozen (status {status!s}); only frozen models can run"
                )
            if status.completed():
                raise ModelStateError(
                    f"{model!r} has already completed; to run it again, set "
                    "model.status = ModelStatus.Retrying and submit it again"
                )
            if model._aionas_busy:
                raise ModelStateError(f"{model!r} is already queued or running; submit it once")
        if len(models) > 1 and len({id(model) for model in models}) != len(models):
            twice = next(m for i, m in enumerate(models) if any(m is o for o in models[:i]))
            raise ModelStateError(f"{twice!r} is already queued or running; submit it once")

    def _check_accepting(self) -> None:
        if self._phase is _Phase.RUNNING:
            return
        if self._phase is _Phase.NEW:
            raise EngineClosedError(
                "the engine is not started; use it inside `async with engine:` "
                "(or `async with SequentialExecutionEngine(...) as engine:`)"
            )
        if self._fatal is not None:
            raise EngineClosedError(
                f"the engine stopped because {self._fatal_model!r} failed or was interrupted "
                f"({type(self._fatal).__name__}: {self._fatal}); pass "
                "continue_on_failure=True to go on after failures"
            ) from self._fatal
        raise EngineClosedError(
            f"the engine is {self._phase.value} and accepts no more models; "
            "start a new engine (carry budgets over with state_dict())"
        )

    def _check_budget_locked(self, count: int) -> None:
        if self.max_model_count is not None and self._model_count + count > self.max_model_count:
            left = self.max_model_count - self._model_count
            raise BudgetExhaustedError(
                f"max_model_count={self.max_model_count} would be exceeded: {count} model(s) "
                f"submitted, {left} left; nothing was queued (check budget_available())"
            )
        if self.max_duration is not None and self._spent_locked() >= self.max_duration:
            raise BudgetExhaustedError(
                f"max_duration={self.max_duration}s of execution time is spent "
                f"({self._spent_locked():.3f}s); nothing was queued"
            )

    # ------------------------------------------------------------------ the worker thread

    async def _supervise_worker(self) -> None:
        """Keep one worker thread running until the engine closes.

        Shielded: cancelling the host does not abandon the thread; the engine stops
        it itself (and abandons it only after ``cancel_grace``).
        """
        try:
            while True:
                worker = self._worker = _Worker()
                with anyio.CancelScope(shield=True) as scope:
                    self._worker_scope = scope
                    await anyio.to_thread.run_sync(
                        self._work,
                        worker,
                        abandon_on_cancel=True,
                        limiter=anyio.CapacityLimiter(1),
                    )
                if not worker.abandoned:
                    break
        finally:
            self._worker_done.set()
            self._set_loop_event("_state_changed")
            # The worker exits only once the engine accepts nothing more, so no event can
            # follow: deliver what is left, then end every subscriber's iteration.
            self._delivery_stop = True
            self._set_loop_event("_events_ready")

    def _work(self, worker: _Worker) -> None:
        """The worker thread: run queued models back to back until told to stop.

        Ending one model and starting the next share one hold of the lock.
        """
        lock = self._lock
        with lock:
            run = self._next_run_locked(worker)
        while run is not None:
            if run.on_loop:
                outcome = anyio.from_thread.run(self._execute_on_loop, run)
            else:
                outcome = self._execute_in_thread(run)
            failed = outcome[0] is ModelStatus.Failed
            with lock:
                if run.finished:  # abandoned: the loop has ended it already
                    return
                self._finish_locked(run, outcome)
                ended, run = run, None if failed else self._next_run_locked(worker)
            if failed:
                _logger.error("model %r failed", ended.model, exc_info=outcome[2])
                with lock:
                    run = self._next_run_locked(worker)

    def _next_run_locked(self, worker: _Worker) -> Run | None:
        """Start the next queued model, waiting for one; None when the worker should exit."""
        while True:
            if worker.abandoned:
                return None
            if self._queue and len(self._outbox) < self.event_buffer_size:
                model = self._queue.popleft()
                if self.max_duration is not None and self._total_duration >= self.max_duration:
                    self._end_unstarted_locked(model, "budget")
                    self._wake_state_locked()
                    continue
                return self._start_locked(model)
            if self._closing and not self._queue:
                return None
            self._wait_locked()

    def _wait_locked(self) -> None:
        """Wait on the condition (worker threads only; never the event loop)."""
        self._waiting += 1
        try:
            self._cond.wait()
        finally:
            self._waiting -= 1

    def _notify_locked(self) -> None:
        if self._waiting:
            self._cond.notify_all()

    def _start_locked(self, model: Model) -> Run:
        run = Run(self, model, _runs_on_loop(model))
        if self._watch_deadlines:
            self._set_deadline(run)
        self._running = run
        model.status = ModelStatus.Training
        metrics = model.metrics
        if metrics.intermediates or metrics._final is not None:
            metrics.clear()  # a retried model starts afresh
        model.error = None
        self._publish_locked(new_start(model, self._seq, time.time()))
        if self._state_changed is not None:
            self._wake_state_locked()
        return run

    def _set_deadline(self, run: Run) -> None:
        if self.max_model_duration is not None:
            run.deadline = run.started + self.max_model_duration
        if self.max_duration is not None:
            budget_end = run.started + (self.max_duration - self._total_duration)
            if run.deadline is None or budget_end < run.deadline:
                run.deadline, run.deadline_reason = budget_end, "budget"

    def _execute_in_thread(self, run: Run) -> Outcome:
        token = current_run.set(run)
        try:
            run.model.execute()
        except BaseException as error:
            return classify(run, error)
        finally:
            current_run.reset(token)
        return _TRAINED if run.cancel_reason is None else classify(run, None)

    async def _execute_on_loop(self, run: Run) -> Outcome:
        token = current_run.set(run)
        try:
            with anyio.CancelScope() as scope:
                run.scope = scope
                if run.cancel_reason is not None:
                    scope.cancel()
                await run.model.execute()
        except BaseException as error:
            return classify(run, error)
        finally:
            run.scope = None
            current_run.reset(token)
        return classify(run, None)

    def _finish_locked(self, run: Run, outcome: Outcome) -> None:
        status, reason, error = outcome
        model = run.model
        run.finished = True
        self._running = None
        self._total_duration += time.monotonic() - run.started
        self._end_locked(model, status, reason, error)
        if status is ModelStatus.Failed:
            if not self.continue_on_failure:
                self._fail_locked(model, error)
        elif isinstance(error, KeyboardInterrupt | SystemExit):
            self._fail_locked(model, error)
        if self._state_changed is not None:
            self._wake_state_locked()

    def _fail_locked(self, model: Model | None, error: BaseException | None) -> None:
        if self._fatal is None and error is not None:
            self._fatal, self._fatal_model = error, model
        self._stop_locked("shutdown")
        self._closing = True

    # ------------------------------------------------------------------ reports (any thread)

    def _report(self, run: Run, metric: Any, *, final: bool) -> None:
        """Apply and publish one report of ``run``; called by the trial API."""
        model = run.model
        value = model.metrics._check(metric)  # ValueError for a non-number, before any wait
        if self.journal is not None and type(metric) is not float and type(metric) is not int:
            check_metric_json(metric)
        with self._lock:
            while True:
                if run.finished:
                    self._dropped_reports += 1
                    run.check_cancelled()
                if run.cancel_reason is not None:
                    run.check_cancelled()
                if run.on_loop or len(self._outbox) < self.event_buffer_size:
                    break
                self._wait_locked()
            if final:
                model.metrics._final = value
                self._publish_locked(new_final(model, metric, self._seq, time.time()))
            else:
                model.metrics.intermediates.append(value)
                self._publish_locked(new_intermediate(model, metric, self._seq, time.time()))

    def _publish_locked(self, event: ModelEvent) -> None:
        self._seq += 1
        self._outbox.append(event)
        ready = self._events_ready
        if ready is not None:
            self._events_ready = None
            self._set_soon(ready)

    def _end_locked(
        self,
        model: Model,
        status: ModelStatus,
        reason: EndReason,
        error: BaseException | None,
    ) -> None:
        model._aionas_busy = False
        model.status = status
        model.error = error if status is ModelStatus.Failed else None
        self._ended[status] += 1
        self._publish_locked(new_end(model, status, reason, error, self._seq, time.time()))

    def _end_unstarted_locked(self, model: Model, reason: EndReason) -> None:
        self._end_locked(model, ModelStatus.Interrupted, reason, None)

    def _set_soon(self, event: anyio.Event) -> None:
        """Set a loop-side event from whichever thread we are on, without waiting."""
        if threading.get_ident() == self._loop_thread:
            event.set()
        else:
            assert self._call_soon is not None
            self._call_soon(event.set)

    def _set_loop_event(self, name: str) -> None:
        """On the loop: set and forget one of the wake-up events, if anyone waits."""
        with self._lock:
            event: anyio.Event | None = getattr(self, name)
            setattr(self, name, None)
        if event is not None:
            event.set()

    def _wake_state_locked(self) -> None:
        changed = self._state_changed
        if changed is not None:
            self._state_changed = None
            self._set_soon(changed)

    def _state_event_locked(self) -> anyio.Event:
        if self._state_changed is None:
            self._state_changed = anyio.Event()
        return self._state_changed

    # ------------------------------------------------------------------ stopping models

    def _stop_locked(self, reason: EndReason) -> None:
        """Accept nothing more; end the queued models; ask the running one to stop."""
        if self._phase is _Phase.RUNNING:
            self._phase = _Phase.STOPPING
        self._end_queue_locked(reason)
        if self._running is not None:
            self._cancel_run_locked(self._running, reason)

    def _end_queue_locked(self, reason: EndReason) -> None:
        while self._queue:
            self._end_unstarted_locked(self._queue.popleft(), reason)
        self._wake_state_locked()

    def _cancel_run_locked(self, run: Run, reason: EndReason) -> None:
        if run.cancel_reason is None and not run.finished:
            run.cancel_reason = reason
            run.cancel_at = time.monotonic()
            self._cond.notify_all()  # a report waiting for room raises at once
            self._wake_state_locked()

    def _cancel_async_run(self) -> None:
        """On the loop: cancel the scope of an ``async def execute`` asked to stop."""
        run = self._running
        if run is not None and run.scope is not None and run.cancel_reason is not None:
            run.scope.cancel()

    def cancel_model(self, model: Model) -> None:
        """End a queued model now, or ask the running one to stop.

        A queued model ends ``Interrupted`` (reason ``'cancelled'``) at once, without
        starting. A running model's next ``report_*`` or ``check_cancelled()``
        raises :class:`~aionas.ModelInterrupted` (an ``async def execute`` is
        cancelled at its next await), and it ends ``Interrupted``, reason
        ``'cancelled'``. Cancelling a model that has already ended does nothing.

        :raises ModelStateError: if this engine was never given the model.
        """
        self._check_loop_thread("cancel_model")
        self._entry(model)
        with self._lock:
            if model in self._queue:
                self._queue.remove(model)
                self._end_unstarted_locked(model, "cancelled")
                self._wake_state_locked()
            elif self._running is not None and self._running.model is model:
                self._cancel_run_locked(self._running, "cancelled")
        self._cancel_async_run()

    # ------------------------------------------------------------------ deadlines

    async def _watch(self) -> None:
        """Enforce ``max_model_duration``, ``max_duration`` and ``cancel_grace``."""
        with anyio.CancelScope(shield=True):
            while not self._worker_done.is_set():
                with self._lock:
                    run = self._running
                    changed = self._state_event_locked()
                    deadline = None if run is None else self._deadline_locked(run)
                if deadline is None:
                    await changed.wait()
                    continue
                delay = deadline - time.monotonic()
                if delay > 0:
                    with anyio.move_on_after(delay):
                        await changed.wait()
                    continue
                assert run is not None
                self._deadline_passed(run)

    def _deadline_locked(self, run: Run) -> float | None:
        if run.finished:
            return None
        if run.cancel_reason is None:
            return run.deadline
        if self.cancel_grace is not None and run.cancel_at is not None and not run.on_loop:
            return run.cancel_at + self.cancel_grace
        return None

    def _deadline_passed(self, run: Run) -> None:
        with self._lock:
            if run.finished or self._running is not run:
                return
            if run.cancel_reason is None:
                reason = run.deadline_reason
                self._cancel_run_locked(run, reason)
                if reason == "budget":
                    self._end_queue_locked("budget")
                abandon = False
            else:
                abandon = True
                self._abandon_locked(run)
        self._cancel_async_run()
        if abandon:
            _logger.warning(
                "abandoned the worker thread of %r: it did not stop within cancel_grace=%ss; "
                "the thread may still be running, and whatever it reports is dropped",
                run.model,
                self.cancel_grace,
            )
            assert self._worker_scope is not None
            self._worker_scope.cancel()

    def _abandon_locked(self, run: Run) -> None:
        assert self._worker is not None
        assert run.cancel_reason is not None
        self._worker.abandoned = True
        self._abandoned_threads += 1
        self._finish_locked(run, (ModelStatus.Interrupted, run.cancel_reason, None))
        self._cond.notify_all()  # the abandoned thread may wait for room: let it see

    # ------------------------------------------------------------------ delivery

    async def _deliver_events(self) -> None:
        """The delivery task: drain the outbox in batches, deliver in order."""
        in_dispatch.set(True)
        try:
            await self._deliver_until_stopped()
        finally:
            self._dispatcher.close()
            self._delivery_done.set()

    async def _deliver_until_stopped(self) -> None:
        deliver = self._dispatcher.deliver_batch
        with anyio.CancelScope(shield=True):
            while True:
                with self._lock:
                    batch = self._outbox
                    if batch:
                        self._outbox = []
                        self._notify_locked()  # room for a waiting report or start
                        spent = self._total_duration
                    elif self._delivery_stop:
                        break
                    else:
                        ready = self._events_ready = anyio.Event()
                if not batch:
                    await ready.wait()
                    continue
                if self.journal is not None:
                    await self._journal_events(batch, spent)
                await deliver(batch, self._end_delivered)

    async def _journal_events(self, batch: list[ModelEvent], spent: float) -> None:
        """Commit a batch before anyone sees it (the journal's guarantee)."""
        assert self.journal is not None
        try:
            self._journaled += await anyio.to_thread.run_sync(
                self.journal._writer().record_events, batch, self._ids, spent
            )
        except Exception as error:
            # Nothing can be made durable any more: stop, and say so when the block exits.
            # The events are still delivered, so that every model ends and nobody hangs.
            _logger.error("journal write failed; stopping the engine", exc_info=error)
            failure = JournalError(
                f"writing to {self.journal!r} failed ({type(error).__name__}: {error}); "
                "the engine stopped, and the events after the last commit are not in the journal"
            )
            failure.__cause__ = error
            with self._lock:
                self._fail_locked(None, failure)
                self._cond.notify_all()
            self._cancel_async_run()

    def _end_delivered(self, event: ModelEvent) -> None:
        """A ``TrainingEndEvent`` has reached everyone: settle its model."""
        self._entries[id(event.model)].pending_ends -= 1
        self._undelivered -= 1
        delivered = self._delivered
        if delivered is not None:
            self._delivered = None
            delivered.set()

    # ------------------------------------------------------------------ waiting and queries

    async def wait_models(self, *models: Model, timeout: float | None = None) -> None:
        """Wait until the models (every submitted one when none are given) have ended.

        Returns once each has completed and its ``TrainingEndEvent`` has been
        delivered to every callback and subscriber, so state that a callback keeps
        is up to date. Event-driven: no polling. Models submitted meanwhile (by a
        callback, say) are waited for too when none are given.

        :raises TimeoutError: if ``timeout`` seconds pass first.
        :raises ModelStateError: for a model this engine was never given, or when
            called from an event callback (it would wait for its own delivery).
        """
        if in_dispatch.get():
            raise ModelStateError(
                "wait_models() cannot be awaited inside an event callback: the callback "
                "would wait for its own delivery; wait from the strategy's task instead"
            )
        entries = [self._entry(model) for model in models]
        if timeout is None:
            await self._wait_settled(entries or None)
        else:
            with anyio.fail_after(timeout):
                await self._wait_settled(entries or None)

    async def _wait_settled(self, entries: list[_Entry] | None) -> None:
        while True:
            if entries is None:
                if self._undelivered == 0:
                    return
            elif all(entry.pending_ends == 0 for entry in entries):
                return
            if self._delivered is None:
                self._delivered = anyio.Event()
            await self._delivered.wait()

    def _entry(self, model: Model) -> _Entry:
        if not isinstance(model, Model):
            raise TypeError(f"expected an aionas.Model, got {type(model).__name__} {model!r}")
        entry = self._entries.get(id(model))
        if entry is None or entry.model is not model:
            raise ModelStateError(f"{model!r} was never submitted to this engine")
        return entry

    def list_models(self, status: ModelStatus | str | None = None) -> list[Model]:
        """A new list of the submitted models in submission order (of one status if given).

        :raises ValueError: for an unknown status string.
        """
        if status is None:
            return list(self._history)
        wanted = ModelStatus(status)
        return [model for model in self._history if model.status == wanted]

    def budget_available(self) -> bool:
        """True while another model fits in ``max_model_count`` and ``max_duration``."""
        with self._lock:
            if self.max_model_count is not None and self._model_count >= self.max_model_count:
                return False
            return self.max_duration is None or self._spent_locked() < self.max_duration

    def idle_worker_available(self) -> bool:
        """True when nothing runs and nothing is queued."""
        with self._lock:
            return self._running is None and not self._queue

    def _spent_locked(self) -> float:
        running = self._running
        extra = 0.0 if running is None else time.monotonic() - running.started
        return self._total_duration + extra

    def statistics(self) -> EngineStatistics:
        """A snapshot of the engine's counters."""
        with self._lock:
            return EngineStatistics(
                submitted=self._model_count,
                queued=len(self._queue),
                running=int(self._running is not None),
                trained=self._ended[ModelStatus.Trained],
                failed=self._ended[ModelStatus.Failed],
                interrupted=self._ended[ModelStatus.Interrupted],
                total_duration=self._spent_locked(),
                events_published=self._seq,
                events_delivered=self._dispatcher.delivered,
                callback_errors=self._dispatcher.callback_errors,
                dropped_reports=self._dropped_reports,
                abandoned_threads=self._abandoned_threads,
                journaled_events=self._journaled,
            )

    # ------------------------------------------------------------------ callbacks

    def register_model_event_callback(
        self, event_type: ModelEventType | str, callback: EventCallback
    ) -> None:
        """Call ``callback(event)`` on the event loop for each event of ``event_type``.

        ``event_type`` is a :class:`~aionas.ModelEventType` or its value
        (``'training_end'``). Sync and async callbacks are called in event order,
        one at a time. A callback that raises is logged and counted, nothing more.
        A callback may call engine methods, ``submit_models`` included.

        :raises ValueError: for an unknown event type string.
        """
        self._dispatcher.register(event_type, callback)

    def unregister_model_event_callback(
        self, event_type: ModelEventType | str, callback: EventCallback
    ) -> None:
        """Stop calling ``callback`` for ``event_type``.

        :raises ValueError: if it was not registered for that type.
        """
        self._dispatcher.unregister(event_type, callback)

    def subscribe(
        self, *event_types: ModelEventType | str, buffer_size: int | None = None
    ) -> AbstractAsyncContextManager[Subscription]:
        """An async context manager giving an async iterator of events.

        ``event_types`` selects the types (all when none given). The subscriber has
        its own buffer of ``buffer_size`` events (default ``event_buffer_size``);
        delivery waits for it rather than drop anything. Iteration ends once the
        engine has stopped and delivered everything.

        >>> async def watch(engine):  # doctest: +SKIP
        ...     async with engine.subscribe("intermediate_metric") as events:
        ...         async for event in events:
        ...             print(event.model.params, event.metric)

        :raises ValueError: for an unknown event type or a bad ``buffer_size``.
        """
        kinds = [ModelEventType.parse(kind) for kind in event_types]  # fail here, not later
        size = self.event_buffer_size if buffer_size is None else buffer_size
        return self._dispatcher.subscribe(kinds, size)

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """The budget counters: ``{'model_count': int, 'total_duration': float}``."""
        with self._lock:
            return {"model_count": self._model_count, "total_duration": self._spent_locked()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue the budgets that :meth:`state_dict` recorded.

        The history of models is not part of it.

        :raises ValueError: for a missing key or a negative or non-numeric value.
        """
        try:
            count, duration = state_dict["model_count"], state_dict["total_duration"]
        except (KeyError, TypeError):
            raise ValueError(
                f"state_dict needs 'model_count' and 'total_duration', got {state_dict!r}"
            ) from None
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"model_count must be an int >= 0, got {count!r}")
        if (
            isinstance(duration, bool)
            or not isinstance(duration, int | float)
            or not (duration >= 0 and math.isfinite(duration))
        ):
            raise ValueError(f"total_duration must be seconds >= 0, got {duration!r}")
        with self._lock:
            self._model_count = count
            self._total_duration = float(duration)

    def _check_loop_thread(self, name: str) -> None:
        if self._loop_thread and threading.get_ident() != self._loop_thread:
            raise RuntimeError(
                f"{name}() must be called from the event loop that runs the engine; "
                f"from a worker thread use anyio.from_thread.run(engine.{name}, ...)"
            )
