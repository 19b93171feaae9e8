"""One run of one model: its binding to the trial API, and how it ended."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import anyio

from .events import EndReason
from .exceptions import ModelInterrupted
from .status import ModelStatus

if TYPE_CHECKING:
    from ._core import EngineCore
    from .model import Model

__all__ = ["Outcome", "Run", "classify"]

#: How a run ended: the model's final status, the reason, and the exception if any.
Outcome = tuple[ModelStatus, EndReason, BaseException | None]


class Run:
    """The engine's record of a model while it runs; what ``trial`` calls reach.

    ``cancel_reason`` is set (under the engine's lock) when the model is asked to
    stop; ``finished`` once its end event is published, after which nothing this
    run reports is accepted.
    """

    __slots__ = (
        "cancel_at",
        "cancel_reason",
        "deadline",
        "deadline_reason",
        "engine",
        "finished",
        "model",
        "on_loop",
        "scope",
        "started",
    )

    def __init__(self, engine: EngineCore, model: Model, on_loop: bool) -> None:
        self.engine = engine
        self.model = model
        self.on_loop = on_loop
        self.started = time.monotonic()
        #: When the run must stop (``time.monotonic()``), and why; set by the engine.
        self.deadline: float | None = None
        self.deadline_reason: EndReason = "timeout"
        self.cancel_reason: EndReason | None = None
        self.cancel_at: float | None = None
        self.finished = False
        self.scope: anyio.CancelScope | None = None

    def report_intermediate(self, metric: Any) -> None:
        self.engine._report(self, metric, final=False)

    def report_final(self, metric: Any) -> None:
        self.engine._report(self, metric, final=True)

    def check_cancelled(self) -> None:
        if self.finished:
            raise ModelInterrupted("this model's run has already ended; stop its work")
        if self.cancel_reason is not None:
            raise ModelInterrupted(self.cancel_reason)


def classify(run: Run, error: BaseException | None) -> Outcome:
    """The outcome of a run from what ``execute()`` raised (None: it returned).

    A run that was asked to stop ends ``Interrupted`` whatever it did, because
    anything it did after the request ran past what it was allowed.
    """
    reason = run.cancel_reason
    if isinstance(error, ModelInterrupted | KeyboardInterrupt | SystemExit):
        return ModelStatus.Interrupted, reason or "cancelled", error
    if reason is not None:
        return ModelStatus.Interrupted, reason, error
    if error is not None:
        return ModelStatus.Failed, "failed", error
    return ModelStatus.Trained, "completed", None
