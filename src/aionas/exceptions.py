"""Errors raised by aionas. All ordinary errors derive from :class:`AionasError`."""

from __future__ import annotations

__all__ = [
    "AionasError",
    "BudgetExhaustedError",
    "EngineClosedError",
    "JournalError",
    "ModelInterrupted",
    "ModelStateError",
    "SlowSubscriberError",
]


class AionasError(Exception):
    """Base class of every ordinary error that aionas raises."""


class ModelStateError(AionasError):
    """A model is in the wrong state for what was asked.

    For example: submitting a model that is not frozen, that has already completed,
    or that is already queued or running; waiting for a model this engine never saw.
    """


class BudgetExhaustedError(AionasError):
    """Submitting would exceed ``max_model_count``, or ``max_duration`` is spent.

    Nothing from the rejected call was queued.
    """


class EngineClosedError(AionasError):
    """The engine is not running: it was never started, or it has stopped.

    Start an engine with ``async with engine:``; an engine runs once.
    """


class JournalError(AionasError):
    """A journal file cannot be used: it names the file and says what is wrong.

    For example: the file is not an aionas journal or is corrupt, it was written
    by a newer aionas, it cannot be written, or another engine is writing the same
    experiment. A failed open never modifies the file.
    """


class SlowSubscriberError(AionasError):
    """A subscription was closed because it fell a full buffer behind.

    Raised by the subscription's next receive once it has given out the events
    that were buffered: with ``on_full="close"`` as soon as the subscriber is a
    full buffer behind, and with ``on_full="wait"`` when it stops reading while
    the engine exits. Nothing is lost for anyone else; ``last_seq`` is the
    ``seq`` of the last event it received (None if none), so it can catch up from
    the journal with ``engine.subscribe(since_seq=error.last_seq)``.
    """

    def __init__(self, last_seq: int | None) -> None:
        after = "no event" if last_seq is None else f"the event with seq {last_seq}"
        super().__init__(
            f"this subscription fell a full buffer behind and was closed after {after}; "
            "read faster, give it a larger buffer_size, or catch up from the journal "
            "with engine.subscribe(since_seq=last_seq)"
        )
        self.last_seq = last_seq


class ModelInterrupted(BaseException):
    """Raised inside a model's trial code when that model has been asked to stop.

    It is raised by ``report_intermediate_result``, ``report_final_result`` and
    ``check_cancelled`` once the model is cancelled, timed out, out of budget or
    shut down. It derives from :class:`BaseException` so that ``except Exception:``
    in training code does not swallow it; let it propagate and the model ends
    ``Interrupted``.
    """
