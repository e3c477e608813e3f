"""Serves /metrics on its own port, and samples system health into gauges."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

import psutil
from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from ..clock import Clock
from ..system.components import PeriodicTask, Supervisor
from ..system.garbage import collect_young
from ..system.status import SystemProbe
from .recorder import MetricsRecorder

log = logging.getLogger(__name__)


class MetricsExporter:
    """The /metrics HTTP endpoint (prometheus_client's threaded server)."""

    name = "metrics-exporter"

    def __init__(self, recorder: MetricsRecorder, address: str) -> None:
        self._recorder = recorder
        self._address = address
        self._server = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    async def start(self) -> None:
        if self._server is not None:
            return  # already serving: the app binds it before the other components start
        # prometheus_client's start_http_server, but with a short poll interval so that
        # stopping (shutdown) takes milliseconds instead of half a second.
        host, _, port = self._address.rpartition(":")
        self._server = make_server(host.strip("[]"), int(port), make_wsgi_app(self._recorder.registry),
                                   ThreadingWSGIServer, handler_class=_QuietHandler)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="metrics-http", daemon=True)
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics", host, self.port)

    async def restart(self) -> None:
        """RestartSystem: keep serving. Its address changes only with the process, so there is
        nothing to reload, and a stop-then-bind would leave Prometheus a gap (or a lost port)."""
        if self._server is not None and self._thread is not None and self._thread.is_alive():
            return
        self._server = None
        await self.start()

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await asyncio.to_thread(server.shutdown)
            server.server_close()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Scrapes every 5 s would flood the log."""


class SystemSampler(PeriodicTask):
    """Every few seconds: machine CPU and memory, database health, event-loop lag, registry counts.

    The process's own CPU, memory and open files are prometheus_client's ProcessCollector's,
    read at scrape time. The live versions are re-read too, so a restarted controller exports
    them before the next rollout announces anything.
    """

    def __init__(self, recorder: MetricsRecorder, probe: SystemProbe, counts, run, clock: Clock,  # type: ignore[no-untyped-def]
                 supervisor: Supervisor, interval: float = 5.0, live_versions=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__("system-sampler", interval, clock, supervisor)
        self._recorder = recorder
        self._probe = probe
        self._counts = counts
        self._run = run
        #: Rounds completed: the system alert rule reads the gauges only once there has been one.
        self.samples = 0
        self._live_versions = live_versions

    async def tick(self) -> None:
        r = self._recorder
        r.loop_lag.set(await _loop_lag())
        db = await self._run(self._probe.database_health)
        r.database_up.set(1 if db.reachable else 0)
        r.database_latency.set(db.latency_seconds)
        if db.reachable:
            models, versions = await self._run(self._counts)
            r.models.set(models)
            r.versions.set(versions)
            if self._live_versions is not None:
                r.set_live_versions(await self._run(self._live_versions))
        r.system_cpu.set(psutil.cpu_percent(None) / 100.0)
        memory = psutil.virtual_memory()
        r.system_memory.set((memory.total - memory.available) / memory.total if memory.total else 0.0)
        r.system_memory_total.set(memory.total)
        await self._run(release_free_memory)
        self.samples += 1


def _load_malloc_trim():  # type: ignore[no-untyped-def]
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc (musl, macOS): nothing to trim


_MALLOC_TRIM = _load_malloc_trim()


def release_free_memory() -> None:
    """Hand memory the allocator holds but no object uses back to the OS (glibc's malloc_trim).

    A burst of large requests (refused, but received and parsed first) leaves glibc's
    per-thread arenas full of free chunks that it keeps: RSS stayed 100+ MB above its
    baseline for good. Trimming every sampler round (a few ms) brings it back, once the young
    garbage cycles holding such requests are collected.
    """
    collect_young()  # cycles holding large buffers first: see system.garbage
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


async def _loop_lag() -> float:
    """How long a callback that is ready now waits for the loop: the loop's responsiveness."""
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    fut: asyncio.Future[float] = loop.create_future()

    def done() -> None:
        # The sampler may have been stopped (cancelling fut) before this callback ran.
        if not fut.done():
            fut.set_result(time.perf_counter() - start)
    loop.call_soon(done)
    return await fut
