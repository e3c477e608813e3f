"""GetDriftReport: a model version's drift over a window, against its reference profile."""

from __future__ import annotations

import grpc

from modelctl.v1 import drift_pb2 as _pb

from ..drift.model import DriftReport
from ..errors import FailedPreconditionError, NotFoundError, Violations
from ..registry import validation
from ._time import seconds_of
from .drift_convert import report_to_proto
from .services import Services


class DriftRpcs:
    services: Services

    async def GetDriftReport(self, request: _pb.GetDriftReportRequest, context: grpc.aio.ServicerContext):
        s = self.services
        problems = Violations()
        validation.check_name(request.model, problems, field="model")
        if request.version:
            validation.check_version(request.version, problems)
        window = None
        if request.HasField("window"):
            window = seconds_of(request.window)
            longest = s.drift.retention_seconds
            if not 0 < window <= longest:
                problems.add("window", f"must be positive and at most {longest:g}s (how far back drift is kept)")
        problems.raise_if_any()
        report = await s.run(_report, s, request.model, request.version, window)
        return report_to_proto(report)


def _report(s: Services, model: str, version: str, window: float | None) -> DriftReport:
    if not version:
        live = s.registry.live_versions([model])
        if model not in live:
            raise NotFoundError(f"model {model!r} is not registered")
        if live[model] is None:
            raise FailedPreconditionError(f"model {model!r} has no live version yet: name one with version "
                                          f"(the CLI's --version)")
        version = live[model]
    else:
        s.registry.get_version(model, version)  # NOT_FOUND for a model or version never registered
    return s.drift.report(model, version, window)
