"""The outbox worker: sends what the outbox owes, retries with back-off, and gives up visibly.

A supervised `PeriodicTask` (`notification-outbox`): every second, or at once
when an alert change queued something, it reads the due rows, sends them per
destination (destinations in parallel, each destination's messages in order)
and records the outcome. A failure is retried after `backoff * 1.5**n` (capped
at `max_backoff`, with jitter so a recovered endpoint is not hit by every
retry at once) until `max_attempts`, then marked FAILED and counted. After a
failure the destination's other messages of that round are not tried: they wait
for the same retry, without spending attempts. Rows live
in the database, so a restart resumes exactly what was still owed. A crash
between a send and its record sends that one message again: at-least-once,
like Alertmanager.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections import defaultdict
from typing import Any, Awaitable, Callable

from ..clock import Clock
from ..config import NotificationSettings
from ..store.outbox import Due, OutboxStore
from ..system.components import PeriodicTask, Supervisor
from . import messages
from .destinations import Destination
from .sender import SendResult, send

log = logging.getLogger(__name__)

Runner = Callable[..., Awaitable[Any]]
Sender = Callable[[Destination, str, str, str], SendResult]
#: Retry pauses grow by this factor, as Alertmanager's do.
BACKOFF_FACTOR = 1.5


def retry_delay(attempts: int, settings: NotificationSettings, rng: Callable[[float, float], float]) -> float:
    """Pause before attempt `attempts + 1`: exponential, capped, drawn in [half, all] of it."""
    ceiling = min(settings.max_backoff, settings.backoff * BACKOFF_FACTOR ** max(0, attempts - 1))
    return rng(ceiling / 2, ceiling)


class OutboxWorker(PeriodicTask):
    def __init__(self, store: OutboxStore, destinations: list[Destination], settings: NotificationSettings,
                 run: Runner, clock: Clock, supervisor: Supervisor, *, recorder=None,  # type: ignore[no-untyped-def]
                 sender: Sender = send, interval: float = 1.0,
                 rng: Callable[[float, float], float] = random.uniform) -> None:
        super().__init__("notification-outbox", interval, clock, supervisor)
        self.store = store
        self.destinations = {d.key: d for d in destinations}
        self.settings = settings
        self._run = run
        self._recorder = recorder
        self._send = sender
        self._rng = rng
        #: One round at a time, whoever calls tick: two rounds reading the same due rows would send twice.
        self._round = asyncio.Lock()

    def reconfigure(self, destinations: list[Destination], settings: NotificationSettings) -> None:
        self.destinations = {d.key: d for d in destinations}
        self.settings = settings

    async def tick(self) -> None:
        async with self._round:
            await self._send_due()

    async def _send_due(self) -> None:
        now = self._clock.now()
        due = await self._run(self.store.due, now)
        groups: dict[str, list[Due]] = defaultdict(list)
        for row in due:
            groups[row.destination].append(row)
        gone = [row.id for key, rows in groups.items() if key not in self.destinations for row in rows]
        if gone:
            await self._run(self.store.abandon, gone, "the destination is no longer configured")
        wait = self.settings.group_wait
        batches = []
        for key, rows in groups.items():
            if key not in self.destinations:
                continue
            if wait > 0 and min(r.created_at for r in rows) > now - dt.timedelta(seconds=wait):
                continue  # still gathering: alerts raised within group_wait go out as one message
            batches.append((self.destinations[key], rows))
        await asyncio.gather(*(self._deliver(d, rows) for d, rows in batches))
        await self.export()

    async def _deliver(self, destination: Destination, rows: list[Due]) -> None:
        if self.settings.group_wait > 0:
            chunks = [rows]
        else:
            chunks = [[row] for row in rows]
        for i, chunk in enumerate(chunks):
            title, body, kind = messages.grouped([(r.title, r.body, r.notify_type) for r in chunk])
            result = await self._run(self._send, destination, title, body, kind)
            retry_at = await self._record(destination, chunk, result)
            rest = [r.id for later in chunks[i + 1:] for r in later]
            if not result.delivered and rest:
                # check the destination is back before the rest: a dead endpoint can cost a connect timeout
                # per message, and the round (every destination's next one) would wait for them all
                at = retry_at or self._clock.now() + dt.timedelta(seconds=retry_delay(1, self.settings, self._rng))
                await self._run(self.store.postpone, rest, at)
                return

    async def _record(self, destination: Destination, rows: list[Due], result: SendResult) -> dt.datetime | None:
        """Store the outcome; returns when the rows left pending are due again (None: none left)."""
        ids = [r.id for r in rows]
        now = self._clock.now()
        if result.delivered:
            await self._run(self.store.sent, ids, now)
            self._count("sent", destination, len(ids))
            return None
        # each row counts its own attempts: one grouped with an old retry is not spent by it
        spent = [r.id for r in rows if r.attempts + 1 >= self.settings.max_attempts]
        if spent:
            await self._run(self.store.failed, spent, result.error)
            self._count("failed", destination, len(spent))
            log.warning("notification to %s failed for good after %d attempts: %s", destination.masked,
                        self.settings.max_attempts, result.error)
        again = [r for r in rows if r.attempts + 1 < self.settings.max_attempts]
        if not again:
            return None
        attempts = max(r.attempts for r in again) + 1
        delay = retry_delay(attempts, self.settings, self._rng)
        at = now + dt.timedelta(seconds=delay)
        await self._run(self.store.retry, [r.id for r in again], at, result.error)
        log.info("notification to %s failed (attempt %d of %d), retrying in %.1fs: %s", destination.masked,
                 attempts, self.settings.max_attempts, delay, result.error)
        return at

    def _count(self, outcome: str, destination: Destination, n: int) -> None:
        if self._recorder is not None:
            self._recorder.observe_notification(outcome, destination.scheme, n)

    async def export(self) -> None:
        """Pending notifications per scheme into the gauge (a restart starts from the database)."""
        if self._recorder is None:
            return
        pending: dict[str, int] = defaultdict(int)
        for c in await self._run(self.store.counts):
            pending[c.scheme] += c.pending
        self._recorder.set_notifications_pending(dict(pending))
