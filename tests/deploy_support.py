"""Helpers for the deployment engine tests: a fake clock, real metrics, scripted traffic.

Imported by the test modules (the lead owns conftest.py). `World` wires a
controller to an in-memory repository by default, or to any repository given.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable, Sequence

from modelctl_server.clock import FakeClock
from modelctl_server.deployments import (
    DeploymentController,
    DeploymentEvent,
    DeploymentRepository,
    InMemoryDeploymentRepository,
    InstanceService,
    ParamOverrides,
    Strategy,
)
from modelctl_server.telemetry import MetricsSource, MetricsStore, WindowStats

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
#: Quick parameters: 10 s steps, 20 samples, a 60 s deadline, a 20 s bake.
FAST = ParamOverrides(step_interval=10, min_samples=20, progress_deadline=60, bake_time=20)


def history(events: Sequence[DeploymentEvent]) -> list[tuple[str, str, int, float]]:
    """Events as (kind, phase, step, traffic) for exact comparisons."""
    return [(e.kind.value, e.phase.value, e.step, e.traffic_percent) for e in events]


@dataclass
class ScriptedDrift:
    """A drift source whose score per version a test sets (None: no score)."""

    scores: dict[str, float | None] = field(default_factory=dict)

    def drift_score(self, model: str, version: str, since: dt.datetime, until: dt.datetime) -> float | None:
        return self.scores.get(version)


@dataclass
class ScriptedMetrics:
    """A metrics source that returns fixed windows per version, whatever the time range."""

    windows: dict[str, tuple[int, int, float | None]] = field(default_factory=dict)

    def window(self, model: str, version: str, since: dt.datetime, until: dt.datetime) -> WindowStats:
        requests, errors, p95 = self.windows.get(version, (0, 0, None))
        samples = float(requests) if p95 is not None else 0.0
        return WindowStats(since, until, requests, errors, samples, p95, p95, p95)


class World:
    """A controller on a fake clock; every call that produces events also returns them."""

    def __init__(self, repo: DeploymentRepository | None = None, *, drift: ScriptedDrift | None = None,
                 metrics: MetricsSource | None = None, clock: FakeClock | None = None,
                 store: Callable[[FakeClock], MetricsStore] = MetricsStore) -> None:
        self.clock = clock or FakeClock(START)
        self.repo = repo if repo is not None else InMemoryDeploymentRepository()
        #: Where `report` ingests; the controller reads it unless a scripted `metrics` source is given.
        self.store = store(self.clock)
        self.metrics = metrics if metrics is not None else self.store
        self._ids = iter(f"d{n}" for n in range(1, 1000))
        self.controller = DeploymentController(self.repo, self.clock, self.metrics,
                                               drift=drift, heartbeat_interval=5.0,
                                               new_id=lambda: next(self._ids))
        self.instances = InstanceService(self.repo, self.clock)

    def deploy(self, version: str, strategy: Strategy, overrides: ParamOverrides | None = FAST,
               model: str = "fraud") -> str:
        return self.controller.create(model, version, strategy, overrides, created_by="alice").deployment.id

    def tick(self, deployment_id: str, seconds: float = 0.0) -> list[DeploymentEvent]:
        self.clock.advance(seconds)
        return self.controller.advance(deployment_id)

    def report(self, version: str, requests: int, errors: int = 0, latency_ms: float = 50.0,
               model: str = "fraud") -> list[DeploymentEvent]:
        """Ingest traffic now, then run the fast-fail check as the API layer does."""
        ingested = self.store.ingest(model, version, requests=requests, errors=errors,
                                     latency_ms=[latency_ms] * requests)
        return self.controller.on_metrics(ingested.model, ingested.version)

    def healthy_step(self, deployment_id: str, version: str, seconds: float = 10.0, requests: int = 40,
                     stable: str | None = None) -> list[DeploymentEvent]:
        """One step's worth of healthy traffic, then the tick at the end of the step."""
        self.clock.advance(1)
        self.report(version, requests)
        if stable is not None:
            self.report(stable, requests)
        return self.tick(deployment_id, seconds - 1)

    def history(self, deployment_id: str) -> list[tuple[str, str, int, float]]:
        return history(self.controller.events(deployment_id))

    def phase(self, deployment_id: str) -> str:
        return self.controller.get(deployment_id).phase.value

    def split(self, model: str = "fraud") -> dict[str, float]:
        return self.controller.traffic_split(model)

    def heartbeat_all(self, instance_ids: Sequence[str], model: str = "fraud", healthy: bool = True) -> None:
        """Every instance loads what it is assigned and reports it."""
        for instance_id in instance_ids:
            assigned = self.instances.assignment(model, instance_id)
            self.instances.heartbeat(model, instance_id, assigned, healthy)


def seed_model(db: object, name: str, versions: Sequence[str], *, live: str | None = None,
               previous: str | None = None, archived: Sequence[str] = ()) -> None:
    """Register a model in a real database the way the registry would, with its live version's traffic."""
    from modelctl_server.store.deployment_tables import TrafficWeightRow
    from modelctl_server.store.tables import ModelRow, VersionRow

    with db.session() as s:  # type: ignore[attr-defined]
        model = ModelRow(name=name, created_at=START, live_version=live, previous_version=previous)
        s.add(model)
        s.flush()
        for version in [*versions, *archived]:
            gone = version in archived
            s.add(VersionRow(model_id=model.id, version=version, artifact_uri=f"s3://m/{name}/{version}",
                             sha256="", size_bytes=0, state="ARCHIVED" if gone else "READY", framework="",
                             metrics={}, tags={}, description="", created_by="test", created_at=START,
                             archived_at=START if gone else None))
        if live is not None:
            s.add(TrafficWeightRow(model_id=model.id, version=live, percent=100.0))
