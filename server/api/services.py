"""The domain services the servicers call, gathered once by the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

from ..audit import AuditLog
from ..auth import TokenService
from ..clock import Clock
from ..config import Settings
from ..metrics.recorder import MetricsRecorder
from ..registry.service import RegistryService
from ..store.db import Database
from ..system.components import Supervisor
from ..system.status import SystemProbe
from .base import BlockingRunner


@dataclass(frozen=True)
class RestartResult:
    changed_keys: list[str]
    ignored_keys: list[str]


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
