"""Tables of the deployment engine: deployments, their history, traffic splits, serving instances.

Created by migration 0002. Models are referenced by id; the repository in
`deployments.py` maps rows to the domain records of `modelctl_server.deployments`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .tables import Base, BigId


class DeploymentRow(Base):
    __tablename__ = "deployments"
    __table_args__ = (Index("ix_deployments_created_at_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    #: The model's id while the deployment is active, NULL once it is final. Unique, so the
    #: database itself refuses a second active deployment of one model.
    active_model_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    version: Mapped[str] = mapped_column(String(128))
    previous_version: Mapped[str | None] = mapped_column(String(128))
    strategy: Mapped[str] = mapped_column(String(16))
    phase: Mapped[str] = mapped_column(String(16))
    step: Mapped[int] = mapped_column(Integer)
    traffic_percent: Mapped[float] = mapped_column(Float)
    failed_checks: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    step_started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    created_by: Mapped[str] = mapped_column(String(128), default="")
    #: The seq of the newest event: the next one gets this + 1 (the row is locked while writing).
    last_event_seq: Mapped[int] = mapped_column(Integer, default=0)
    #: Steps the rollout takes (migration 0006): for rolling, its number of batches.
    total_steps: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class DeploymentEventRow(Base):
    __tablename__ = "deployment_events"

    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"),
                                               primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    phase: Mapped[str] = mapped_column(String(16))
    step: Mapped[int] = mapped_column(Integer)
    traffic_percent: Mapped[float] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)
    time: Mapped[dt.datetime]


class GateEvaluationRow(Base):
    __tablename__ = "gate_evaluations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    gate: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    window_start: Mapped[dt.datetime]
    window_end: Mapped[dt.datetime]
    samples: Mapped[float] = mapped_column(Float)
    verdict: Mapped[str] = mapped_column(String(8))
    critical: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str] = mapped_column(Text, default="")


class TrafficWeightRow(Base):
    """One row per version in a model's traffic split; a model without rows has no split yet."""

    __tablename__ = "traffic_weights"

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[str] = mapped_column(String(128), primary_key=True)
    percent: Mapped[float] = mapped_column(Float)


class InstanceRow(Base):
    __tablename__ = "serving_instances"

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    address: Mapped[str] = mapped_column(String(256), default="")
    assigned_version: Mapped[str | None] = mapped_column(String(128))
    loaded_version: Mapped[str | None] = mapped_column(String(128))
    healthy: Mapped[bool] = mapped_column(Boolean)
    registered_at: Mapped[dt.datetime]
    last_heartbeat_at: Mapped[dt.datetime]
    lost: Mapped[bool] = mapped_column(Boolean)
