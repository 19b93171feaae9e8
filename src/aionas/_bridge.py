"""Scheduling a callback on the event loop from another thread, without waiting.

anyio offers only blocking hops from a thread to the loop (``from_thread.run_sync``
waits for the loop to run the call). The engine's worker needs the non-blocking
kind (asyncio's ``call_soon_threadsafe``, trio's ``TrioToken.run_sync_soon``) so that
a report costs no round trip. This module is the one place that knows both backends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

__all__ = ["LoopCaller", "current_loop_caller", "protect_from_keyboard_interrupt"]

#: Schedules ``fn()`` to run soon on the event loop; callable from any thread.
LoopCaller = Callable[[Callable[[], object]], None]


def current_loop_caller() -> LoopCaller:
    """Return a :data:`LoopCaller` for the event loop running in this thread.

    Calls made after the loop has finished are dropped silently: by then nobody
    is left to be woken.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:

        def call_asyncio(fn: Callable[[], object]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(fn)

        return call_asyncio

    import trio

    token = trio.lowlevel.current_trio_token()

    def call_trio(fn: Callable[[], object]) -> None:
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(fn)

    return call_trio


def protect_from_keyboard_interrupt(*functions: Callable[..., object]) -> None:
    """Under trio, keep Ctrl+C out of the engine's own tasks.

    By default trio raises ``KeyboardInterrupt`` in whatever code runs when the
    signal arrives, which could kill the delivery task half-way and leave events
    undelivered. Marked functions (and what they call) are protected, so trio
    delivers the interrupt to the main task instead, where the engine's
    ``async with`` block turns it into a clean shutdown. asyncio turns the first
    Ctrl+C into a cancellation of the main task by itself, so nothing is needed there.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        import trio

        for function in functions:
            trio.lowlevel.enable_ki_protection(function)
