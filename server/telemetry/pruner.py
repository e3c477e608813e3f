"""Drops journaled metric reports once they are older than any window can reach."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Awaitable, Callable

from ..clock import Clock
from ..store.metric_journal import MetricJournal
from ..system.components import PeriodicTask, Supervisor
from .store import MetricsStore

log = logging.getLogger(__name__)


class JournalPruner(PeriodicTask):
    def __init__(self, journal: MetricJournal, store: MetricsStore, run: Callable[..., Awaitable[Any]],
                 clock: Clock, supervisor: Supervisor, interval: float = 60.0) -> None:
        super().__init__("metrics-journal-pruner", interval, clock, supervisor)
        self._journal = journal
        self._store = store
        self._run = run
        self._clock = clock

    async def tick(self) -> None:
        cutoff = self._clock.now() - dt.timedelta(seconds=self._store.retention_seconds)
        removed = await self._run(self._journal.prune, cutoff)
        if removed:
            log.debug("pruned %d metric reports older than %s", removed, cutoff.isoformat())
