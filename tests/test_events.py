"""The event hub behind the server streams."""

from __future__ import annotations

import asyncio
import threading

import pytest

from modelctl_server.events import EventHub, SubscriberOverflow


async def test_every_subscriber_gets_every_event_in_order() -> None:
    hub = EventHub()
    hub.bind(asyncio.get_running_loop())
    a, b, other = hub.subscribe("t"), hub.subscribe("t"), hub.subscribe("u")
    for i in range(3):
        hub.publish("t", i)
    assert [await a.get() for _ in range(3)] == [0, 1, 2]
    assert [await b.get() for _ in range(3)] == [0, 1, 2]
    assert other.pending == 0


async def test_publish_from_worker_threads() -> None:
    hub = EventHub()
    hub.bind(asyncio.get_running_loop())
    sub = hub.subscribe("t")
    threads = [threading.Thread(target=lambda n=n: [hub.publish("t", (n, i)) for i in range(50)]) for n in range(4)]
    for t in threads:
        t.start()
    got = [await asyncio.wait_for(sub.get(), 5) for _ in range(200)]
    for t in threads:
        t.join()
    for n in range(4):
        assert [i for m, i in got if m == n] == list(range(50))  # per-publisher order kept


async def test_slow_subscriber_is_told_it_overflowed() -> None:
    hub = EventHub(queue_size=3)
    hub.bind(asyncio.get_running_loop())
    sub = hub.subscribe("t")
    for i in range(10):
        hub.publish("t", i)
    with pytest.raises(SubscriberOverflow):
        for _ in range(10):
            await sub.get()


async def test_close_ends_streams_and_unsubscribe_cleans_up() -> None:
    hub = EventHub()
    hub.bind(asyncio.get_running_loop())
    async with hub.subscribe("t") as sub:
        assert hub.subscriber_count("t") == 1
    assert hub.subscriber_count() == 0
    sub = hub.subscribe("t")
    reader = asyncio.create_task(_drain(sub))
    await asyncio.sleep(0)
    hub.close()
    assert await asyncio.wait_for(reader, 5) == []


async def _drain(sub) -> list:  # type: ignore[no-untyped-def]
    return [e async for e in sub]


async def test_subscribers_are_woken_in_the_order_they_subscribed() -> None:
    # Streams opened together usually share a connection; waking them in that order lets grpc write
    # their messages together (bench/alert_fanout.py: p99 at 1,000 subscribers about 130 -> 90 ms).
    hub = EventHub()
    hub.bind(asyncio.get_running_loop())
    subs = [hub.subscribe("t") for _ in range(50)]
    subs[10].close()
    woken: list[int] = []

    async def read(i: int) -> None:
        await subs[i].get()
        woken.append(i)

    tasks = [asyncio.create_task(read(i)) for i in reversed(range(50)) if i != 10]
    await asyncio.sleep(0)  # every reader waits
    hub.publish("t", "event")
    await asyncio.gather(*tasks)
    assert woken == [i for i in range(50) if i != 10]


async def test_a_publishing_thread_can_wait_until_every_woken_subscriber_took_its_event() -> None:
    """The alert announcer waits so that its thread does not compete with the fan-out for the GIL."""
    hub = EventHub()
    hub.bind(asyncio.get_running_loop())
    received: list[int] = []
    subs = [hub.subscribe("alerts") for _ in range(200)]

    async def read(sub) -> None:  # type: ignore[no-untyped-def]
        received.append(await sub.get())

    readers = [asyncio.ensure_future(read(sub)) for sub in subs]
    await asyncio.sleep(0)  # every reader waits on its subscription

    def publisher() -> tuple[bool, int]:
        hub.publish("alerts", 7)
        delivered = hub.wait_delivered(5)
        return delivered, len(received)

    delivered, after_wait = await asyncio.to_thread(publisher)
    assert delivered and after_wait == 200 and set(received) == {7}
    assert hub.wait_delivered(5)  # on the loop's own thread: returns at once, never blocks the loop
    await asyncio.gather(*readers)
