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
import threading
from typing import Callable, Iterator, Mapping, Sequence

from sqlalchemy import JSON, BigInteger, Index, String, delete, insert, select
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


def _insert(s: Session, reports: Sequence[Report]) -> None:
    if reports:
        s.execute(insert(MetricReportRow.__table__), [
            {"model": r.model, "version": r.version, "time": r.at, "requests": r.requests, "errors": r.errors,
             "latency": r.latency.to_dict()} for r in reports])


class _Append:
    """One caller's reports, waiting for the transaction that stores them."""

    __slots__ = ("reports", "also", "done", "error")

    def __init__(self, reports: Sequence[Report], also: Callable[[Session], None] | None) -> None:
        self.reports = reports
        self.also = also
        self.done = False
        self.error: BaseException | None = None


class MetricJournal:
    """Appends are group-committed: reports that arrive while a transaction is being written wait
    for the next one and share it, instead of queueing for SQLite's write lock one by one. Each
    caller still returns only once its own reports are committed (or raises if they were not)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cond = threading.Condition()
        self._pending: list[_Append] = []
        self._writing = False

    def append(self, reports: Sequence[Report], *, also: Callable[[Session], None] | None = None) -> None:
        """Store `reports` durably before returning: all of them or, on error, none.

        `also` writes in the same transaction what else the reports change (an
        experiment's running sums), so a report is counted everywhere or nowhere.
        """
        error = self.append_all([(reports, also)])[0]
        if error is not None:
            raise error

    def append_all(self, entries: Sequence[tuple[Sequence[Report], Callable[[Session], None] | None]]
                   ) -> list[BaseException | None]:
        """`append` for several callers' reports at once: each entry is stored whole or not at all.

        Returns one outcome per entry, in order: None once stored, or why it was not (one entry's
        failing `also` loses only that entry; a failed commit loses them all).
        """
        items = [_Append(reports, also) for reports, also in entries]
        if not items:
            return []
        # All of them join the pending list together, so one transaction writes them all.
        batch: list[_Append] = []
        with self._cond:
            self._pending.extend(items)
            while self._writing and not items[-1].done:
                self._cond.wait()
            if not items[-1].done:
                # Nobody is writing: this caller writes everything that queued up, its own included.
                self._writing = True
                batch, self._pending = self._pending, []
        if batch:
            try:
                self._write(batch)
            finally:
                with self._cond:
                    for item in batch:
                        item.done = True
                    self._writing = False
                    self._cond.notify_all()
        return [item.error for item in items]

    def _write(self, batch: list[_Append]) -> None:
        try:
            with self._db.session() as s:
                # Reports with nothing else to write go in one executemany: no savepoint, no ORM unit of work
                # (which were a third of the journal's time). Only a failed commit can lose them, and then it
                # loses everyone's.
                _insert(s, [r for item in batch if item.also is None for r in item.reports])
                for item in batch:
                    if item.also is None:
                        continue
                    if len(batch) == 1:
                        self._add(s, item)
                        continue
                    try:
                        # A savepoint each: one caller's failing `also` must not lose the others' reports.
                        with s.begin_nested():
                            self._add(s, item)
                    except Exception as exc:  # noqa: BLE001 - handed to its own caller below
                        item.error = exc
        except BaseException as exc:  # the commit failed: nobody's reports are stored
            for item in batch:
                item.error = item.error or exc

    @staticmethod
    def _add(s: Session, item: _Append) -> None:
        _insert(s, item.reports)
        if item.also is not None:
            item.also(s)
        s.flush()

    def since(self, start: dt.datetime, *, until: dt.datetime | None = None,
              series: Mapping[tuple[str, str], dt.datetime] | None = None) -> Iterator[Report]:
        """Reports made after `start` (and up to `until`), oldest first, in batches.

        `series`: only these (model, version) series, each after its own time: one scan of the time index
        for all of them (a query per series scanned the same range once per series).
        """
        after_id = 0
        conditions = [MetricReportRow.time > start]
        if until is not None:
            conditions.append(MetricReportRow.time <= until)
        while True:
            with self._db.read() as s:
                # plain rows, not ORM instances: a start-up replays thousands of them
                rows = list(s.execute(select(*MetricReportRow.__table__.c)
                                      .where(*conditions, MetricReportRow.id > after_id)
                                      .order_by(MetricReportRow.id).limit(_REPLAY_BATCH)))
            for row in rows:
                if series is not None:
                    after = series.get((row.model, row.version))
                    if after is None or row.time <= after:
                        continue
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
