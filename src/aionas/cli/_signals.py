"""Ctrl+C and SIGTERM during a search: stop cleanly, say so at once, force on a second one.

:class:`StopOnSignals` watches ``SIGINT`` and ``SIGTERM`` (``docker stop``, a batch
scheduler) for as long as the engine runs, and treats both alike:

1. the first cancels the strategy and shuts the engine down: the running model
   is asked to stop and ends ``Interrupted`` at its next report, queued ones end
   too, and every end is journaled before the engine closes. It says so at once,
   and how to force it;
2. the second stops waiting: the running model is given up (its thread runs on,
   unrecorded, until ``execute()`` returns) and recorded ``Interrupted`` now;
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

from .. import SequentialExecutionEngine

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

    def _running(self) -> str:
        running = self.engine.list_models("training")
        if not running:
            return "no model is running"
        return ", ".join(f"model #{m.model_id}" for m in running)

    async def watch(self, tasks: TaskGroup, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """Handle signals until cancelled; ``task_status.started()`` once they are caught."""
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                self.received.append(signum)
                name = signal_name(signum)
                count = len(self.received)
                if count == 1:
                    running = self._running()
                    self.search.cancel()
                    tasks.start_soon(self.engine.shutdown)
                    self.say(
                        f"stopping ({name}): {running} is asked to stop and ends Interrupted "
                        "at its next report; the journal records it. Press Ctrl+C again to "
                        "stop without waiting."
                    )
                elif count == 2:
                    running = self._running()
                    self.say(
                        f"stopping now ({name} again): {running} is given up and recorded "
                        "Interrupted (its thread runs on, unrecorded, until its next report). "
                        "Once more to exit at once."
                    )
                    tasks.start_soon(self._force)
                else:
                    self.say(
                        f"exiting at once ({name} a third time): the journal may still show "
                        f"{self._running()} as training; the next run repairs it."
                    )
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(self.exit_code)

    async def _force(self) -> None:
        await self.engine.shutdown(force=True)
