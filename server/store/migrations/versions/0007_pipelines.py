"""Pipelines and the commands operators send them.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from modelctl_server.store.types import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipelines",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("job", sa.Text(), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("last_result", sa.JSON()),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("registered_at", UTCDateTime(), nullable=False),
        sa.Column("registered_by", sa.String(128), nullable=False),
    )
    op.create_table(
        "pipeline_commands",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("pipeline", sa.String(128), sa.ForeignKey("pipelines.name", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("open_optimize", sa.String(160), unique=True),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("then_deploy", sa.JSON()),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("result_version", sa.String(128), nullable=False),
        sa.Column("deployment_id", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("deadline", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("delivered_at", UTCDateTime()),
        sa.Column("acknowledged_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
    )
    op.create_index("ix_pipeline_commands_pipeline_state", "pipeline_commands", ["pipeline", "state"])
    op.create_index("ix_pipeline_commands_state_deadline", "pipeline_commands", ["state", "deadline"])
    op.create_index("ix_pipeline_commands_created_at_id", "pipeline_commands", ["created_at", "id"])


def downgrade() -> None:
    op.drop_table("pipeline_commands")
    op.drop_table("pipelines")
