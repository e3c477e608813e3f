"""Deployments store how many steps they take: a rolling update's number of batches.

A rolling update's length depends on the serving instances when it starts, so it
cannot be derived from its parameters later; the controller stores it.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch_alter_table: SQLite cannot alter a table in place; PostgreSQL gets a plain ALTER.
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("total_steps", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("total_steps")
