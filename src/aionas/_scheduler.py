"""The scheduler: the engine's core. Queue, budgets, deadlines, reports, one stop path.

It decides what runs when and hands each run to an executor (which decides
where); it turns what runs report into events in an *outbox*, which the engine's
delivery task drains (after the journal, if any, has committed them). It never
touches a journal, a callback or a subscriber.

How a model moves: ``admit`` (ids, budgets) -> ``enqueue`` -> ``_start_next_locked``
(start event, ``executor.start(run)``) -> reports (``report``) -> ``finish`` (end
event; the next run starts in the same hold of the lock, so a thread executor
goes from one model to the next without a trip through the event loop).

Invariants kept here:

- Every admitted model gets exactly one end event per submission, whatever stops
  the engine and whenever: a queued model ends when it is cancelled or the engine
  stops; a running one when its executor finishes it or the engine gives up on it.
- A stop request and a run's natural end are ordered by ``lock``: whichever is
  recorded first wins. A run asked to stop before its end is recorded ends
  ``Interrupted``, even if ``execute()`` had already returned.
- Models are found by identity (their :class:`Entry`), never by ``==``.
- ``_stop_locked`` is the only way the engine stops accepting models.

Who owns what. The event loop's thread and executor threads share this object.
Everything in the first table is guarded by ``lock``; the second is touched only on
the loop (where the engine's public methods and tasks run).

==================================  =====================================  =======================
field (guarded by ``lock``)          written by                             read by
==================================  =====================================  =======================
``phase``, ``closing``               loop (start, stop); any (stop path)    loop, any
``queue``, ``Entry.queued``          loop (enqueue, cancel); any (start)     loop, any
``in_flight``, ``Entry.run``         any (start, finish); loop (abandon)     loop, any
``by_id``                            loop (admit, undo)                      any (finish)
``outbox``, ``seq``                  any (publish); loop (take)              loop
``RunHandle.cancel_reason``          any (stop path), loop (cancel, watch)   any (without lock)
``RunHandle.finished``               any (finish), loop (abandon)            any (without lock)
``total_duration``, ``model_count``  any (finish), loop (admit, load)        loop
counters (``ended``, ``dropped``)    any                                     loop
``submitting``                       loop                                    loop (delivery)
``fatal``, ``fatal_model``           any (stop path, first one wins)         loop
``_events_ready``, ``_state_changed`` loop (create), any (set via loop)      loop
==================================  =====================================  =======================

Loop only: ``entries``, ``history``, ``Entry.pending_ends``, ``undelivered`` (and ``by_id``
before the engine starts, when there is no other thread yet).
"""

from __future__ import annotations

import copy
import inspect
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import anyio

from .events import EndReason, ModelEvent, new_end, new_final, new_intermediate, new_start
from .exceptions import BudgetExhaustedError, EngineClosedError, ModelInterrupted
from .executors import Executor, RunHandle
from .metrics import check_storable
from .model import Model
from .status import ModelStatus

if TYPE_CHECKING:
    from ._bridge import LoopCaller

__all__ = ["CancelResult", "Entry", "Phase", "Scheduler"]

_logger = logging.getLogger("aionas.engine")


class Phase(Enum):
    """Where an engine is in its one life."""

    NEW = "new"  # not started yet
    RUNNING = "running"  # inside ``async with``, accepting models
    STOPPING = "stopping"  # accepts nothing more; finishing and delivering what it has
    CLOSED = "closed"  # the ``async with`` block has been left


class CancelResult(str, Enum):
    """What :meth:`~aionas.SequentialExecutionEngine.cancel_model` did."""

    #: The model was queued; it has ended now (``Interrupted``, reason ``'cancelled'``).
    Ended = "ended"
    #: The model is running and was asked to stop; it will end ``Interrupted``.
    Stopping = "stopping"
    #: The model had already ended; nothing was done.
    AlreadyEnded = "already_ended"

    def __str__(self) -> str:
        return self.value


