"""An in-memory `DeploymentRepository` for unit tests and tools, with real transactions.

One lock serialises transactions, and a transaction that raises leaves the data
exactly as it found it, like the SQL repository does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Collection, ContextManager, Iterator, Mapping, Sequence

from .model import Deployment, DeploymentEvent, EventKind, GateEvaluation, Instance, ModelInfo, VersionInfo
from .phases import Phase
from .repository import ActiveDeploymentConflict


@dataclass
class _Data:
    models: dict[str, ModelInfo] = field(default_factory=dict)
    versions: dict[tuple[str, str], VersionInfo] = field(default_factory=dict)
    #: Insertion order is creation order.
    deployments: dict[str, Deployment] = field(default_factory=dict)
    events: dict[str, list[DeploymentEvent]] = field(default_factory=dict)
    evaluations: dict[str, list[GateEvaluation]] = field(default_factory=dict)
    traffic: dict[str, dict[str, float]] = field(default_factory=dict)
    instances: dict[tuple[str, str], Instance] = field(default_factory=dict)
    #: model -> id of its running experiment (the experiment service owns them; tests set them).
    experiments: dict[str, str] = field(default_factory=dict)

    def copy(self) -> _Data:
        # Records are frozen, so copying the containers is a full snapshot.
        return _Data(
            models=dict(self.models), versions=dict(self.versions), deployments=dict(self.deployments),
            events={k: list(v) for k, v in self.events.items()},
            evaluations={k: list(v) for k, v in self.evaluations.items()},
            traffic={k: dict(v) for k, v in self.traffic.items()}, instances=dict(self.instances),
            experiments=dict(self.experiments))


class InMemoryDeploymentRepository:
    def __init__(self) -> None:
        self._data = _Data()
        self._lock = threading.RLock()

    def add_model(self, name: str, versions: Sequence[str] = (), *, live: str | None = None,
                  previous: str | None = None, archived: Collection[str] = ()) -> None:
        """Register a model the way the registry would (tests set up their world with this)."""
        with self._lock:
            self._data.models[name] = ModelInfo(name, live, previous)
            for version in [*versions, *archived]:
                self._data.versions[(name, version)] = VersionInfo(name, version, version in archived)
            if live is not None:
                self._data.traffic.setdefault(name, {live: 100.0})

    def set_running_experiment(self, model: str, experiment_id: str | None) -> None:
        """Mark (or, with None, clear) a running experiment of `model`, as the experiment service would."""
        with self._lock:
            if experiment_id is None:
                self._data.experiments.pop(model, None)
            else:
                self._data.experiments[model] = experiment_id

    def read(self) -> ContextManager[_MemoryTx]:
        return self.transaction()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[_MemoryTx]:
        with self._lock:
            snapshot = self._data.copy()
            try:
                yield _MemoryTx(self._data)
            except BaseException:
                self._data = snapshot
                raise


class _MemoryTx:
    def __init__(self, data: _Data) -> None:
        self._d = data

    # --- models and versions ---
    def get_model(self, name: str, *, lock: bool = False) -> ModelInfo | None:
        return self._d.models.get(name)

    def get_version(self, model: str, version: str) -> VersionInfo | None:
        return self._d.versions.get((model, version))

    def set_live_versions(self, model: str, live: str | None, previous: str | None) -> None:
        self._d.models[model] = ModelInfo(model, live, previous)

    # --- deployments ---
    def get_deployment(self, deployment_id: str, *, lock: bool = False) -> Deployment | None:
        return self._d.deployments.get(deployment_id)

    def active_deployment(self, model: str) -> Deployment | None:
        return next((d for d in self._d.deployments.values() if d.model == model and d.phase.is_active), None)

    def running_experiment(self, model: str) -> str | None:
        return self._d.experiments.get(model)

    def active_deployment_ids(self) -> list[str]:
        return [d.id for d in self._d.deployments.values() if d.phase.is_active]

    def list_deployments(self, *, model: str | None = None, phases: Collection[Phase] | None = None,
                         after: str | None = None, limit: int = 100) -> list[Deployment]:
        newest_first = list(reversed(self._d.deployments.values()))
        if after is not None:
            ids = [d.id for d in newest_first]
            newest_first = newest_first[ids.index(after) + 1:] if after in ids else []
        picked = [d for d in newest_first
                  if (model is None or d.model == model) and (phases is None or d.phase in phases)]
        return picked[:limit]

    def insert_deployment(self, deployment: Deployment) -> None:
        if deployment.phase.is_active and self.active_deployment(deployment.model) is not None:
            raise ActiveDeploymentConflict(deployment.model)
        self._d.deployments[deployment.id] = deployment
        self._d.events[deployment.id] = []
        self._d.evaluations[deployment.id] = []

    def update_deployment(self, deployment: Deployment) -> None:
        if deployment.id not in self._d.deployments:
            raise KeyError(deployment.id)
        self._d.deployments[deployment.id] = deployment

    # --- history ---
    def append_event(self, deployment_id: str, kind: EventKind, phase: Phase, step: int,
                     traffic_percent: float, message: str, time: dt.datetime) -> DeploymentEvent:
        events = self._d.events[deployment_id]
        event = DeploymentEvent(seq=len(events) + 1, deployment_id=deployment_id,
                                model=self._d.deployments[deployment_id].model, kind=kind, phase=phase,
                                step=step, traffic_percent=traffic_percent, message=message, time=time)
        events.append(event)
        return event

    def list_events(self, deployment_id: str, *, after_seq: int = 0,
                    limit: int | None = None) -> list[DeploymentEvent]:
        events = [e for e in self._d.events.get(deployment_id, []) if e.seq > after_seq]
        return events if limit is None else events[:limit]

    def add_evaluations(self, evaluations: Sequence[GateEvaluation]) -> None:
        for evaluation in evaluations:
            self._d.evaluations[evaluation.deployment_id].append(evaluation)

    def list_evaluations(self, deployment_id: str, *, limit: int = 50) -> list[GateEvaluation]:
        return self._d.evaluations.get(deployment_id, [])[-limit:] if limit > 0 else []

    # --- traffic ---
    def get_traffic(self, model: str) -> dict[str, float]:
        return dict(self._d.traffic.get(model, {}))

    def set_traffic(self, model: str, weights: Mapping[str, float]) -> None:
        self._d.traffic[model] = dict(weights)

    # --- serving instances ---
    def list_instances(self, model: str) -> list[Instance]:
        mine = [i for (m, _), i in self._d.instances.items() if m == model]
        return sorted(mine, key=lambda i: i.instance_id)

    def get_instance(self, model: str, instance_id: str, *, lock: bool = False) -> Instance | None:
        return self._d.instances.get((model, instance_id))

    def save_instance(self, instance: Instance) -> None:
        self._d.instances[(instance.model, instance.instance_id)] = instance

    def record_heartbeat(self, model: str, instance_id: str, loaded_version: str | None, healthy: bool,
                         at: dt.datetime) -> Instance | None:
        current = self._d.instances.get((model, instance_id))
        if current is None:
            return None
        updated = dataclasses.replace(current, loaded_version=loaded_version, healthy=healthy,
                                      last_heartbeat_at=at, lost=False)
        self._d.instances[(model, instance_id)] = updated
        return updated

    def assign_instances(self, model: str, instance_ids: Collection[str], version: str | None) -> None:
        for instance_id in instance_ids:
            key = (model, instance_id)
            self._d.instances[key] = dataclasses.replace(self._d.instances[key], assigned_version=version)

    def mark_lost(self, model: str, instance_ids: Collection[str], heard_before: dt.datetime) -> list[str]:
        marked = []
        for instance_id in sorted(instance_ids):
            current = self._d.instances.get((model, instance_id))
            if current is not None and not current.lost and current.last_heartbeat_at < heard_before:
                self._d.instances[(model, instance_id)] = dataclasses.replace(current, lost=True)
                marked.append(instance_id)
        return marked
