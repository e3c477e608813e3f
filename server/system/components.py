"""Background components (loops, exporters) that RestartSystem can restart in place."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging
from dataclasses import dataclass
from typing import Protocol

from ..clock import Clock

log = logging.getLogger(__name__)


class ComponentState(enum.Enum):
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    state: ComponentState
    detail: str
    since: dt.datetime


class Component(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Supervisor:
    """Starts, stops and restarts components, and remembers how each one is doing."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._components: list[Component] = []
        self._status: dict[str, ComponentStatus] = {}

    def add(self, component: Component) -> None:
        self._components.append(component)
        self._set(component.name, ComponentState.STOPPED, "")

    async def start_all(self) -> None:
        for c in self._components:
            self._set(c.name, ComponentState.STARTING, "")
            try:
                await c.start()
            except Exception as exc:  # noqa: BLE001 - one failed component must not stop the rest
                log.exception("component %s failed to start", c.name)
                self._set(c.name, ComponentState.FAILED, str(exc)[:300])
            else:
                self._set(c.name, ComponentState.RUNNING, "")

    async def stop_all(self) -> None:
        for c in reversed(self._components):
            try:
                await c.stop()
            except Exception as exc:  # noqa: BLE001
                log.exception("component %s failed to stop", c.name)
                self._set(c.name, ComponentState.FAILED, str(exc)[:300])
            else:
                self._set(c.name, ComponentState.STOPPED, "")

    async def restart_all(self) -> None:
        await self.stop_all()
        await self.start_all()

    def report_failure(self, name: str, detail: str) -> None:
        """For a component's own loop to say it crashed."""
        self._set(name, ComponentState.FAILED, detail[:300])

    def statuses(self) -> list[ComponentStatus]:
        return [self._status[c.name] for c in self._components]

    def _set(self, name: str, state: ComponentState, detail: str) -> None:
        self._status[name] = ComponentStatus(name, state, detail, self._clock.now())


class PeriodicTask:
    """A component that runs `tick` every `interval` seconds of the clock until stopped.

    `wake()` runs the next tick at once instead of at the end of the interval; wakes
    that arrive during a tick collapse into one more tick. A failing tick is logged
    and reported, and the loop goes on.
    """

    def __init__(self, name: str, interval: float, clock: Clock, supervisor: Supervisor) -> None:
        self.name = name
        self.interval = interval
        self._clock = clock
        self._supervisor = supervisor
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def tick(self) -> None:
        raise NotImplementedError

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._wake = asyncio.Event()  # bound to the running loop
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep ticking; report it
                log.exception("%s tick failed", self.name)
                self._supervisor.report_failure(self.name, str(exc))
            await self._sleep_or_wake()

    async def _sleep_or_wake(self) -> None:
        sleeper = asyncio.ensure_future(self._clock.sleep(self.interval))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
