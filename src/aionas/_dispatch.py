"""Delivering events to callbacks and subscribers, on the event loop, in order.

Subscribers choose what happens when their buffer is full (``on_full``):

- ``"wait"`` (the default): delivery waits for room, so a slow subscriber slows the
  engine down instead of losing events (lossless backpressure).
- ``"close"``: delivery never waits; a subscriber that falls a full buffer behind
  is detached, and once it has taken what was buffered it gets
  :class:`~aionas.SlowSubscriberError` naming the last ``seq`` it received.

Once the engine is exiting (:meth:`EventDispatcher.begin_exit`), a ``"wait"``
subscriber whose full buffer does not move for the grace period is closed the
same way, so leaving the engine never hangs on a reader that stopped reading.

Everything here runs on the event loop; nothing is shared with other threads.
"""

from __future__ import annotations

import inspect
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .events import ModelEvent, ModelEventType
from .exceptions import SlowSubscriberError

__all__ = [
    "EventCallback",
    "EventDispatcher",
    "OnFull",
    "Replay",
    "Since",
    "Subscription",
    "in_dispatch",
]

_logger = logging.getLogger("aionas.engine")

#: A callback takes the event; it may be a plain function or a coroutine function.
EventCallback: TypeAlias = Callable[[Any], None] | Callable[[Any], Awaitable[None]]

#: What a subscriber wants when its buffer is full.
OnFull = Literal["wait", "close"]

#: Reads committed events ``after < seq <= through`` from a journal (for ``since_seq``).
Replay = Callable[[int, int], Awaitable[list[ModelEvent]]]

#: Called when a ``since_seq`` subscription starts: (what to replay, skip live events up to).
Since = Callable[[], tuple[tuple[Replay, int, int] | None, int]]

#: True inside the task that delivers events (so inside every callback).
in_dispatch: ContextVar[bool] = ContextVar("aionas_in_dispatch", default=False)

#: A subscriber's iteration passes a checkpoint at least this often.
CHECKPOINT_EVERY = 64
#: Journal events read per trip when a subscription catches up (``since_seq``).
REPLAY_CHUNK = 5_000


@dataclass(eq=False, slots=True)
class _Subscriber:
    types: frozenset[ModelEventType]
    send: MemoryObjectSendStream[ModelEvent]
    on_full: OnFull
    #: Live events with ``seq <= after`` are skipped (the journal replays them).
    after: int = -1
    #: Closed for being too slow.
    slow: bool = False
    #: Set by the reader when it takes events, while delivery waits for room.
    room: anyio.Event | None = None

    def taken(self) -> None:
        """The reader took events: wake delivery if it waits for room."""
        room = self.room
        if room is not None:
            self.room = None
            room.set()


class Subscription:
    """An async iterator over the events an engine publishes, with its own buffer.

    Get one from ``engine.subscribe(...)``. Iteration ends once the engine has
    stopped and every event has been delivered. With ``on_full="wait"`` the
    engine holds the next event back while this buffer is full; with
    ``on_full="close"`` (or a stalled reader while the engine exits) the
    subscription is detached instead, and after the buffered events the next
    receive raises :class:`~aionas.SlowSubscriberError`.
    """

    def __init__(
        self,
        receive: MemoryObjectReceiveStream[ModelEvent],
        subscriber: _Subscriber,
        buffer_size: int,
        replay: tuple[Replay, int, int] | None = None,
    ) -> None:
        self._receive = receive
        self._subscriber = subscriber
        self._taken = 0
        self._last_seq: int | None = None
        self._replay = replay  # (read, after, through) until caught up
        self._replayed: deque[ModelEvent] = deque()
        self.buffer_size = buffer_size

    @property
    def last_seq(self) -> int | None:
        """The ``seq`` of the last event this subscription gave out (None before)."""
        return self._last_seq

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> ModelEvent:
        if self._replay is not None or self._replayed:
            event = await self._next_replayed()
            if event is not None:
                self._last_seq = event.seq
                return event
        # Take buffered events without a trip through the event loop, but pass a
        # checkpoint at least every CHECKPOINT_EVERY events, so a busy subscriber
        # still lets other tasks run and still sees cancellation.
        self._taken += 1
        try:
            if self._taken % CHECKPOINT_EVERY:
                try:
                    event = self._receive.receive_nowait()
                except anyio.WouldBlock:
                    event = await self._receive.receive()
            else:
                event = await self._receive.receive()
        except anyio.EndOfStream:
            self._ended()
            raise StopAsyncIteration from None
        if self._subscriber.room is not None:
            self._subscriber.taken()
        self._last_seq = event.seq
        return event

    async def receive_batch(self, max_items: int = 1000) -> list[ModelEvent]:
        """Everything buffered, up to ``max_items``, in order; waits for at least one.

        Returns ``[]`` once the subscription has ended.

        :raises SlowSubscriberError: once it was closed for being too slow and
            has given out what was buffered.
        """
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
            raise ValueError(f"max_items must be a positive int, got {max_items!r}")
        batch: list[ModelEvent] = []
        if self._replay is not None or self._replayed:
            while len(batch) < max_items:
                event = await self._next_replayed()
                if event is None:
                    break
                batch.append(event)
            if batch:
                self._last_seq = batch[-1].seq
                return batch
        try:
            batch.append(await self._receive.receive())
        except anyio.EndOfStream:
            self._ended()
            return []
        receive = self._receive.receive_nowait
        while len(batch) < max_items:
            try:
                batch.append(receive())
            except (anyio.WouldBlock, anyio.EndOfStream):
                break
        self._subscriber.taken()
        self._last_seq = batch[-1].seq
        return batch

    def buffered(self) -> int:
        """How many live events are waiting in this subscriber's buffer."""
        return self._receive.statistics().current_buffer_used

    def _ended(self) -> None:
        if self._subscriber.slow:
            raise SlowSubscriberError(self._last_seq)

    async def _next_replayed(self) -> ModelEvent | None:
        """The next journaled event to catch up with, or None once caught up."""
        types = self._subscriber.types
        while not self._replayed:
            if self._replay is None:
                return None
            read, after, through = self._replay
            upto = min(after + REPLAY_CHUNK, through)
            events = await read(after, upto)
            self._replayed.extend(e for e in events if e.event_type in types)
            self._replay = None if upto >= through else (read, upto, through)
        return self._replayed.popleft()


