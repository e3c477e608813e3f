"""Alert persistence: one transaction per alert change, and the reads lists and streams need.

`AlertStore.transaction()` takes the cursor row's lock first, so alert changes
commit in cursor order on every backend (SQLite serialises writers anyway;
PostgreSQL would otherwise let cursor 6 commit before 5, and a stream reading
in between would skip 5 for good).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any, Iterator

from sqlalchemy import and_, delete, func, or_, select, update

from ..alerts.model import Alert, AlertEvent, AlertFilter, AlertKind, AlertState, Change, Severity, Silence
from ..notify.messages import Notification
from .alert_tables import AlertCursorRow, AlertEventRow, AlertRow, OutboxRow, SilenceRow
from .db import Database
from .tables import AuditRow


class AlertTx:
    """The writes of one alert change; every method runs inside the caller's transaction."""

    def __init__(self, session: Any) -> None:
        self._s = session

    def lock(self) -> None:
        """Take the cursor row's lock before anything else (one lock order: no deadlocks)."""
        self._cursor = self._s.scalars(select(AlertCursorRow).where(AlertCursorRow.id == 1).with_for_update()).one()

    def next_cursor(self) -> int:
        self._cursor.last += 1
        return self._cursor.last

    def open_alert(self, fingerprint: str) -> Alert | None:
        row = self._s.scalars(select(AlertRow).where(AlertRow.open_fingerprint == fingerprint)
                              .with_for_update()).first()
        return alert_of(row) if row else None

    def open_alerts_by_fingerprint(self, fingerprints: list[str]) -> dict[str, Alert]:
        """The open alerts with these fingerprints, locked (one query for a rule round's repeats)."""
        rows = self._s.scalars(select(AlertRow).where(AlertRow.open_fingerprint.in_(set(fingerprints)))
                               .with_for_update())
        return {r.fingerprint: alert_of(r) for r in rows}

    def get(self, alert_id: str) -> Alert | None:
        row = self._s.get(AlertRow, alert_id, with_for_update=True)
        return alert_of(row) if row else None

    def open_alerts(self, kind: AlertKind, model: str | None = None) -> list[Alert]:
        query = select(AlertRow).where(AlertRow.state == AlertState.OPEN.value, AlertRow.kind == kind.value)
        if model is not None:
            query = query.where(AlertRow.model == model)
        return [alert_of(r) for r in self._s.scalars(query)]

    def save(self, alert: Alert) -> None:
        values = _row_values(alert)
        row = self._s.get(AlertRow, alert.id)
        if row is None:
            self._s.add(AlertRow(**values))
        else:
            for key, value in values.items():
                setattr(row, key, value)
        self._s.flush()  # the unique open_fingerprint is checked now, inside this change

    def save_counted(self, alerts: list[Alert]) -> None:
        """Write what a quiet repeat changes (count, message, labels, deployment, severity, updated_at) for
        many alerts in one statement; the rest of each row is as it was."""
        if alerts:
            self._s.execute(update(AlertRow), [
                dict(id=a.id, count=a.count, message=a.message, labels=dict(a.labels),
                     deployment_id=a.deployment_id, severity=int(a.severity), updated_at=a.updated_at)
                for a in alerts])

    def add_event(self, event: AlertEvent) -> None:
        self._s.add(AlertEventRow(cursor=event.cursor, alert_id=event.alert.id, kind=event.change.value,
                                  time=event.time, snapshot=snapshot_of(event.alert)))

    def last_event_time(self, alert_id: str) -> dt.datetime | None:
        """When this alert last changed as far as streams and notifications know (its newest event)."""
        return self._s.scalar(select(func.max(AlertEventRow.time)).where(AlertEventRow.alert_id == alert_id))

    def last_event_times(self, alert_ids: list[str]) -> dict[str, dt.datetime]:
        """`last_event_time` of many alerts in one query."""
        if not alert_ids:
            return {}
        rows = self._s.execute(select(AlertEventRow.alert_id, func.max(AlertEventRow.time))
                               .where(AlertEventRow.alert_id.in_(set(alert_ids))).group_by(AlertEventRow.alert_id))
        return {alert_id: when for alert_id, when in rows}

    def active_silences(self, now: dt.datetime) -> list[Silence]:
        return [silence_of(r) for r in self._s.scalars(select(SilenceRow).where(SilenceRow.expires_at > now))]

    def last_notified(self, alert_id: str, destination: str) -> dt.datetime | None:
        """When a notification about this alert was last queued for this destination."""
        return self._s.scalar(select(func.max(OutboxRow.created_at))
                              .where(OutboxRow.alert_id == alert_id, OutboxRow.destination == destination))

    def add_outbox(self, cursor: int, alert_id: str, n: Notification, now: dt.datetime) -> None:
        self._s.add(OutboxRow(alert_id=alert_id, cursor=cursor, destination=n.destination, scheme=n.scheme,
                              state="PENDING", attempts=0, next_attempt_at=now, created_at=now, sent_at=None,
                              last_error="", severity=int(n.severity), notify_type=n.notify_type, title=n.title,
                              body=n.body))

    def owed_destinations(self, alert_id: str) -> set[str]:
        """Destinations this alert was ever queued for (a resolution goes to them only)."""
        return set(self._s.scalars(select(OutboxRow.destination).where(OutboxRow.alert_id == alert_id).distinct()))


class AlertStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[AlertTx]:
        with self._db.session() as s:
            yield AlertTx(s)

    # --- reads ----------------------------------------------------------------------------------------------

    def get(self, alert_id: str) -> Alert | None:
        with self._db.read() as s:
            row = s.get(AlertRow, alert_id)
            return alert_of(row) if row else None

    def list(self, f: AlertFilter, *, limit: int, before: tuple[dt.datetime, str] | None = None) -> list[Alert]:
        """Newest first; `before` is the (created_at, id) of the last alert of the previous page."""
        query = select(AlertRow).order_by(AlertRow.created_at.desc(), AlertRow.id.desc()).limit(limit)
        if before is not None:
            at, last_id = before
            query = query.where(or_(AlertRow.created_at < at, and_(AlertRow.created_at == at, AlertRow.id < last_id)))
        if f.min_severity is not None:
            query = query.where(AlertRow.severity >= int(f.min_severity))
        if f.state is not None:
            query = query.where(AlertRow.state == f.state.value)
        if f.model:
            query = query.where(AlertRow.model == f.model)
        if f.kind is not None:
            query = query.where(AlertRow.kind == f.kind.value)
        if f.since is not None:
            query = query.where(AlertRow.created_at >= f.since)
        if f.until is not None:
            query = query.where(AlertRow.created_at < f.until)
        with self._db.read() as s:
            return [alert_of(r) for r in s.scalars(query)]

    def events_after(self, cursor: int, limit: int) -> list[AlertEvent]:
        with self._db.read() as s:
            rows = s.scalars(select(AlertEventRow).where(AlertEventRow.cursor > cursor)
                             .order_by(AlertEventRow.cursor).limit(limit))
            return [AlertEvent(r.cursor, Change(r.kind), alert_from_snapshot(r.snapshot), r.time) for r in rows]

    def alerted_deployments(self, deployment_ids: list[str]) -> set[str]:
        """Which of these deployments already have an alert, open or resolved."""
        if not deployment_ids:
            return set()
        with self._db.read() as s:
            return set(s.scalars(select(AlertRow.deployment_id).where(AlertRow.deployment_id.in_(deployment_ids))))

    def open_fingerprints(self, kinds: list[AlertKind]) -> set[str]:
        with self._db.read() as s:
            return set(s.scalars(select(AlertRow.fingerprint).where(
                AlertRow.state == AlertState.OPEN.value, AlertRow.kind.in_([k.value for k in kinds]))))

    def last_cursor(self) -> int:
        with self._db.read() as s:
            return int(s.scalar(select(AlertCursorRow.last).where(AlertCursorRow.id == 1)) or 0)

    def open_counts(self) -> dict[Severity, int]:
        with self._db.read() as s:
            rows = s.execute(select(AlertRow.severity, func.count()).where(AlertRow.state == AlertState.OPEN.value)
                             .group_by(AlertRow.severity))
            return {Severity(sev): int(n) for sev, n in rows}

    # --- silences -------------------------------------------------------------------------------------------

    def add_silence(self, silence: Silence) -> None:
        with self._db.session() as s:
            s.add(SilenceRow(id=silence.id, model=silence.model, version=silence.version,
                             kind=silence.kind.value if silence.kind else "", min_severity=int(silence.min_severity),
                             comment=silence.comment, created_by=silence.created_by, created_at=silence.created_at,
                             expires_at=silence.expires_at, expired_by=silence.expired_by))

    def silences(self, *, active_at: dt.datetime | None) -> list[Silence]:
        query = select(SilenceRow).order_by(SilenceRow.created_at.desc(), SilenceRow.id.desc())
        if active_at is not None:
            query = query.where(SilenceRow.expires_at > active_at)
        with self._db.read() as s:
            return [silence_of(r) for r in s.scalars(query)]

    def expire_silence(self, silence_id: str, now: dt.datetime, by: str) -> Silence | None:
        """Ends it now; one already expired is returned unchanged (idempotent)."""
        with self._db.session() as s:
            row = s.get(SilenceRow, silence_id, with_for_update=True)
            if row is None:
                return None
            if row.expires_at > now:
                row.expires_at, row.expired_by = now, by
            return silence_of(row)

    # --- rotation -------------------------------------------------------------------------------------------

    def rotate(self, *, older_than: dt.datetime, keep: int, batch: int = 1000) -> int:
        """Delete resolved alerts (with their events and sent notifications) resolved before `older_than`,
        then the oldest resolved ones beyond `keep` alerts in all. Open alerts, and alerts that still
        owe a notification, are never deleted. Returns how many went."""
        owed = select(OutboxRow.alert_id).where(OutboxRow.state == "PENDING")
        deletable = and_(AlertRow.state == AlertState.RESOLVED.value, AlertRow.id.not_in(owed))
        removed = 0
        with self._db.session() as s:
            removed += self._delete(s, select(AlertRow.id).where(deletable, AlertRow.resolved_at < older_than)
                                    .limit(batch))
            excess = int(s.scalar(select(func.count()).select_from(AlertRow)) or 0) - keep
            if excess > 0:
                removed += self._delete(s, select(AlertRow.id).where(deletable)
                                        .order_by(AlertRow.resolved_at, AlertRow.id).limit(min(excess, batch)))
        return removed

    @staticmethod
    def _delete(s: Any, ids_query: Any) -> int:
        ids = list(s.scalars(ids_query))
        if not ids:
            return 0
        # Explicit child deletes: SQLite enforces ON DELETE CASCADE only with foreign_keys on, and bulk
        # deletes by id keep PostgreSQL from loading rows.
        s.execute(delete(AlertEventRow).where(AlertEventRow.alert_id.in_(ids)))
        s.execute(delete(OutboxRow).where(OutboxRow.alert_id.in_(ids)))
        s.execute(delete(AlertRow).where(AlertRow.id.in_(ids)))
        return len(ids)

    def rotate_audit(self, *, older_than: dt.datetime, keep: int, batch: int = 10_000) -> int:
        """The same rotation for the audit log: older than the retention, then the oldest beyond `keep`."""
        with self._db.session() as s:
            old = list(s.scalars(select(AuditRow.id).where(AuditRow.time < older_than).order_by(AuditRow.id)
                                 .limit(batch)))
            if old:
                s.execute(delete(AuditRow).where(AuditRow.id.in_(old)))
            excess = int(s.scalar(select(func.count()).select_from(AuditRow)) or 0) - keep
            extra: list[int] = []
            if excess > 0:
                extra = list(s.scalars(select(AuditRow.id).order_by(AuditRow.id).limit(min(excess, batch))))
                s.execute(delete(AuditRow).where(AuditRow.id.in_(extra)))
        return len(old) + len(extra)


