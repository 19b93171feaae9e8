"""Delivering events to callbacks and subscribers, on the event loop, in order."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeAlias

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .events import ModelEvent, ModelEventType

__all__ = ["EventCallback", "EventDispatcher", "Subscription", "in_dispatch"]

_logger = logging.getLogger("aionas.engine")

#: A callback takes the event; it may be a plain function or a coroutine function.
EventCallback: TypeAlias = Callable[[Any], None] | Callable[[Any], Awaitable[None]]

#: True inside the task that delivers events (so inside every callback).
in_dispatch: ContextVar[bool] = ContextVar("aionas_in_dispatch", default=False)


#: A subscriber's iteration passes a checkpoint at least this often.
CHECKPOINT_EVERY = 64


class Subscription:
    """An async iterator over the events an engine publishes, with its own buffer.

    Get one from ``engine.subscribe(...)``. Iteration ends once the engine has
    stopped and every event has been delivered. While this subscriber's buffer is
    full, the engine holds the next event back (and, once the engine's own buffer
    fills, the worker's next report waits): nothing is dropped.
    """

    def __init__(self, receive: MemoryObjectReceiveStream[ModelEvent], buffer_size: int) -> None:
        self._receive = receive
        self._taken = 0
        self.buffer_size = buffer_size

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> ModelEvent:
        # Take buffered events without a trip through the event loop, but pass a
        # checkpoint at least every CHECKPOINT_EVERY events, so a busy subscriber
        # still lets other tasks run and still sees cancellation.
        self._taken += 1
        if self._taken % CHECKPOINT_EVERY:
            try:
                return self._receive.receive_nowait()
            except anyio.WouldBlock:
                pass
            except anyio.EndOfStream:
                raise StopAsyncIteration from None
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    def buffered(self) -> int:
        """How many events are waiting in this subscriber's buffer."""
        return self._receive.statistics().current_buffer_used


@dataclass(eq=False, slots=True)
class _Subscriber:
    types: frozenset[ModelEventType]
    send: MemoryObjectSendStream[ModelEvent]


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
        self.callback_errors = 0
        self.delivered = 0

    def register(self, event_type: ModelEventType | str, callback: EventCallback) -> None:
        kind = ModelEventType.parse(event_type)
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        self._callbacks[kind] = (*self._callbacks[kind], callback)

    def unregister(self, event_type: ModelEventType | str, callback: EventCallback) -> None:
        kind = ModelEventType.parse(event_type)
        current = self._callbacks[kind]
        if callback not in current:
            raise ValueError(
                f"callback {callback!r} is not registered for {kind.value!r}; "
                "register_model_event_callback() it first (or check the event type)"
            )
        index = current.index(callback)
        self._callbacks[kind] = current[:index] + current[index + 1 :]

    def subscribe(
        self, event_types: Iterable[ModelEventType | str], buffer_size: int
    ) -> AbstractAsyncContextManager[Subscription]:
        """Check the arguments now; the subscription starts when the block is entered."""
        kinds = frozenset(ModelEventType.parse(t) for t in event_types) or frozenset(ModelEventType)
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 1:
            raise ValueError(f"buffer_size must be a positive int, got {buffer_size!r}")
        return self._subscription(kinds, buffer_size)

    @asynccontextmanager
    async def _subscription(
        self, kinds: frozenset[ModelEventType], buffer_size: int
    ) -> AsyncIterator[Subscription]:
        send, receive = anyio.create_memory_object_stream[ModelEvent](buffer_size)
        subscriber = _Subscriber(kinds, send)
        if self._closed:
            send.close()
        else:
            self._add(subscriber)
        try:
            with receive:
                yield Subscription(receive, buffer_size)
        finally:
            self._remove(subscriber)
            send.close()

    def _add(self, subscriber: _Subscriber) -> None:
        for kind in subscriber.types:
            self._subscribers[kind] = (*self._subscribers[kind], subscriber)

    def _remove(self, subscriber: _Subscriber) -> None:
        for kind in subscriber.types:
            self._subscribers[kind] = tuple(
                s for s in self._subscribers[kind] if s is not subscriber
            )

    async def deliver_batch(
        self, batch: list[ModelEvent], on_end: Callable[[ModelEvent], None]
    ) -> None:
        """Give each event, in order, to every callback and then every subscriber of its type.

        A callback that raises is logged and counted; it affects nothing else. A
        subscriber whose buffer is full is waited for; one that has gone away is
        dropped. ``on_end`` is called once a ``TrainingEndEvent`` has reached everyone.
        Awaits only when a callback is async or a buffer is full.
        """
        callbacks, subscribers = self._callbacks, self._subscribers
        end = ModelEventType.TrainingEnd
        for event in batch:
            kind = event.event_type
            for callback in callbacks[kind]:
                try:
                    result = callback(event)
                    if result is not None and inspect.isawaitable(result):
                        await result
                except Exception:
                    self.callback_errors += 1
                    _logger.exception("event callback %r raised on %r; ignored", callback, event)
            for subscriber in subscribers[kind]:
                try:
                    try:
                        subscriber.send.send_nowait(event)
                    except anyio.WouldBlock:
                        await subscriber.send.send(event)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    self._remove(subscriber)
            if kind is end:
                on_end(event)
        self.delivered += len(batch)

    def close(self) -> None:
        """End every subscription's iteration; later subscriptions start ended."""
        self._closed = True
        for subscribers in self._subscribers.values():
            for subscriber in subscribers:
                subscriber.send.close()
