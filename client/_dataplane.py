"""Data-plane and telemetry calls: traffic splits, serving instances, and metric reports.

These are the calls pipeline and serving services make all day long; operators
rarely do. `modelctl.TrafficRouter` builds on `watch_traffic_split`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Mapping, Union

from modelctl.v1 import deployment_pb2 as _pb

from ._calls import AsyncCaller, AsyncStream, Stream, SyncCaller
from ._samples import FeatureLike, OutcomeLike, QualityLike, metrics_samples

#: A `MetricsSample`, or a mapping of `metrics_sample` keywords ({"model": ..., "requests": ...,
#: "features": {"age": [31.0], "country": ["fr"]}, "predictions": [...], "outcome": {...}, "quality": {...},
#: "reference": False}).
SampleLike = Union[_pb.MetricsSample, Mapping[str, Any]]


def _one_sample(model: str | None, version: str | None, requests: int | None, errors: int | None,
                latency_ms: Iterable[float] | None, latency_p95_ms: float | None,
                time: dt.datetime | None, features: Mapping[str, FeatureLike] | None = None,
                predictions: Iterable[float] | None = None, outcome: OutcomeLike | None = None,
                quality: QualityLike | None = None, reference: bool | None = None) -> dict[str, Any]:
    given = {"model": model, "version": version, "requests": requests, "errors": errors,
             "latency_ms": latency_ms, "latency_p95_ms": latency_p95_ms, "time": time, "features": features,
             "predictions": predictions, "outcome": outcome, "quality": quality, "reference": reference}
    return {key: value for key, value in given.items() if value is not None}


def report_request(samples: Iterable[SampleLike] | None, one: Mapping[str, Any]) -> _pb.ReportMetricsRequest:
    return _pb.ReportMetricsRequest(samples=metrics_samples(samples, one))


class DataPlaneCalls(SyncCaller):
    def get_traffic_split(self, model: str, *, timeout: float | None = None) -> _pb.TrafficSplit:
        """`weights` maps version -> percent (summing to 100 once the model has a live version)."""
        return self._call(self._stub.GetTrafficSplit, _pb.GetTrafficSplitRequest(model=model), timeout)

    def watch_traffic_split(self, model: str, *, timeout: float | None = None) -> Stream[_pb.TrafficSplit]:
        """The current split first, then every change; `modelctl.TrafficRouter` keeps one open for you."""
        return self._stream(self._stub.WatchTrafficSplit, _pb.WatchTrafficSplitRequest(model=model), timeout)

    def register_instance(self, model: str, instance_id: str, address: str = "", *,
                          timeout: float | None = None) -> _pb.Instance:
        """Announce a serving instance of `model` (rolling deployments move instances in batches)."""
        request = _pb.RegisterInstanceRequest(model=model, instance_id=instance_id, address=address)
        return self._call(self._stub.RegisterInstance, request, timeout)

    def heartbeat(self, model: str, instance_id: str, loaded_version: str = "", healthy: bool = True, *,
                  timeout: float | None = None) -> _pb.HeartbeatResponse:
        """Say the instance is alive, what it serves and whether it is healthy.

        The answer's `assigned_version` is what it must serve (load it when it differs), and
        `heartbeat_interval` when to call again.
        """
        request = _pb.HeartbeatRequest(model=model, instance_id=instance_id, loaded_version=loaded_version,
                                       healthy=healthy)
        return self._call(self._stub.Heartbeat, request, timeout)

    def watch_assignment(self, model: str, instance_id: str, *,
                         timeout: float | None = None) -> Stream[_pb.Assignment]:
        """The version the instance must serve now, then every change."""
        request = _pb.WatchAssignmentRequest(model=model, instance_id=instance_id)
        return self._stream(self._stub.WatchAssignment, request, timeout)

    def report_metrics(self, samples: Iterable[SampleLike] | None = None, *, model: str | None = None,
                       version: str | None = None, requests: int | None = None, errors: int | None = None,
                       latency_ms: Iterable[float] | None = None, latency_p95_ms: float | None = None,
                       time: dt.datetime | None = None, features: Mapping[str, FeatureLike] | None = None,
                       predictions: Iterable[float] | None = None, outcome: OutcomeLike | None = None,
                       quality: QualityLike | None = None, reference: bool | None = None,
                       timeout: float | None = None) -> _pb.ReportMetricsResponse:
        """Report measurements of model versions: a batch, or one sample by keywords.

            client.report_metrics(model="fraud", version="2", requests=500, errors=3, latency_ms=[12.5, 40.1])
            client.report_metrics([MetricsSample(...), {"model": "fraud", "version": "1", "requests": 900}])

        A sample is one window of traffic: counts, individual latencies (at most 10000) or the
        window's p95, and `time` when it ended (default now). Gates judge deployments on these.
        It may also carry what the model saw and achieved: `features` (name -> numbers or
        strings), `predictions`, `outcome` (successes, trials, values) and `quality` (correct,
        labelled); `reference=True` marks the version's reference data for drift instead:

            client.report_metrics(model="fraud", version="2", reference=True,
                                  features={"age": train_ages, "country": train_countries})
            client.report_metrics(model="fraud", version="2", requests=500, features={"age": ages},
                                  predictions=scores, quality={"correct": 180, "labelled": 200})
        """
        one = _one_sample(model, version, requests, errors, latency_ms, latency_p95_ms, time, features,
                          predictions, outcome, quality, reference)
        return self._call(self._stub.ReportMetrics, report_request(samples, one), timeout)


class AsyncDataPlaneCalls(AsyncCaller):
    async def get_traffic_split(self, model: str, *, timeout: float | None = None) -> _pb.TrafficSplit:
        return await self._call(self._stub.GetTrafficSplit, _pb.GetTrafficSplitRequest(model=model), timeout)

    def watch_traffic_split(self, model: str, *,
                            timeout: float | None = None) -> AsyncStream[_pb.TrafficSplit]:
        return self._stream(self._stub.WatchTrafficSplit, _pb.WatchTrafficSplitRequest(model=model), timeout)

    async def register_instance(self, model: str, instance_id: str, address: str = "", *,
                                timeout: float | None = None) -> _pb.Instance:
        request = _pb.RegisterInstanceRequest(model=model, instance_id=instance_id, address=address)
        return await self._call(self._stub.RegisterInstance, request, timeout)

    async def heartbeat(self, model: str, instance_id: str, loaded_version: str = "", healthy: bool = True, *,
                        timeout: float | None = None) -> _pb.HeartbeatResponse:
        request = _pb.HeartbeatRequest(model=model, instance_id=instance_id, loaded_version=loaded_version,
                                       healthy=healthy)
        return await self._call(self._stub.Heartbeat, request, timeout)

    def watch_assignment(self, model: str, instance_id: str, *,
                         timeout: float | None = None) -> AsyncStream[_pb.Assignment]:
        request = _pb.WatchAssignmentRequest(model=model, instance_id=instance_id)
        return self._stream(self._stub.WatchAssignment, request, timeout)

    async def report_metrics(self, samples: Iterable[SampleLike] | None = None, *, model: str | None = None,
                             version: str | None = None, requests: int | None = None,
                             errors: int | None = None,
                             latency_ms: Iterable[float] | None = None, latency_p95_ms: float | None = None,
                             time: dt.datetime | None = None, features: Mapping[str, FeatureLike] | None = None,
                             predictions: Iterable[float] | None = None, outcome: OutcomeLike | None = None,
                             quality: QualityLike | None = None, reference: bool | None = None,
                             timeout: float | None = None) -> _pb.ReportMetricsResponse:
        one = _one_sample(model, version, requests, errors, latency_ms, latency_p95_ms, time, features,
                          predictions, outcome, quality, reference)
        return await self._call(self._stub.ReportMetrics, report_request(samples, one), timeout)
