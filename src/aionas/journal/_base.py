"""The journal interface: where an engine keeps its history, and what it reads back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..metrics import Metrics
from ..status import ModelStatus

if TYPE_CHECKING:
    from ..events import ModelEvent
    from ..model import Model

__all__ = ["Journal", "Restored", "RestoredError", "RestoredModel"]


class RestoredError(Exception):
    """The error of a model read back from a journal.

    The original exception is not stored (a journal holds JSON, never pickles);
    this carries its type name, message and formatted traceback.
    """

    def __init__(self, type_name: str, message: str, traceback: str = "") -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.message = message
        self.traceback = traceback


@dataclass
class RestoredModel:
    """One model as a journal's rows say it was when the last writer stopped."""

    #: The id the engine gave it.
    model_id: int
    #: Its params, as JSON holds them.
    params: dict[str, Any]
    #: The name of its class (``type(model).__qualname__``).
    class_name: str
    #: How many times it was submitted (a retry counts again).
    submissions: int
    #: How many end events it has.
    ends: int = 0
    #: Its status after its last event (``Frozen`` if it never started).
    status: ModelStatus = ModelStatus.Frozen
    #: The reason of its last end event, if any.
    reason: str | None = None
    #: The error of its last run, if that run ended ``Failed``.
    error: RestoredError | None = None
    #: The metrics of its last run, as stored (not checked: ``strict=False``).
    metrics: Metrics = field(default_factory=lambda: Metrics(strict=False))
    #: Started after its last end, and not ended since: it was running.
    running: bool = False

    @property
    def unfinished(self) -> bool:
        """Submitted more often than it ended: queued or running when the writer stopped."""
        return self.ends < self.submissions


@dataclass
class Restored:
    """What a journal holds for one experiment, as :meth:`Journal.open` reads it."""

    #: Every model of the experiment, by id.
    models: list[RestoredModel]
    #: The submissions counted against ``max_model_count``.
    model_count: int
    #: The execution seconds counted against ``max_duration``.
    total_duration: float
    #: The ``seq`` the next event gets (one past the last stored).
    next_seq: int
    #: The id the next new model gets.
    next_id: int
    #: What the writer recorded about the experiment (``SqliteJournal(metadata=...)``).
    metadata: dict[str, Any] = field(default_factory=dict)


class Journal(ABC):
    """Where an engine keeps its history: implement this to keep it somewhere else.

    :class:`~aionas.SqliteJournal` is the one aionas ships. An engine given
    ``journal=`` calls these methods, all blocking, from worker threads, never
    from the event loop:

    1. :meth:`open` once, when the engine starts (``async with``); nothing else
       before it returns.
    2. :meth:`record_submissions` and :meth:`record_events`, any number of times.
       The two may run at the same time in different threads (an implementation
       serialises them as it needs); each kind is called by one thread at a time,
       in order.
    3. :meth:`read_events`, from any thread, at any time between :meth:`open` and
       :meth:`close`, also while the other methods run.
    4. :meth:`close` once, when the engine stops, also after a failed write.

    The engine's guarantee rests on one promise: when :meth:`record_events`
    returns, the events are durable; only then does anyone receive them.
    """

    #: The name of the experiment this journal keeps (one engine writes it at a time).
    experiment: str

    @abstractmethod
    def open(self) -> Restored:
        """Validate or create the storage, claim the experiment, and read it back.

        :raises ~aionas.JournalError: if the journal cannot be used (missing,
            damaged, from a newer aionas, not writable, or the experiment is being
            written by another engine), naming the place and the cause. A failed
            open changes nothing and needs no :meth:`close`.
        """

    @abstractmethod
    def record_submissions(
        self,
        new: Sequence[tuple[int, str, str, float]],
        resubmitted: Sequence[int],
        model_count: int,
    ) -> None:
        """Commit submissions: all of them or none, durable when this returns.

        :param new: the models seen for the first time, as ``(model_id, params
            JSON, class name, time.time())``.
        :param resubmitted: ids of models already recorded that were submitted
            again (each counts one more submission).
        :param model_count: the engine's submission counter after these, to keep for
            resume. Overlapping submissions may be committed out of order: keep the
            largest count seen.
        :raises Exception: anything; nothing was committed, the engine refuses
            the submission and stops (nothing more can be made durable).
        """

    @abstractmethod
    def record_events(self, events: Sequence[ModelEvent], total_duration: float) -> None:
        """Commit events, in order, and the engine's execution-time counter.

        Each event's ``model_id`` says which model it is about (recorded by
        :meth:`record_submissions` first); ``seq`` increases across calls. The
        events are durable when this returns.

        :raises Exception: anything, meaning "not all of them were committed" (a
            prefix may have been); the engine then stops with
            :class:`~aionas.JournalError` and nobody receives these events.
        """

    @abstractmethod
    def read_events(
        self, after_seq: int, through_seq: int, models: Mapping[int, Model]
    ) -> list[ModelEvent]:
        """The committed events with ``after_seq < seq <= through_seq``, in ``seq`` order.

        Each is rebuilt as the event it was (same class, ``seq``, ``timestamp``,
        ``model_id``, metric as stored, end ``status`` and ``reason``), with
        ``.model`` set to ``models[model_id]``; an end event's error comes back as
        a :class:`RestoredError`. Safe while another thread writes: it sees
        only what is committed.

        :raises KeyError: if an event's model is not in ``models``.
        :raises ~aionas.JournalError: if the journal is not open, or reading fails.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the experiment and the storage. Safe to call twice."""
