"""The database watchdog: health follows the database, and the loops recover with it.

Every call needs the database, so a controller that cannot reach it should not be
sent traffic: probes see NOT_SERVING while it is unreachable (or a SQLite file is
locked by another process), and calls meanwhile answer UNAVAILABLE (`store.db`).
When the database answers again the watchdog turns health back to SERVING and
wakes every background loop, which may be backing off for up to 30 s, so the whole
controller is back within a second or two of the database, without a restart.

The probe runs on its own thread (not the store's pool, which an outage fills
with calls waiting on the busy timeout) and is given `timeout` seconds: a probe
that hangs counts as a failure, and the next one starts only when it has ended.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Awaitable, Callable

from ..clock import Clock
from ..store.db import Database
from .components import PeriodicTask, Supervisor

log = logging.getLogger(__name__)

#: Told True when the database is reachable again, False when it stops being.
HealthListener = Callable[[bool], Awaitable[None]]


class DatabaseWatchdog(PeriodicTask):
    """Probes the database every `interval` seconds; reports its state and turns health with it."""

    def __init__(self, db: Database, clock: Clock, supervisor: Supervisor, on_change: HealthListener, *,
                 interval: float = 1.0, timeout: float = 2.0) -> None:
        super().__init__("database-watchdog", interval, clock, supervisor)
        self._db = db
        self._on_change = on_change
        self.timeout = timeout
        #: False from the first failed probe until one succeeds again.
        self.reachable = True
        self._down_since: str = ""
        self._probe: asyncio.Future[None] | None = None

    async def tick(self) -> None:
        error = await self._probe_once()
        if error is None and not self.reachable:
            self.reachable = True
            log.warning("the database is reachable again (down since %s); health SERVING", self._down_since)
            self._supervisor.report_running(self.name, "")
            await self._on_change(True)
            self._supervisor.wake_all()  # loops backing off try again now, not in up to 30 s
        elif error is not None:
            if self.reachable:
                self.reachable = False
                self._down_since = self._clock.now().isoformat(timespec="seconds")
                log.error("the database is unreachable (%s); health NOT_SERVING until it answers", error)
                await self._on_change(False)
            self._supervisor.report_failure(self.name, f"database unreachable since {self._down_since}: {error}")

    async def _probe_once(self) -> str | None:
        """None when the database took a write lock (or a round trip) in time, else why not."""
        if self._probe is None or self._probe.done():
            if self._probe is not None and not self._probe.cancelled():
                self._probe.exception()  # an old probe that timed out: its outcome is stale, but retrieved
            loop = asyncio.get_running_loop()
            self._probe = loop.create_future()
            threading.Thread(target=self._run_probe, args=(loop, self._probe), name="db-watchdog",
                             daemon=True).start()
        # asyncio.wait, not wait_for(shield(...)): on Python 3.11, wait_for swallows a cancellation that
        # arrives as the probe settles (CPython gh-86296), and the watchdog then slept on instead of
        # stopping, so a server's stop hung for good. wait() neither cancels the probe on timeout nor
        # swallows a cancellation.
        await asyncio.wait({self._probe}, timeout=self.timeout)
        if not self._probe.done():
            return f"no answer within {self.timeout:g}s"
        exc = self._probe.exception()
        if exc is not None:  # every failure means unreachable; say which
            return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None

    def _run_probe(self, loop: asyncio.AbstractEventLoop, result: asyncio.Future[None]) -> None:
        try:
            self._db.check_writable(self.timeout)
        except Exception as exc:  # noqa: BLE001 - handed to the loop
            _settle(loop, result, exc)
        else:
            _settle(loop, result, None)


def _settle(loop: asyncio.AbstractEventLoop, result: asyncio.Future[None], exc: BaseException | None) -> None:
    def settle() -> None:
        if result.done():
            return
        if exc is None:
            result.set_result(None)
        else:
            result.set_exception(exc)
    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:
        pass  # the loop closed while the probe ran: nobody is waiting
