"""The loop executor: models whose ``execute`` is ``async def`` run on the event loop.

Each run is a task in the engine's task group, inside a cancel scope of its own:
a stop request cancels that scope, so the model is interrupted at its next
``await``. The host's cancellation never reaches it directly (the engine turns it
into a stop request).

Shared state: ``_inbox`` (a deque; appends and pops are atomic) carries start and
cancel requests from any thread to the serving task on the loop, which is woken
without waiting; ``_scopes`` is touched only on the loop.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING

import anyio

from .._bridge import LoopCaller, current_loop_caller
from .._context import current_run
from ._base import Executor, RunHandle

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

__all__ = ["LoopExecutor"]


class LoopExecutor(Executor):
    """Awaits ``async def execute`` models on the engine's event loop.

    The engine uses one for every model whose ``execute`` is a coroutine function,
    whatever executor runs the others. A model that blocks the loop blocks
    everything: use it only for code that awaits.
    """

    capacity = 1

    def __init__(self) -> None:
        self._tasks: TaskGroup | None = None
        self._call_soon: LoopCaller | None = None
        self._loop_thread = 0
        self._scopes: dict[RunHandle, anyio.CancelScope] = {}
        # Requests from other threads, taken by the serving task (loop side).
        self._inbox: deque[tuple[bool, RunHandle]] = deque()  # (cancel?, run)
        self._wake = anyio.Event()
        self._closing = False

    async def open(self, tasks: TaskGroup) -> None:
        self._tasks = tasks
        self._call_soon = current_loop_caller()
        self._loop_thread = threading.get_ident()
        tasks.start_soon(self._serve, name="aionas loop executor")

    def start(self, run: RunHandle) -> None:
        self._post(False, run)

    def cancel(self, run: RunHandle) -> None:
        self._post(True, run)

    async def aclose(self) -> None:
        self._closing = True
        self._wake.set()

    def _post(self, cancel: bool, run: RunHandle) -> None:
        self._inbox.append((cancel, run))  # deque.append is atomic
        if threading.get_ident() == self._loop_thread:
            self._wake.set()
        else:
            assert self._call_soon is not None, "LoopExecutor used before open()"
            self._call_soon(self._wake.set)

    async def _serve(self) -> None:
        """Start runs and cancel them, as asked (a task, so it may spawn tasks)."""
        assert self._tasks is not None
        with anyio.CancelScope(shield=True):
            while True:
                await self._wake.wait()
                self._wake = anyio.Event()
                while self._inbox:
                    cancel, run = self._inbox.popleft()
                    if not cancel:
                        self._tasks.start_soon(self._run, run, name=f"aionas model {run.model_id}")
                    elif (scope := self._scopes.get(run)) is not None:
                        scope.cancel()
                if self._closing:
                    return

    async def _run(self, run: RunHandle) -> None:
        token = current_run.set(run)
        error: BaseException | None = None
        try:
            with anyio.CancelScope(shield=True), anyio.CancelScope() as scope:
                self._scopes[run] = scope
                if run.cancel_requested:
                    scope.cancel()
                await run.model.execute()
        except BaseException as raised:  # the model's own error, reported as its outcome
            error = raised
        finally:
            self._scopes.pop(run, None)
            current_run.reset(token)
        run.finish(error)
