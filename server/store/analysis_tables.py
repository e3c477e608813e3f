"""Tables of drift and experiments: reference profiles, experiments and their arms' running sums.

Created by migration 0004. Live drift windows are not stored: they are counts in
memory, bounded, and rebuilt by the traffic that follows a restart. What must
survive a restart is here: each version's reference profile, and every
experiment with the sums its verdict is computed from.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .tables import Base, BigId


class DriftProfileRow(Base):
    """A model version's reference profile: while open, the reference values; once sealed, bins and counts."""

    __tablename__ = "drift_profiles"
    __table_args__ = (UniqueConstraint("model", "version", name="uq_drift_profiles_model_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(128))
    #: "reference" (built from reference samples) or "live" (the first live values).
    source: Mapped[str] = mapped_column(String(16))
    #: Bins are fixed once sealed; live windows are counted in them.
    sealed: Mapped[bool] = mapped_column(Boolean)
    #: The profile itself (features, predictions, quality), as the drift engine serialises it.
    profile: Mapped[dict[str, Any]]
    updated_at: Mapped[dt.datetime]


class ExperimentRow(Base):
    __tablename__ = "experiments"
    __table_args__ = (Index("ix_experiments_created_at_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    #: The model's id while the experiment runs, NULL once stopped: one running experiment per model.
    active_model_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    control_version: Mapped[str] = mapped_column(String(128))
    treatment_version: Mapped[str] = mapped_column(String(128))
    treatment_percent: Mapped[float] = mapped_column(Float)
    metric: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    min_effect: Mapped[float] = mapped_column(Float)
    alpha: Mapped[float] = mapped_column(Float)
    power: Mapped[float] = mapped_column(Float)
    #: The smallest always-valid p-value seen so far (the sequential p-value never rises).
    sequential_p_value: Mapped[float] = mapped_column(Float, default=1.0)
    created_at: Mapped[dt.datetime]
    stopped_at: Mapped[dt.datetime | None]
    created_by: Mapped[str] = mapped_column(String(128), default="")
    stopped_by: Mapped[str] = mapped_column(String(128), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    #: The canary deployment of the winner, when stopped with promote_winner.
    deployment_id: Mapped[str | None] = mapped_column(String(32))


class ExperimentArmRow(Base):
    """Running sums of one arm, added to in the same transaction that journals the report."""

    __tablename__ = "experiment_arms"

    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True)
    #: "control" or "treatment".
    arm: Mapped[str] = mapped_column(String(16), primary_key=True)
    version: Mapped[str] = mapped_column(String(128))
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)
    successes: Mapped[int] = mapped_column(BigInteger, default=0)
    trials: Mapped[int] = mapped_column(BigInteger, default=0)
    value_count: Mapped[int] = mapped_column(BigInteger, default=0)
    value_sum: Mapped[float] = mapped_column(Float, default=0.0)
    value_sum_squares: Mapped[float] = mapped_column(Float, default=0.0)
    latency_count: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_sum: Mapped[float] = mapped_column(Float, default=0.0)
    latency_sum_squares: Mapped[float] = mapped_column(Float, default=0.0)
