"""Runs the deployment engine inside the server: the reconcile loop and announcing what changed.

The engine (`deployments.engine.DeploymentController`) is synchronous and
returns the events it stored. This module runs it on the thread pool and, once
a decision has committed, announces it: each event on `deployment:<id>`, and a
nudge on `traffic:<model>` and `assignment:<model>` so the data-plane streams
re-read the split and the instance assignments. Streams re-read instead of
trusting the nudge, so a nudge can be lost or doubled without harm.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Coroutine, Iterable

from .clock import Clock
from .deployments.engine import DeploymentController
from .deployments.model import Deployment, DeploymentEvent, EventKind
from .events import EventHub
from .metrics.recorder import MetricsRecorder
from .system.components import PeriodicTask, Supervisor

log = logging.getLogger(__name__)

Runner = Callable[..., Awaitable[Any]]


def deployment_topic(deployment_id: str) -> str:
    return f"deployment:{deployment_id}"


def traffic_topic(model: str) -> str:
    return f"traffic:{model}"


def assignment_topic(model: str) -> str:
    return f"assignment:{model}"


class Announcer:
    """Publishes committed deployment events to the streams and mirrors them in metrics.

    Called on the event loop (by servicers and the reconciler) after the decision committed.
    """

    def __init__(self, hub: EventHub, recorder: MetricsRecorder, read_split: Callable[[str], Awaitable[dict]], *,
                 read_live: Callable[[str], Awaitable[str | None]] | None = None,
                 read_deployment: Callable[[str], Awaitable[Deployment]] | None = None) -> None:
        self._hub = hub
        self._recorder = recorder
        self._read_split = read_split
        self._read_live = read_live
        self._read_deployment = read_deployment
        self._exports: set[asyncio.Task[None]] = set()
        #: Called with every batch of committed events (the deployment alerts listen here).
        self.listeners: list[Callable[[list[DeploymentEvent]], None]] = []

    def announce(self, events: Iterable[DeploymentEvent]) -> None:
        models: set[str] = set()
        events = list(events)
        for listener in self.listeners:
            listener(events)
        for event in events:
            self._hub.publish(deployment_topic(event.deployment_id), event)
            models.add(event.model)
            self._recorder.observe_deployment_event(event)
            if event.kind is EventKind.SUCCEEDED and self._read_deployment is not None:
                self._export(self._export_success(event.deployment_id))
        for model in models:
            self.nudge(model)

    def nudge(self, model: str) -> None:
        """Tell the data-plane streams of `model` to re-read the split and assignments."""
        self._hub.publish(traffic_topic(model), None)
        self._hub.publish(assignment_topic(model), None)
        self._export(self._export_split(model))

    def _export(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._exports.add(task)  # keep a reference until done, or the task may be collected mid-way
        task.add_done_callback(self._exports.discard)

    async def _export_split(self, model: str) -> None:
        try:
            self._recorder.set_traffic(model, await self._read_split(model))
            if self._read_live is not None:
                self._recorder.set_live_versions({model: await self._read_live(model)})
        except Exception:  # noqa: BLE001 - metrics must never break a rollout; the next change retries
            log.warning("could not export the traffic split of %s", model, exc_info=True)

    async def _export_success(self, deployment_id: str) -> None:
        assert self._read_deployment is not None
        try:
            dep = await self._read_deployment(deployment_id)
        except Exception:  # noqa: BLE001 - as above: a lost observation, never a broken rollout
            log.warning("could not read deployment %s to time its rollout", deployment_id, exc_info=True)
            return
        if dep.finished_at is not None:
            self._recorder.observe_success(dep.strategy.value.lower(), dep.created_at, dep.finished_at)


class Reconciler(PeriodicTask):
    """The reconcile loop: every `interval` (or sooner when woken) each active deployment takes its next step.

    Deploys, resumes, heartbeats and instance registrations wake it, so a step that is
    due does not wait for the next interval.
    """

    def __init__(self, controller: DeploymentController, announcer: Announcer, run: Runner, clock: Clock,
                 supervisor: Supervisor, interval: float) -> None:
        super().__init__("reconciler", interval, clock, supervisor)
        self._controller = controller
        self._announcer = announcer
        self._run = run

    async def tick(self) -> list[DeploymentEvent]:  # type: ignore[override]
        events = await self._run(self._controller.advance_all)
        self._announcer.announce(events)
        return events


__all__ = ["Announcer", "EventKind", "Reconciler", "assignment_topic", "deployment_topic", "traffic_topic"]
