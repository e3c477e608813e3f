"""The migrations build exactly the schema the tables declare, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from modelctl_server.store import (  # noqa: F401 - registers their tables
    alert_tables,
    analysis_tables,
    deployment_tables,
    metric_journal,
    pipeline_tables,
)
from modelctl_server.store.db import Database
from modelctl_server.store.tables import Base


def test_migrated_schema_matches_the_tables(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    db.migrate()  # idempotent: a restart migrates again
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    db.dispose()
    assert diff == [], diff
