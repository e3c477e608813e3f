"""Tables of pipelines and the commands sent to them.

Created by the pipelines migration. A command row is the whole truth about a
command: its state, deadline and the deployment it started, so a restarted
controller resumes every command where it was (expiry, rollout, outcome).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .tables import Base


class PipelineRow(Base):
    __tablename__ = "pipelines"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    #: The models it serves or trains (a JSON list).
    models: Mapped[dict[str, Any]]
    version: Mapped[str] = mapped_column(String(128), default="")
    labels: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16))
    job: Mapped[str] = mapped_column(Text, default="")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    last_seen: Mapped[dt.datetime]
    last_result: Mapped[dict[str, Any] | None]
    details: Mapped[dict[str, Any]]
    registered_at: Mapped[dt.datetime]
    registered_by: Mapped[str] = mapped_column(String(128), default="")


class PipelineCommandRow(Base):
    __tablename__ = "pipeline_commands"
    __table_args__ = (Index("ix_pipeline_commands_pipeline_state", "pipeline", "state"),
                      Index("ix_pipeline_commands_state_deadline", "state", "deadline"),
                      Index("ix_pipeline_commands_created_at_id", "created_at", "id"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    pipeline: Mapped[str] = mapped_column(ForeignKey("pipelines.name", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(128), default="")
    #: While an OPTIMIZE is open: its model (or "@pipeline" without one); NULL otherwise. Unique, so the
    #: database too refuses a second open OPTIMIZE of a model, whatever races.
    open_optimize: Mapped[str | None] = mapped_column(String(160), unique=True)
    parameters: Mapped[dict[str, Any]]
    config: Mapped[str] = mapped_column(Text, default="")
    #: {"strategy": ..., "overrides": {...}} or NULL.
    then_deploy: Mapped[dict[str, Any] | None]
    state: Mapped[str] = mapped_column(String(16))
    result: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    result_version: Mapped[str] = mapped_column(String(128), default="")
    deployment_id: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    deadline: Mapped[dt.datetime]
    created_by: Mapped[str] = mapped_column(String(128), default="")
    delivered_at: Mapped[dt.datetime | None]
    acknowledged_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
