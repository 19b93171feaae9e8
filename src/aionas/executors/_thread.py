"""The thread executor: models run back to back in one long-lived worker thread.

Pipelined: when a model ends, the engine hands the next run to this executor
from the worker thread itself (inside :meth:`RunHandle.finish`), so going from one
model to the next costs no trip through the event loop.

Shared state (one table per module where threads share state):

=================  ===========================  ============  ==========================
field              written by                   lock          read by
=================  ===========================  ============  ==========================
``_next``          ``start`` (any thread),      ``_cond``     the worker thread
                   the worker (takes it)
``_closing``       ``aclose`` (loop)            ``_cond``     the worker thread
``_idle``          the worker thread            ``_cond``     ``start``, ``aclose``
``_worker``        ``_supervise`` (loop)        ``_cond``     ``kill`` (loop)
``_Worker.run``    the worker thread            ``_cond``     ``kill`` (loop)
``_Worker.abandoned``  ``kill`` (loop)          ``_cond``     the worker thread
=================  ===========================  ============  ==========================
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import anyio

from .._bridge import protect_from_keyboard_interrupt
from .._context import current_run
from ._base import Executor, RunHandle

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

__all__ = ["ThreadExecutor"]

_logger = logging.getLogger("aionas.engine")


class _Worker:
    """One worker thread's lifetime."""

    __slots__ = ("abandoned", "run", "scope")

    def __init__(self) -> None:
        self.abandoned = False
        self.run: RunHandle | None = None
        self.scope: anyio.CancelScope | None = None


class ThreadExecutor(Executor):
    """Runs each model's blocking ``execute()`` in one long-lived worker thread.

    The default executor. The event loop stays free while a model runs. A thread
    cannot be killed: after ``cancel_grace`` the engine *abandons* it (the model
    ends ``Interrupted``, a fresh thread takes the next model, and whatever the old
    one reports later is dropped and counted in ``dropped_reports``).
    """

    capacity = 1

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._next: RunHandle | None = None
        self._closing = False
        self._idle = False
        self._worker: _Worker | None = None
        self._thread = 0  # the current worker thread's ident
        self._done = anyio.Event()
        self._alive = anyio.Event()  # the first worker thread is running
        self._opened = False
        self._supervising = False
        #: Worker threads abandoned after ``cancel_grace``.
        self.abandoned_threads = 0

    async def open(self, tasks: TaskGroup) -> None:
        if self._opened:
            raise RuntimeError("a ThreadExecutor serves one engine, once; create a new one")
        self._opened = True
        protect_from_keyboard_interrupt(ThreadExecutor._supervise)
        tasks.start_soon(self._supervise, name="aionas worker")
        self._supervising = True
        await self._alive.wait()  # so the first model starts without waiting for a thread

    def start(self, run: RunHandle) -> None:
        if threading.get_ident() == self._thread:
            # From the worker itself (inside finish()): it takes the run next, no lock
            # needed, since the engine never starts a second run while one is unfinished.
            self._next = run
            return
        with self._cond:
            self._next = run
            if self._idle:
                self._cond.notify_all()

    def kill(self, run: RunHandle) -> bool:
        with self._cond:
            worker = self._worker
            if worker is None or worker.run is not run:
                return True  # it has already left the thread
            worker.abandoned = True
            self.abandoned_threads += 1
            self._cond.notify_all()
        _logger.warning(
            "abandoned the worker thread of %r: it was asked to stop and had not (after "
            "cancel_grace, or a forced shutdown); the thread may still be running, and "
            "whatever it reports is dropped",
            run.model,
        )
        assert worker.scope is not None
        worker.scope.cancel()  # the supervisor starts a fresh thread for the next run
        return True

    async def aclose(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._supervising:
            await self._done.wait()

    async def _supervise(self) -> None:
        """Keep one worker thread until closed; replace an abandoned one.

        Shielded: cancelling the host does not abandon the thread; only
        :meth:`kill` does (after ``cancel_grace``).
        """
        try:
            while True:
                worker = _Worker()
                with self._cond:
                    self._worker = worker
                with anyio.CancelScope(shield=True) as scope:
                    worker.scope = scope
                    await anyio.to_thread.run_sync(
                        self._work, worker, abandon_on_cancel=True, limiter=anyio.CapacityLimiter(1)
                    )
                if not worker.abandoned:
                    break
        finally:
            self._done.set()

    def _work(self, worker: _Worker) -> None:
        """The worker thread: run what :meth:`start` hands over until closed."""
        if not self._alive.is_set():
            anyio.from_thread.run_sync(self._alive.set)
        self._thread = threading.get_ident()
        while True:
            run = self._next
            if run is not None and not worker.abandoned:
                # Handed over by finish() on this thread: take it without the lock.
                self._next = None
                worker.run = run
            else:
                run = self._take(worker)
                if run is None:
                    return
            token = current_run.set(run)
            try:
                run.model.execute()
            except BaseException as error:
                current_run.reset(token)
                run.finish(error)
            else:
                current_run.reset(token)
                run.finish(None)

    def _take(self, worker: _Worker) -> RunHandle | None:
        """Wait for the next run; None when the thread should exit."""
        cond = self._cond
        with cond:
            worker.run = None
            while True:
                if worker.abandoned:
                    return None
                run = self._next
                if run is not None:
                    self._next = None
                    worker.run = run
                    return run
                if self._closing:
                    return None
                self._idle = True
                cond.wait()
                self._idle = False