class EventDispatcher:
    """Callbacks and subscribers of one engine, and the delivery of events to them."""

    def __init__(self) -> None:
        # Tuples, replaced on change, so delivery iterates without copying.
        self._callbacks: dict[ModelEventType, tuple[EventCallback, ...]] = {
            t: () for t in ModelEventType
        }
        self._subscribers: dict[ModelEventType, tuple[_Subscriber, ...]] = {
            t: () for t in ModelEventType
        }
        self._closed = False
        self._exit_grace: float | None = None
        self._blocked: anyio.CancelScope | None = None  # a wait for a full buffer
        self._callback: anyio.CancelScope | None = None  # an async callback being awaited
        self.callback_errors = 0
        self.delivered = 0
        self.subscribers_closed = 0

    def register(self, event_type: ModelEventType | str, callback: EventCallback) -> None:
        kind = ModelEventType.parse(event_type)
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        self._callbacks[kind] = (*self._callbacks[kind], callback)

    def unregister(self, event_type: ModelEventType | str, callback: EventCallback) -> None:
        kind = ModelEventType.parse(event_type)
        current = self._callbacks[kind]
        for index, registered in enumerate(current):
            if registered is callback or registered == callback:  # bound methods compare equal
                self._callbacks[kind] = current[:index] + current[index + 1 :]
                return
        raise ValueError(
            f"callback {callback!r} is not registered for {kind.value!r}; "
            "register_model_event_callback() it first (or check the event type)"
        )

    def subscribe(
        self,
        event_types: Iterable[ModelEventType | str],
        buffer_size: int,
        on_full: OnFull,
        since: Since | None = None,
    ) -> AbstractAsyncContextManager[Subscription]:
        """Check the arguments now; the subscription starts when the block is entered.

        ``since`` is called when it starts: it returns what to replay first (if
        anything), and the ``seq`` up to which live events are skipped.
        """
        kinds = frozenset(ModelEventType.parse(t) for t in event_types) or frozenset(ModelEventType)
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 1:
            raise ValueError(f"buffer_size must be a positive int, got {buffer_size!r}")
        if on_full not in ("wait", "close"):
            raise ValueError(f"on_full must be 'wait' or 'close', got {on_full!r}")
        return self._subscription(kinds, buffer_size, on_full, since)

    @asynccontextmanager
    async def _subscription(
        self,
        kinds: frozenset[ModelEventType],
        buffer_size: int,
        on_full: OnFull,
        since: Since | None,
    ) -> AsyncIterator[Subscription]:
        replay, after = since() if since is not None else (None, -1)
        send, receive = anyio.create_memory_object_stream[ModelEvent](buffer_size)
        subscriber = _Subscriber(kinds, send, on_full, after)  # later ones come live
        if self._closed:
            send.close()
        else:
            self._add(subscriber)
        try:
            with receive:
                yield Subscription(receive, subscriber, buffer_size, replay)
        finally:
            self._remove(subscriber)
            send.close()
            subscriber.taken()  # a delivery waiting for room sees it closed

    def _add(self, subscriber: _Subscriber) -> None:
        for kind in subscriber.types:
            self._subscribers[kind] = (*self._subscribers[kind], subscriber)

    def _remove(self, subscriber: _Subscriber) -> None:
        for kind in subscriber.types:
            self._subscribers[kind] = tuple(
                s for s in self._subscribers[kind] if s is not subscriber
            )

    def _close_slow(self, subscriber: _Subscriber) -> None:
        subscriber.slow = True
        self.subscribers_closed += 1
        self._remove(subscriber)
        subscriber.send.close()
        _logger.warning(
            "closed a subscriber that fell a full buffer behind; it can catch up "
            "from the journal with subscribe(since_seq=...)"
        )

    def begin_exit(self, grace: float) -> None:
        """From now on, a ``"wait"`` subscriber stuck for ``grace`` seconds is closed,
        and an async callback that has not returned after ``grace`` seconds is cancelled."""
        if self._exit_grace is None:
            self._exit_grace = grace
            if self._blocked is not None:
                self._blocked.cancel()
            if self._callback is not None:
                self._callback.deadline = anyio.current_time() + grace

    async def deliver_batch(
        self, batch: list[ModelEvent], on_end: Callable[[ModelEvent], None]
    ) -> None:
        """Give each event, in order, to every callback and then every subscriber of its type.

        A callback that raises is logged and counted; it affects nothing else. A
        full ``"wait"`` subscriber is waited for (boundedly once exiting); a full
        ``"close"`` one is closed; one that has gone away is dropped. ``on_end`` is
        called once a ``TrainingEndEvent`` has reached everyone. Awaits only when
        a callback is async or a buffer is full.
        """
        callbacks, subscribers = self._callbacks, self._subscribers
        end = ModelEventType.TrainingEnd
        for event in batch:
            kind = event.event_type
            for callback in callbacks[kind]:
                try:
                    result = callback(event)
                    if result is not None and inspect.isawaitable(result):
                        await self._await_callback(result)
                except anyio.get_cancelled_exc_class():
                    raise
                except BaseException:  # SystemExit too: a callback changes nothing else
                    self.callback_errors += 1
                    _logger.exception("event callback %r raised on %r; ignored", callback, event)
            for subscriber in subscribers[kind]:
                if event.seq <= subscriber.after:
                    continue
                try:
                    subscriber.send.send_nowait(event)
                except anyio.WouldBlock:
                    await self._send_when_room(subscriber, event)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    self._remove(subscriber)
            if kind is end:
                on_end(event)
        self.delivered += len(batch)

    async def _await_callback(self, result: Awaitable[object]) -> None:
        """Await an async callback; once exiting, for ``grace`` seconds at most."""
        with anyio.CancelScope() as scope:
            self._callback = scope
            if self._exit_grace is not None:
                scope.deadline = anyio.current_time() + self._exit_grace
            try:
                await result
            finally:
                self._callback = None
        if scope.cancelled_caught:
            raise TimeoutError(
                "an async callback did not return within subscriber_grace while the engine "
                "exited; it was cancelled"
            )

    async def _send_when_room(self, subscriber: _Subscriber, event: ModelEvent) -> None:
        """Deliver to a full subscriber: wait for room (``"wait"``) or close it.

        The wait is for the reader to take events, never inside ``send()``: a send
        cancelled just as the reader takes its item would not know whether the
        item went through, and retrying could deliver it twice.
        """
        if subscriber.on_full == "close":
            self._close_slow(subscriber)
            return
        send = subscriber.send
        while True:
            room = subscriber.room = anyio.Event()
            if not await self._wait_for_room(room):
                self._close_slow(subscriber)
                return
            try:
                send.send_nowait(event)
                return
            except anyio.WouldBlock:
                continue
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._remove(subscriber)
                return

    async def _wait_for_room(self, room: anyio.Event) -> bool:
        """Wait for ``room``; once exiting, for ``subscriber_grace`` at most (False then)."""
        if self._exit_grace is None:
            with anyio.CancelScope() as scope:
                self._blocked = scope
                try:
                    await room.wait()
                    return True
                finally:
                    self._blocked = None
            # begin_exit() cancelled the wait: from now on it is bounded.
        assert self._exit_grace is not None
        with anyio.move_on_after(self._exit_grace):
            await room.wait()
            return True
        return False

    def close(self) -> None:
        """End every subscription's iteration; later subscriptions start ended."""
        self._closed = True
        for subscribers in self._subscribers.values():
            for subscriber in subscribers:
                subscriber.send.close()
