"""Everything the deployment engine reads and writes, as one transactional interface.

The controller does all of one decision inside one `transaction()`: a phase
change, the traffic it moves and the events that describe it commit together
or not at all, and only after the commit are the events handed out to be
announced. `InMemoryDeploymentRepository` serves unit tests;
`modelctl_server.store.deployments.SqlDeploymentRepository` serves the server.
"""

from __future__ import annotations

import datetime as dt
from typing import Collection, ContextManager, Mapping, Protocol, Sequence

from .model import Deployment, DeploymentEvent, EventKind, GateEvaluation, Instance, ModelInfo, VersionInfo
from .phases import Phase


class ActiveDeploymentConflict(Exception):
    """Another deployment of the model became active first (a lost race on insert)."""


class DeploymentTx(Protocol):
    # --- models and versions (the registry's rows) ---
    def get_model(self, name: str, *, lock: bool = False) -> ModelInfo | None:
        """`lock` holds the model until the transaction ends, so creates for one model run one at a time."""

    def get_version(self, model: str, version: str) -> VersionInfo | None: ...

    def set_live_versions(self, model: str, live: str | None, previous: str | None) -> None: ...

    # --- deployments ---
    def get_deployment(self, deployment_id: str, *, lock: bool = False) -> Deployment | None:
        """`lock` holds the row until the transaction ends: one decision per deployment at a time."""

    def active_deployment(self, model: str) -> Deployment | None: ...

    def running_experiment(self, model: str) -> str | None:
        """The id of the model's running A/B experiment: a deployment must wait for it to stop."""

    def active_deployment_ids(self) -> list[str]: ...

    def list_deployments(self, *, model: str | None = None, phases: Collection[Phase] | None = None,
                         after: str | None = None, limit: int = 100) -> list[Deployment]:
        """Newest first; `after` is the id of the last deployment of the previous page."""

    def insert_deployment(self, deployment: Deployment) -> None:
        """Raises ActiveDeploymentConflict if the model already has an active deployment."""

    def update_deployment(self, deployment: Deployment) -> None: ...

    # --- history ---
    def append_event(self, deployment_id: str, kind: EventKind, phase: Phase, step: int,
                     traffic_percent: float, message: str, time: dt.datetime) -> DeploymentEvent:
        """Stores the event with the deployment's next sequence number (1, 2, 3...) and returns it."""

    def list_events(self, deployment_id: str, *, after_seq: int = 0,
                    limit: int | None = None) -> list[DeploymentEvent]:
        ...

    def add_evaluations(self, evaluations: Sequence[GateEvaluation]) -> None: ...

    def list_evaluations(self, deployment_id: str, *, limit: int = 50) -> list[GateEvaluation]:
        """The most recent `limit`, oldest first."""

    # --- traffic ---
    def get_traffic(self, model: str) -> dict[str, float]:
        """version -> percent; versions at 0 are loaded but get no traffic (shadow, or kept for rollback)."""

    def set_traffic(self, model: str, weights: Mapping[str, float]) -> None: ...

    # --- serving instances ---
    def list_instances(self, model: str) -> list[Instance]:
        """Ordered by instance id."""

    def get_instance(self, model: str, instance_id: str, *, lock: bool = False) -> Instance | None:
        """`lock` holds the row until the transaction ends, so an assignment cannot change under a write."""

    def save_instance(self, instance: Instance) -> None:
        """Insert or replace (registration)."""

    def record_heartbeat(self, model: str, instance_id: str, loaded_version: str | None, healthy: bool,
                         at: dt.datetime) -> Instance | None:
        """Update what the instance reports (and clear `lost`); None if it never registered."""

    def assign_instances(self, model: str, instance_ids: Collection[str], version: str | None) -> None: ...

    def mark_lost(self, model: str, instance_ids: Collection[str], heard_before: dt.datetime) -> list[str]:
        """Mark lost those still silent since `heard_before` (a heartbeat may have raced in); returns them."""


class DeploymentRepository(Protocol):
    def transaction(self) -> ContextManager[DeploymentTx]:
        """Commits when the block ends, rolls back if it raises."""

    def read(self) -> ContextManager[DeploymentTx]:
        """A transaction that only reads: it blocks no writer (on SQLite it takes no write lock)."""
