"""Delivery: the pipeline from the scheduler's outbox to everyone who listens.

One task on the event loop takes each batch the scheduler has ready, has the
journal (if any) commit it, and only then hands it to the dispatcher (callbacks,
then subscribers). It keeps the journal's promise: **an event is committed
before anyone receives it, and when committing fails, nobody receives it**; the
engine stops, and whoever waits for deliveries is told why.

Delivery ends only when the scheduler says nothing more can be published (the
engine accepts nothing, no run is in flight or queued, no submission is being
committed), so no end event is ever left undelivered.

Everything here runs on the event loop.
"""

from __future__ import annotations

import logging

import anyio

from ._dispatch import EventDispatcher, in_dispatch
from ._scheduler import Entry, Scheduler
from .events import ModelEvent
from .exceptions import JournalError
from .journal import Journal

__all__ = ["Delivery"]

_logger = logging.getLogger("aionas.engine")


class Delivery:
    """The delivery task of one engine, and waiting for what it delivered."""

    def __init__(
        self, core: Scheduler, dispatcher: EventDispatcher, journal: Journal | None
    ) -> None:
        self._core = core
        self._dispatcher = dispatcher
        self._journal = journal
        #: Every event up to this ``seq`` is in the journal.
        self.committed_seq = -1
        #: Event rows this engine committed.
        self.journaled = 0
        #: Set once the task has ended (every subscription has ended too).
        self.done = anyio.Event()
        # Set when a model has had all its end events delivered; and when all models have.
        self._settled: anyio.Event | None = None
        self._all_settled: anyio.Event | None = None
        self._failure: JournalError | None = None  # set when the journal failed

    async def run(self) -> None:
        """The delivery task: drain, commit, deliver, in order, until nothing is left."""
        in_dispatch.set(True)
        try:
            with anyio.CancelScope(shield=True):
                await self._deliver_until_done()
        finally:
            self._dispatcher.close()
            self.done.set()
            self._wake_waiters()

    async def _deliver_until_done(self) -> None:
        take, deliver = self._core.take_events, self._dispatcher.deliver_batch
        journal = self._journal
        while True:
            batch = take()
            if batch is None:
                return
            if isinstance(batch, anyio.Event):
                await batch.wait()
                continue
            if journal is not None and not await self._commit(journal, batch):
                continue  # not committed: nobody may receive it
            await deliver(batch, self._end_delivered)

    async def _commit(self, journal: Journal, batch: list[ModelEvent]) -> bool:
        """Commit a batch before anyone sees it; False if it cannot be."""
        if self._failure is not None:
            return False
        if batch[0].seq <= self.committed_seq:  # committed at resume already
            batch = [event for event in batch if event.seq > self.committed_seq]
            if not batch:
                return True
        core = self._core
        with core.lock:
            spent = core.total_duration
        try:
            await anyio.to_thread.run_sync(journal.record_events, batch, spent)
        except Exception as error:
            # Nothing more can be made durable: stop, deliver nothing more, and say so.
            _logger.error("journal write failed; stopping the engine", exc_info=error)
            failure = JournalError(
                f"writing to {journal!r} failed ({type(error).__name__}: {error}); "
                f"the engine stopped; events after seq {self.committed_seq} are not in the "
                "journal and were not delivered to anyone"
            )
            failure.__cause__ = error
            self._failure = failure
            core.stop("shutdown", failure)
            self._wake_waiters()
            return False
        self.committed_seq = batch[-1].seq
        self.journaled += len(batch)
        return True

    def _end_delivered(self, event: ModelEvent) -> None:
        """A ``TrainingEndEvent`` has reached everyone: settle its model."""
        core = self._core
        entry = core.by_id[event.model_id or 0]
        entry.pending_ends -= 1
        core.undelivered -= 1
        if entry.pending_ends == 0:  # wake only those whose condition may now hold
            settled = self._settled
            if settled is not None:
                self._settled = None
                settled.set()
            if core.undelivered == 0:
                self._wake_all()

    def _wake_waiters(self) -> None:
        settled = self._settled
        if settled is not None:
            self._settled = None
            settled.set()
        self._wake_all()

    def _wake_all(self) -> None:
        settled = self._all_settled
        if settled is not None:
            self._all_settled = None
            settled.set()

    async def wait_settled(self, entries: list[Entry] | None) -> None:
        """Wait until these entries (all, with None) have had every end event delivered.

        :raises JournalError: if the journal failed, so they never will be.
        """
        core = self._core
        while True:
            if entries is None:
                if core.undelivered == 0:
                    return
            elif all(entry.pending_ends == 0 for entry in entries):
                return
            if self._failure is not None:
                raise self._failure
            if self.done.is_set():
                return  # nothing more will be delivered
            if entries is None:
                if self._all_settled is None:
                    self._all_settled = anyio.Event()
                await self._all_settled.wait()
            else:
                if self._settled is None:
                    self._settled = anyio.Event()
                await self._settled.wait()
