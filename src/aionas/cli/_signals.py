"""Ctrl+C and SIGTERM during a search: stop cleanly, say so at once, force on a second one.

:class:`StopOnSignals` watches ``SIGINT`` and ``SIGTERM`` (``docker stop``, a batch
scheduler) for as long as the engine runs, and treats both alike:

1. the first cancels the strategy and shuts the engine down: the running model
   is asked to stop and ends ``Interrupted`` at its next report, queued ones end
   too, and every end is journaled before the engine closes. It says so at once,
   and how to force it;
2. the second stops waiting: the running model is given up (its thread runs on,
   unrecorded, until its next report) and recorded ``Interrupted`` now;
3. the third exits on the spot (exit code as for the first signal), leaving the
   journal as a crash would: the next run repairs it.

Everything here runs on the event loop's thread.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

import anyio
from anyio.abc import TaskGroup

from .. import ModelStatus, ProcessExecutor, SequentialExecutionEngine

__all__ = ["StopOnSignals", "signal_name"]


def signal_name(signum: int) -> str:
    """``'Ctrl+C'`` for SIGINT, else the signal's name (``'SIGTERM'``)."""
    return "Ctrl+C" if signum == signal.SIGINT else signal.Signals(signum).name


class StopOnSignals:
    """Turns SIGINT and SIGTERM into a clean stop of a search, as the module says."""

    def __init__(
        self,
        engine: SequentialExecutionEngine,
        say: Callable[[str], None],
    ) -> None:
        self.engine = engine
        self.say = say
        self.received: list[int] = []
        self._search: anyio.CancelScope | None = None

    @property
    def search(self) -> anyio.CancelScope:
        """The scope to run the strategy in: the first signal cancels it (made on the loop)."""
        if self._search is None:
            self._search = anyio.CancelScope()
        return self._search

    @property
    def exit_code(self) -> int:
        """128 plus the first signal's number (130 after Ctrl+C, 143 after SIGTERM); 0 if none."""
        return 128 + self.received[0] if self.received else 0

    @property
    def forced(self) -> bool:
        """Whether a second signal gave a running model up (its thread may run on)."""
        return len(self.received) >= 2

    def _running(self) -> str:
        """The models started and not ended, as the notices name them."""
        running = [m for m in self.engine.list_models() if m.status is ModelStatus.Training]
        return ", ".join(f"#{m.model_id}" for m in running)

    async def watch(self, tasks: TaskGroup, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """Handle signals until cancelled; ``task_status.started()`` once they are caught."""
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                self.received.append(signum)
                name = signal_name(signum)
                again = "press Ctrl+C" if signum == signal.SIGINT else f"send {name}"
                count = len(self.received)
                running = self._running()
                if count == 1:
                    self.search.cancel()
                    tasks.start_soon(self.engine.shutdown)
                    what = (
                        f"model {running} is asked to stop and ends Interrupted at its next "
                        "report; the journal records it"
                        if running
                        else "no model is running, and none starts"
                    )
                    self.say(f"stopping ({name}): {what}. To stop without waiting, {again} again.")
                elif count == 2:
                    fate = (
                        "its worker process is killed"
                        if isinstance(self.engine.executor, ProcessExecutor)
                        else "its thread runs on, unrecorded, until its next report"
                    )
                    what = (
                        f"model {running} is given up and recorded Interrupted ({fate})"
                        if running
                        else "nothing more is waited for"
                    )
                    self.say(f"stopping now ({name} again): {what}. Once more to exit at once.")
                    tasks.start_soon(self._force)
                else:
                    self.say(
                        f"exiting at once ({name} a third time), as a crash would: the next run "
                        "repairs the journal and resumes it."
                    )
                    for stream in (sys.stdout, sys.stderr):
                        if stream is not None:
                            stream.flush()
                    os._exit(self.exit_code)

    async def _force(self) -> None:
        await self.engine.shutdown(force=True)
