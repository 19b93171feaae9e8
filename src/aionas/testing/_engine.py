"""``running_engine``: an engine entered for a test, whose exit cannot hang the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from .. import SequentialExecutionEngine

__all__ = ["DEFAULT_EXIT_TIMEOUT", "EngineFactory", "running_engine"]

#: Seconds :func:`running_engine` waits, when its block ends, for the models to end.
DEFAULT_EXIT_TIMEOUT = 10.0


class EngineFactory(Protocol):
    """What the ``aionas_engine_factory`` fixture returns: :func:`running_engine`, with
    the options of the test's ``aionas_engine`` markers as defaults."""

    def __call__(
        self, **options: Any
    ) -> AbstractAsyncContextManager[SequentialExecutionEngine]: ...


@asynccontextmanager
async def running_engine(
    *, exit_timeout: float | None = DEFAULT_EXIT_TIMEOUT, **engine_options: Any
) -> AsyncIterator[SequentialExecutionEngine]:
    """``async with running_engine(**options) as engine:`` a started engine.

    ``engine_options`` are passed to :class:`~aionas.SequentialExecutionEngine`
    (``max_model_count=3``, ``continue_on_failure=True``, ``journal=...``).

    When the block ends normally, every submitted model (and every model that a
    callback submits meanwhile) ends and every event is delivered before this
    returns, as when leaving the engine's own block. Unlike the engine's block,
    it never waits more than ``exit_timeout`` seconds for that: the engine is then
    shut down (the running model ends ``Interrupted`` at its next report or
    ``check_cancelled()``, the queued ones at once, reason ``'shutdown'``, and their
    events are still delivered) and an :class:`AssertionError` names the models
    that had not ended, so a forgotten :class:`~aionas.testing.BlockingModel`
    fails the test instead of hanging it. ``exit_timeout=None`` waits forever.

    When the block raises (or is cancelled), the engine is left with that
    exception: it shuts down as described above, and the exception propagates.
    An error the engine raises on exit (the failure of a model under the default
    ``continue_on_failure=False``, a :class:`~aionas.JournalError`) propagates too.
    Works on asyncio and trio; enter and leave it in the same task.

    :raises AssertionError: if models were still unfinished ``exit_timeout``
        seconds after the block ended.
    :raises TypeError: for an option the engine does not take.
    """
    if exit_timeout is not None and not exit_timeout >= 0:
        raise ValueError(f"exit_timeout must be >= 0 seconds or None, got {exit_timeout!r}")
    engine = SequentialExecutionEngine(**engine_options)
    unfinished: list[str] = []
    async with engine:
        yield engine
        if exit_timeout is not None:
            try:
                await engine.wait_models(timeout=exit_timeout)
            except TimeoutError:
                unfinished = [repr(m) for m in engine.list_models() if not m.status.completed()]
                await engine.shutdown()
    if unfinished:
        raise AssertionError(
            f"{len(unfinished)} model(s) had not ended {exit_timeout}s after the test's "
            f"engine block ended, so the engine was shut down: {', '.join(unfinished)}. "
            "Release blocked models (BlockingModel.release()), await engine.wait_models() "
            "or engine.shutdown() in the test, or raise exit_timeout"
        )
