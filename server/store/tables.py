"""SQLAlchemy models: the persistent state of the controller.

Changing a table means adding an Alembic migration under migrations/versions;
the server migrates on start.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .types import UTCDateTime

# BigInteger ids that are still INTEGER PRIMARY KEY (auto-increment) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime, dict[str, Any]: JSON}


class ModelRow(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[dt.datetime]
    #: The version serving production traffic; maintained by deployments.
    live_version: Mapped[str | None] = mapped_column(String(128))
    #: The rollback target.
    previous_version: Mapped[str | None] = mapped_column(String(128))

    versions: Mapped[list[VersionRow]] = relationship(back_populates="model", order_by="VersionRow.id.desc()")


class VersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    model_id: Mapped[int] = mapped_column(BigId, ForeignKey("models.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(128))
    artifact_uri: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    state: Mapped[str] = mapped_column(String(16))
    framework: Mapped[str] = mapped_column(String(64), default="")
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime]
    archived_at: Mapped[dt.datetime | None]

    model: Mapped[ModelRow] = relationship(back_populates="versions")
    tag_rows: Mapped[list[VersionTagRow]] = relationship(cascade="all, delete-orphan")


class VersionTagRow(Base):
    """Tags again, one row each, so ListModels can filter by tag in SQL on every backend."""

    __tablename__ = "model_version_tags"
    __table_args__ = (Index("ix_model_version_tags_key_value", "key", "value"),)

    version_id: Mapped[int] = mapped_column(BigId, ForeignKey("model_versions.id", ondelete="CASCADE"),
                                            primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class TokenRow(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    #: sha256 of the secret; the secret itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]
    created_by: Mapped[str] = mapped_column(String(128), default="")


class AuditRow(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_rpc", "rpc"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    time: Mapped[dt.datetime]
    token_id: Mapped[str] = mapped_column(String(32), default="")
    token_name: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(16), default="")
    rpc: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    peer: Mapped[str] = mapped_column(String(128), default="")
