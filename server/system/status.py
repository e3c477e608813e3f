"""A snapshot of the controller's health: process, machine, database, components."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field

import psutil

from .. import __version__
from ..clock import Clock
from ..store.db import Database
from .components import ComponentStatus


@dataclass(frozen=True)
class DatabaseHealth:
    reachable: bool
    latency_seconds: float
    backend: str
    error: str = ""


@dataclass(frozen=True)
class SystemSnapshot:
    version: str
    started_at: dt.datetime
    uptime_seconds: float
    process_cpu_percent: float
    system_cpu_percent: float
    process_rss_bytes: int
    system_total_bytes: int
    system_available_bytes: int
    system_memory_percent: float
    open_files: int
    database: DatabaseHealth
    model_count: int
    version_count: int
    components: list[ComponentStatus] = field(default_factory=list)
    auth_enabled: bool = True
    tls_enabled: bool = False


class SystemProbe:
    """Reads psutil and pings the database. Blocking: call it on the thread pool."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._process = psutil.Process(os.getpid())
        self.started_at = clock.now()
        self._started_mono = clock.monotonic()
        # The first cpu_percent call only sets the baseline; prime it so the first status is meaningful.
        self._process.cpu_percent(None)
        psutil.cpu_percent(None)

    def uptime(self) -> float:
        return self._clock.monotonic() - self._started_mono

    def database_health(self) -> DatabaseHealth:
        try:
            return DatabaseHealth(True, self._db.ping(), self._db.backend)
        except Exception as exc:  # noqa: BLE001 - any failure means "unreachable", reported, not raised
            return DatabaseHealth(False, 0.0, self._db.backend, str(exc).splitlines()[0][:300])

    def process_numbers(self) -> dict[str, float]:
        with self._process.oneshot():
            mem = self._process.memory_info()
            try:
                open_files = self._process.num_fds()
            except (AttributeError, psutil.Error):
                open_files = len(self._process.open_files())
            return {"cpu_percent": self._process.cpu_percent(None), "rss_bytes": mem.rss, "open_files": open_files}

    def snapshot(self, *, counts: tuple[int, int], components: list[ComponentStatus], auth_enabled: bool,
                 tls_enabled: bool) -> SystemSnapshot:
        proc = self.process_numbers()
        vm = psutil.virtual_memory()
        return SystemSnapshot(
            version=__version__, started_at=self.started_at, uptime_seconds=self.uptime(),
            process_cpu_percent=proc["cpu_percent"], system_cpu_percent=psutil.cpu_percent(None),
            process_rss_bytes=int(proc["rss_bytes"]), system_total_bytes=vm.total,
            system_available_bytes=vm.available, system_memory_percent=vm.percent,
            open_files=int(proc["open_files"]), database=self.database_health(), model_count=counts[0],
            version_count=counts[1], components=components, auth_enabled=auth_enabled, tls_enabled=tls_enabled)
