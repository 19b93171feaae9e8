"""The executor seam: where a model runs, and the handle it runs through.

An :class:`Executor` runs one model at a time per run handed to it, to its end,
and reports through the :class:`RunHandle` it was given: each metric
(:meth:`RunHandle.report`), and the end (:meth:`RunHandle.finish`). The engine
(its scheduler) decides what runs when; the executor decides only where. The
engine never reaches into an executor beyond the methods below, so a thread, a
process or a cluster can stand behind the same engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from .._context import current_run
from ..events import EndReason
from ..exceptions import ModelInterrupted

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from ..model import Model

__all__ = ["Executor", "RunHandle", "bind_run"]


class _RunOwner(Protocol):
    """What a run handle reports to (the engine's scheduler)."""

    def report(self, run: RunHandle, metric: Any, final: bool) -> None: ...

    def finish(self, run: RunHandle, error: BaseException | None) -> None: ...


class RunHandle:
    """One run of one model, as an executor sees it.

    Thread-safe: every method may be called from any thread. What the engine sets
    (``cancel_reason``, ``deadline``) is read without a lock; a change becomes
    visible at the next read.

    - :meth:`report` publishes a metric; it raises :class:`~aionas.ModelInterrupted`
      once the run has been asked to stop (or has ended), and may wait while
      every event buffer is full (lossless backpressure), except on the event loop.
    - :meth:`finish` tells the engine that ``execute()`` returned (``error=None``)
      or raised ``error``. The engine decides the model's status; a run asked to
      stop before its end was recorded ends ``Interrupted``. Calls after the first
      (or after the engine ended the run itself) are ignored.
    """

    __slots__ = (
        "_owner",
        "cancel_at",
        "cancel_reason",
        "deadline",
        "deadline_reason",
        "executor",
        "finished",
        "kill_tried",
        "model",
        "model_id",
        "started",
    )

    def __init__(
        self, owner: _RunOwner, model: Model, model_id: int, executor: Executor, started: float
    ) -> None:
        self._owner = owner
        #: The model to run, and the id the engine gave it.
        self.model = model
        self.model_id = model_id
        #: The executor the run was handed to.
        self.executor = executor
        #: When the run started (``time.monotonic()``).
        self.started = started
        #: When the run must stop (``time.monotonic()``), or None; and why it would.
        self.deadline: float | None = None
        self.deadline_reason: EndReason = "timeout"
        #: Why the run was asked to stop, once it was (None before).
        self.cancel_reason: EndReason | None = None
        self.cancel_at: float | None = None
        #: True once the run's end is recorded; nothing it reports is accepted after.
        self.finished = False
        self.kill_tried = False

    @property
    def cancel_requested(self) -> bool:
        """True once the run has been asked to stop (or has ended)."""
        return self.cancel_reason is not None or self.finished

    def report(self, metric: Any, *, final: bool = False) -> None:
        """Publish an intermediate metric, or the final one with ``final=True``.

        :raises ValueError: for a metric that is not a number or a dict with ``'default'``.
        :raises TypeError: for a dict metric that JSON cannot hold.
        :raises ModelInterrupted: once the run has been asked to stop.
        """
        self._owner.report(self, metric, final)

    def report_intermediate(self, metric: Any) -> None:
        self._owner.report(self, metric, False)

    def report_final(self, metric: Any) -> None:
        self._owner.report(self, metric, True)

    def check_cancelled(self) -> None:
        """:raises ModelInterrupted: if the run has been asked to stop or has ended."""
        if self.finished:
            raise ModelInterrupted("this model's run has already ended; stop its work")
        if self.cancel_reason is not None:
            raise ModelInterrupted(self.cancel_reason)

    def finish(self, error: BaseException | None = None) -> None:
        """Record the end of ``execute()``: returned (None) or raised ``error``."""
        self._owner.finish(self, error)

    def __repr__(self) -> str:
        return f"<RunHandle model_id={self.model_id} of {self.model!r}>"


@contextmanager
def bind_run(run: RunHandle) -> Iterator[None]:
    """Bind the trial API (``aionas.report_*``) to ``run`` in this context.

    Executors wrap ``model.execute()`` in it; the binding is per context, never
    process-global, so code of one run cannot report into another.
    """
    token = current_run.set(run)
    try:
        yield
    finally:
        current_run.reset(token)


class Executor(ABC):
    """Where models run: the engine's one extension point for it.

    Like a ``concurrent.futures`` executor or an httpx transport, small on purpose.
    The engine calls, in this order: :meth:`open` once (on the event loop), then
    :meth:`check` for each model submitted (if overridden), :meth:`start` for each
    run (never more than :attr:`capacity` unfinished runs at once), :meth:`cancel`
    and :meth:`kill` as needed, and :meth:`aclose` once, after every run it started
    has finished. An executor serves one engine, once.

    Contract of :meth:`start`: it must not block, may be called from any thread
    (the loop, or a thread of this executor calling :meth:`RunHandle.finish`), and
    the executor must eventually call ``run.finish(...)`` exactly once for each run
    it was given (unless the run was killed). Everything the model reports goes
    through ``run.report(...)``; executors bind the trial API with :func:`bind_run`.
    """

    #: How many runs this executor can hold at once.
    capacity: int = 1

    async def open(self, tasks: TaskGroup) -> None:  # noqa: B027 (optional hook)
        """Start the executor; ``tasks`` is the engine's task group, for its own tasks.

        Those tasks must end by themselves once :meth:`aclose` has returned.
        """

    def check(self, model: Model) -> None:  # noqa: B027 (optional hook)
        """Refuse, at submission, a model this executor could not run.

        Called by ``submit_models`` (on the loop) for each model it will hand to
        this executor, before any is queued: raise :class:`TypeError` saying what
        is wrong and what to do, and nothing is queued. The default accepts all
        (and is not even called: the engine skips an executor that keeps it).
        """

    @abstractmethod
    def start(self, run: RunHandle) -> None:
        """Begin running ``run.model`` (without blocking)."""

    def cancel(self, run: RunHandle) -> None:  # noqa: B027 (optional hook)
        """``run`` has been asked to stop (``run.cancel_reason`` is set).

        Any thread, never blocking. The default does nothing: the model notices at
        its next report or ``check_cancelled()``. An executor that can interrupt
        sooner (cancel a task, signal a process) does so here.
        """

    def kill(self, run: RunHandle) -> bool:
        """``run`` ignored a stop request for ``cancel_grace``: stop it by force.

        Called on the event loop, after the engine has ended the run
        ``Interrupted``; whatever the run reports afterwards is dropped. Return
        True if the executor is free for the next run; the default cannot kill and
        returns False (the engine then waits for the run to notice).
        """
        return False

    async def aclose(self) -> None:  # noqa: B027 (optional hook)
        """Stop the executor's workers once idle; returns when they are done."""
