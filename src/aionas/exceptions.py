"""Errors raised by aionas. All ordinary errors derive from :class:`AionasError`."""

from __future__ import annotations

import signal

__all__ = [
    "AionasError",
    "BudgetExhaustedError",
    "EngineClosedError",
    "JournalError",
    "ModelInterrupted",
    "ModelStateError",
    "SlowSubscriberError",
    "WorkerDiedError",
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


class WorkerDiedError(AionasError):
    """The worker process running a model died before the model's end was reported.

    A segmentation fault, ``os._exit()``, ``os.abort()``, or the operating system
    killing it (out of memory, say): the model ends ``Failed`` with this error and
    the next model runs in a fresh worker process. ``exitcode`` is the process's
    exit code as :mod:`multiprocessing` gives it (``-N`` when killed by signal
    ``N``); ``signal_name`` is that signal's name (``'SIGSEGV'``), else None.

    >>> error = WorkerDiedError("model 3 (Train, params {'lr': 0.1})", -11)
    >>> print(error)  # doctest: +ELLIPSIS
    the worker process running model 3 (Train, ...) died before ...: killed by signal SIGSEGV
    >>> error.signal_name
    'SIGSEGV'
    """

    def __init__(self, model: str, exitcode: int | None) -> None:
        self.model = model
        self.exitcode = exitcode
        super().__init__(
            f"the worker process running {model} died before the model ended: "
            f"{_describe_exit(exitcode)}"
        )

    @property
    def signal_name(self) -> str | None:
        """The name of the signal that killed the process (``'SIGSEGV'``), else None."""
        if self.exitcode is None or self.exitcode >= 0:
            return None
        return _signal_name(-self.exitcode)

    def __reduce__(self) -> tuple[type[WorkerDiedError], tuple[str, int | None]]:
        return type(self), (self.model, self.exitcode)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _describe_exit(exitcode: int | None) -> str:
    """What an exit code says about how a worker process ended, for an error message."""
    if exitcode is None:
        return "its connection broke and it did not exit"
    if exitcode < 0:
        name = _signal_name(-exitcode)
        if name == "SIGKILL":
            return (
                "killed by signal SIGKILL (often the system's out-of-memory killer; "
                "check the system log)"
            )
        return f"killed by signal {name}"
    if exitcode == 0:
        return "it exited with code 0 (os._exit(0)?) while the model was running"
    return f"it exited with code {exitcode}"


class ModelInterrupted(BaseException):
    """Raised inside a model's trial code when that model has been asked to stop.

    It is raised by ``report_intermediate_result``, ``report_final_result`` and
    ``check_cancelled`` once the model is cancelled, timed out, out of budget or
    shut down. It derives from :class:`BaseException` so that ``except Exception:``
    in training code does not swallow it; let it propagate and the model ends
    ``Interrupted``.
    """
