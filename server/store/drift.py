"""Drift reference profiles: one row per model version (`drift_profiles`, migration 0004).

The drift engine writes a profile when a reference batch arrives, when it seals,
and while a live-built reference grows; once sealed it holds only bin edges and
counts, so the row stays small. Live windows are never stored.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..drift.model import ReferenceSource, StoredProfile
from .analysis_tables import DriftProfileRow
from .db import Database


class SqlDriftProfiles:
    """`drift.ProfileStore` over SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def load(self, model: str, version: str) -> StoredProfile | None:
        with self._db.read() as s:
            row = s.scalar(select(DriftProfileRow).where(DriftProfileRow.model == model,
                                                         DriftProfileRow.version == version))
            if row is None:
                return None
            return StoredProfile(row.model, row.version, ReferenceSource(row.source), row.sealed, row.profile)

    def save(self, profile: StoredProfile, at: dt.datetime) -> None:
        """Insert or replace the version's profile."""
        try:
            self._upsert(profile, at)
        except IntegrityError:
            # Another replica inserted the row between our read and our insert: it exists now.
            self._upsert(profile, at)

    def _upsert(self, profile: StoredProfile, at: dt.datetime) -> None:
        with self._db.session() as s:
            row = s.scalar(select(DriftProfileRow).where(DriftProfileRow.model == profile.model,
                                                         DriftProfileRow.version == profile.version))
            if row is None:
                s.add(DriftProfileRow(model=profile.model, version=profile.version, source=profile.source.value,
                                      sealed=profile.sealed, profile=profile.data, updated_at=at))
                return
            row.source = profile.source.value
            row.sealed = profile.sealed
            row.profile = profile.data
            row.updated_at = at
