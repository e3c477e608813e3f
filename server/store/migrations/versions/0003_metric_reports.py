"""The metrics journal: acknowledged reports, replayed into memory on start.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from modelctl_server.store.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "metric_reports",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("latency", sa.JSON(), nullable=False),
    )
    op.create_index("ix_metric_reports_time", "metric_reports", ["time"])


def downgrade() -> None:
    op.drop_table("metric_reports")
