"""In-process publish/subscribe for the server streams (Watch*, StreamAlerts).

Domain code runs on worker threads, so `publish` is thread-safe: it hands the
event to the event loop, which fans it out to every subscriber of the topic.
Events are published only after the state they describe is committed, so a
stream that replays from the database and then follows the hub misses nothing
(subscribe first, replay second, drop duplicates by sequence number).

Each subscriber has a bounded queue: a subscriber too slow to keep up is told
so (`SubscriberOverflow`) instead of growing memory without bound; streams then
resynchronise from the database.

Several replicas sharing PostgreSQL will back this with LISTEN/NOTIFY; the
interface stays the same.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from typing import Any, AsyncIterator

_CLOSED = object()


class SubscriberOverflow(Exception):
    """The subscriber fell more than its queue size behind."""


class Subscription:
    def __init__(self, hub: EventHub, topic: str, maxsize: int) -> None:
        self._hub = hub
        self.topic = topic
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self.overflowed = False

    def _offer(self, event: Any) -> None:
        if self.overflowed:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            # Make room for the marker so the reader wakes and learns it fell behind.
            self._queue.get_nowait()
            self._queue.put_nowait(_OVERFLOW)

    def _close(self) -> None:
        try:
            self._queue.put_nowait(_CLOSED)
        except asyncio.QueueFull:
            self._queue.get_nowait()
            self._queue.put_nowait(_CLOSED)

    async def get(self) -> Any:
        """The next event; raises StopAsyncIteration when the hub closes."""
        item = await self._queue.get()
        if item is _CLOSED:
            raise StopAsyncIteration
        if item is _OVERFLOW:
            raise SubscriberOverflow(self.topic)
        return item

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        return await self.get()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._hub._remove(self)


_OVERFLOW = object()


class EventHub:
    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self.closed = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the server's event loop (called once at start)."""
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self.closed = False

    def subscribe(self, topic: str) -> Subscription:
        """Must be called on the event loop."""
        sub = Subscription(self, topic, self._queue_size)
        if self.closed:
            sub._close()
        else:
            self._subscribers[topic].add(sub)
        return sub

    def publish(self, topic: str, event: Any) -> None:
        """Deliver `event` to every subscriber of `topic`; callable from any thread."""
        if self._loop is None or self.closed:
            return
        if threading.get_ident() == self._loop_thread:
            self._fan_out(topic, event)
        else:
            self._loop.call_soon_threadsafe(self._fan_out, topic, event)

    def close(self) -> None:
        """End every subscription (server shutdown): streams finish cleanly."""
        self.closed = True
        for subs in self._subscribers.values():
            for sub in subs:
                sub._close()
        self._subscribers.clear()

    def subscriber_count(self, topic: str | None = None) -> int:
        if topic is not None:
            return len(self._subscribers.get(topic, ()))
        return sum(len(s) for s in self._subscribers.values())

    def _fan_out(self, topic: str, event: Any) -> None:
        for sub in list(self._subscribers.get(topic, ())):
            sub._offer(event)

    def _remove(self, sub: Subscription) -> None:
        subs = self._subscribers.get(sub.topic)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscribers[sub.topic]
