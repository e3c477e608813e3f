"""The database watchdog stops when told, however its probe's answer and the stop interleave."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from modelctl_server.clock import FakeClock
from modelctl_server.system import db_watchdog
from modelctl_server.system.components import Supervisor
from modelctl_server.system.db_watchdog import DatabaseWatchdog


class _GatedDatabase:
    """`check_writable` answers once the test opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()

    def check_writable(self, timeout: float) -> None:
        self.gate.wait(10)


async def _noop(_up: bool) -> None:
    return None


@pytest.mark.parametrize("hops", range(8))
async def test_a_stop_arriving_as_the_probe_answers_is_never_swallowed(hops: int, monkeypatch: Any) -> None:
    # On Python 3.11 asyncio.wait_for returns the result instead of raising when a cancellation lands
    # between its inner future finishing and the task resuming (CPython gh-86296). The watchdog used it,
    # went on to sleep, and a server's stop waited for it forever (seen as a 30 s teardown timeout).
    # The stop is delivered `hops` loop iterations after the answer, covering every point in between.
    loop = asyncio.get_running_loop()
    db = _GatedDatabase()
    watchdog = DatabaseWatchdog(db, FakeClock(), Supervisor(FakeClock()), _noop, timeout=5)  # type: ignore[arg-type]
    task = asyncio.create_task(watchdog.tick())
    settle = db_watchdog._settle
    finished_before_the_stop: list[bool] = []

    def settle_then_stop(loop_: asyncio.AbstractEventLoop, result: asyncio.Future[None], exc: Any) -> None:
        settle(loop_, result, exc)

        def later(n: int) -> None:
            if n:
                loop.call_soon(later, n - 1)
            else:
                finished_before_the_stop.append(task.done())
                task.cancel()
        loop_.call_soon_threadsafe(later, hops)

    monkeypatch.setattr(db_watchdog, "_settle", settle_then_stop)
    await asyncio.sleep(0)  # the probe thread starts
    db.gate.set()
    for _ in range(10_000):  # until the stop has been delivered (a few loop iterations)
        if finished_before_the_stop:
            break
        await asyncio.sleep(0.001)
    await asyncio.wait({task}, timeout=5)
    assert task.done() and finished_before_the_stop
    # A tick that had not finished when the stop came must end cancelled, not carry on.
    assert task.cancelled() or finished_before_the_stop == [True]
