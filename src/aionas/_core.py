"""The engine's core: its thread-shared state, and the worker thread that runs models.

How it works. One long-lived worker thread takes queued models in order and runs
them back to back. Everything it reports goes into a lock-protected *outbox*; a
delivery task on the event loop (in :mod:`aionas.sequential`) drains the outbox in
batches and hands each event to the callbacks and subscribers. The worker wakes
the loop (without waiting for it) only when the delivery task is idle, so a
report costs a lock and an append, never a loop round trip. The outbox is
bounded (``event_buffer_size``): while it is full, the worker's next report
waits, so a slow subscriber slows training down instead of losing events or
growing memory without bound.

This module also stops models (cancellation, shutdown, budgets) and enforces the
deadlines (``max_model_duration``, ``max_duration``, ``cancel_grace``).
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import anyio

from ._context import current_run
from ._dispatch import EventDispatcher
from ._journaling import check_metric_json
from ._run import Outcome, Run, classify
from .events import EndReason, ModelEvent, new_end, new_final, new_intermediate, new_start
from .model import Model
from .status import ModelStatus

if TYPE_CHECKING:
    from ._bridge import LoopCaller
    from .journal import SqliteJournal

__all__ = ["EngineCore", "Entry", "Phase"]

_logger = logging.getLogger("aionas.engine")


class Phase(Enum):
    """Where an engine is in its one life."""

    NEW = "new"  # not started yet
    RUNNING = "running"  # inside ``async with``, accepting models
    STOPPING = "stopping"  # stopped accepting models (shutdown, failure); still delivering
    CLOSED = "closed"  # the ``async with`` block has been left


@dataclass(eq=False, slots=True)
class Entry:
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


class EngineCore:
    """State shared by the event loop and the worker thread, and the worker itself.

    Everything the worker thread touches is guarded by ``_lock``; the loop never
    waits on ``_cond``, only worker threads do.
    """

    def __init__(
        self,
        *,
        max_duration: float | None,
        max_model_duration: float | None,
        continue_on_failure: bool,
        cancel_grace: float | None,
        event_buffer_size: int,
        journal: SqliteJournal | None,
    ) -> None:
        self.max_duration = max_duration
        self.max_model_duration = max_model_duration
        self.continue_on_failure = continue_on_failure
        self.cancel_grace = cancel_grace
        self.event_buffer_size = event_buffer_size
        self.journal = journal
        self._phase = Phase.NEW
        # Everything below that the worker thread touches is guarded by this.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # worker threads wait on it, never the loop
        self._waiting = 0  # threads in self._cond.wait(): notify only when someone waits
        self._queue: deque[Model] = deque()
        self._running: Run | None = None
        self._history: list[Model] = []
        self._entries: dict[int, Entry] = {}
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
        if self._phase is Phase.RUNNING:
            self._phase = Phase.STOPPING
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

    def _spent_locked(self) -> float:
        running = self._running
        extra = 0.0 if running is None else time.monotonic() - running.started
        return self._total_duration + extra

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
