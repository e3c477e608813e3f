"""The pipeline service inside the server: announcing command changes, and the sweep that keeps time.

`PipelineAnnouncer` runs after a change committed: it nudges the pipeline's
`WatchPipelineCommands` streams (topic `pipeline:<name>`; the streams re-read
the database, so a nudge lost or doubled does no harm) and counts the change
in metrics. `PipelineSweeper` (component `pipeline-sweeper`, every
`pipelines.check_interval` on the injected clock, or sooner when woken):

- expires commands not acknowledged by their deadline;
- starts the deployments of commands whose pipeline registered a version, and
  ends commands whose deployment reached a final state. Deployment events
  (`Announcer.listeners`) wake it, so a command ends with its rollout, not a
  tick later; the stored rows decide, so a missed wake only costs a tick;
- raises a SYSTEM alert `pipeline_stale:<name>` through the alert engine for a
  pipeline silent longer than `pipelines.stale_after`, and resolves it once
  the pipeline is heard from again;
- exports pipelines by state and the stale count.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Awaitable, Callable, Iterable

from ..alerts.engine import AlertEngine
from ..alerts.model import AlertKind, Severity, Signal, fingerprint
from ..clock import Clock
from ..deployments.model import DeploymentEvent
from ..durations import format_duration
from ..events import EventHub
from ..system.components import PeriodicTask, Supervisor
from .model import Pipeline
from .service import CommandChange, PipelineService
from .states import CommandState

log = logging.getLogger(__name__)

Runner = Callable[..., Awaitable[Any]]
STALE_RULE = "pipeline_stale"


def pipeline_topic(name: str) -> str:
    return f"pipeline:{name}"


def stale_fingerprint(name: str) -> str:
    return fingerprint(AlertKind.SYSTEM, "", "", f"{STALE_RULE}:{name}")


class PipelineAnnouncer:
    """Publishes committed command changes to the streams and mirrors them in metrics (on the loop)."""

    def __init__(self, hub: EventHub, recorder: Any) -> None:
        self._hub = hub
        self._recorder = recorder

    def announce(self, changes: Iterable[CommandChange]) -> None:
        for change in changes:
            c = change.command
            if change.before is change.command.state:
                self._hub.publish(pipeline_topic(c.pipeline), c.id)
                continue
            self._hub.publish(pipeline_topic(c.pipeline), c.id)
            if c.state is CommandState.ACKNOWLEDGED and c.acknowledged_at is not None:
                self._recorder.observe_command_acknowledged((c.acknowledged_at - c.created_at).total_seconds())
            if c.state.is_final:
                self._recorder.observe_command_outcome(c.kind.value, c.state.value)


class PipelineSweeper(PeriodicTask):
    """`pipeline-sweeper`: deadlines, the rollouts commands start and end with, stale pipelines."""

    def __init__(self, service: PipelineService, announcer: PipelineAnnouncer, run: Runner, clock: Clock,
                 supervisor: Supervisor, *, alerts: AlertEngine | None, recorder: Any,
                 announce_deployments: Callable[[list[DeploymentEvent]], None],
                 wake_reconciler: Callable[[], None]) -> None:
        super().__init__("pipeline-sweeper", service.settings.check_interval, clock, supervisor)
        self._service = service
        self._announcer = announcer
        self._run = run
        self._alerts = alerts
        self._recorder = recorder
        self._announce_deployments = announce_deployments
        self._wake_reconciler = wake_reconciler

    def on_deployment_events(self, events: list[DeploymentEvent]) -> None:
        """An `Announcer` listener: a deployment that ended may end the command that started it."""
        if any(e.phase.is_final for e in events):
            self.wake()

    async def tick(self) -> None:
        changes = await self._run(self._service.expire_due)
        started, updates = await self._run(self._service.start_deployments)
        changes += started
        for update in updates:
            self._announce_deployments(update.events)
        if updates:
            self._wake_reconciler()  # its first step now, not at the next reconcile tick
        changes += await self._run(self._service.conclude_deployments)
        self._announcer.announce(changes)
        pipelines = await self._run(self._service.all)
        await self._run(self.check_stale, pipelines)

    def check_stale(self, pipelines: list[Pipeline]) -> None:
        """Raise the stale alert of each silent pipeline, resolve it for those heard again; export gauges."""
        stale = [p for p in pipelines if self._service.is_stale(p)]
        self._recorder.set_pipelines(Counter(p.state.value for p in pipelines), len(stale))
        if self._alerts is None:
            return
        open_now = self._alerts.store.open_fingerprints([AlertKind.SYSTEM])
        stale_names = {p.name for p in stale}
        severity = Severity.parse(self._service.settings.stale_severity)
        for p in stale:
            if stale_fingerprint(p.name) in open_now:
                continue
            silent = (self._clock.now() - p.last_seen).total_seconds()
            self._alerts.raise_signal(Signal(
                AlertKind.SYSTEM, f"{STALE_RULE}:{p.name}", severity,
                f"pipeline {p.name} silent for {format_duration(round(silent))} (stale after "
                f"{format_duration(self._service.settings.stale_after)}; last state {p.state.value})",
                labels={"pipeline": p.name, "rule": STALE_RULE}))
        for p in pipelines:
            if p.name not in stale_names and stale_fingerprint(p.name) in open_now:
                self._alerts.resolve(stale_fingerprint(p.name), f"pipeline {p.name} reported again")
