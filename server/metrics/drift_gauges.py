"""Keeps the drift gauges current: every tracked version's scores and feature PSIs, periodically.

Drift is computed on read; dashboards read Prometheus, so this component looks
at each version the drift engine holds (bounded by its series limit) every
`interval` seconds, exports its scores (PSI only: the tests' p-values cost
more), and drops the series of versions the engine no longer holds. It also writes live-built references that grew since
they were last saved (ingest throttles those writes).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Iterable

from ..clock import Clock
from ..drift.model import DriftScores
from ..drift.service import DriftService
from ..system.components import PeriodicTask, Supervisor
from .recorder import MetricsRecorder

#: Seconds between looks: dashboards refresh every 5 s; drift over an hour's window moves slowly.
REFRESH_INTERVAL = 15.0


def export(recorder: MetricsRecorder, scores: Iterable[DriftScores]) -> None:
    """Set the gauges of `scores`, and clear versions not among them."""
    seen = set()
    for s in scores:
        seen.add((s.model, s.version))
        recorder.set_drift(s.model, s.version, {"data": s.data_score, "prior": s.prior_score,
                                                "concept": s.concept_score}, s.feature_psi)
    for model, version in recorder.drift_versions - seen:
        recorder.clear_drift(model, version)


def _scores(service: DriftService) -> list[DriftScores]:
    service.flush()
    return [service.scores(model, version) for model, version in service.tracked()]


class DriftGauges(PeriodicTask):
    def __init__(self, service: DriftService, recorder: MetricsRecorder, run: Callable[..., Awaitable[Any]],
                 clock: Clock, supervisor: Supervisor, interval: float = REFRESH_INTERVAL) -> None:
        super().__init__("drift-gauges", interval, clock, supervisor)
        self._service = service
        self._recorder = recorder
        self._run = run

    async def tick(self) -> None:
        export(self._recorder, await self._run(_scores, self._service))
