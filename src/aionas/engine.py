"""The execution-engine interface: what strategies, services and tools program against."""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from ._dispatch import EventCallback, OnFull, Subscription
from ._scheduler import CancelResult
from .events import ModelEventType
from .model import Model
from .status import ModelStatus

__all__ = ["EngineStatistics", "ExecutionEngine"]


@dataclass(frozen=True, slots=True)
class EngineStatistics:
    """A snapshot of an engine's counters (see ``engine.statistics()``).

    Every counter counts this engine's life (since its ``async with`` began),
    except the budget counters ``model_count`` and ``total_duration``, which carry
    over from a resumed journal and from ``load_state_dict()``.
    """

    #: Models accepted by ``submit_models`` (a retried model counts once per submission).
    submitted: int
    #: Models waiting for their turn.
    queued: int
    #: 1 while a model's ``execute()`` runs, else 0.
    running: int
    #: Runs that ended ``Trained``.
    trained: int
    #: Runs that ended ``Failed``.
    failed: int
    #: Runs that ended ``Interrupted`` (cancelled, timed out, out of budget, shut down).
    interrupted: int
    #: Execution seconds spent, the running model included (what ``max_duration`` counts;
    #: a budget counter, so it includes what a resumed journal or state_dict carried over).
    total_duration: float
    #: Events published by the engine.
    events_published: int
    #: Events delivered to every callback and subscriber.
    events_delivered: int
    #: Callbacks that raised (each was logged and ignored).
    callback_errors: int
    #: Reports from abandoned threads, dropped and never attributed to another model.
    dropped_reports: int
    #: Worker threads abandoned after ``cancel_grace``.
    abandoned_threads: int
    #: Event rows committed to the journal (0 without one).
    journaled_events: int = 0
    #: Submissions counted against ``max_model_count`` (a budget counter, like
    #: ``total_duration``: it includes what a resumed journal or state_dict carried over).
    model_count: int = 0
    #: Subscribers closed for falling a full buffer behind (``SlowSubscriberError``).
    subscribers_closed: int = 0


class ExecutionEngine(ABC):
    """An async engine that runs models and publishes what they report.

    Use it as an async context manager: ``async with engine:`` starts it, and
    leaving the block waits for every submitted model and every event. Methods
    are called from the event loop that runs the engine.
    """

    @abstractmethod
    async def __aenter__(self) -> Self: ...

    @abstractmethod
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...

    @abstractmethod
    async def submit_models(self, *models: Model) -> None:
        """Queue models to run; returns once they are queued (not trained)."""

    @abstractmethod
    async def wait_models(self, *models: Model, timeout: float | None = None) -> None:
        """Wait until the models (all when none given) have ended and been delivered."""

    @abstractmethod
    def list_models(self, status: ModelStatus | str | None = None) -> list[Model]:
        """The submitted models, in submission order, optionally of one status."""

    @abstractmethod
    def cancel_model(self, model: Model) -> CancelResult:
        """End a queued model now, or ask a running one to stop; say which."""

    @abstractmethod
    def get_model(self, model_id: int) -> Model:
        """The model this engine knows by ``model_id`` (``KeyError`` if none)."""

    @abstractmethod
    def budget_available(self) -> bool:
        """Whether another model may still be submitted within the budgets."""

    @abstractmethod
    def idle_worker_available(self) -> bool:
        """Whether a model submitted now would start at once."""

    @abstractmethod
    async def shutdown(self) -> None:
        """Stop accepting models, interrupt the running ones, end the queued ones."""

    @abstractmethod
    def register_model_event_callback(
        self, event_type: ModelEventType | str, callback: EventCallback
    ) -> None:
        """Call ``callback(event)`` on the event loop for every event of that type."""

    @abstractmethod
    def unregister_model_event_callback(
        self, event_type: ModelEventType | str, callback: EventCallback
    ) -> None:
        """Undo :meth:`register_model_event_callback`."""

    @abstractmethod
    def subscribe(
        self,
        *event_types: ModelEventType | str,
        buffer_size: int | None = None,
        on_full: OnFull = "wait",
        since_seq: int | None = None,
    ) -> AbstractAsyncContextManager[Subscription]:
        """An async iterator of events (all types when none given), with its own buffer."""

    @abstractmethod
    def statistics(self) -> EngineStatistics:
        """A snapshot of the engine's counters."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """What a new engine needs to continue this one's budgets."""

    @abstractmethod
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue the budgets recorded by :meth:`state_dict`."""
