"""Removes uploaded artifacts that no model version refers to."""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from ..clock import Clock
from ..system.components import PeriodicTask, Supervisor
from .service import RegistryService

log = logging.getLogger(__name__)


class ArtifactSweeper(PeriodicTask):
    """Every hour: delete blobs uploaded more than `grace` ago and never registered, and dead temp files."""

    def __init__(self, registry: RegistryService, run: Callable[..., Awaitable[Any]], clock: Clock,
                 supervisor: Supervisor, grace: Callable[[], float], interval: float = 3600.0) -> None:
        super().__init__("artifact-sweeper", interval, clock, supervisor)
        self._registry = registry
        self._run = run
        self._clock = clock
        self._grace = grace  # read each time: RestartSystem may change it

    async def tick(self) -> None:
        await self._run(self.sweep)

    def sweep(self) -> int:
        # Read the references first: a blob registered after this read is younger than the grace anyway.
        referenced = self._registry.managed_artifact_uris()
        removed = self._registry.artifacts.sweep(referenced, self._clock.now().timestamp(), self._grace())
        for path in removed:
            log.info("removed unreferenced artifact %s", path)
        return len(removed)