# --- row <-> domain --------------------------------------------------------------------------------------------

def _row_values(a: Alert) -> dict[str, Any]:
    return dict(id=a.id, fingerprint=a.fingerprint,
                open_fingerprint=a.fingerprint if a.state is AlertState.OPEN else None,
                kind=a.kind.value, rule=a.rule, model=a.model, version=a.version, severity=int(a.severity),
                state=a.state.value, message=a.message, labels=dict(a.labels), deployment_id=a.deployment_id,
                count=a.count, acknowledged_by=a.acknowledged_by, acknowledged_at=a.acknowledged_at,
                silenced=a.silenced, created_at=a.created_at, updated_at=a.updated_at, resolved_at=a.resolved_at)


def alert_of(r: AlertRow) -> Alert:
    return Alert(id=r.id, fingerprint=r.fingerprint, kind=AlertKind(r.kind), rule=r.rule, model=r.model,
                 version=r.version, severity=Severity(r.severity), state=AlertState(r.state), message=r.message,
                 labels=dict(r.labels or {}), deployment_id=r.deployment_id, count=r.count,
                 acknowledged_by=r.acknowledged_by, acknowledged_at=r.acknowledged_at, silenced=r.silenced,
                 created_at=r.created_at, updated_at=r.updated_at, resolved_at=r.resolved_at)


def snapshot_of(a: Alert) -> dict[str, Any]:
    values = _row_values(a)
    values.pop("open_fingerprint")
    for key in ("acknowledged_at", "created_at", "updated_at", "resolved_at"):
        values[key] = values[key].isoformat() if values[key] is not None else None
    return values


def alert_from_snapshot(d: dict[str, Any]) -> Alert:
    def when(key: str) -> dt.datetime | None:
        return dt.datetime.fromisoformat(d[key]) if d.get(key) else None

    return Alert(id=d["id"], fingerprint=d["fingerprint"], kind=AlertKind(d["kind"]), rule=d["rule"],
                 model=d["model"], version=d["version"], severity=Severity(d["severity"]),
                 state=AlertState(d["state"]), message=d["message"], labels=dict(d.get("labels") or {}),
                 deployment_id=d["deployment_id"], count=d["count"], acknowledged_by=d["acknowledged_by"],
                 acknowledged_at=when("acknowledged_at"), silenced=d["silenced"],
                 created_at=when("created_at"), updated_at=when("updated_at"),  # type: ignore[arg-type]
                 resolved_at=when("resolved_at"))


def silence_of(r: SilenceRow) -> Silence:
    return Silence(id=r.id, model=r.model, version=r.version, kind=AlertKind(r.kind) if r.kind else None,
                   min_severity=Severity(r.min_severity), comment=r.comment, created_by=r.created_by,
                   created_at=r.created_at, expires_at=r.expires_at, expired_by=r.expired_by)


__all__ = ["AlertStore", "AlertTx", "Change"]
