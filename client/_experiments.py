"""Experiment calls: start an A/B split between two versions, read its verdict, list, stop or promote.

`ExperimentCalls` (sync) and `AsyncExperimentCalls` hold the same methods with
the same signatures. Metrics and states are taken by name ("conversion",
"error-rate", "running") or enum value.
"""

from __future__ import annotations

from typing import AsyncIterator, Iterable, Iterator, Union

from modelctl.v1 import experiment_pb2 as _pb

from ._calls import AsyncCaller, SyncCaller
from ._deployment_requests import _enum_value as _value

#: A metric by name ("conversion", "value", "error-rate", "latency") or an `ExperimentMetric` value.
MetricLike = Union[str, int]
#: A state by name ("running", "stopped", "promoted") or an `ExperimentState` value.
ExperimentStateLike = Union[str, int]

METRIC_NAMES = ("conversion", "value", "error-rate", "latency")
EXPERIMENT_STATE_NAMES = ("running", "stopped", "promoted")


def metric_value(metric: MetricLike) -> int:
    """The `ExperimentMetric` value for "conversion", "error-rate", "ERROR_RATE", ... or an enum value."""
    return _value(_pb.ExperimentMetric, metric, "EXPERIMENT_METRIC_", METRIC_NAMES, "metric")


def metric_name(value: int) -> str:
    """"error-rate" for EXPERIMENT_METRIC_ERROR_RATE: the CLI's spelling."""
    return _pb.ExperimentMetric.Name(value).removeprefix("EXPERIMENT_METRIC_").lower().replace("_", "-")


def experiment_state_value(state: ExperimentStateLike) -> int:
    return _value(_pb.ExperimentState, state, "EXPERIMENT_STATE_", EXPERIMENT_STATE_NAMES, "experiment state")


def experiment_state_name(value: int) -> str:
    """"RUNNING" for EXPERIMENT_STATE_RUNNING."""
    return _pb.ExperimentState.Name(value).removeprefix("EXPERIMENT_STATE_")


def start_request(model: str, control: str, treatment: str, treatment_percent: float = 50,
                  metric: MetricLike = "conversion", min_effect: float | None = None) -> _pb.StartExperimentRequest:
    request = _pb.StartExperimentRequest(model=model, control_version=control, treatment_version=treatment,
                                         treatment_percent=treatment_percent, metric=metric_value(metric))
    if min_effect is not None:
        request.min_effect = min_effect
    return request


def list_request(model: str | None = None, states: Iterable[ExperimentStateLike] | None = None,
                 page_size: int = 0, page_token: str = "") -> _pb.ListExperimentsRequest:
    return _pb.ListExperimentsRequest(model=model or "", states=[experiment_state_value(s) for s in states or ()],
                                      page_size=page_size, page_token=page_token)


class ExperimentCalls(SyncCaller):
    def start_experiment(self, model: str, control: str, treatment: str, treatment_percent: float = 50,
                         metric: MetricLike = "conversion", min_effect: float | None = None, *,
                         timeout: float | None = None) -> _pb.Experiment:
        """Split `model`'s traffic between `control` (its live version) and `treatment`, and judge `metric`.

        `min_effect` is the smallest relative lift worth detecting (0.02 = 2 %; default: the server's).
        FAILED_PRECONDITION while a deployment or another experiment of the model is active.
        """
        request = start_request(model, control, treatment, treatment_percent, metric, min_effect)
        return self._call(self._stub.StartExperiment, request, timeout)

    def get_experiment(self, experiment_id: str, *, timeout: float | None = None) -> _pb.Experiment:
        """The experiment with its verdict computed now (`.result`)."""
        return self._call(self._stub.GetExperiment, _pb.GetExperimentRequest(id=experiment_id), timeout)

    def list_experiments(self, model: str | None = None, states: Iterable[ExperimentStateLike] | None = None, *,
                         page_size: int = 0, page_token: str = "",
                         timeout: float | None = None) -> _pb.ListExperimentsResponse:
        """One page of experiments, newest first."""
        return self._call(self._stub.ListExperiments, list_request(model, states, page_size, page_token), timeout)

    def iter_experiments(self, model: str | None = None, states: Iterable[ExperimentStateLike] | None = None, *,
                         page_size: int = 0, timeout: float | None = None) -> Iterator[_pb.Experiment]:
        states = tuple(states or ())
        return self._pages(lambda token: self.list_experiments(model, states, page_size=page_size, page_token=token,
                                                               timeout=timeout),
                           lambda page: page.experiments)

    def stop_experiment(self, experiment_id: str, promote_winner: bool = False, reason: str = "", *,
                        timeout: float | None = None) -> _pb.Experiment:
        """All traffic back on the control; with `promote_winner`, a canary of a significant winning treatment."""
        request = _pb.StopExperimentRequest(id=experiment_id, promote_winner=promote_winner, reason=reason)
        return self._call(self._stub.StopExperiment, request, timeout)


class AsyncExperimentCalls(AsyncCaller):
    async def start_experiment(self, model: str, control: str, treatment: str, treatment_percent: float = 50,
                               metric: MetricLike = "conversion", min_effect: float | None = None, *,
                               timeout: float | None = None) -> _pb.Experiment:
        request = start_request(model, control, treatment, treatment_percent, metric, min_effect)
        return await self._call(self._stub.StartExperiment, request, timeout)

    async def get_experiment(self, experiment_id: str, *, timeout: float | None = None) -> _pb.Experiment:
        return await self._call(self._stub.GetExperiment, _pb.GetExperimentRequest(id=experiment_id), timeout)

    async def list_experiments(self, model: str | None = None, states: Iterable[ExperimentStateLike] | None = None,
                               *, page_size: int = 0, page_token: str = "",
                               timeout: float | None = None) -> _pb.ListExperimentsResponse:
        return await self._call(self._stub.ListExperiments, list_request(model, states, page_size, page_token),
                                timeout)

    def iter_experiments(self, model: str | None = None, states: Iterable[ExperimentStateLike] | None = None, *,
                         page_size: int = 0, timeout: float | None = None) -> AsyncIterator[_pb.Experiment]:
        states = tuple(states or ())
        return self._pages(lambda token: self.list_experiments(model, states, page_size=page_size,
                                                               page_token=token, timeout=timeout),
                           lambda page: page.experiments)

    async def stop_experiment(self, experiment_id: str, promote_winner: bool = False, reason: str = "", *,
                              timeout: float | None = None) -> _pb.Experiment:
        request = _pb.StopExperimentRequest(id=experiment_id, promote_winner=promote_winner, reason=reason)
        return await self._call(self._stub.StopExperiment, request, timeout)
