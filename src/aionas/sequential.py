"""The sequential engine: models run one at a time, in a worker thread, off the loop.

This module is the engine's public face: starting and stopping, submitting,
delivering events to callbacks and subscribers (after the journal has committed
them), waiting, and queries. The worker thread and the state it shares with the
loop live in :mod:`aionas._core`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Self

import anyio

from ._bridge import current_loop_caller, protect_from_keyboard_interrupt
from ._core import EngineCore, Entry, Phase
from ._dispatch import EventCallback, Subscription, in_dispatch
from ._journaling import (
    ModelFactory,
    Restored,
    ResumePolicy,
    params_json,
    rebuild,
    to_requeue,
)
from .engine import EngineStatistics, ExecutionEngine
from .events import (
    ModelEvent,
    ModelEventType,
)
from .exceptions import BudgetExhaustedError, EngineClosedError, JournalError, ModelStateError
from .history import ModelRecord
from .journal import SqliteJournal
from .model import Model
from .status import ModelStatus

__all__ = ["SequentialExecutionEngine"]

_logger = logging.getLogger("aionas.engine")


#: Statuses a model may be submitted with (others get a precise error).
_READY = frozenset({ModelStatus.Frozen, ModelStatus.Retrying})


def _positive(name: str, value: float | None, *, integer: bool = False) -> None:
    if value is None:
        return
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        need = "a positive int" if integer else "a positive number of seconds"
        raise TypeError(f"{name} must be {need} or None, got {value!r}")
    if not value > 0 or (not integer and not math.isfinite(value)):
        raise ValueError(f"{name} must be > 0 (use None for no limit), got {value!r}")


class SequentialExecutionEngine(EngineCore, ExecutionEngine):
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
        super().__init__(
            max_duration=max_duration,
            max_model_duration=max_model_duration,
            continue_on_failure=continue_on_failure,
            cancel_grace=cancel_grace,
            event_buffer_size=event_buffer_size,
            journal=journal,
        )
        self.max_model_count = max_model_count
        self.max_queue_size = max_queue_size
        self.resume = resume
        self.model_factory = model_factory

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        if self._phase is not Phase.NEW:
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
        self._phase = Phase.RUNNING
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
            self._entries[id(model)] = Entry(model, row.model_id)
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
                if self._phase is Phase.RUNNING:
                    self._phase = Phase.STOPPING
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
        self._phase = Phase.CLOSED
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

    async def shutdown(self) -> None:
        """Stop accepting models, interrupt the running one, end the queued ones.

        Both end ``Interrupted`` with reason ``'shutdown'``. Returns once the worker
        is idle (with ``cancel_grace=None``, once the running model has noticed).
        Their end events are still delivered before the ``async with`` block exits.
        Calling it again, or on an engine never started, does nothing more.
        """
        if self._phase is Phase.NEW:
            self._phase = Phase.CLOSED
            return
        if self._phase is Phase.CLOSED:
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
        new: list[Entry] = []
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
                    entry = entries[id(model)] = Entry(model, self._next_id)
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
        self, models: tuple[Model, ...], params: list[str], new: list[Entry], count: int
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
                if self._phase is Phase.RUNNING:
                    self._queue.extend(models)
                    self._notify_locked()
                else:  # the engine stopped while we were writing
                    for model in models:
                        self._end_unstarted_locked(model, "shutdown")

    def _unreserve(self, models: tuple[Model, ...], new: list[Entry]) -> None:
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
        if self._phase is Phase.RUNNING:
            return
        if self._phase is Phase.NEW:
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

    async def _wait_settled(self, entries: list[Entry] | None) -> None:
        while True:
            if entries is None:
                if self._undelivered == 0:
                    return
            elif all(entry.pending_ends == 0 for entry in entries):
                return
            if self._delivered is None:
                self._delivered = anyio.Event()
            await self._delivered.wait()

    def _entry(self, model: Model) -> Entry:
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
