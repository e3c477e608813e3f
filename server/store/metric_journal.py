"""The metrics journal: every acknowledged report, kept until it is too old to matter.

Reports are aggregated in memory (`telemetry.MetricsStore`) for speed; this
journal makes them durable. `ReportMetrics` appends before it answers, and a
starting server replays the journal, so a restarted controller judges its
canaries on the traffic it had already been told about. Rows are reports
(batches, each already summarised as a latency histogram), never single
requests; the pruner drops rows older than the store's retention.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable, Iterator, Sequence

from sqlalchemy import JSON, BigInteger, Index, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..telemetry.histogram import LatencyHistogram
from ..telemetry.store import Report
from .db import Database
from .tables import Base, BigId

#: Rows read per round trip when replaying.
_REPLAY_BATCH = 5000


class MetricReportRow(Base):
    __tablename__ = "metric_reports"
    __table_args__ = (Index("ix_metric_reports_time", "time"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(128))
    time: Mapped[dt.datetime]
    requests: Mapped[int] = mapped_column(BigInteger)
    errors: Mapped[int] = mapped_column(BigInteger)
    #: The report's latency histogram, {bucket index: weight}.
    latency: Mapped[dict[str, float]] = mapped_column(JSON)


class MetricJournal:
    def __init__(self, db: Database) -> None:
        self._db = db

    def append(self, reports: Sequence[Report], *, also: Callable[[Session], None] | None = None) -> None:
        """Store `reports` in one transaction: all of them or, on error, none.

        `also` writes in the same transaction what else the reports change (an
        experiment's running sums), so a report is counted everywhere or nowhere.
        """
        with self._db.session() as s:
            s.add_all(MetricReportRow(model=r.model, version=r.version, time=r.at, requests=r.requests,
                                      errors=r.errors, latency=r.latency.to_dict()) for r in reports)
            if also is not None:
                also(s)

    def since(self, start: dt.datetime) -> Iterator[Report]:
        """Reports made after `start`, oldest first, read in batches."""
        after_id = 0
        while True:
            with self._db.read() as s:
                rows = list(s.scalars(select(MetricReportRow)
                                      .where(MetricReportRow.time > start, MetricReportRow.id > after_id)
                                      .order_by(MetricReportRow.id).limit(_REPLAY_BATCH)))
            for row in rows:
                yield Report(model=row.model, version=row.version, requests=row.requests, errors=row.errors,
                             latency=LatencyHistogram.from_dict(row.latency), at=row.time)
            if len(rows) < _REPLAY_BATCH:
                return
            after_id = rows[-1].id

    def prune(self, before: dt.datetime) -> int:
        """Delete reports made before `before`; returns how many."""
        with self._db.session() as s:
            result = s.execute(delete(MetricReportRow).where(MetricReportRow.time < before))
            return result.rowcount or 0
