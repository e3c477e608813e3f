"""Tables of alerts: the alerts, their change events (the stream's cursor), silences, and the outbox.

Created by migration 0005. Every alert change writes its event row and the
notifications it owes in the same transaction, so neither a stream nor a
destination can miss a change that committed, whatever crashes afterwards.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .tables import Base, BigId


class AlertRow(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_created_at_id", "created_at", "id"),
                      Index("ix_alerts_state_resolved_at", "state", "resolved_at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    #: The fingerprint while open, NULL once resolved: the database keeps one open alert per fingerprint.
    open_fingerprint: Mapped[str | None] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128), default="", index=True)
    version: Mapped[str] = mapped_column(String(128), default="")
    #: 1 INFO .. 4 CRITICAL, so "at least WARNING" is a comparison in SQL.
    severity: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    labels: Mapped[dict[str, Any]]
    deployment_id: Mapped[str] = mapped_column(String(32), default="")
    count: Mapped[int] = mapped_column(BigInteger, default=1)
    acknowledged_by: Mapped[str] = mapped_column(String(128), default="")
    acknowledged_at: Mapped[dt.datetime | None]
    silenced: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    resolved_at: Mapped[dt.datetime | None]


class AlertCursorRow(Base):
    """One row: the last cursor handed out. Locked by every alert change, so cursors commit in order."""

    __tablename__ = "alert_cursor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(BigInteger)


class AlertEventRow(Base):
    __tablename__ = "alert_events"

    cursor: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    time: Mapped[dt.datetime]
    #: The alert as this change left it: a replay shows what a live subscriber saw.
    snapshot: Mapped[dict[str, Any]]


class SilenceRow(Base):
    __tablename__ = "alert_silences"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(128), default="")
    version: Mapped[str] = mapped_column(String(128), default="")
    kind: Mapped[str] = mapped_column(String(16), default="")
    min_severity: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    expired_by: Mapped[str] = mapped_column(String(128), default="")


class OutboxRow(Base):
    """A notification owed to one destination for one alert change; sent by the outbox worker."""

    __tablename__ = "notification_outbox"
    __table_args__ = (UniqueConstraint("cursor", "destination", name="uq_notification_outbox_cursor_destination"),
                      Index("ix_notification_outbox_state_next_attempt_at", "state", "next_attempt_at"),
                      Index("ix_notification_outbox_alert_destination", "alert_id", "destination"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    #: The alert change (its event cursor) this notification describes.
    cursor: Mapped[int] = mapped_column(BigInteger)
    #: The destination's key (a hash of its URL: the URL and its secrets stay in the config).
    destination: Mapped[str] = mapped_column(String(32))
    scheme: Mapped[str] = mapped_column(String(32))
    #: PENDING, SENT or FAILED.
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime]
    sent_at: Mapped[dt.datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[int] = mapped_column(Integer)
    notify_type: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
