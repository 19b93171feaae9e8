"""The sequential engine: models run one at a time, off the loop, behind an async queue.

This module is the engine's public face, and where its parts meet: the
scheduler (:mod:`aionas._scheduler`: queue, budgets, deadlines, one stop path),
the executors (:mod:`aionas.executors`: where models run), the journal
(:class:`aionas.Journal`: history, above the core), and the dispatcher
(:mod:`aionas._dispatch`: callbacks and subscribers). The delivery task drains
the scheduler's outbox, has the journal commit each batch, then delivers it.

Everything here runs on the event loop; the state shared with executor threads
is the scheduler's, under its lock (see its table).
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, overload

import anyio

from ._bridge import current_loop_caller, protect_from_keyboard_interrupt
from ._checks import check_models, check_positive, check_seconds
from ._delivery import Delivery
from ._dispatch import EventCallback, EventDispatcher, OnFull, Replay, Subscription, in_dispatch
from ._resume import ModelFactory, ResumePolicy, plan_resume
from ._scheduler import CancelResult, Entry, Phase, Scheduler, runs_on_loop
from .engine import EngineStatistics, ExecutionEngine
from .events import ModelEvent, ModelEventType
from .exceptions import EngineClosedError, JournalError, ModelStateError
from .executors import Executor, LoopExecutor, ThreadExecutor
from .journal import Journal, params_json
from .model import Model
from .status import ModelStatus

__all__ = ["SequentialExecutionEngine"]

_logger = logging.getLogger("aionas.engine")

_T = TypeVar("_T")


class _Setting(Generic[_T]):
    """An engine setting, read from the scheduler that applies it: one source of truth.

    Fixed at construction (the scheduler applies it from then on), so read-only.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, engine: None, owner: type) -> _Setting[_T]: ...
    @overload
    def __get__(self, engine: SequentialExecutionEngine, owner: type) -> _T: ...
    def __get__(self, engine: SequentialExecutionEngine | None, owner: type) -> Any:
        return self if engine is None else getattr(engine._core, self.name)

    def __set__(self, engine: SequentialExecutionEngine, value: _T) -> None:
        raise AttributeError(
            f"{self.name} is fixed when the engine is created; pass it to "
            "SequentialExecutionEngine(...)"
        )


