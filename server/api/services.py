"""The domain services the servicers call, gathered once by the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Hashable

from ..alerts.engine import AlertEngine
from ..alerts.silences import SilenceService
from ..audit import AuditLog
from ..auth import TokenService
from ..cache import InvalidatedCache
from ..clock import Clock
from ..config import Settings
from ..deployments.engine import DeploymentController
from ..deployments.instances import InstanceService
from ..deployments.model import DeploymentEvent
from ..drift.service import DriftService
from ..events import EventHub
from ..experiments.service import ExperimentService
from ..metrics.recorder import MetricsRecorder
from ..notify.outbox import OutboxWorker
from ..pipelines.runtime import PipelineAnnouncer, PipelineSweeper
from ..pipelines.service import PipelineService
from ..registry.service import RegistryService
from ..rollouts import Announcer, Reconciler
from ..store.db import Database
from ..store.metric_journal import MetricJournal
from ..system.components import ComponentStatus, Supervisor
from ..system.status import SystemProbe
from ..telemetry.store import MetricsStore
from .base import BlockingRunner
from .batch_worker import BatchWorker


@dataclass(frozen=True)
class RestartResult:
    changed_keys: list[str]
    ignored_keys: list[str]
    #: Components that did not start again: the call reports them, GetSystemStatus shows them FAILED.
    failed: list[ComponentStatus] = field(default_factory=list)


@dataclass
class Services:
    settings: Settings
    clock: Clock
    db: Database
    run: BlockingRunner
    registry: RegistryService
    tokens: TokenService
    audit: AuditLog
    probe: SystemProbe
    supervisor: Supervisor
    recorder: MetricsRecorder
    #: Reloads the config file and restarts background components (set by the app).
    restart: Callable[[], Awaitable[RestartResult]]
    deployments: DeploymentController
    instances: InstanceService
    metrics: MetricsStore
    journal: MetricJournal
    hub: EventHub
    announcer: Announcer
    reconciler: Reconciler
    experiments: ExperimentService
    #: Drift profiles and windows: ReportMetrics calls check() before journaling and ingest() after.
    drift: DriftService
    #: Replies of the registry and traffic reads (GetModel, GetTrafficSplit) served from memory; the app
    #: names the tables they come from, so any committed write to those empties it before it is answered.
    reads: InvalidatedCache[Hashable, Any] = field(default_factory=lambda: InvalidatedCache("reads", ()))
    #: (model, version) pairs known to be registered, so metric reports skip the lookup.
    known_versions: set[tuple[str, str]] = field(default_factory=set)
    #: The ingest thread ReportMetrics hands validated reports to (set by the app: `report_ingest.worker`).
    ingest: BatchWorker[Any, list[DeploymentEvent]] = None  # type: ignore[assignment]
    #: Alerts (set by the app): the engine, silences, and the notification outbox worker.
    alerts: AlertEngine | None = None
    silences: SilenceService | None = None
    outbox: OutboxWorker | None = None
    #: Pipelines (set by the app): the service, what announces command changes, and the sweeper to wake.
    pipelines: PipelineService = None  # type: ignore[assignment]
    pipeline_announcer: PipelineAnnouncer = None  # type: ignore[assignment]
    pipeline_sweeper: PipelineSweeper = None  # type: ignore[assignment]
