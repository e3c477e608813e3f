"""Keeps the experiment gauges current, and this replica's running-experiments cache honest.

Results are computed on read; dashboards read Prometheus, not the API, so
`ExperimentRefresher` takes a look at every running experiment periodically
(also a look of the sequential test) and exports it. Reading the running
experiments again also picks up starts and stops made by another replica.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Iterable

from ..clock import Clock
from ..metrics.recorder import MetricsRecorder
from ..system.components import PeriodicTask, Supervisor
from .model import Arm
from .service import ExperimentService, ExperimentView
from .states import ExperimentState

#: Seconds between looks: a dashboard refreshes every 5 s, an experiment changes over minutes.
REFRESH_INTERVAL = 15.0


def export(recorder: MetricsRecorder, views: Iterable[ExperimentView], *, complete: bool = False) -> None:
    """Set the gauges of the running experiments in `views`; `complete`: they are all, drop the rest."""
    running = set()
    for view in views:
        exp, r = view.experiment, view.result
        if exp.state is not ExperimentState.RUNNING:
            continue
        running.add(exp.model)
        recorder.set_experiment(
            exp.model,
            {Arm.CONTROL.value: (r.control.version, r.control.samples, r.control.value),
             Arm.TREATMENT.value: (r.treatment.version, r.treatment.samples, r.treatment.value)},
            p_value=r.p_value, lift=r.lift, samples_needed=r.samples_needed, srm_p_value=r.srm_p_value,
            significant=r.significant)
    if complete:
        for model in recorder.experiment_models - running:
            recorder.clear_experiment(model)


class ExperimentRefresher(PeriodicTask):
    def __init__(self, service: ExperimentService, recorder: MetricsRecorder, run: Callable[..., Awaitable[Any]],
                 clock: Clock, supervisor: Supervisor, interval: float = REFRESH_INTERVAL) -> None:
        super().__init__("experiment-refresher", interval, clock, supervisor)
        self._service = service
        self._recorder = recorder
        self._run = run

    async def tick(self) -> None:
        export(self._recorder, await self._run(self._service.refresh), complete=True)
