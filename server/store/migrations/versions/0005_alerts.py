"""Alerts, their events (stream cursor), silences and the notification outbox.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from modelctl_server.store.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("open_fingerprint", sa.String(64), unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("deployment_id", sa.String(32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("acknowledged_by", sa.String(128), nullable=False),
        sa.Column("acknowledged_at", UTCDateTime()),
        sa.Column("silenced", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime()),
    )
    op.create_index("ix_alerts_fingerprint", "alerts", ["fingerprint"])
    op.create_index("ix_alerts_model", "alerts", ["model"])
    op.create_index("ix_alerts_created_at_id", "alerts", ["created_at", "id"])
    op.create_index("ix_alerts_state_resolved_at", "alerts", ["state", "resolved_at"])
    cursor = op.create_table(
        "alert_cursor",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("last", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(cursor, [{"id": 1, "last": 0}])
    op.create_table(
        "alert_events",
        sa.Column("cursor", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("alert_id", sa.String(32), sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
    )
    op.create_index("ix_alert_events_alert_id", "alert_events", ["alert_id"])
    op.create_table(
        "alert_silences",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("min_severity", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("expired_by", sa.String(128), nullable=False),
    )
    op.create_index("ix_alert_silences_expires_at", "alert_silences", ["expires_at"])
    op.create_table(
        "notification_outbox",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("alert_id", sa.String(32), sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("destination", sa.String(32), nullable=False),
        sa.Column("scheme", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime()),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("notify_type", sa.String(16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.UniqueConstraint("cursor", "destination", name="uq_notification_outbox_cursor_destination"),
    )
    op.create_index("ix_notification_outbox_state_next_attempt_at", "notification_outbox",
                    ["state", "next_attempt_at"])
    op.create_index("ix_notification_outbox_alert_destination", "notification_outbox", ["alert_id", "destination"])


def downgrade() -> None:
    op.drop_table("notification_outbox")
    op.drop_table("alert_silences")
    op.drop_table("alert_events")
    op.drop_table("alert_cursor")
    op.drop_table("alerts")