class SequentialExecutionEngine(ExecutionEngine):
    """Runs models one at a time, in submission order, each off the event loop.

    >>> import anyio, aionas
    >>> async def main() -> None:
    ...     async with aionas.SequentialExecutionEngine(max_model_count=3) as engine:
    ...         models = [aionas.FunctionModel(lambda p: p["x"] ** 2, {"x": x}) for x in (1, 2, 3)]
    ...         await engine.submit_models(*models)
    ...         await engine.wait_models()
    ...         print([m.metric for m in engine.list_models()])
    >>> anyio.run(main)
    [1.0, 4.0, 9.0]

    Where models run is the ``executor``'s business (default: a
    :class:`~aionas.ThreadExecutor`, one long-lived worker thread); models whose
    ``execute`` is ``async def`` are awaited on the loop.

    Budgets are enforced: ``max_model_count`` caps the submissions (a submit that
    would pass it raises :class:`~aionas.BudgetExhaustedError` and queues nothing);
    ``max_duration`` caps the total execution seconds (when it is spent, the
    running model is interrupted and the queued ones end, reason ``'budget'``);
    ``max_model_duration`` caps each run (reason ``'timeout'``).

    ``continue_on_failure=False`` (the default, as in NNI) stops the engine at the
    first failed model, and its exception is raised when the ``async with`` block
    exits. ``cancel_grace`` (seconds) gives up on a run that has not noticed a stop
    request after that long (a thread is abandoned); with None the engine waits
    for it, so two models never run at once. ``max_queue_size`` makes
    ``submit_models`` wait for room. ``event_buffer_size`` bounds the events held
    between the models and the loop, and is the default buffer of each
    subscriber. ``subscriber_grace`` is how long, once the engine is exiting, a
    subscriber that stopped reading may hold delivery up before it is closed.
    ``journal`` keeps every model and event (see :class:`~aionas.SqliteJournal`).
    """

    max_model_count = _Setting[int | None]()
    max_duration = _Setting[float | None]()
    max_model_duration = _Setting[float | None]()
    continue_on_failure = _Setting[bool]()
    cancel_grace = _Setting[float | None]()
    event_buffer_size = _Setting[int]()

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
        journal: Journal | None = None,
        resume: ResumePolicy = "interrupt",
        model_factory: ModelFactory | None = None,
        executor: Executor | None = None,
        subscriber_grace: float = 5.0,
    ) -> None:
        if journal is not None and not isinstance(journal, Journal):
            raise TypeError(
                f"journal must be an aionas.Journal (e.g. aionas.SqliteJournal) or None, "
                f"got {journal!r}"
            )
        if executor is not None and not isinstance(executor, Executor):
            raise TypeError(
                f"executor must be an aionas.Executor (e.g. aionas.ThreadExecutor()) or None, "
                f"got {executor!r}"
            )
        if resume not in ("interrupt", "requeue"):
            raise ValueError(f"resume must be 'interrupt' or 'requeue', got {resume!r}")
        if resume == "requeue" and model_factory is None:
            raise ValueError(
                "resume='requeue' runs unfinished models again, so it needs "
                "model_factory=lambda params: YourModel(params) to rebuild them"
            )
        if model_factory is not None and not callable(model_factory):
            raise TypeError(f"model_factory must be callable, got {model_factory!r}")
        check_positive("max_model_count", max_model_count, integer=True)
        check_positive("max_duration", max_duration)
        check_positive("max_model_duration", max_model_duration)
        check_positive("max_queue_size", max_queue_size, integer=True)
        check_positive("event_buffer_size", event_buffer_size, integer=True)
        check_seconds("cancel_grace", cancel_grace)
        check_seconds("subscriber_grace", subscriber_grace, optional=False)
        self.max_queue_size = max_queue_size
        self.journal = journal
        self.resume = resume
        self.model_factory = model_factory
        self.executor = executor if executor is not None else ThreadExecutor()
        # Only an executor that overrides check() pays for it, per model.
        self._executor_checks = type(self.executor).check is not Executor.check
        self.subscriber_grace = subscriber_grace
        self._core = Scheduler(
            executor=self.executor,
            loop_executor=LoopExecutor(),
            max_model_count=max_model_count,
            max_duration=max_duration,
            max_model_duration=max_model_duration,
            continue_on_failure=continue_on_failure,
            cancel_grace=cancel_grace,
            event_buffer_size=event_buffer_size,
        )
        self._dispatcher = EventDispatcher()
        self._delivery = Delivery(self._core, self._dispatcher, journal)
        self._task_group: anyio.abc.TaskGroup | None = None
        self._journal_open = False  # from the start until the block's exit closes it
        self._opened: anyio.Event | None = None  # set once __aenter__ has ended, either way
        self._stop_on_open = False  # shutdown() was called while __aenter__ ran

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        core = self._core
        if core.phase is not Phase.NEW:
            raise EngineClosedError(
                f"this engine is {core.phase.value}; an engine runs once, so create a new "
                "SequentialExecutionEngine (carry budgets over with state_dict())"
            )
        if self._opened is not None:
            raise EngineClosedError("this engine is already starting; an engine runs once")
        self._opened = anyio.Event()
        try:
            return await self._open()
        finally:
            self._opened.set()

    async def _open(self) -> Self:
        core = self._core
        plan = None
        if self.journal is not None:
            plan = await self._open_journal(self.journal)
        core.attach(current_loop_caller())
        protect_from_keyboard_interrupt(
            Delivery.run,
            Scheduler.watch,
            SequentialExecutionEngine.submit_models,
            SequentialExecutionEngine._journal_submissions,
        )
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        opened: list[Executor] = []
        try:
            for executor in (self.executor, core.loop_executor):
                opened.append(executor)  # closed below even if its open() is cut short
                await executor.open(task_group)
        except BaseException:
            # Failed or cancelled while starting: undo what was started and leave the
            # engine closed (__aexit__ never runs when __aenter__ raises).
            with anyio.CancelScope(shield=True):
                for executor in opened:
                    await executor.aclose()
                if self.journal is not None:
                    await anyio.to_thread.run_sync(self.journal.close)
            await task_group.__aexit__(None, None, None)
            core.phase = Phase.CLOSED
            raise
        core.phase = Phase.RUNNING
        self._journal_open = self.journal is not None
        task_group.start_soon(self._delivery.run, name="aionas delivery")
        if core.watch_deadlines:
            task_group.start_soon(core.watch, name="aionas deadlines")
        if self._stop_on_open:  # a shutdown() came while opening: queue nothing
            core.stop("shutdown")
        if plan is not None:
            with core.lock:
                for event in plan.ends:  # committed already; delivered like any event
                    core.ended[ModelStatus.Interrupted] += 1
                    core.outbox.append(event)
                core.enqueue_locked(plan.requeue)
                core.wake_delivery_locked()
        return self

    async def _open_journal(self, journal: Journal) -> Any:
        """Open the journal, take over its history, and repair what a crash left.

        Every model a crash left queued or running ends ``Interrupted``/``'crash'``
        in the journal before anything else happens; with ``resume="requeue"`` it
        is then submitted again, and that submission is committed before it is
        queued. So a crash at any moment leaves nothing ``training`` for ever.
        """
        core = self._core
        with anyio.CancelScope(shield=True):  # once open, it is closed below if need be
            restored = await anyio.to_thread.run_sync(journal.open)
        try:
            plan = plan_resume(restored, self.resume, self.model_factory, journal.experiment)
            for entry in plan.entries:
                core.entries[id(entry.model)] = entry
                core.by_id[entry.model_id] = entry
                core.history.append(entry.model)
            core.model_count = restored.model_count
            core.total_duration = restored.total_duration
            core.first_seq = restored.next_seq  # the crash ends below are this engine's
            core.seq = plan.next_seq
            core.next_id = restored.next_id
            self._delivery.committed_seq = restored.next_seq - 1
            if plan.all_ends:
                await anyio.to_thread.run_sync(
                    journal.record_events, plan.all_ends, core.total_duration
                )
                self._delivery.committed_seq = plan.all_ends[-1].seq
            if plan.resubmitted:
                await anyio.to_thread.run_sync(
                    journal.record_submissions, [], plan.resubmitted, core.model_count
                )
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(journal.close)
            raise
        for entry in plan.requeue:
            entry.pending_ends += 1
            core.undelivered += 1
        core.submitted += len(plan.requeue)  # this engine submits them again
        for event in plan.ends:
            core.by_id[event.model_id or 0].pending_ends += 1  # delivered live, like an end
            core.undelivered += 1
        return plan

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        core = self._core
        # From here on, a subscriber that stopped reading cannot hold the exit up.
        self._dispatcher.begin_exit(self.subscriber_grace)
        raised = exc
        if exc is None:
            try:
                await self._delivery.wait_settled(None)
            except BaseException as error:  # cancelled (or interrupted) while waiting
                raised = error
        with anyio.CancelScope(shield=True):
            core.stop(None if raised is None else "shutdown")
            interrupt = await self._through_interrupts(self._delivery.done.wait)
            interrupt = await self._through_interrupts(self._close_executors) or interrupt
            if self.journal is not None:
                self._journal_open = False
                close = functools.partial(anyio.to_thread.run_sync, self.journal.close)
                interrupt = await self._through_interrupts(close) or interrupt
        # Every task has finished (they are shielded and stopped above), so this only
        # joins them; it must run outside the shield to exit the right cancel scope.
        assert self._task_group is not None
        await self._task_group.__aexit__(None, None, None)
        core.phase = Phase.CLOSED
        if interrupt is not None:
            raise interrupt
        fatal = core.fatal
        if fatal is not None and (
            raised is None
            or isinstance(
                raised, EngineClosedError | JournalError | anyio.get_cancelled_exc_class()
            )
        ):
            raise fatal
        if raised is not exc and raised is not None:
            raise raised
        return None

    async def _through_interrupts(
        self, step: Callable[[], Awaitable[object]]
    ) -> BaseException | None:
        """Run a step of the exit to its end, even through Ctrl+C or a native cancel.

        The exit is shielded from anyio's cancellation, but not from a
        ``KeyboardInterrupt`` or from asyncio's own ``task.cancel()`` (what
        ``asyncio.timeout`` and a first Ctrl+C do). Either meanwhile shuts the
        engine down (if it was not already) and is returned, to be raised once the
        block has been left cleanly. Every step may be run again.
        """
        caught: BaseException | None = None
        while True:
            try:
                await step()
            except (KeyboardInterrupt, anyio.get_cancelled_exc_class()) as error:
                caught = caught or error
                self._core.stop("shutdown")
            else:
                return caught

    async def _close_executors(self) -> None:
        await self.executor.aclose()
        await self._core.loop_executor.aclose()

    async def shutdown(self, *, force: bool = False) -> None:
        """Stop accepting models, interrupt the running one, end the queued ones.

        Both end ``Interrupted`` with reason ``'shutdown'``. Returns once no model
        runs (with ``cancel_grace=None``, once the running model has noticed).
        Their end events are still delivered before the ``async with`` block exits.
        Calling it again, or on an engine never started, does nothing more; called
        while the engine is starting, it stops it as soon as it has started (models
        a resume would run again end ``Interrupted`` without starting).

        With ``force=True`` it does not wait for a running model to notice: every
        run already asked to stop is given up at once, as if ``cancel_grace`` had
        passed (its executor kills it: the thread executor abandons the thread,
        which runs on until ``execute()`` returns, its reports ignored), and ends
        ``Interrupted`` now. Call it again with ``force=True`` while an earlier
        ``shutdown()`` waits, to stop waiting (what a second Ctrl+C does in the
        ``aionas`` command).
        """
        core = self._core
        if core.phase is Phase.NEW:
            if self._opened is None:  # never started: it never will
                core.phase = Phase.CLOSED
                return
            self._stop_on_open = True  # starting: stop as soon as it has opened
            await self._opened.wait()
        if core.phase is Phase.CLOSED:
            return
        core.stop("shutdown")
        if force:
            core.kill_stopping()
        self._dispatcher.begin_exit(self.subscriber_grace)
        while True:
            with core.lock:
                if not core.in_flight:
                    return
                changed = core._state_event_locked()
            await changed.wait()

    # ------------------------------------------------------------------ submitting

    async def submit_models(self, *models: Model) -> None:
        """Queue ``models`` to run in this order; returns once queued, not trained.

        All models are checked before any is queued: all or nothing. With
        ``max_queue_size``, waits for room (a batch larger than the bound is queued
        whole once the queue is empty); a callback submitting never waits. With a
        journal, returns once the submission is committed.

        :raises TypeError: for an object that is not a :class:`~aionas.Model`.
        :raises ModelStateError: for a model that is not frozen, already completed
            (set its status to ``ModelStatus.Retrying`` to run it again), or
            already queued or running.
        :raises BudgetExhaustedError: if ``max_model_count`` would be exceeded or
            ``max_duration`` is spent.
        :raises EngineClosedError: outside ``async with``, or after the engine stopped.
        :raises JournalError: if the journal could not record it: nothing is queued,
            and the engine stops (as for any failed journal write).
        """
        self._check_loop_thread("submit_models")
        core = self._core
        with core.lock:
            core.check_accepting_locked()
        check_models(models)
        if not models:
            return
        if self._executor_checks:
            for model in models:
                if not runs_on_loop(model):
                    self.executor.check(model)
        if self.max_queue_size is not None and not in_dispatch.get():
            while True:
                with core.lock:
                    core.check_accepting_locked()
                    core.check_budget_locked(len(models))
                    queued = len(core.queue)
                    if not queued or queued + len(models) <= self.max_queue_size:
                        break
                    changed = core._state_event_locked()
                await changed.wait()
                check_models(models)  # a callback may have queued one meanwhile
        params = [params_json(model) for model in models] if self.journal is not None else []
        with core.lock:
            core.check_accepting_locked()  # in the same hold as the queueing: no slipping in
            core.check_budget_locked(len(models))
            entries, new = core.admit_locked(models)
            if self.journal is None:
                core.enqueue_locked(entries)
                return
            core.submitting += 1
            for entry in entries:
                entry.committing = True
            count = core.model_count
        await self._journal_submissions(entries, new, params, count)

    async def _journal_submissions(
        self, entries: list[Entry], new: list[Entry], params: list[str], count: int
    ) -> None:
        """Commit the submissions, then queue the models: a crash never forgets one."""
        assert self.journal is not None
        core = self._core
        now = time.time()
        text = {id(entry): p for entry, p in zip(entries, params, strict=True)}
        rows = [(e.model_id, text[id(e)], type(e.model).__qualname__, now) for e in new]
        fresh = {id(entry) for entry in new}
        resubmitted = [entry.model_id for entry in entries if id(entry) not in fresh]
        with anyio.CancelScope(shield=True):  # once admitted, the models are queued or ended
            try:
                await anyio.to_thread.run_sync(
                    self.journal.record_submissions, rows, resubmitted, count
                )
            except Exception as error:
                failure = JournalError(
                    f"could not record the submission in {self.journal!r}: "
                    f"{type(error).__name__}: {error}; nothing was queued, and the engine "
                    "stopped (nothing more can be made durable)"
                )
                with core.lock:
                    core.submitting -= 1
                    core.unadmit_locked(entries, new)
                    core._stop_locked("shutdown", failure)
                raise failure from error
            except BaseException:
                # asyncio's own task.cancel() and trio's Ctrl+C get through a shield: the
                # commit still finishes in its thread, so the models are queued (or ended)
                # all the same, and the interruption goes on.
                self._queue_committed(entries)
                raise
            self._queue_committed(entries)

    def _queue_committed(self, entries: list[Entry]) -> None:
        core = self._core
        with core.lock:
            core.submitting -= 1
            core.enqueue_locked(entries)  # ends them if the engine stopped or they were cancelled
            core.wake_delivery_locked()

    def cancel_model(self, model: Model) -> CancelResult:
        """End a queued model now, or ask the running one to stop; say which.

        A queued model ends ``Interrupted`` (reason ``'cancelled'``) at once, without
        starting: :attr:`CancelResult.Ended`. A running model is asked to stop:
        its next ``report_*`` or ``check_cancelled()`` raises
        :class:`~aionas.ModelInterrupted` (an ``async def execute`` is cancelled at
        its next await), and it ends ``Interrupted``, reason ``'cancelled'``, even
        if ``execute()`` returns normally meanwhile: :attr:`CancelResult.Stopping`.
        A model whose end was already recorded keeps its status:
        :attr:`CancelResult.AlreadyEnded`. Models are found by identity.

        :raises ModelStateError: if this engine was never given the model.
        """
        self._check_loop_thread("cancel_model")
        return self._core.cancel(self._entry(model))

    # ------------------------------------------------------------------ waiting and queries

    async def wait_models(self, *models: Model, timeout: float | None = None) -> None:
        """Wait until the models (every submitted one when none are given) have ended.

        Returns once each has completed and its ``TrainingEndEvent`` has been
        delivered to every callback and subscriber, so state that a callback keeps
        is up to date. Event-driven: no polling. Models submitted meanwhile (by a
        callback, say) are waited for too when none are given.

        :raises TimeoutError: if ``timeout`` seconds pass first.
        :raises JournalError: if the journal failed, so the end events can never
            be delivered.
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
            await self._delivery.wait_settled(entries or None)
        else:
            with anyio.fail_after(timeout):
                await self._delivery.wait_settled(entries or None)

    def _entry(self, model: Model) -> Entry:
        if not isinstance(model, Model):
            raise TypeError(f"expected an aionas.Model, got {type(model).__name__} {model!r}")
        entry = self._core.entries.get(id(model))
        if entry is None or entry.model is not model:
            raise ModelStateError(f"{model!r} was never submitted to this engine")
        return entry

    def get_model(self, model_id: int) -> Model:
        """The model this engine (or its journal's history) knows by ``model_id``.

        :raises KeyError: for an id it does not know.
        """
        entry = self._core.by_id.get(model_id) if isinstance(model_id, int) else None
        if entry is None:
            raise KeyError(model_id)
        return entry.model

    def list_models(self, status: ModelStatus | str | None = None) -> list[Model]:
        """A new list of the submitted models in submission order (of one status if given).

        :raises ValueError: for an unknown status string.
        """
        if status is None:
            return list(self._core.history)
        wanted = ModelStatus(status)
        return [model for model in self._core.history if model.status == wanted]

    def budget_available(self) -> bool:
        """True while another model fits in ``max_model_count`` and ``max_duration``."""
        core = self._core
        with core.lock:
            if self.max_model_count is not None and core.model_count >= self.max_model_count:
                return False
            return self.max_duration is None or core.spent_locked() < self.max_duration

    def idle_worker_available(self) -> bool:
        """True when nothing runs and nothing is queued."""
        core = self._core
        with core.lock:
            return not core.in_flight and not core.queue

    def statistics(self) -> EngineStatistics:
        """A snapshot of the engine's counters.

        Every counter counts this engine's life (since ``async with``), except the
        budget counters ``model_count`` and ``total_duration``, which carry over
        from a resumed journal and from :meth:`load_state_dict`.
        """
        core = self._core
        with core.lock:
            return EngineStatistics(
                submitted=core.submitted,
                queued=len(core.queue),
                running=len(core.in_flight),
                trained=core.ended[ModelStatus.Trained],
                failed=core.ended[ModelStatus.Failed],
                interrupted=core.ended[ModelStatus.Interrupted],
                total_duration=core.spent_locked(),
                events_published=core.seq - core.first_seq,
                events_delivered=self._dispatcher.delivered,
                callback_errors=self._dispatcher.callback_errors,
                dropped_reports=core.dropped_reports,
                abandoned_threads=getattr(self.executor, "abandoned_threads", 0),
                journaled_events=self._delivery.journaled,
                model_count=core.model_count,
                subscribers_closed=self._dispatcher.subscribers_closed,
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
        self,
        *event_types: ModelEventType | str,
        buffer_size: int | None = None,
        on_full: OnFull = "wait",
        since_seq: int | None = None,
    ) -> AbstractAsyncContextManager[Subscription]:
        """An async context manager giving an async iterator of events.

        ``event_types`` selects the types (all when none given). The subscriber has
        its own buffer of ``buffer_size`` events (default ``event_buffer_size``).
        When it is full, ``on_full="wait"`` (the default) makes delivery wait for
        room (lossless backpressure: a slow subscriber slows training down), and
        ``on_full="close"`` never slows the engine: the subscription is detached
        and, after what was buffered, raises :class:`~aionas.SlowSubscriberError`
        (naming the last ``seq`` it received). While the engine exits, a
        ``"wait"`` subscriber that does not read for ``subscriber_grace`` seconds
        is closed the same way. Iteration ends once the engine has stopped and
        delivered everything.

        ``since_seq=N`` (needs a journal) first replays every journaled event with
        ``seq > N``, then continues with live events: no gap, no duplicate.

        >>> async def watch(engine):  # doctest: +SKIP
        ...     async with engine.subscribe("intermediate_metric") as events:
        ...         async for event in events:
        ...             print(event.model.params, event.metric)

        :raises ValueError: for an unknown event type, a bad ``buffer_size`` or
            ``on_full``, or ``since_seq`` without a journal.
        """
        kinds = [ModelEventType.parse(kind) for kind in event_types]  # fail here, not later
        size = self.event_buffer_size if buffer_size is None else buffer_size
        since = None
        if since_seq is not None:
            if isinstance(since_seq, bool) or not isinstance(since_seq, int):
                raise TypeError(f"since_seq must be an int (an event's seq), got {since_seq!r}")
            if self.journal is None:
                raise ValueError(
                    "since_seq replays events from the journal, and this engine has none; "
                    "pass journal=aionas.SqliteJournal(path) to the engine"
                )
            journal = self.journal

            def since() -> tuple[tuple[Replay, int, int] | None, int]:
                if not self._journal_open:
                    raise EngineClosedError(
                        "subscribe(since_seq=...) reads the engine's journal, which is open "
                        "only inside `async with engine:`; read a closed journal with "
                        "aionas.load_history"
                    )
                through = self._delivery.committed_seq  # everything up to it is in the journal
                if since_seq >= through:
                    return None, since_seq
                return (read, since_seq, through), through

            async def read(after: int, through: int) -> list[ModelEvent]:
                models = {model_id: entry.model for model_id, entry in self._core.by_id.items()}
                return await anyio.to_thread.run_sync(journal.read_events, after, through, models)

        return self._dispatcher.subscribe(kinds, size, on_full, since)

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """The budget counters: ``{'model_count': int, 'total_duration': float}``."""
        core = self._core
        with core.lock:
            return {"model_count": core.model_count, "total_duration": core.spent_locked()}

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
        core = self._core
        with core.lock:
            core.model_count = count
            core.total_duration = float(duration)

    def _check_loop_thread(self, name: str) -> None:
        loop_thread = self._core.loop_thread
        if loop_thread and threading.get_ident() != loop_thread:
            raise RuntimeError(
                f"{name}() must be called from the event loop that runs the engine; "
                f"from a worker thread use anyio.from_thread.run(engine.{name}, ...)"
            )
