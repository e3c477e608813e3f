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
from collections import defaultdict, deque
from typing import Any, AsyncIterator

_CLOSED = object()


class SubscriberOverflow(Exception):
    """The subscriber fell more than its queue size behind."""


class Subscription:
    """One reader's bounded buffer of a topic's events.

    A deque and one waiting future rather than an `asyncio.Queue`: the hub wakes every subscriber of a
    topic for each event (1,000 for an alert with 1,000 `StreamAlerts` subscribers), and the queue's
    getter bookkeeping was a tenth of the event loop's time in that fan-out. One reader per
    subscription (its stream), so one waiter is enough.
    """

    def __init__(self, hub: EventHub, topic: str, maxsize: int) -> None:
        self._hub = hub
        self.topic = topic
        self._items: deque[Any] = deque()
        self._maxsize = maxsize
        self._waiter: asyncio.Future[None] | None = None
        self.overflowed = False

    def _offer(self, event: Any) -> None:
        if self.overflowed:
            return
        if len(self._items) >= self._maxsize:
            self.overflowed = True
            # Make room for the marker so the reader wakes and learns it fell behind.
            self._items.popleft()
            event = _OVERFLOW
        self._push(event)

    def _close(self) -> None:
        if len(self._items) >= self._maxsize:
            self._items.popleft()
        self._push(_CLOSED)

    def _push(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def pending(self) -> int:
        """Events buffered and not read yet."""
        return len(self._items)

    async def get(self) -> Any:
        """The next event; raises StopAsyncIteration when the hub closes."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._items.popleft()
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
        #: topic -> subscribers in the order they subscribed (a dict as an ordered set): see `_fan_out`.
        self._subscribers: dict[str, dict[Subscription, None]] = defaultdict(dict)
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
            self._subscribers[topic][sub] = None
        return sub

    def publish(self, topic: str, event: Any) -> None:
        """Deliver `event` to every subscriber of `topic`; callable from any thread."""
        if self._loop is None or self.closed:
            return
        if threading.get_ident() == self._loop_thread:
            self._fan_out(topic, event)
        else:
            self._loop.call_soon_threadsafe(self._fan_out, topic, event)

    def wait_delivered(self, timeout: float) -> bool:
        """From a thread other than the loop's: block until every subscriber this thread's publishes woke
        has run (taken its events and handed them to its stream), or `timeout` seconds passed.

        A publisher that goes on with more work meanwhile competes with the fan-out for the GIL: at a
        thousand alert streams that was a tenth of the delivery time. True once delivered; on the loop's
        own thread, or with no loop, returns at once.
        """
        loop = self._loop
        if loop is None or self.closed or threading.get_ident() == self._loop_thread:
            return True
        delivered = threading.Event()
        try:
            # Queued after the fan-outs this thread asked for; they wake their subscribers with call_soon,
            # so a call_soon from here runs after every woken subscriber's step.
            loop.call_soon_threadsafe(loop.call_soon, delivered.set)
        except RuntimeError:  # the loop is closed
            return True
        return delivered.wait(timeout)

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
            subs.pop(sub, None)
            if not subs:
                del self._subscribers[sub.topic]
