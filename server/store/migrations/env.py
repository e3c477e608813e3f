"""Alembic environment: migrations run on the connection `Database.migrate` hands in."""

from alembic import context

# Every table module is imported so the metadata is complete (autogenerate compares against it).
from modelctl_server.store import (  # noqa: F401
    alert_tables,
    analysis_tables,
    deployment_tables,
    metric_journal,
    pipeline_tables,
)
from modelctl_server.store.tables import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
