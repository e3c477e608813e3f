"""Deployment RPCs: deploy, roll back, inspect, watch, and steer a rollout."""

from __future__ import annotations

from typing import AsyncIterator

import grpc

from modelctl.v1 import deployment_pb2 as _pb

from ..deployments.engine import DeploymentUpdate
from ..errors import FieldViolation, ValidationError, Violations
from ..events import SubscriberOverflow
from ..pagination import decode_page_token, encode_page_token, page_size_or_default
from ..registry import validation
from ..rollouts import deployment_topic
from .context import caller
from .deployment_convert import (
    deployment_to_proto,
    event_to_proto,
    overrides_from_proto,
    phases_from_proto,
    strategy_from_proto,
)
from .services import Services

#: Gate evaluations shown with a deployment (GetDeployment, and the CLI's `deployments show`).
EVALUATIONS_SHOWN = 20


class DeploymentRpcs:
    services: Services

    async def _with_evaluations(self, update_or_id: DeploymentUpdate | str) -> _pb.Deployment:
        s = self.services
        if isinstance(update_or_id, DeploymentUpdate):
            s.announcer.announce(update_or_id.events)
            dep = update_or_id.deployment
        else:
            dep = await s.run(s.deployments.get, update_or_id)
        evaluations = await s.run(s.deployments.evaluations, dep.id, limit=EVALUATIONS_SHOWN)
        status = None if dep.phase.is_final else await s.run(s.deployments.gate_status, dep)
        return deployment_to_proto(dep, evaluations, status)

    async def DeployModel(self, request: _pb.DeployModelRequest, context: grpc.aio.ServicerContext):
        problems = Violations()
        validation.check_name(request.model, problems, field="model")
        validation.check_version(request.version, problems)
        problems.raise_if_any()
        strategy = strategy_from_proto(request.strategy)
        overrides = _prefixed(lambda: overrides_from_proto(request.params))
        who = caller().name  # read here: the identity lives in this task's context, not the worker thread's
        update = await self.services.run(_prefixed, lambda: self.services.deployments.create(
            request.model, request.version, strategy, overrides, created_by=who))
        self.services.reconciler.wake()  # start it now, not at the next tick
        return await self._with_evaluations(update)

    async def RollbackModel(self, request: _pb.RollbackModelRequest, context: grpc.aio.ServicerContext):
        problems = Violations()
        validation.check_name(request.model, problems, field="model")
        if request.to_version:
            validation.check_version(request.to_version, problems, field="to_version")
        if len(request.reason) > 500:
            problems.add("reason", "must be at most 500 characters")
        problems.raise_if_any()
        update = await self.services.run(self.services.deployments.rollback, request.model,
                                         request.to_version or None, created_by=caller().name)
        self.services.reconciler.wake()  # with a bake time it is watched from now
        return await self._with_evaluations(update)

    async def GetDeployment(self, request: _pb.GetDeploymentRequest, context: grpc.aio.ServicerContext):
        _check_id(request.id)
        return await self._with_evaluations(request.id)

    async def ListDeployments(self, request: _pb.ListDeploymentsRequest, context: grpc.aio.ServicerContext):
        problems = Violations()
        if request.model:
            validation.check_name(request.model, problems, field="model")
        problems.raise_if_any()
        size = page_size_or_default(request.page_size)
        after = decode_page_token(request.page_token, kind="deployments")
        phases = phases_from_proto(list(request.states)) or None
        deployments = await self.services.run(self.services.deployments.list, model=request.model or None,
                                              phases=phases, after=after, limit=size + 1)
        more = len(deployments) > size
        deployments = deployments[:size]
        token = encode_page_token("deployments", deployments[-1].id) if more and deployments else ""
        return _pb.ListDeploymentsResponse(deployments=[deployment_to_proto(d) for d in deployments],
                                           next_page_token=token)

    async def WatchDeployment(self, request: _pb.WatchDeploymentRequest,
                              context: grpc.aio.ServicerContext) -> AsyncIterator[_pb.DeploymentEvent]:
        _check_id(request.id)
        if request.after_seq < 0:
            raise ValidationError(FieldViolation("after_seq", "must not be negative"))
        s = self.services
        last = request.after_seq
        while True:
            # Subscribe before reading the history: an event committed in between is then queued, not lost.
            subscription = s.hub.subscribe(deployment_topic(request.id))
            try:
                history = await s.run(s.deployments.events, request.id, after_seq=last)
                for event in history:
                    yield event_to_proto(event)
                    last = event.seq
                    if event.phase.is_final:
                        return
                if not history:
                    dep = await s.run(s.deployments.get, request.id)
                    if dep.phase.is_final:
                        return  # the caller has seen everything up to the end already
                while True:
                    event = await subscription.get()
                    if event.seq <= last:
                        continue  # already sent from the history
                    if event.seq > last + 1:
                        break  # a gap: read the missing ones from the database
                    yield event_to_proto(event)
                    last = event.seq
                    if event.phase.is_final:
                        return
            except SubscriberOverflow:
                continue  # fell behind the live feed: resume from the database
            except StopAsyncIteration:
                return  # the server is shutting down: end the stream cleanly
            finally:
                subscription.close()

    async def PromoteDeployment(self, request: _pb.DeploymentActionRequest, context: grpc.aio.ServicerContext):
        return await self._act(request, "promote")

    async def PauseDeployment(self, request: _pb.DeploymentActionRequest, context: grpc.aio.ServicerContext):
        return await self._act(request, "pause")

    async def ResumeDeployment(self, request: _pb.DeploymentActionRequest, context: grpc.aio.ServicerContext):
        response = await self._act(request, "resume")
        self.services.reconciler.wake()
        return response

    async def AbortDeployment(self, request: _pb.DeploymentActionRequest, context: grpc.aio.ServicerContext):
        return await self._act(request, "abort")

    async def _act(self, request: _pb.DeploymentActionRequest, action: str) -> _pb.Deployment:
        _check_id(request.id)
        if len(request.reason) > 500:
            raise ValidationError(FieldViolation("reason", "must be at most 500 characters"))
        who = caller().name + (f" ({request.reason})" if request.reason else "")
        operation = getattr(self.services.deployments, action)
        update = await self.services.run(operation, request.id, by=who)
        return await self._with_evaluations(update)


def _check_id(deployment_id: str) -> None:
    if not deployment_id:
        raise ValidationError(FieldViolation("id", "is required: the deployment id DeployModel returned"))
    if len(deployment_id) > 32 or not deployment_id.isalnum():
        raise ValidationError(FieldViolation("id", f"{deployment_id[:40]!r} is not a deployment id"))


def _prefixed(build):  # type: ignore[no-untyped-def]
    """Run `build`, naming parameter fields as the request does (`params.step_interval`)."""
    try:
        return build()
    except ValidationError as exc:
        known = {"steps", "step_interval", "min_samples", "failure_limit", "progress_deadline", "bake_time",
                 "max_unavailable", "max_surge", "critical_gates"}
        thresholds = {"error_rate", "latency_p95_ms", "drift_score", "max_error_rate_increase", "relative_alpha"}
        fields = []
        for v in exc.violations:
            if v.field in known:
                fields.append(FieldViolation(f"params.{v.field}", v.description))
            elif v.field in thresholds:
                fields.append(FieldViolation(f"params.thresholds.{v.field}", v.description))
            else:
                fields.append(v)
        raise ValidationError(fields) from None
