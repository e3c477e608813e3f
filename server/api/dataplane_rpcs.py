"""Data-plane RPCs: the traffic split, serving instances, and their assignments."""

from __future__ import annotations

from typing import AsyncIterator

import grpc

from modelctl.v1 import deployment_pb2 as _pb

from ..errors import Violations
from ..events import SubscriberOverflow
from ..registry import validation
from ..rollouts import assignment_topic, traffic_topic
from ._time import duration
from .deployment_convert import instance_to_proto
from .services import Services


class DataPlaneRpcs:
    services: Services

    async def GetTrafficSplit(self, request: _pb.GetTrafficSplitRequest, context: grpc.aio.ServicerContext):
        key = ("GetTrafficSplit", request.model)
        reads = self.services.reads
        reply = reads.get(key)
        if reply is None:
            # Not cached yet or a write to the registry or traffic tables committed since: read it.
            _check_model(request.model)
            generation = reads.generation
            weights = await self.services.run(self.services.deployments.traffic_split, request.model)
            reply = _pb.TrafficSplit(model=request.model, weights=weights)
            reads.put(key, reply, generation)
        return reply

    async def WatchTrafficSplit(self, request: _pb.WatchTrafficSplitRequest,
                                context: grpc.aio.ServicerContext) -> AsyncIterator[_pb.TrafficSplit]:
        _check_model(request.model)
        s = self.services
        read = lambda: s.run(s.deployments.traffic_split, request.model)  # noqa: E731
        async for weights in _follow(s, traffic_topic(request.model), read):
            yield _pb.TrafficSplit(model=request.model, weights=weights)

    async def RegisterInstance(self, request: _pb.RegisterInstanceRequest, context: grpc.aio.ServicerContext):
        _check_model(request.model)
        s = self.services
        instance = await s.run(s.instances.register, request.model, request.instance_id, request.address)
        s.reconciler.wake()  # a rolling deployment may have been waiting for instances
        return instance_to_proto(instance)

    async def Heartbeat(self, request: _pb.HeartbeatRequest, context: grpc.aio.ServicerContext):
        _check_model(request.model)
        problems = Violations()
        if request.loaded_version:
            validation.check_version(request.loaded_version, problems, field="loaded_version")
        problems.raise_if_any()
        s = self.services
        # Nothing changed: answered from memory on the event loop. Anything else is written before the answer.
        result = s.instances.beat(request.model, request.instance_id, request.loaded_version or None,
                                  request.healthy) \
            or await s.run(s.instances.report, request.model, request.instance_id,
                           request.loaded_version or None, request.healthy)
        assigned = result.assigned_version
        if not request.healthy and request.loaded_version:
            # Rolling fast fail: an instance unhealthy on the new version rolls its batch back in this call.
            events = await s.run(s.deployments.on_instance_health, request.model)
            if events:
                s.announcer.announce(events)
                # Answer with the assignment the rollback just stored: the instance goes back at once.
                assigned = await s.run(s.instances.assignment, request.model, request.instance_id)
        if result.changed:
            # Something a rolling deployment waits for (a confirmed batch, a lost instance back): decide now.
            s.reconciler.wake()
        return _pb.HeartbeatResponse(assigned_version=assigned or "",
                                     heartbeat_interval=duration(s.deployments.heartbeat_interval))

    async def WatchAssignment(self, request: _pb.WatchAssignmentRequest,
                              context: grpc.aio.ServicerContext) -> AsyncIterator[_pb.Assignment]:
        _check_model(request.model)
        s = self.services
        read = lambda: s.run(s.instances.assignment, request.model, request.instance_id)  # noqa: E731
        async for version in _follow(s, assignment_topic(request.model), read):
            active = await s.run(s.deployments.list, model=request.model, limit=1)
            yield _pb.Assignment(model=request.model, instance_id=request.instance_id, version=version or "",
                                 deployment_id=active[0].id if active else "")


async def _follow(s: Services, topic: str, read) -> AsyncIterator:  # type: ignore[no-untyped-def]
    """The current value, then the value after every nudge on `topic` whenever it changed."""
    last: object = object()
    subscription = s.hub.subscribe(topic)
    try:
        while True:
            value = await read()
            if value != last:
                yield value
                last = value
            try:
                await subscription.get()
            except SubscriberOverflow:
                subscription.close()
                subscription = s.hub.subscribe(topic)
            except StopAsyncIteration:
                return  # shutting down
    finally:
        subscription.close()


def _check_model(model: str) -> None:
    problems = Violations()
    validation.check_name(model, problems, field="model")
    problems.raise_if_any()
