"""Drift calls: a model version's drift report against its reference profile."""

from __future__ import annotations

from modelctl.v1 import drift_pb2 as _drift

from ._calls import AsyncCaller, SyncCaller
from ._durations import DurationLike, duration_seconds


def drift_report_request(model: str, version: str | None = None,
                         window: DurationLike | None = None) -> _drift.GetDriftReportRequest:
    request = _drift.GetDriftReportRequest(model=model, version=version or "")
    if window is not None:
        request.window.FromNanoseconds(round(duration_seconds(window, "window") * 1e9))
    return request


class DriftCalls(SyncCaller):
    def get_drift_report(self, model: str, version: str | None = None, window: DurationLike | None = None, *,
                         timeout: float | None = None) -> _drift.DriftReport:
        """Drift of `version` (default: the live version) over the last `window` (default: the server's).

            report = client.get_drift_report("fraud", window="1h")
            if report.drifted:
                print([f.name for f in report.features if f.drifted], report.notes)

        `data_score` is the largest feature PSI, `prior_score` the PSI of the predictions,
        `concept_score` the drop of labelled accuracy against the reference.
        """
        return self._call(self._stub.GetDriftReport, drift_report_request(model, version, window), timeout)


class AsyncDriftCalls(AsyncCaller):
    async def get_drift_report(self, model: str, version: str | None = None, window: DurationLike | None = None,
                               *, timeout: float | None = None) -> _drift.DriftReport:
        return await self._call(self._stub.GetDriftReport, drift_report_request(model, version, window), timeout)
