"""Deployments, their events and gate evaluations, traffic splits, serving instances.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from modelctl_server.store.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Also for the foreign keys to models.id: the type the ORM infers from that column on every
# backend, so autogenerate finds nothing to change.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("model_id", BigId, sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
        sa.Column("active_model_id", sa.BigInteger(), unique=True),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("previous_version", sa.String(128)),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("traffic_percent", sa.Float(), nullable=False),
        sa.Column("failed_checks", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("step_started_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("last_event_seq", sa.Integer(), nullable=False),
    )
    op.create_index("ix_deployments_model_id", "deployments", ["model_id"])
    op.create_index("ix_deployments_created_at_id", "deployments", ["created_at", "id"])
    op.create_table(
        "deployment_events",
        sa.Column("deployment_id", sa.String(32), sa.ForeignKey("deployments.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("traffic_percent", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("time", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "gate_evaluations",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("deployment_id", sa.String(32), sa.ForeignKey("deployments.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("gate", sa.String(32), nullable=False),
        sa.Column("value", sa.Float()),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("window_end", UTCDateTime(), nullable=False),
        sa.Column("samples", sa.Float(), nullable=False),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("critical", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_index("ix_gate_evaluations_deployment_id", "gate_evaluations", ["deployment_id"])
    op.create_table(
        "traffic_weights",
        sa.Column("model_id", BigId, sa.ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("version", sa.String(128), primary_key=True),
        sa.Column("percent", sa.Float(), nullable=False),
    )
    op.create_table(
        "serving_instances",
        sa.Column("model_id", BigId, sa.ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("instance_id", sa.String(128), primary_key=True),
        sa.Column("address", sa.String(256), nullable=False),
        sa.Column("assigned_version", sa.String(128)),
        sa.Column("loaded_version", sa.String(128)),
        sa.Column("healthy", sa.Boolean(), nullable=False),
        sa.Column("registered_at", UTCDateTime(), nullable=False),
        sa.Column("last_heartbeat_at", UTCDateTime(), nullable=False),
        sa.Column("lost", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("serving_instances")
    op.drop_table("traffic_weights")
    op.drop_table("gate_evaluations")
    op.drop_table("deployment_events")
    op.drop_table("deployments")
