"""The alert engine inside the server: announcing changes, evaluating rules, deployment events, rotation.

The engine is synchronous and writes on the thread pool; once a change has
committed, `AlertAnnouncer` publishes its event on the `alerts` topic (the
StreamAlerts subscribers), counts it in metrics and wakes the outbox worker.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any, Awaitable, Callable

from ..clock import Clock
from ..config import AlertSettings, AuditSettings, ThresholdSettings
from ..deployments.model import DeploymentEvent, EventKind
from ..events import EventHub
from ..system.components import ComponentState, PeriodicTask, Supervisor
from ..telemetry.store import MetricsStore
from .engine import AlertEngine
from .model import AlertEvent, AlertKind, Change, Severity, Signal
from .rules import (
    DriftReader,
    Evaluation,
    ExperimentReader,
    SystemReading,
    evaluate_drift,
    evaluate_experiments,
    evaluate_system,
    evaluate_thresholds,
    running_experiments,
)

log = logging.getLogger(__name__)

Runner = Callable[..., Awaitable[Any]]
ALERTS_TOPIC = "alerts"


#: Longest an announcing thread waits for the alert streams to take its events (they take a thousand
#: subscribers' in about 50 ms); bounded so that a stopping loop never holds a thread for long.
_DELIVERY_WAIT = 1.0


class AlertAnnouncer:
    """The engine's `announce`: callable from any thread, after the change committed."""

    def __init__(self, hub: EventHub, recorder: Any, open_counts: Callable[[], dict[Severity, int]],
                 run: Runner) -> None:
        self._hub = hub
        self._recorder = recorder
        self._open_counts = open_counts
        self._run = run
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Called on the loop after each batch (the outbox worker's wake).
        self.on_change: list[Callable[[], None]] = []
        self._refresh: asyncio.Task[None] | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def __call__(self, events: list[AlertEvent]) -> None:
        if not events:
            return
        for event in events:
            self._hub.publish(ALERTS_TOPIC, event)
        # The streams first: this thread (an evaluator round, an RPC) and the bookkeeping below wait until
        # every subscriber has taken the events, instead of competing with the fan-out for the GIL.
        self._hub.wait_delivered(_DELIVERY_WAIT)
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._after, events)

    def _after(self, events: list[AlertEvent]) -> None:
        for event in events:
            if event.change is Change.RAISED:
                self._recorder.alerts_raised.labels(kind=event.alert.kind.value,
                                                    severity=event.alert.severity.name).inc()
        for wake in self.on_change:
            wake()
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.get_running_loop().create_task(self.export())

    async def export(self) -> None:
        try:
            counts = await self._run(self._open_counts)
        except Exception:  # noqa: BLE001 - a gauge must never break an alert; the next change retries
            log.warning("could not count open alerts", exc_info=True)
            return
        self._recorder.set_open_alerts({s.name: n for s, n in counts.items()})


