"""Persistence: SQLAlchemy tables, repositories and Alembic migrations."""

from .db import Database

__all__ = ["Database"]
