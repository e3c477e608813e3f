"""The notification outbox as the worker sees it: what is due, and recording each attempt's outcome.

Rows are written by the alert engine in the alert change's own transaction
(`AlertTx.add_outbox`), so a committed change always has its notifications
queued; this module only reads them and moves them to SENT or FAILED.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, update

from .alert_tables import OutboxRow
from .db import Database

PENDING, SENT, FAILED = "PENDING", "SENT", "FAILED"


@dataclass(frozen=True)
class Due:
    id: int
    alert_id: str
    destination: str
    scheme: str
    attempts: int
    created_at: dt.datetime
    notify_type: str
    title: str
    body: str


@dataclass(frozen=True)
class DestinationCounts:
    destination: str
    scheme: str
    sent: int
    failed: int
    pending: int


class OutboxStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def due(self, now: dt.datetime, limit: int = 500) -> list[Due]:
        """Pending notifications whose next attempt is due, oldest first."""
        query = (select(OutboxRow).where(OutboxRow.state == PENDING, OutboxRow.next_attempt_at <= now)
                 .order_by(OutboxRow.id).limit(limit))
        with self._db.read() as s:
            return [Due(r.id, r.alert_id, r.destination, r.scheme, r.attempts, r.created_at, r.notify_type,
                        r.title, r.body) for r in s.scalars(query)]

    def next_due(self) -> dt.datetime | None:
        with self._db.read() as s:
            return s.scalar(select(func.min(OutboxRow.next_attempt_at)).where(OutboxRow.state == PENDING))

    def sent(self, ids: list[int], now: dt.datetime) -> None:
        with self._db.session() as s:
            s.execute(update(OutboxRow).where(OutboxRow.id.in_(ids), OutboxRow.state == PENDING)
                      .values(state=SENT, sent_at=now, attempts=OutboxRow.attempts + 1, last_error=""))

    def retry(self, ids: list[int], at: dt.datetime, error: str) -> None:
        with self._db.session() as s:
            s.execute(update(OutboxRow).where(OutboxRow.id.in_(ids), OutboxRow.state == PENDING)
                      .values(next_attempt_at=at, attempts=OutboxRow.attempts + 1, last_error=error[:2000]))

    def postpone(self, ids: list[int], at: dt.datetime) -> None:
        """Not attempted (their destination just failed another one): due again at `at`, attempts unchanged."""
        with self._db.session() as s:
            s.execute(update(OutboxRow).where(OutboxRow.id.in_(ids), OutboxRow.state == PENDING)
                      .values(next_attempt_at=at))

    def failed(self, ids: list[int], error: str) -> None:
        with self._db.session() as s:
            s.execute(update(OutboxRow).where(OutboxRow.id.in_(ids), OutboxRow.state == PENDING)
                      .values(state=FAILED, attempts=OutboxRow.attempts + 1, last_error=error[:2000]))

    def abandon(self, ids: list[int], error: str) -> None:
        """Give up without an attempt (the destination left the config)."""
        with self._db.session() as s:
            s.execute(update(OutboxRow).where(OutboxRow.id.in_(ids), OutboxRow.state == PENDING)
                      .values(state=FAILED, last_error=error[:2000]))

    def counts(self) -> list[DestinationCounts]:
        """Per destination: notifications sent, failed for good, and still owed."""
        query = (select(OutboxRow.destination, OutboxRow.scheme, OutboxRow.state, func.count())
                 .group_by(OutboxRow.destination, OutboxRow.scheme, OutboxRow.state))
        table: dict[tuple[str, str], dict[str, int]] = {}
        with self._db.read() as s:
            for destination, scheme, state, n in s.execute(query):
                table.setdefault((destination, scheme), {})[state] = int(n)
        return [DestinationCounts(d, sc, v.get(SENT, 0), v.get(FAILED, 0), v.get(PENDING, 0))
                for (d, sc), v in sorted(table.items())]
