"""Models for tests: they report a script, and can wait at a gate the test opens."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

import anyio

from .. import Model, check_cancelled, report_final_result, report_intermediate_result

__all__ = ["BlockingModel", "ScriptedModel"]

#: How often a blocked model checks for cancellation, in seconds. It wakes at once
#: when released; this only bounds how late a cancellation or timeout is noticed.
_CANCEL_POLL = 0.005


class ScriptedModel(Model):
    """A model whose ``execute()`` reports a script, then returns or raises.

    ``execute()`` reports each of ``intermediates`` in order with
    :func:`~aionas.report_intermediate_result`, then ``final`` (unless None) with
    :func:`~aionas.report_final_result`, and returns: the model ends ``Trained``.
    With ``raises`` (an exception or exception class), it raises that after the
    first ``fail_after`` reports of the script (intermediates, then final), or after
    all of them when ``fail_after`` is None: the model ends ``Failed`` with it in
    ``model.error``. Metrics are whatever the engine accepts (numbers, or dicts with
    a ``'default'`` number); they are checked by the engine when reported.

    A cancelled model stops at its next report, as real training code does.
    Every run plays the whole script again (a model set to ``Retrying`` and
    resubmitted). ``params`` are the model's parameters.

    >>> ScriptedModel(intermediates=[0.1, 0.2], final=0.3).script
    (0.1, 0.2, 0.3)
    """

    def __init__(
        self,
        *,
        intermediates: Iterable[Any] = (),
        final: Any = None,
        raises: BaseException | type[BaseException] | None = None,
        fail_after: int | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(params)
        self.intermediates: tuple[Any, ...] = tuple(intermediates)
        self.final: Any = final
        if raises is not None and not (
            isinstance(raises, BaseException)
            or (isinstance(raises, type) and issubclass(raises, BaseException))
        ):
            raise TypeError(f"raises must be an exception or exception class, got {raises!r}")
        self.raises = raises
        if fail_after is not None:
            if raises is None:
                raise ValueError("fail_after needs raises=: the exception to raise")
            if isinstance(fail_after, bool) or not isinstance(fail_after, int) or fail_after < 0:
                raise ValueError(f"fail_after must be an int >= 0, got {fail_after!r}")
        self.fail_after = fail_after

    @property
    def script(self) -> tuple[Any, ...]:
        """The reports in the order ``execute()`` makes them (final last, if any)."""
        return self.intermediates if self.final is None else (*self.intermediates, self.final)

    def execute(self) -> None:
        """Play the script (see the class docstring)."""
        limit = len(self.script) if self.fail_after is None else self.fail_after
        for index, metric in enumerate(self.intermediates):
            self._fail_if(index >= limit)
            report_intermediate_result(metric)
        self._gate()
        if self.final is not None:
            self._fail_if(len(self.intermediates) >= limit)
            report_final_result(self.final)
        self._fail_if(True)

    def _fail_if(self, condition: bool) -> None:
        if condition and self.raises is not None:
            raise self.raises

    def _gate(self) -> None:
        """Called between the intermediates and the final report."""


class BlockingModel(ScriptedModel):
    """A :class:`ScriptedModel` that stops between its intermediates and its final
    report until the test calls :meth:`release`: the running model a test needs for
    cancellation, timeouts, queues and shutdowns, without sleeping.

    While blocked it checks for cancellation every few milliseconds, so
    ``engine.cancel_model()``, ``max_model_duration``, ``shutdown()`` and a cancelled
    host all end it ``Interrupted`` promptly. :meth:`wait_blocked` returns once it
    has reached the gate: its intermediates have been *reported*, not necessarily
    delivered (``await engine.wait_models(model)`` waits for delivery). Once
    released, the gate stays open, also for later runs; releasing before it runs is
    allowed.
    """

    def __init__(
        self,
        *,
        intermediates: Iterable[Any] = (),
        final: Any = None,
        raises: BaseException | type[BaseException] | None = None,
        fail_after: int | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            intermediates=intermediates,
            final=final,
            raises=raises,
            fail_after=fail_after,
            params=params,
        )
        self._blocked = threading.Event()
        self._released = threading.Event()

    @property
    def blocked(self) -> bool:
        """True once a run has reached the gate (it stays True after the release)."""
        return self._blocked.is_set()

    def release(self) -> None:
        """Open the gate: a blocked run goes on with its final report. Thread-safe."""
        self._released.set()

    async def wait_blocked(self, timeout: float = 10.0) -> None:
        """Wait until a run has reached the gate, without blocking the event loop.

        Works on asyncio and trio; cancelling the caller stops the wait.

        :raises TimeoutError: if no run reaches the gate within ``timeout`` seconds
            (the model never started, or its script failed before the gate).
        """
        reached = await anyio.to_thread.run_sync(
            self._blocked.wait, timeout, abandon_on_cancel=True
        )
        if not reached:
            raise TimeoutError(f"{self!r} did not reach its gate within {timeout}s")

    def _gate(self) -> None:
        self._blocked.set()
        while not self._released.wait(_CANCEL_POLL):
            check_cancelled()
