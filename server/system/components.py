"""Background components (loops, exporters) that RestartSystem can restart in place.

Restarts are serialised: two RestartSystem calls at once used to interleave one's
stop with the other's start, so a component bound its port while the old socket was
still open ("Address already in use") and stayed down while both calls answered OK.
Now the supervisor runs one start, stop or restart at a time and returns the
components that failed to start, for the call to report.
"""

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


class RestartsInPlace(Protocol):
    """A component that restarts without stopping first (the /metrics endpoint: never down)."""

    async def restart(self) -> None: ...


class Supervisor:
    """Starts, stops and restarts components, and remembers how each one is doing."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._components: list[Component] = []
        self._status: dict[str, ComponentStatus] = {}
        #: One start, stop or restart at a time: a second RestartSystem waits for the first.
        self._lock = asyncio.Lock()

    def add(self, component: Component) -> None:
        self._components.append(component)
        self._set(component.name, ComponentState.STOPPED, "")

    async def start_all(self) -> list[ComponentStatus]:
        """Start every component; returns those that failed (FAILED, with the error)."""
        async with self._lock:
            return await self._start_all(in_place=False)

    async def stop_all(self) -> None:
        async with self._lock:
            await self._stop_all(in_place=False)

    async def restart_all(self) -> list[ComponentStatus]:
        """Stop and start every component, after any restart already under way; returns those that failed."""
        async with self._lock:
            await self._stop_all(in_place=True)
            return await self._start_all(in_place=True)

    async def _start_all(self, *, in_place: bool) -> list[ComponentStatus]:
        failed = []
        for c in self._components:
            self._set(c.name, ComponentState.STARTING, "")
            restart = getattr(c, "restart", None) if in_place else None
            try:
                await (restart() if restart is not None else c.start())
            except Exception as exc:  # noqa: BLE001 - one failed component must not stop the rest
                log.exception("component %s failed to start", c.name)
                self._set(c.name, ComponentState.FAILED, f"failed to start: {exc}"[:300])
                failed.append(self._status[c.name])
            else:
                self._set(c.name, ComponentState.RUNNING, "")
        return failed

    async def _stop_all(self, *, in_place: bool) -> None:
        for c in reversed(self._components):
            if in_place and hasattr(c, "restart"):
                continue  # restarts without stopping: see RestartsInPlace
            try:
                await c.stop()
            except Exception as exc:  # noqa: BLE001
                log.exception("component %s failed to stop", c.name)
                self._set(c.name, ComponentState.FAILED, str(exc)[:300])
            else:
                self._set(c.name, ComponentState.STOPPED, "")

    def report_failure(self, name: str, detail: str) -> None:
        """For a component's own loop to say it crashed."""
        self._set(name, ComponentState.FAILED, detail[:300])

    def report_running(self, name: str, detail: str = "") -> None:
        """For a component's own loop to say it works again (after report_failure)."""
        self._set(name, ComponentState.RUNNING, detail[:300])

    def wake_all(self) -> None:
        """Run every periodic component's next tick now: the database is back, stop backing off."""
        for c in self._components:
            wake = getattr(c, "wake", None)
            if callable(wake):
                wake()

    def statuses(self) -> list[ComponentStatus]:
        return [self._status[c.name] for c in self._components]

    def _set(self, name: str, state: ComponentState, detail: str) -> None:
        self._status[name] = ComponentStatus(name, state, detail, self._clock.now())


class PeriodicTask:
    """A component that runs `tick` every `interval` seconds of the clock until stopped.

    `wake()` runs the next tick at once instead of at the end of the interval; wakes
    that arrive during a tick collapse into one more tick. A failing tick is logged
    and reported, and the loop goes on, backing off: after n failures in a row it
    waits interval x 2^n (at most `MAX_BACKOFF`), so a database outage does not turn
    every loop into a retry storm and a log flood. The status says it is backing off;
    the first tick that works again sets it RUNNING. The database watchdog wakes every
    loop when the database returns, so none sleeps through the recovery.
    """

    #: The longest a failing loop waits between tries (seconds).
    MAX_BACKOFF = 30.0

    def __init__(self, name: str, interval: float, clock: Clock, supervisor: Supervisor) -> None:
        self.name = name
        self.interval = interval
        self._clock = clock
        self._supervisor = supervisor
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        #: Ticks failed in a row (0 while healthy).
        self.failures = 0

    async def tick(self) -> None:
        raise NotImplementedError

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        if self._task is not None and not self._task.done():
            return  # already running: a second loop would tick twice as often
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
                self.failures += 1
                delay = self.backoff()
                if self.failures == 1:
                    log.exception("%s tick failed; retrying with back-off", self.name)
                else:
                    log.warning("%s tick failed %d times in a row (%s); next try in %gs",
                                self.name, self.failures, str(exc).splitlines()[0] if str(exc) else exc, delay)
                self._supervisor.report_failure(
                    self.name, f"backing off: {self.failures} failed ticks in a row, next try in {delay:g}s: {exc}")
            else:
                if self.failures:
                    log.info("%s works again after %d failed ticks", self.name, self.failures)
                    self._supervisor.report_running(self.name)
                    self.failures = 0
            await self._sleep_or_wake(self.backoff())

    def backoff(self) -> float:
        """Seconds until the next tick: the interval, doubled per failure in a row, capped."""
        if not self.failures:
            return self.interval
        return min(max(self.interval, self.MAX_BACKOFF), self.interval * 2 ** min(self.failures, 16))

    async def _sleep_or_wake(self, seconds: float | None = None) -> None:
        sleeper = asyncio.ensure_future(self._clock.sleep(self.interval if seconds is None else seconds))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