class AlertEvaluator(PeriodicTask):
    """`alert-evaluator`: thresholds on every reporting version, drift and experiments (when wired), the
    controller's health."""

    def __init__(self, engine: AlertEngine, metrics: MetricsStore, run: Runner, clock: Clock,
                 supervisor: Supervisor, *, alerts: AlertSettings, thresholds: ThresholdSettings,
                 read_system: Callable[[], SystemReading | None] | None = None,
                 drift: DriftReader | None = None, experiments: ExperimentReader | None = None) -> None:
        super().__init__("alert-evaluator", alerts.evaluate_interval, clock, supervisor)
        self.engine = engine
        self._metrics = metrics
        self._run = run
        self.alerts = alerts
        self.thresholds = thresholds
        self.read_system = read_system
        #: The drift service, wired in by the app once it exists (see `rules.DriftReader`).
        self.drift = drift
        #: The experiment service (see `rules.ExperimentReader`).
        self.experiments = experiments

    def reconfigure(self, alerts: AlertSettings, thresholds: ThresholdSettings) -> None:
        self.alerts, self.thresholds = alerts, thresholds
        self.interval = alerts.evaluate_interval

    async def tick(self) -> None:
        await self._run(self.evaluate)

    def evaluate(self) -> list[AlertEvent]:
        """One round of every rule (blocking: runs on the thread pool)."""
        now = self._clock.now()
        series = self._metrics.series()
        found = evaluate_thresholds(self._metrics, series, now, self.alerts, self.thresholds)
        kinds = [AlertKind.THRESHOLD]
        if self.drift is not None:
            # Drift is judged over the drift engine's own window (drift.window): a minute of
            # traffic is too little to tell a shifted distribution from noise.
            found.extend(evaluate_drift(self.drift, series, None, Severity.parse(self.alerts.drift_severity)))
            kinds.append(AlertKind.DRIFT)
        if self.experiments is not None:
            found.extend(self._experiments())
            kinds.append(AlertKind.EXPERIMENT)
        reading = self.read_system() if self.read_system is not None else None
        if reading is not None:
            found.extend(evaluate_system(reading, self.alerts))
            kinds.append(AlertKind.SYSTEM)
        return self.apply(found, kinds)

    def _experiments(self) -> Evaluation:
        assert self.experiments is not None
        try:
            views = running_experiments(self.experiments)
        except Exception:  # noqa: BLE001 - no verdict this round; not exhaustive, so nothing resolves
            log.warning("could not read the running experiments for their alerts", exc_info=True)
            return Evaluation()
        significance = Severity.INFO if self.alerts.experiment_significance else None
        return evaluate_experiments(views, Severity.parse(self.alerts.experiment_severity), significance)

    def apply(self, found: Evaluation, kinds: list[AlertKind]) -> list[AlertEvent]:
        events = self.engine.raise_signals(found.signals)
        open_now = self.engine.store.open_fingerprints(kinds)
        cleared = found.cleared & open_now
        if found.exhaustive:
            firing = {s.fingerprint for s in found.signals}
            cleared |= self.engine.store.open_fingerprints(sorted(found.exhaustive, key=lambda k: k.value)) - firing
        for fp in sorted(cleared):
            events += self.engine.resolve(fp, "")
        return events


def system_reading(recorder: Any, supervisor: Supervisor, sampled: Callable[[], bool]) -> SystemReading | None:
    """What the system sampler last exported, or None before its first sample."""
    if not sampled():
        return None
    return SystemReading(
        cpu_percent=100.0 * _gauge_value(recorder.system_cpu),
        memory_percent=100.0 * _gauge_value(recorder.system_memory),
        loop_lag_seconds=_gauge_value(recorder.loop_lag),
        database_reachable=_gauge_value(recorder.database_up) >= 1.0,
        components=[(c.name, c.state is ComponentState.FAILED, c.detail) for c in supervisor.statuses()])


def _gauge_value(gauge: Any) -> float:
    """An unlabelled gauge's value, read from the gauge itself: `registry.get_sample_value` collects
    every metric of the registry per call (5 % of the server's time with a 250 ms evaluator)."""
    return float(gauge.collect()[0].samples[0].value)


_DEPLOYMENT_ALERTS = {
    EventKind.ROLLBACK_STARTED: (Severity.ERROR, "rolled back"),
    EventKind.FAILED: (Severity.ERROR, "failed"),
    EventKind.ABORTED: (Severity.WARNING, "was aborted"),
    EventKind.SUCCEEDED: (Severity.INFO, "succeeded"),
}


#: How far back `DeploymentAlerts.catch_up` looks for ended deployments without an alert.
CATCH_UP_WINDOW = dt.timedelta(hours=24)
#: A deployment's phase -> the event whose alert describes it (for catching up after a crash).
_PHASE_ALERTS = {"ROLLING_BACK": EventKind.ROLLBACK_STARTED, "ROLLED_BACK": EventKind.ROLLBACK_STARTED,
                 "FAILED": EventKind.FAILED, "ABORTED": EventKind.ABORTED, "SUCCEEDED": EventKind.SUCCEEDED}


