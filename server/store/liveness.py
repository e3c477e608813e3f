"""Serving instances' last heartbeat, kept in memory and written in batches.

A heartbeat that changes nothing (same loaded version, same health, not lost)
only says "still alive". Writing that in its own transaction made heartbeats the
busiest writer of the database: 5,000 instances every 5 s is 1,000 write
transactions a second. `Liveness` keeps the newest time per instance, and
`LivenessFlusher` writes them all in one transaction every `interval` (1 s by
default), long before the lost-instance cutoff (3 heartbeat intervals, 15 s).

The trade-off, accepted on purpose:
- a crash loses at most one interval of "last seen" times. It cannot make a live
  fleet lost: the controller excuses its own downtime (`_drop_silent` marks
  nothing lost until it has been up for a whole cutoff), and by then the fleet's
  heartbeats have been heard and flushed again;
- the stored `last_heartbeat_at` lags memory by up to one interval, so `lost`
  is decided up to one interval late; and if flushing stalled past the cutoff, a
  live instance could be marked lost. Its next heartbeat then takes the full path
  (the cache of known instances is dropped by the `lost` write) and clears it,
  announcing the change like any instance coming back.
What changes state (loaded version, health, `lost` cleared) is never batched: it is
written before the Heartbeat is answered (`InstanceService.report`).

The flush writes only `last_heartbeat_at`, which no cache reads, through the
connection rather than the ORM session, so it does not empty the caches that
watch the serving_instances table (see `change_feed`).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any, Awaitable, Callable

from sqlalchemy import bindparam, select, update

from ..clock import Clock
from ..system.components import PeriodicTask, Supervisor
from .db import Database
from .deployment_tables import InstanceRow
from .tables import ModelRow

log = logging.getLogger(__name__)


class Liveness:
    """The newest heartbeat time of each instance that is not written yet; thread-safe."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], dt.datetime] = {}

    def seen(self, model: str, instance_id: str, at: dt.datetime) -> None:
        with self._lock:
            self._pending[(model, instance_id)] = at

    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> int:
        """Write every pending time in one transaction; returns how many instances were written."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        try:
            with self._db.session() as s:
                names = {model for model, _ in batch}
                ids = dict(s.execute(select(ModelRow.name, ModelRow.id).where(ModelRow.name.in_(names))).all())
                rows = [{"m": ids[model], "i": instance_id, "t": at}
                        for (model, instance_id), at in batch.items() if model in ids]
                if rows:
                    # Never backwards: a full-path heartbeat may have written a newer time meanwhile.
                    statement = (update(InstanceRow.__table__)
                                 .where(InstanceRow.__table__.c.model_id == bindparam("m"),
                                        InstanceRow.__table__.c.instance_id == bindparam("i"),
                                        InstanceRow.__table__.c.last_heartbeat_at < bindparam("t"))
                                 .values(last_heartbeat_at=bindparam("t")))
                    s.connection().execute(statement, rows)
        except BaseException:
            with self._lock:  # not written: keep them for the next flush, unless newer ones arrived
                for key, at in batch.items():
                    self._pending.setdefault(key, at)
            raise
        return len(batch)


class LivenessFlusher(PeriodicTask):
    """Flushes `Liveness` every `interval` seconds, and once more when the server stops."""

    def __init__(self, liveness: Liveness, run: Callable[..., Awaitable[Any]], clock: Clock,
                 supervisor: Supervisor, interval: float = 1.0) -> None:
        super().__init__("liveness-flusher", interval, clock, supervisor)
        self._liveness = liveness
        self._run = run

    async def tick(self) -> None:
        await self._run(self._liveness.flush)

    async def stop(self) -> None:
        await super().stop()
        try:
            await self._run(self._liveness.flush)
        except Exception:  # noqa: BLE001 - stopping anyway; the fleet's next heartbeats refresh the times
            log.warning("could not write the last heartbeat times while stopping", exc_info=True)
