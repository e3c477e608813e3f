"""Assembles the controller: database, domain services, gRPC server, background components.

`ControllerApp(settings).start()` binds and serves; `stop()` drains gracefully.
Tests use `create_server(settings)` with port 0 and get the bound port back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import os
from typing import Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from modelctl.v1 import controller_pb2 as _controller_pb
from modelctl.v1 import controller_pb2_grpc as _grpc

from .alerts.engine import AlertEngine
from .alerts.runtime import AlertAnnouncer, AlertEvaluator, AlertRotator, DeploymentAlerts, system_reading
from .alerts.silences import SilenceService
from .api import limits, report_ingest
from .api.base import BlockingRunner
from .api.interceptor import ControllerInterceptor
from .api.servicer import ModelControllerServicer
from .api.services import RestartResult, Services
from .audit import AuditLog
from .auth import TokenService
from .cache import InvalidatedCache
from .clock import Clock, SystemClock
from .config import _SECTIONS, RESTART_ONLY_KEYS, ConfigError, Settings, load_settings
from .deployments.engine import DeploymentController
from .deployments.instances import InstanceService
from .deployments.phases import Phase
from .drift.service import DriftService
from .errors import FailedPreconditionError
from .events import EventHub
from .experiments.refresher import ExperimentRefresher
from .experiments.service import ExperimentService
from .metrics.drift_gauges import DriftGauges
from .metrics.exporter import MetricsExporter, SystemSampler
from .metrics.recorder import MetricsRecorder
from .notify.destinations import destinations_from_settings
from .notify.outbox import OutboxWorker
from .notify.routing import Router
from .pipelines.runtime import PipelineAnnouncer, PipelineSweeper
from .pipelines.service import PipelineService
from .registry.artifacts import ArtifactStore
from .registry.service import RegistryService
from .registry.sweeper import ArtifactSweeper
from .rollouts import Announcer, Reconciler
from .store.alerts import AlertStore
from .store.db import Database
from .store.deployment_tables import DeploymentRow, InstanceRow
from .store.deployments import REGISTRY_READ_TABLES, SqlDeploymentRepository, protected_versions, traffic_lookup
from .store.drift import SqlDriftProfiles
from .store.experiments import SqlExperimentRepository
from .store.liveness import Liveness, LivenessFlusher
from .store.metric_journal import MetricJournal
from .store.outbox import OutboxStore
from .store.pipelines import SqlPipelineRepository
from .system.components import Supervisor
from .system.db_watchdog import DatabaseWatchdog
from .system.status import SystemProbe
from .telemetry.pruner import JournalPruner
from .telemetry.store import MetricsStore

log = logging.getLogger(__name__)

SERVICE_NAME = _controller_pb.DESCRIPTOR.services_by_name["ModelController"].full_name


class ControllerApp:
    def __init__(self, settings: Settings, *, clock: Clock | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self._environ = dict(os.environ if environ is None else environ)
        self.db = Database(settings.database_url, busy_timeout=settings.database.busy_timeout)
        self.run = BlockingRunner(settings.server.worker_threads)
        self.recorder = MetricsRecorder()
        self.db.observe_transaction = self.recorder.database_transactions_observer()
        self.supervisor = Supervisor(self.clock)
        self.tokens = TokenService(self.db, self.clock)
        self.audit = AuditLog(self.db, self.clock)
        self.registry = RegistryService(self.db, self.clock, ArtifactStore(settings.models_path),
                                        max_versions=settings.registry.max_versions,
                                        protected_versions=protected_versions, traffic_lookup=traffic_lookup)
        self.probe = SystemProbe(self.db, self.clock)
        self.hub = EventHub()
        self.metrics_store = MetricsStore(self.clock)
        self.journal = MetricJournal(self.db)
        repo = SqlDeploymentRepository(self.db, on_evaluations=self.recorder.observe_gate_evaluations)
        self.drift = DriftService(SqlDriftProfiles(self.db), self.clock, settings.drift, settings.thresholds)
        self.deployments = DeploymentController(repo, self.clock, self.metrics_store, drift=self.drift,
                                                defaults=settings.deployment,
                                                thresholds=settings.thresholds,
                                                heartbeat_interval=settings.deployment.heartbeat_interval)
        self.deployments.active_cache = InvalidatedCache("active-deployments", [DeploymentRow.__tablename__])
        self.db.changes.listen(self.deployments.active_cache.on_commit)
        # Heartbeats that change nothing stay in memory; the last-seen times are written once a second.
        self.liveness = Liveness(self.db)
        known_instances: InvalidatedCache = InvalidatedCache("instances", [InstanceRow.__tablename__],
                                                             max_entries=100_000)
        self.db.changes.listen(known_instances.on_commit)
        self.instances = InstanceService(repo, self.clock, liveness=self.liveness, known=known_instances)
        self.announcer = Announcer(self.hub, self.recorder,
                                   read_split=lambda model: self.run(self.deployments.traffic_split, model),
                                   read_live=self._read_live_version,
                                   read_deployment=lambda dep_id: self.run(self.deployments.get, dep_id))
        self.reconciler = Reconciler(self.deployments, self.announcer, self.run, self.clock, self.supervisor,
                                     interval=settings.deployment.reconcile_interval)
        self.experiments = ExperimentService(SqlExperimentRepository(self.db), self.clock, settings.experiments,
                                             self.deployments)
        self.services = Services(settings=settings, clock=self.clock, db=self.db, run=self.run,
                                 registry=self.registry, tokens=self.tokens, audit=self.audit, probe=self.probe,
                                 supervisor=self.supervisor, recorder=self.recorder, restart=self.restart,
                                 deployments=self.deployments, instances=self.instances, metrics=self.metrics_store,
                                 journal=self.journal,
                                 hub=self.hub, announcer=self.announcer, reconciler=self.reconciler,
                                 experiments=self.experiments, drift=self.drift,
                                 reads=InvalidatedCache("reads", REGISTRY_READ_TABLES))
        self.db.changes.listen(self.services.reads.on_commit)
        self.services.ingest = report_ingest.worker(self.services)
        self.health = HealthServicer()
        self.server: grpc.aio.Server | None = None
        self.port: int | None = None
        self.metrics = MetricsExporter(self.recorder, settings.server.metrics_address)
        self.supervisor.add(self.metrics)
        self.supervisor.add(self.reconciler)
        self.supervisor.add(LivenessFlusher(self.liveness, self.run, self.clock, self.supervisor))
        self.sweeper = ArtifactSweeper(self.registry, self.run, self.clock, self.supervisor,
                                       grace=lambda: self.settings.registry.orphan_grace)
        self.supervisor.add(self.sweeper)
        self.experiment_refresher = ExperimentRefresher(self.experiments, self.recorder, self.run, self.clock,
                                                        self.supervisor)
        self.supervisor.add(self.experiment_refresher)
        self.drift_gauges = DriftGauges(self.drift, self.recorder, self.run, self.clock, self.supervisor)
        self.supervisor.add(self.drift_gauges)
        self.supervisor.add(JournalPruner(self.journal, self.metrics_store, self.run, self.clock, self.supervisor))
        self.sampler = SystemSampler(self.recorder, self.probe, self.registry.counts, self.run, self.clock,
                                     self.supervisor, live_versions=self.registry.live_versions)
        self.supervisor.add(self.sampler)
        self.watchdog = DatabaseWatchdog(self.db, self.clock, self.supervisor, self._database_health)
        self.supervisor.add(self.watchdog)
        self._add_alerts(settings)
        self._add_pipelines(settings)
        self.admin_token_file: str | None = None
        self._stopped = False
        #: RestartSystem calls run one after another: each reloads the config and restarts after the last.
        self._restart_lock = asyncio.Lock()

    def _add_alerts(self, settings: Settings) -> None:
        """The alert engine, its sources, the notification outbox and history rotation."""
        destinations = destinations_from_settings(settings.notifications)  # ConfigError names a bad URL
        store = AlertStore(self.db)
        self.alert_announcer = AlertAnnouncer(self.hub, self.recorder, store.open_counts, self.run)
        self.alerts = AlertEngine(store, self.clock, announce=self.alert_announcer,
                                  router=Router(destinations, repeat_interval=settings.notifications.repeat_interval),
                                  repeat_interval=settings.notifications.repeat_interval)
        self.silences = SilenceService(store, self.clock)
        self.outbox = OutboxWorker(OutboxStore(self.db), destinations, settings.notifications, self.run, self.clock,
                                   self.supervisor, recorder=self.recorder)
        self.alert_announcer.on_change.append(self.outbox.wake)
        self.deployment_alerts = DeploymentAlerts(self.alerts, self.deployments.get, self.run,
                                                  recent_deployments=lambda: self.deployments.list(limit=500),
                                                  clock=self.clock)
        self.announcer.listeners.append(self.deployment_alerts)
        self.alert_evaluator = AlertEvaluator(
            self.alerts, self.metrics_store, self.run, self.clock, self.supervisor, alerts=settings.alerts,
            thresholds=settings.thresholds,
            read_system=lambda: system_reading(self.recorder, self.supervisor, lambda: self.sampler.samples > 0),
            drift=self.drift, experiments=self.experiments)
        self.rotator = AlertRotator(self.alerts, self.run, self.clock, self.supervisor, alerts=settings.alerts,
                                    audit=settings.audit)
        for component in (self.outbox, self.deployment_alerts, self.alert_evaluator, self.rotator):
            self.supervisor.add(component)
        self.services.alerts, self.services.silences, self.services.outbox = self.alerts, self.silences, self.outbox

    def _add_pipelines(self, settings: Settings) -> None:
        """Pipelines, their commands, and the sweeper: deadlines, rollouts they start, stale alerts."""
        self.pipelines = PipelineService(SqlPipelineRepository(self.db), self.clock, settings.pipelines,
                                         self.deployments)
        self.pipeline_announcer = PipelineAnnouncer(self.hub, self.recorder)
        self.pipeline_sweeper = PipelineSweeper(
            self.pipelines, self.pipeline_announcer, self.run, self.clock, self.supervisor, alerts=self.alerts,
            recorder=self.recorder, announce_deployments=self.announcer.announce,
            wake_reconciler=self.reconciler.wake)
        self.announcer.listeners.append(self.pipeline_sweeper.on_deployment_events)
        self.supervisor.add(self.pipeline_sweeper)
        self.services.pipelines = self.pipelines
        self.services.pipeline_announcer = self.pipeline_announcer
        self.services.pipeline_sweeper = self.pipeline_sweeper

    async def start(self) -> int:
        """Migrate, bootstrap the admin token, bind and serve. Returns the bound port."""
        s = self.settings
        s.data_path.mkdir(parents=True, exist_ok=True)
        self.hub.bind(asyncio.get_running_loop())
        self.alert_announcer.bind(asyncio.get_running_loop())
        await self.run(self.db.migrate)
        await self.alert_announcer.export()  # open alerts by severity, before any change (after a restart)
        replayed = await self.run(self._replay_metrics)
        await self.run(self.experiments.load)  # before serving: ReportMetrics consults it
        if replayed:
            log.info("replayed %d metric reports from the journal", replayed)
        if s.auth.enabled:
            written = await self.run(self.tokens.ensure_admin, s.admin_token_path,
                                     self._environ.get("MODELCTL_ADMIN_TOKEN"))
            self.admin_token_file = str(written) if written else None
        else:
            log.warning("AUTH IS DISABLED (auth.enabled = false): every caller is treated as admin. "
                        "Never run like this outside a sandbox.")
        self.server = grpc.aio.server(
            interceptors=[ControllerInterceptor(self.tokens, self.audit, self.run, auth_enabled=s.auth.enabled,
                                                observe=self.recorder.observe_rpc,
                                                track=self.recorder.track_rpc)],
            options=_server_options(s))
        _grpc.add_ModelControllerServicer_to_server(ModelControllerServicer(self.services), self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
            self.server)
        try:
            # Bound here, before serving, so a port in use stops the start; start_all leaves it running.
            await self.metrics.start()
        except OSError as exc:
            raise OSError(f"server.metrics_address: cannot listen on {s.server.metrics_address} "
                          f"({exc.strerror or exc})") from None
        self.port = self._bind(self.server, s)
        await self.server.start()
        await self.supervisor.start_all()
        # SERVING only once the database has answered: probes must not route traffic to a broken replica.
        await self.run(self.db.ping)
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self.health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
        log.info("modelctl listening on %s (tls=%s)", self.address, s.tls_enabled)
        return self.port

    async def _database_health(self, reachable: bool) -> None:
        """The watchdog's verdict: no traffic to a controller whose database does not answer."""
        status = health_pb2.HealthCheckResponse.SERVING if reachable else health_pb2.HealthCheckResponse.NOT_SERVING
        # After SIGTERM the servicer ignores this: shutting down stays NOT_SERVING.
        await self.health.set("", status)
        await self.health.set(SERVICE_NAME, status)

    async def _read_live_version(self, model: str) -> str | None:
        return (await self.run(self.registry.live_versions, [model])).get(model)

    def _replay_metrics(self) -> int:
        """Refill the in-memory windows from the journal, so running canaries keep their evidence.

        Only what a window can still read: every series over the alert rules' window, and the versions
        of each active deployment since its current step (or rollback) began. The rest of the journal
        (up to the store's retention) is kept for nobody: replaying it made start-up take seconds.
        """
        now = self.clock.now()
        oldest = now - dt.timedelta(seconds=self.metrics_store.retention_seconds)
        recent = max(oldest, now - dt.timedelta(seconds=self.settings.alerts.window))
        reaches: dict[tuple[str, str], dt.datetime] = {}
        for dep in self.deployments.list(phases=[p for p in Phase if p.is_active], limit=1 << 31):
            since = max(oldest, dep.step_started_at or dep.created_at)
            for version in (dep.version, dep.previous_version):
                if version and since < reaches.get((dep.model, version), recent):
                    reaches[(dep.model, version)] = since
        count = 0
        if reaches:  # one scan for every series (a query each took > 30 s with 1,000 canaries)
            for report in self.journal.since(min(reaches.values()), until=recent, series=reaches):
                self.metrics_store.add(report)
                count += 1
        for report in self.journal.since(recent):
            self.metrics_store.add(report)
            count += 1
        return count

    @property
    def address(self) -> str:
        host = self.settings.server.grpc_address.rpartition(":")[0]
        return f"{host}:{self.port}"

    @property
    def grpc_address(self) -> str:
        """HOST:PORT the gRPC server listens on, with the port it bound (port 0 asks for a free one)."""
        if self.port is None:
            raise RuntimeError("the controller is not started: await app.start() first")
        return self.address

    @property
    def metrics_address(self) -> str:
        """HOST:PORT of the /metrics endpoint, with the port it bound."""
        if self.metrics.port is None:
            raise RuntimeError("the controller is not started: await app.start() first")
        host = self.settings.server.metrics_address.rpartition(":")[0]
        return f"{host}:{self.metrics.port}"

    async def __aenter__(self) -> ControllerApp:
        """`async with ControllerApp(settings) as app:` starts it, and stops it when the block ends."""
        try:
            await self.start()
        except BaseException:
            await self.stop(grace=0, drain_delay=0)  # a half-started app leaves no listener or thread behind
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def stop(self, grace: float | None = None, drain_delay: float | None = None) -> None:
        """Health NOT_SERVING first so balancers stop sending, then drain and stop. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        await self.health.enter_graceful_shutdown()
        delay = self.settings.server.drain_delay if drain_delay is None else drain_delay
        if delay > 0 and self.server is not None:
            # Keep serving while load balancers notice NOT_SERVING and route new calls elsewhere.
            log.info("health is NOT_SERVING; still serving for server.drain_delay (%ss)", delay)
            await asyncio.sleep(delay)
        self.hub.close()  # watch streams end cleanly instead of being cut at the end of the grace period
        await self.supervisor.stop_all()
        if self.server is not None:
            await self.server.stop(self.settings.server.shutdown_grace if grace is None else grace)
        self.services.ingest.stop()
        self.run.shutdown()
        self.db.dispose()

    async def wait_for_termination(self) -> None:
        assert self.server is not None
        await self.server.wait_for_termination()

    async def restart(self) -> RestartResult:
        """Reload the config file and restart background components; the listener stays up.

        Concurrent calls are serialised (the second waits for the first, then reloads
        again): interleaved, one's stop met the other's start and left components down.
        """
        async with self._restart_lock:
            return await self._restart()

    async def _restart(self) -> RestartResult:
        old = self.settings
        try:
            new = await self.run(load_settings, old.config_file or None, self._environ)
        except ConfigError as exc:
            # Keep running on the settings we have; the operator fixes the file and retries.
            raise FailedPreconditionError(f"config not reloaded, nothing restarted: {exc}") from None
        before, after = old.flatten(), new.flatten()
        changed = sorted(k for k in after if after[k] != before[k])
        ignored = [k for k in changed if k in RESTART_ONLY_KEYS]
        self.settings = _keep_restart_only(old, new)
        self.services.settings = self.settings
        self.registry.max_versions = self.settings.registry.max_versions
        self.deployments.reconfigure(self.settings.deployment, self.settings.thresholds)
        self.deployments.heartbeat_interval = self.settings.deployment.heartbeat_interval
        self.experiments.reconfigure(self.settings.experiments)
        self.drift.reconfigure(self.settings.drift, self.settings.thresholds)
        self.reconciler.interval = self.settings.deployment.reconcile_interval
        self._reconfigure_alerts()
        self.pipelines.reconfigure(self.settings.pipelines)
        self.pipeline_sweeper.interval = self.settings.pipelines.check_interval
        failed = await self.supervisor.restart_all()
        if ignored:
            log.warning("config reloaded; these keys need a process restart to take effect: %s", ", ".join(ignored))
        log.info("restarted background components; changed keys: %s", ", ".join(changed) or "none")
        if failed:
            log.error("after RestartSystem these components are down: %s",
                      "; ".join(f"{c.name}: {c.detail}" for c in failed))
        return RestartResult(changed_keys=changed, ignored_keys=ignored, failed=failed)

    def _reconfigure_alerts(self) -> None:
        s = self.settings
        try:
            destinations = destinations_from_settings(s.notifications)
        except ConfigError as exc:
            log.error("notification destinations not reloaded, keeping the running ones: %s", exc)
        else:
            self.outbox.reconfigure(destinations, s.notifications)
            self.alerts.router = Router(destinations, repeat_interval=s.notifications.repeat_interval)
        self.alerts.repeat_interval = s.notifications.repeat_interval
        self.alert_evaluator.reconfigure(s.alerts, s.thresholds)
        self.rotator.alerts, self.rotator.audit = s.alerts, s.audit

    @staticmethod
    def _bind(server: grpc.aio.Server, s: Settings) -> int:
        address = s.server.grpc_address
        try:
            if not s.tls_enabled:
                port = server.add_insecure_port(address)
            else:
                key = open(s.server.tls_key, "rb").read()
                cert = open(s.server.tls_cert, "rb").read()
                ca = open(s.server.tls_client_ca, "rb").read() if s.server.tls_client_ca else None
                creds = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                                    require_client_auth=ca is not None)
                port = server.add_secure_port(address, creds)
        except RuntimeError:  # recent grpcio raises "Failed to bind" instead of returning 0
            port = 0
        if port == 0:
            raise OSError(f"server.grpc_address: cannot listen on {address} (address in use or not available)")
        return port


def _server_options(s: Settings) -> list[tuple[str, int]]:
    ms = lambda seconds: int(seconds * 1000)  # noqa: E731
    return [
        # No more than the largest per-RPC request limit: refused from the length prefix, never buffered.
        ("grpc.max_receive_message_length", limits.transport_limit(s.server.max_message_bytes)),
        ("grpc.max_send_message_length", s.server.max_message_bytes),
        # Long-lived streams (watch, alerts): ping idle peers so dead ones are noticed ...
        ("grpc.keepalive_time_ms", ms(s.server.keepalive_time)),
        ("grpc.keepalive_timeout_ms", ms(s.server.keepalive_timeout)),
        ("grpc.keepalive_permit_without_calls", 1),
        # ... and accept the SDK's own pings (every 30 s) without answering GOAWAY "too_many_pings".
        ("grpc.http2.min_ping_interval_without_data_ms", ms(s.server.keepalive_min_ping_interval)),
        ("grpc.http2.max_ping_strikes", 0),
        ("grpc.so_reuseport", 0),
    ]


def _keep_restart_only(old: Settings, new: Settings) -> Settings:
    """`new`, except keys that need a process restart keep their running values."""
    sections = {}
    for section in _SECTIONS:
        old_sec, new_sec = getattr(old, section), getattr(new, section)
        keep = {f.name: getattr(old_sec, f.name) for f in dataclasses.fields(old_sec)
                if f"{section}.{f.name}" in RESTART_ONLY_KEYS}
        sections[section] = dataclasses.replace(new_sec, **keep)
    return dataclasses.replace(new, **sections)


async def create_server(settings: Settings, *, clock: Clock | None = None,
                        environ: Mapping[str, str] | None = None) -> tuple[ControllerApp, int]:
    """Start a controller (use port 0 in tests) and return it with its bound port."""
    app = ControllerApp(settings, clock=clock, environ=environ)
    port = await app.start()
    return app, port
