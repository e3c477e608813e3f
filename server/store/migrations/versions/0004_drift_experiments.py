"""Drift reference profiles, experiments and their arms.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from modelctl_server.store.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "drift_profiles",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("sealed", sa.Boolean(), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("model", "version", name="uq_drift_profiles_model_version"),
    )
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("model_id", BigId, sa.ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
        sa.Column("active_model_id", sa.BigInteger(), unique=True),
        sa.Column("control_version", sa.String(128), nullable=False),
        sa.Column("treatment_version", sa.String(128), nullable=False),
        sa.Column("treatment_percent", sa.Float(), nullable=False),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("min_effect", sa.Float(), nullable=False),
        sa.Column("alpha", sa.Float(), nullable=False),
        sa.Column("power", sa.Float(), nullable=False),
        sa.Column("sequential_p_value", sa.Float(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("stopped_at", UTCDateTime()),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("stopped_by", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("deployment_id", sa.String(32)),
    )
    op.create_index("ix_experiments_model_id", "experiments", ["model_id"])
    op.create_index("ix_experiments_created_at_id", "experiments", ["created_at", "id"])
    op.create_table(
        "experiment_arms",
        sa.Column("experiment_id", sa.String(32), sa.ForeignKey("experiments.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("arm", sa.String(16), primary_key=True),
        sa.Column("version", sa.String(128), nullable=False),
        *[sa.Column(name, sa.BigInteger(), nullable=False)
          for name in ("requests", "errors", "successes", "trials", "value_count")],
        sa.Column("value_sum", sa.Float(), nullable=False),
        sa.Column("value_sum_squares", sa.Float(), nullable=False),
        sa.Column("latency_count", sa.BigInteger(), nullable=False),
        sa.Column("latency_sum", sa.Float(), nullable=False),
        sa.Column("latency_sum_squares", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("experiment_arms")
    op.drop_table("experiments")
    op.drop_table("drift_profiles")
