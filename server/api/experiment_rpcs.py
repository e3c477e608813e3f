"""Experiment RPCs: start an A/B split, read its verdict, list, and stop (or promote the winner)."""

from __future__ import annotations

import grpc

from modelctl.v1 import experiment_pb2 as _pb

from ..errors import FieldViolation, ValidationError, Violations
from ..experiments.refresher import export
from ..pagination import decode_page_token, encode_page_token, page_size_or_default
from ..registry import validation
from .context import caller
from .experiment_convert import experiment_to_proto, start_request_from_proto, states_from_proto
from .services import Services

MAX_REASON = 500


class ExperimentRpcs:
    services: Services

    async def StartExperiment(self, request: _pb.StartExperimentRequest, context: grpc.aio.ServicerContext):
        start = start_request_from_proto(request)
        who = caller().name  # read here: the identity lives in this task's context, not the worker thread's
        s = self.services
        view = await s.run(s.experiments.start, start, created_by=who)
        s.announcer.nudge(view.experiment.model)  # WatchTrafficSplit and TrafficRouter take the new split
        export(s.recorder, [view])
        return experiment_to_proto(view)

    async def GetExperiment(self, request: _pb.GetExperimentRequest, context: grpc.aio.ServicerContext):
        _check_id(request.id)
        s = self.services
        view = await s.run(s.experiments.get, request.id)
        export(s.recorder, [view])
        return experiment_to_proto(view)

    async def ListExperiments(self, request: _pb.ListExperimentsRequest, context: grpc.aio.ServicerContext):
        problems = Violations()
        if request.model:
            validation.check_name(request.model, problems, field="model")
        problems.raise_if_any()
        size = page_size_or_default(request.page_size)
        after = decode_page_token(request.page_token, kind="experiments")
        if after is not None:
            _check_id(after, field="page_token")
        states = states_from_proto(list(request.states)) or None
        s = self.services
        views = await s.run(s.experiments.list, model=request.model or None, states=states, after=after,
                            limit=size + 1)
        more = len(views) > size
        views = views[:size]
        export(s.recorder, views)
        token = encode_page_token("experiments", views[-1].experiment.id) if more and views else ""
        return _pb.ListExperimentsResponse(experiments=[experiment_to_proto(v) for v in views],
                                           next_page_token=token)

    async def StopExperiment(self, request: _pb.StopExperimentRequest, context: grpc.aio.ServicerContext):
        _check_id(request.id)
        if len(request.reason) > MAX_REASON:
            raise ValidationError(FieldViolation("reason", f"must be at most {MAX_REASON} characters"))
        s = self.services
        who = caller().name
        outcome = await s.run(s.experiments.stop, request.id, promote_winner=request.promote_winner,
                              reason=request.reason, by=who)
        model = outcome.view.experiment.model
        s.recorder.clear_experiment(model)
        s.announcer.nudge(model)  # traffic is back on the control
        if outcome.deployment is not None:
            s.announcer.announce(outcome.deployment.events)
            s.reconciler.wake()  # the canary's first step now, not at the next tick
        return experiment_to_proto(outcome.view)


def _check_id(experiment_id: str, field: str = "id") -> None:
    if not experiment_id:
        raise ValidationError(FieldViolation(field, "is required: the experiment id StartExperiment returned"))
    if len(experiment_id) > 32 or not experiment_id.isalnum():
        raise ValidationError(FieldViolation(field, f"{experiment_id[:40]!r} is not an experiment id"))