class DeploymentAlerts:
    """`deployment-alerts`: turns the Announcer's committed deployment events into alerts, in order.

    Listens on `Announcer.listeners`; a queue keeps the events of one deployment in the order they
    committed (a rollback that then fails updates the same alert). One alert per deployment; a
    deployment's alert resolves the older deployment alerts of its model (they are superseded).
    """

    name = "deployment-alerts"

    def __init__(self, engine: AlertEngine, get_deployment: Callable[[str], Any], run: Runner, *,
                 recent_deployments: Callable[[], list[Any]] | None = None, clock: Clock | None = None) -> None:
        self._engine = engine
        self._get = get_deployment
        self._run = run
        #: Newest deployments first (any model), for catching up on alerts a crash or an outage lost.
        self._recent = recent_deployments
        self._clock = clock
        self._queue: asyncio.Queue[DeploymentEvent] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        #: An event could not be raised (database down): catch up before the next one.
        self._behind = True

    def __call__(self, events: list[DeploymentEvent]) -> None:
        for event in events:
            if event.kind in _DEPLOYMENT_ALERTS:
                self._queue.put_nowait(event)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._drain(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def idle(self) -> None:
        """Until every queued event is raised (tests)."""
        await self._queue.join()

    async def _drain(self) -> None:
        while True:
            if self._behind and self._recent is not None:
                try:
                    await self._run(self.catch_up)
                    self._behind = False
                except Exception:  # noqa: BLE001 - the database may still be down: the next event retries
                    log.warning("could not catch up on deployment alerts; retrying with the next event",
                                exc_info=True)
            event = await self._queue.get()
            try:
                await self._run(self.raise_for, event)
            except Exception:  # noqa: BLE001 - one bad event must not stop the rest
                self._behind = True
                log.exception("could not raise the alert of deployment event %s", event.kind.value)
            finally:
                self._queue.task_done()

    def catch_up(self) -> list[AlertEvent]:
        """Raise the alert of each model's newest ended deployment that has none.

        Alerts follow committed deployment events from memory, so a crash (or a database
        outage) between the commit and the alert would lose one. Only the newest deployment
        of a model can still matter: its alert supersedes the older ones, so raising an
        older one now would reopen news nobody needs.
        """
        assert self._recent is not None
        newest: dict[str, Any] = {}
        for dep in self._recent():
            newest.setdefault(dep.model, dep)
        # A day back at most: after an upgrade from a release without alerts, old news is no news.
        since = self._clock.now() - CATCH_UP_WINDOW if self._clock is not None else None
        ended = {dep.id: dep for dep in newest.values() if dep.phase.value in _PHASE_ALERTS
                 and (since is None or dep.finished_at is None or dep.finished_at >= since)}
        events: list[AlertEvent] = []
        for dep_id in sorted(set(ended) - self._engine.store.alerted_deployments(sorted(ended))):
            events += self._raise(_PHASE_ALERTS[ended[dep_id].phase.value], dep_id)
        return events

    def raise_for(self, event: DeploymentEvent) -> list[AlertEvent]:
        return self._raise(event.kind, event.deployment_id)

    def _raise(self, kind: EventKind, deployment_id: str) -> list[AlertEvent]:
        severity, what = _DEPLOYMENT_ALERTS[kind]
        dep = self._get(deployment_id)
        reason = dep.reason or ""
        message = f"deployment {dep.id} of {dep.model} {dep.version} {what}" + (f": {reason}" if reason else "")
        signal = Signal(AlertKind.DEPLOYMENT, f"deployment:{dep.id}", severity, message, dep.model, dep.version,
                        deployment_id=dep.id,
                        labels={"event": kind.value, "reason": reason, "strategy": dep.strategy.value,
                                "previous_version": dep.previous_version or ""})
        events = self._engine.raise_signal(signal)
        events += self._engine.resolve_all(AlertKind.DEPLOYMENT, model=dep.model, keep={signal.fingerprint},
                                           message=f"superseded by deployment {dep.id}")
        return events


class AlertRotator(PeriodicTask):
    """`history-rotator`: alerts and audit events past their retention or count go, oldest first."""

    def __init__(self, engine: AlertEngine, run: Runner, clock: Clock, supervisor: Supervisor, *,
                 alerts: AlertSettings, audit: AuditSettings, interval: float = 600.0) -> None:
        super().__init__("history-rotator", interval, clock, supervisor)
        self._engine = engine
        self._run = run
        self.alerts, self.audit = alerts, audit

    async def tick(self) -> None:
        await self._run(self.rotate)

    def rotate(self) -> tuple[int, int]:
        now = self._clock.now()
        store = self._engine.store
        alerts = store.rotate(older_than=now - dt.timedelta(seconds=self.alerts.retention),
                              keep=self.alerts.max_history)
        audit = store.rotate_audit(older_than=now - dt.timedelta(seconds=self.audit.retention),
                                   keep=self.audit.max_events)
        if alerts or audit:
            log.info("rotated %d alerts and %d audit events", alerts, audit)
        return alerts, audit
