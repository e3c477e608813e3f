"""The deployment's domain records: status row, gate evaluations, events, and what they refer to.

All frozen: the controller makes a changed copy (`dataclasses.replace`) and
stores it, so nothing can change a deployment behind its back.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .phases import Phase, Strategy

if TYPE_CHECKING:
    from .params import DeploymentParams


class Gate(enum.Enum):
    ERROR_RATE = "error_rate"
    """Errors per request of the new version."""
    LATENCY_P95 = "latency_p95"
    """95th percentile latency of the new version, milliseconds."""
    DRIFT_SCORE = "drift_score"
    """Drift score of the new version's inputs; skipped when no drift source has a score."""
    RELATIVE_ERROR_RATE = "relative_error_rate"
    """New version's error rate minus the stable version's, over the same window, z-tested."""

    @property
    def label(self) -> str:
        """How a person reads the gate's name in a reason: `error-rate`."""
        return self.value.replace("_", "-")


class Verdict(enum.Enum):
    PASS = "PASS"
    """Enough samples and within the threshold."""
    FAIL = "FAIL"
    """Enough samples and beyond the threshold."""
    WAIT = "WAIT"
    """Too few samples to judge; never counts as a pass."""


@dataclass(frozen=True)
class GateEvaluation:
    deployment_id: str
    step: int
    gate: Gate
    #: None when nothing could be measured (no samples).
    value: float | None
    threshold: float
    window_start: dt.datetime
    window_end: dt.datetime
    samples: float
    verdict: Verdict
    critical: bool
    #: The evaluation in words, e.g. "0.500 > 0.050 over 120 requests".
    detail: str = ""


class EventKind(enum.Enum):
    CREATED = "CREATED"
    """Stored as PENDING."""
    STEP_STARTED = "STEP_STARTED"
    """Traffic (or a batch of instances) moved to the next step; the first one starts the rollout."""
    GATE_FAILED = "GATE_FAILED"
    """A non-critical gate failed; counts toward failure_limit, the step is analysed again."""
    INSTANCE_LOST = "INSTANCE_LOST"
    """A serving instance stopped sending heartbeats and is no longer counted."""
    PAUSED = "PAUSED"
    """Held by an operator."""
    RESUMED = "RESUMED"
    """Released by an operator; the current step's window starts again."""
    ROLLBACK_STARTED = "ROLLBACK_STARTED"
    """Traffic is back on the previous version (stored before this is announced)."""
    ROLLED_BACK = "ROLLED_BACK"
    """The previous version serves again. Final."""
    SUCCEEDED = "SUCCEEDED"
    """The new version is live. Final."""
    ABORTED = "ABORTED"
    """Stopped by an operator, traffic back on the previous version. Final."""
    FAILED = "FAILED"
    """Gave up (progress deadline, rollback not confirmed); traffic back on the previous version. Final."""


@dataclass(frozen=True)
class DeploymentEvent:
    """One entry of a deployment's history; `seq` counts 1, 2, 3... per deployment so streams resume."""

    seq: int
    deployment_id: str
    model: str
    kind: EventKind
    phase: Phase
    step: int
    traffic_percent: float
    message: str
    time: dt.datetime


@dataclass(frozen=True)
class Deployment:
    """The status row: everything the controller needs to take the next step after a restart."""

    id: str
    model: str
    version: str
    #: The version live when the deployment was created, where rollback returns traffic;
    #: None for a model's first deployment.
    previous_version: str | None
    strategy: Strategy
    phase: Phase
    #: The current step, counted from 1; 0 until the rollout starts.
    step: int
    #: The new version's share of traffic (or of serving instances, for rolling), 0-100.
    traffic_percent: float
    #: Non-critical gate evaluations that failed so far; rollback at params.failure_limit.
    failed_checks: int
    #: In words, why it ended the way it did (empty while it runs or after success).
    reason: str
    params: DeploymentParams
    created_at: dt.datetime
    updated_at: dt.datetime
    #: When the current step (or the rollback, while ROLLING_BACK) began: its gate window and deadline.
    step_started_at: dt.datetime | None
    finished_at: dt.datetime | None
    created_by: str
    #: How many steps the rollout takes: the plan's length, or for rolling its number of batches
    #: (estimated from the serving instances at start, corrected as batches move); 0 if unknown.
    total_steps: int = 0


@dataclass(frozen=True)
class ModelInfo:
    """What the engine needs of a registered model."""

    name: str
    live_version: str | None
    previous_version: str | None


@dataclass(frozen=True)
class VersionInfo:
    model: str
    version: str
    archived: bool


@dataclass(frozen=True)
class Instance:
    """A serving instance of a model, as its heartbeats describe it."""

    model: str
    instance_id: str
    address: str
    #: The version the controller wants it to load (None: nothing yet).
    assigned_version: str | None
    #: The version it last reported loaded.
    loaded_version: str | None
    healthy: bool
    registered_at: dt.datetime
    last_heartbeat_at: dt.datetime
    #: Missed heartbeats for too long; excluded from rollouts until it reports again.
    lost: bool

    def confirms(self, version: str | None) -> bool:
        """Serving `version` and healthy, by its last heartbeat."""
        return self.loaded_version == version and self.healthy and not self.lost