@dataclass(eq=False, slots=True)
class Entry:
    """The engine's bookkeeping for one model (compared by identity only)."""

    model: Model
    model_id: int
    #: End events owed to the consumers, one per submission (loop only).
    pending_ends: int = 0
    #: In the queue (under ``lock``).
    queued: bool = False
    #: Its run while one is unfinished (under ``lock``).
    run: RunHandle | None = None
    #: Its ``execute`` is ``async def`` (set when queued, on the loop).
    on_loop: bool = False
    #: Its submission is being committed to a journal (under ``lock``) ...
    committing: bool = False
    #: ... and it was cancelled meanwhile: it ends without starting once committed.
    cancel_when_committed: bool = False


_ASYNC_EXECUTE: dict[Any, bool] = {}  # a method's function -> is it ``async def``
_TRAINED = ModelStatus.Trained
_TRAINING = ModelStatus.Training


def runs_on_loop(model: Model) -> bool:
    """Whether ``model.execute`` is ``async def`` (cached per function).

    Looked up through the bound method, not ``model.__dict__`` (which would make
    every instance build a dict), so an ``execute`` set on the instance counts too.
    """
    execute = model.execute
    function = getattr(execute, "__func__", None)
    if function is None:  # a plain callable set on the instance: not cached
        return inspect.iscoroutinefunction(execute)
    try:
        return _ASYNC_EXECUTE[function]
    except KeyError:
        result = _ASYNC_EXECUTE[function] = inspect.iscoroutinefunction(execute)
        return result


def classify(
    run: RunHandle, error: BaseException | None
) -> tuple[ModelStatus, EndReason, BaseException | None]:
    """A run's outcome, from what ``execute()`` raised (None: it returned).

    Decided under the lock, when the end is recorded: a run that was asked to stop
    by then ends ``Interrupted`` whatever it did.
    """
    reason = run.cancel_reason
    if isinstance(error, ModelInterrupted | KeyboardInterrupt | SystemExit):
        return ModelStatus.Interrupted, reason or "cancelled", error
    if reason is not None:
        return ModelStatus.Interrupted, reason, error
    if error is not None:
        return ModelStatus.Failed, "failed", error
    return ModelStatus.Trained, "completed", None


class Scheduler:
    """The shared core of one engine (see the module docstring for who owns what)."""

    def __init__(
        self,
        *,
        executor: Executor,
        loop_executor: Executor,
        max_model_count: int | None,
        max_duration: float | None,
        max_model_duration: float | None,
        continue_on_failure: bool,
        cancel_grace: float | None,
        event_buffer_size: int,
    ) -> None:
        self.executor = executor
        self.loop_executor = loop_executor
        self.max_model_count = max_model_count
        self.max_duration = max_duration
        self.max_model_duration = max_model_duration
        self.continue_on_failure = continue_on_failure
        self.cancel_grace = cancel_grace
        self.event_buffer_size = event_buffer_size
        self.lanes = 1

        self.lock = threading.Lock()
        self._cond = threading.Condition(self.lock)  # reporters wait on it, never the loop
        self._waiting = 0
        self.phase = Phase.NEW
        self.closing = False
        self.queue: deque[Entry] = deque()
        self.in_flight: list[RunHandle] = []
        self.outbox: list[ModelEvent] = []
        self._start_blocked = False  # a start waits for room in the outbox
        self._calling = 0  # the thread inside an executor's start()/cancel(), if any
        self._deferred: list[tuple[RunHandle, BaseException | None]] = []
        self.seq = 0
        self.first_seq = 0  # this engine's first seq (later ones are its own)
        self.next_id = 1
        self.model_count = 0
        self.total_duration = 0.0
        self.submitted = 0
        self.submitting = 0  # submissions being committed to a journal
        self.ended = {ModelStatus.Trained: 0, ModelStatus.Failed: 0, ModelStatus.Interrupted: 0}
        self.dropped_reports = 0
        self.fatal: BaseException | None = None
        self.fatal_model: Model | None = None

        self.entries: dict[int, Entry] = {}  # id(model) -> entry
        self.by_id: dict[int, Entry] = {}  # model_id -> entry
        self.history: list[Model] = []
        self.undelivered = 0  # end events owed, all models together

        self._events_ready: anyio.Event | None = None
        self._state_changed: anyio.Event | None = None
        self._call_soon: LoopCaller | None = None
        self.loop_thread = 0
        self.watch_deadlines = (
            max_model_duration is not None or max_duration is not None or cancel_grace is not None
        )

    def attach(self, call_soon: LoopCaller) -> None:
        """Bind to the running event loop (called once, on it)."""
        self._call_soon = call_soon
        self.loop_thread = threading.get_ident()

    # ------------------------------------------------------------------ admitting

    def check_accepting_locked(self) -> None:
        """:raises EngineClosedError: unless the engine is running and accepting."""
        if self.phase is Phase.RUNNING:
            return
        if self.phase is Phase.NEW:
            raise EngineClosedError(
                "the engine is not started; use it inside `async with engine:` "
                "(or `async with SequentialExecutionEngine(...) as engine:`)"
            )
        fatal = self.fatal
        if fatal is not None:
            if self.fatal_model is None:
                cause = f"{type(fatal).__name__}: {fatal}"
                raise EngineClosedError(f"the engine stopped: {cause}") from fatal
            raise EngineClosedError(
                f"the engine stopped because {self.fatal_model!r} failed or was interrupted "
                f"({type(fatal).__name__}: {fatal}); pass continue_on_failure=True to go on "
                "after failures"
            ) from fatal
        raise EngineClosedError(
            f"the engine is {self.phase.value} and accepts no more models; "
            "start a new engine (carry budgets over with state_dict())"
        )

    def check_budget_locked(self, count: int) -> None:
        """:raises BudgetExhaustedError: if ``count`` more models do not fit."""
        limit = self.max_model_count
        if limit is not None and self.model_count + count > limit:
            left = limit - self.model_count
            raise BudgetExhaustedError(
                f"max_model_count={limit} would be exceeded: {count} model(s) "
                f"submitted, {left} left; nothing was queued (check budget_available())"
            )
        if self.max_duration is not None and self.spent_locked() >= self.max_duration:
            raise BudgetExhaustedError(
                f"max_duration={self.max_duration}s of execution time is spent "
                f"({self.spent_locked():.3f}s); nothing was queued"
            )

    def admit_locked(self, models: tuple[Model, ...]) -> tuple[list[Entry], list[Entry]]:
        """Give ids and count the submission; returns (every entry, the new ones)."""
        entries: list[Entry] = []
        new: list[Entry] = []
        known = self.entries
        for model in models:
            model._aionas_busy = True
            entry = known.get(id(model))
            if entry is None or entry.model is not model:
                entry = known[id(model)] = Entry(model, self.next_id)
                self.by_id[self.next_id] = entry
                model.model_id = self.next_id
                self.next_id += 1
                self.history.append(model)
                new.append(entry)
            entry.pending_ends += 1
            entries.append(entry)
        self.undelivered += len(models)
        self.model_count += len(models)
        self.submitted += len(models)
        return entries, new

    def unadmit_locked(self, entries: list[Entry], new: list[Entry]) -> None:
        """Undo :meth:`admit_locked` (a journal could not record the submission)."""
        for entry in entries:
            entry.model._aionas_busy = False
            entry.pending_ends -= 1
        dropped = {id(entry.model) for entry in new}
        if dropped:  # by identity, never ==
            self.history = [model for model in self.history if id(model) not in dropped]
        for entry in new:
            del self.entries[id(entry.model)]
            del self.by_id[entry.model_id]
            entry.model.model_id = None
        self.undelivered -= len(entries)
        self.model_count -= len(entries)
        self.submitted -= len(entries)

    def enqueue_locked(self, entries: list[Entry]) -> None:
        """Queue admitted models (or end them, if the engine stopped or they were cancelled)."""
        stopped = self.phase is not Phase.RUNNING
        queued = []
        for entry in entries:
            entry.committing = False
            if entry.cancel_when_committed:
                entry.cancel_when_committed = False
                self._end_locked(entry.model, entry.model_id, ModelStatus.Interrupted, "cancelled")
            elif stopped:
                self._end_locked(entry.model, entry.model_id, ModelStatus.Interrupted, "shutdown")
            else:
                entry.queued = True
                entry.on_loop = runs_on_loop(entry.model)
                queued.append(entry)
        if queued:
            self.queue.extend(queued)
            self._start_next_locked()

    # ------------------------------------------------------------------ running

    def _start_next_locked(self) -> None:
        """Start queued models while a lane is free and the outbox has room."""
        queue, in_flight, outbox = self.queue, self.in_flight, self.outbox
        while queue and len(in_flight) < self.lanes:
            if len(outbox) >= self.event_buffer_size:
                self._start_blocked = True  # the delivery task starts it once it has room
                return
            entry = queue.popleft()
            entry.queued = False
            model = entry.model
            if self.max_duration is not None and self.total_duration >= self.max_duration:
                self._end_locked(model, entry.model_id, ModelStatus.Interrupted, "budget")
                continue
            executor = self.loop_executor if entry.on_loop else self.executor
            run = entry.run = RunHandle(self, model, entry.model_id, executor, time.monotonic())
            if self.watch_deadlines:
                self._set_deadline(run)
            in_flight.append(run)
            model.status = _TRAINING
            metrics = model.metrics
            if metrics.intermediates or metrics._final is not None:
                metrics.clear()  # a retried model starts afresh
            model.error = None
            # _publish_locked, written out: this runs for every model.
            outbox.append(new_start(model, entry.model_id, self.seq, time.time()))
            self.seq += 1
            ready = self._events_ready
            if ready is not None:
                self._events_ready = None
                self._set_soon(ready)
            if self._state_changed is not None:
                self._wake_state_locked()
            try:
                self._call_executor_locked(False, run)
            except Exception as error:  # a broken executor fails the run, not the engine
                _logger.error("%r could not start %r", executor, model, exc_info=error)
                if not run.finished:
                    self._end_run_locked(run, ModelStatus.Failed, "failed", error)
                if not self.continue_on_failure:
                    self._stop_locked("shutdown", error, model)

    def _call_executor_locked(self, cancel: bool, run: RunHandle) -> None:
        """Call ``run.executor.start`` or ``.cancel`` (under the lock).

        An executor may report a run's end from inside these calls (a process it
        terminated at once, say): that end is recorded when the call returns, not
        by taking the lock again, which this thread already holds.
        """
        self._calling = threading.get_ident()
        try:
            if cancel:
                run.executor.cancel(run)
            else:
                run.executor.start(run)
        finally:
            self._calling = 0
            ended_any = bool(self._deferred)
            while self._deferred:
                ended, error = self._deferred.pop(0)
                failed = self._finish_locked(ended, error)
                if failed is not None:
                    _logger.error("model %r failed", ended.model, exc_info=failed)
            if cancel and ended_any:
                self._start_next_locked()  # (inside start(), the caller's loop goes on)

    def _set_deadline(self, run: RunHandle) -> None:
        if self.max_model_duration is not None:
            run.deadline = run.started + self.max_model_duration
        if self.max_duration is not None:
            budget_end = run.started + (self.max_duration - self.total_duration)
            if run.deadline is None or budget_end < run.deadline:
                run.deadline, run.deadline_reason = budget_end, "budget"

    def finish(self, run: RunHandle, error: BaseException | None) -> None:
        """An executor reports the end of ``execute()`` (any thread).

        The hot path of every model: ending it and starting the next share one
        hold of the lock, and the common outcome is written out inline.
        """
        if self._calling and self._calling == threading.get_ident():
            self._deferred.append((run, error))  # from inside start()/cancel(): see there
            return
        with self.lock:
            if run.finished:  # the engine gave up on it already
                return
            if error is None and run.cancel_reason is None:
                model = run.model
                run.finished = True
                self.by_id[run.model_id].run = None  # a finished run is not kept
                self.in_flight.remove(run)
                self.total_duration += time.monotonic() - run.started
                model._aionas_busy = False
                model.status = _TRAINED
                model.error = None
                self.ended[_TRAINED] += 1
                self._publish_locked(
                    new_end(model, run.model_id, _TRAINED, "completed", None, self.seq, time.time())
                )
                if self._state_changed is not None:
                    self._wake_state_locked()
                if self.queue:
                    self._start_next_locked()
                return
            failed = self._finish_locked(run, error)
            self._start_next_locked()
        if failed is not None:
            _logger.error("model %r failed", run.model, exc_info=failed)

    def _finish_locked(self, run: RunHandle, error: BaseException | None) -> BaseException | None:
        """Record a run's end (the general case); returns the error if it failed."""
        if run.finished:
            return None
        status, reason, error = classify(run, error)
        self._end_run_locked(run, status, reason, error)
        if status is ModelStatus.Failed:
            if not self.continue_on_failure:
                self._stop_locked("shutdown", error, run.model)
            return error
        if isinstance(error, KeyboardInterrupt | SystemExit):
            self._stop_locked("shutdown", error, run.model)
        return None

    def _end_run_locked(
        self, run: RunHandle, status: ModelStatus, reason: EndReason, error: BaseException | None
    ) -> None:
        run.finished = True
        self.by_id[run.model_id].run = None  # a finished run is not kept
        self.in_flight.remove(run)
        self.total_duration += time.monotonic() - run.started
        self._end_locked(run.model, run.model_id, status, reason, error)
        if self._state_changed is not None:
            self._wake_state_locked()

    def _end_locked(
        self,
        model: Model,
        model_id: int,
        status: ModelStatus,
        reason: EndReason,
        error: BaseException | None = None,
    ) -> None:
        model._aionas_busy = False
        model.status = status
        model.error = error if status is ModelStatus.Failed else None
        self.ended[status] += 1
        self._publish_locked(new_end(model, model_id, status, reason, error, self.seq, time.time()))

    # ------------------------------------------------------------------ reports (any thread)

    def report(self, run: RunHandle, metric: Any, final: bool) -> None:
        """Apply and publish one report of ``run``."""
        if self._calling and self._calling == threading.get_ident():
            raise RuntimeError(
                f"{run.executor!r} ran a model inside start(); start() must hand the run "
                "over (to a thread, a process, a task) and return without running it"
            )
        model = run.model
        metrics = model.metrics
        if type(metric) is float:  # what _check returns for a float, strict or not
            value = metric
        else:
            value = metrics._check(metric)  # ValueError for a non-number, before any wait
            if type(metric) is not int:
                if isinstance(metric, dict | list):
                    # The event keeps the value as reported, not a dict the training
                    # code may reuse or change after reporting it.
                    metric = copy.deepcopy(metric)
                check_storable(metric)  # the same with and without a journal
        with self.lock:
            while True:
                if run.finished:
                    self.dropped_reports += 1
                    run.check_cancelled()
                if run.cancel_reason is not None:
                    run.check_cancelled()
                if len(self.outbox) < self.event_buffer_size:
                    break
                if threading.get_ident() == self.loop_thread:
                    break  # the loop cannot wait for itself
                self._waiting += 1
                try:
                    self._cond.wait()
                finally:
                    self._waiting -= 1
            if final:
                metrics._final = value
                event = new_final(model, run.model_id, metric, self.seq, time.time())
            else:
                metrics.intermediates.append(value)
                event = new_intermediate(model, run.model_id, metric, self.seq, time.time())
            self.seq += 1  # _publish_locked, written out: this runs for every report
            self.outbox.append(event)
            ready = self._events_ready
            if ready is not None:
                self._events_ready = None
                self._set_soon(ready)

    def _publish_locked(self, event: ModelEvent) -> None:
        self.seq += 1
        self.outbox.append(event)
        ready = self._events_ready
        if ready is not None:
            self._events_ready = None
            self._set_soon(ready)

    # ------------------------------------------------------------------ the outbox (loop)

    def take_events(self) -> list[ModelEvent] | anyio.Event | None:
        """The next batch to deliver; else an event that is set when there may be one.

        None once nothing more can be published: the engine accepts nothing, no run
        is in flight or queued, and no submission is being committed.
        """
        with self.lock:
            batch = self.outbox
            if batch:  # decided under the lock: a report never lands in a taken batch
                self.outbox = []
                if self._waiting:
                    self._cond.notify_all()  # room for a waiting report
                if self._start_blocked:
                    self._start_blocked = False
                    self._start_next_locked()
                return batch
            if self.closing and not self.in_flight and not self.queue and not self.submitting:
                return None
            ready = self._events_ready = anyio.Event()
            return ready

    def wake_delivery_locked(self) -> None:
        ready = self._events_ready
        if ready is not None:
            self._events_ready = None
            self._set_soon(ready)

    # ------------------------------------------------------------------ stopping

    def _stop_locked(
        self,
        reason: EndReason | None,
        fatal: BaseException | None = None,
        fatal_model: Model | None = None,
    ) -> None:
        """The one stop path: accept nothing more, and with a reason, end everything.

        ``reason=None`` lets queued and running models finish (a normal exit); a
        reason ends the queued models now and asks the running ones to stop. The
        first fatal error is kept, to be raised when the engine's block exits.
        """
        if fatal is not None and self.fatal is None:
            self.fatal, self.fatal_model = fatal, fatal_model
        if self.phase is Phase.RUNNING:
            self.phase = Phase.STOPPING
        self.closing = True
        if reason is not None:
            self._end_queue_locked(reason)
            for run in list(self.in_flight):
                self._cancel_run_locked(run, reason)
        self.wake_delivery_locked()
        self._wake_state_locked()
        if self._waiting:
            self._cond.notify_all()

    def stop(
        self,
        reason: EndReason | None,
        fatal: BaseException | None = None,
        fatal_model: Model | None = None,
    ) -> None:
        with self.lock:
            self._stop_locked(reason, fatal, fatal_model)

    def _end_queue_locked(self, reason: EndReason) -> None:
        queue = self.queue
        while queue:
            entry = queue.popleft()
            entry.queued = False
            self._end_locked(entry.model, entry.model_id, ModelStatus.Interrupted, reason)
        self._wake_state_locked()

    def _cancel_run_locked(self, run: RunHandle, reason: EndReason) -> None:
        if run.cancel_reason is None and not run.finished:
            run.cancel_reason = reason
            run.cancel_at = time.monotonic()
            if self._waiting:
                self._cond.notify_all()  # a report waiting for room raises at once
            self._wake_state_locked()
            try:
                self._call_executor_locked(True, run)
            except Exception as error:
                _logger.error("%r could not cancel %r", run.executor, run.model, exc_info=error)

    def cancel(self, entry: Entry) -> CancelResult:
        """End a queued model, or ask its run to stop (loop)."""
        with self.lock:
            if entry.committing:  # it will end without starting once its submission is in
                entry.cancel_when_committed = True
                return CancelResult.Ended
            if entry.queued:
                self.queue.remove(entry)  # Entry compares by identity
                entry.queued = False
                self._end_locked(entry.model, entry.model_id, ModelStatus.Interrupted, "cancelled")
                self._wake_state_locked()
                return CancelResult.Ended
            run = entry.run
            if run is not None and not run.finished:
                self._cancel_run_locked(run, "cancelled")
                return CancelResult.Stopping
            return CancelResult.AlreadyEnded

    # ------------------------------------------------------------------ deadlines (loop)

    async def watch(self) -> None:
        """Enforce ``max_model_duration``, ``max_duration`` and ``cancel_grace``."""
        with anyio.CancelScope(shield=True):
            while True:
                with self.lock:
                    if self.closing and not self.in_flight and not self.queue:
                        return
                    changed = self._state_event_locked()
                    due: tuple[float, RunHandle] | None = None
                    for run in self.in_flight:
                        deadline = self._deadline_locked(run)
                        if deadline is not None and (due is None or deadline < due[0]):
                            due = (deadline, run)
                if due is None:
                    await changed.wait()
                    continue
                delay = due[0] - time.monotonic()
                if delay > 0:
                    with anyio.move_on_after(delay):
                        await changed.wait()
                    continue
                self._deadline_passed(due[1])

    def _deadline_locked(self, run: RunHandle) -> float | None:
        if run.finished:
            return None
        if run.cancel_reason is None:
            return run.deadline
        if self.cancel_grace is not None and run.cancel_at is not None and not run.kill_tried:
            return run.cancel_at + self.cancel_grace
        return None

    def _deadline_passed(self, run: RunHandle) -> None:
        with self.lock:
            if run.finished:
                return
            if run.cancel_reason is None:
                reason = run.deadline_reason
                self._cancel_run_locked(run, reason)
                if reason == "budget":
                    self._end_queue_locked("budget")
                return
            run.kill_tried = True
        self._kill(run)  # cancel_grace has passed

    def kill_stopping(self) -> int:
        """Force every run already asked to stop to end now, as if ``cancel_grace`` passed.

        Called on the loop. Each run whose executor can kill it (a thread is
        abandoned, a process terminated) ends ``Interrupted`` with the reason it
        was stopped for; returns how many could not be killed.
        """
        with self.lock:
            runs = [
                run
                for run in self.in_flight
                if not run.finished and run.cancel_reason is not None and not run.kill_tried
            ]
            for run in runs:
                run.kill_tried = True
        return sum(not self._kill(run) for run in runs)

    def _kill(self, run: RunHandle) -> bool:
        """Force a run that was asked to stop, if its executor can; whether it could."""
        if not run.executor.kill(run):
            self._wake_state()
            return False
        with self.lock:
            if run.finished:
                return True
            assert run.cancel_reason is not None
            self._end_run_locked(run, ModelStatus.Interrupted, run.cancel_reason, None)
            self._start_next_locked()
        return True

    def spent_locked(self) -> float:
        now = time.monotonic()
        return self.total_duration + sum(now - run.started for run in self.in_flight)

    # ------------------------------------------------------------------ waking the loop

    def _set_soon(self, event: anyio.Event) -> None:
        """Set a loop-side event from whichever thread we are on, without waiting."""
        if threading.get_ident() == self.loop_thread:
            event.set()
        else:
            assert self._call_soon is not None
            self._call_soon(event.set)

    def _wake_state_locked(self) -> None:
        changed = self._state_changed
        if changed is not None:
            self._state_changed = None
            self._set_soon(changed)

    def _wake_state(self) -> None:
        with self.lock:
            self._wake_state_locked()

    def _state_event_locked(self) -> anyio.Event:
        if self._state_changed is None:
            self._state_changed = anyio.Event()
        return self._state_changed

    def state_event(self) -> anyio.Event:
        """An event set at the next change of the queue or of the runs (loop)."""
        with self.lock:
            return self._state_event_locked()
