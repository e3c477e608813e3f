"""Pipeline RPCs: registration and status from pipeline services, commands from operators, and the
command stream a pipeline holds open."""

from __future__ import annotations

from typing import AsyncIterator

import grpc

from modelctl.v1 import pipeline_pb2 as _pb

from ..errors import FieldViolation, ValidationError, Violations
from ..events import SubscriberOverflow
from ..pagination import decode_page_token, encode_page_token, page_size_or_default
from ..pipelines.runtime import pipeline_topic
from ..registry import validation
from ._time import duration
from .context import caller, set_audit_target
from .pipeline_convert import (
    check_id,
    check_pipeline_name,
    command_states_from_proto,
    command_to_proto,
    new_command_from_proto,
    pipeline_to_proto,
    registration_from_proto,
    report_from_proto,
    report_interval,
    update_from_proto,
)
from .services import Services

MAX_REASON = 500


class PipelineRpcs:
    services: Services

    def _proto(self, pipeline) -> _pb.Pipeline:  # type: ignore[no-untyped-def]
        return pipeline_to_proto(pipeline, stale=self.services.pipelines.is_stale(pipeline))

    async def RegisterPipeline(self, request: _pb.RegisterPipelineRequest, context: grpc.aio.ServicerContext):
        reg = registration_from_proto(request)
        s = self.services
        pipeline = await s.run(s.pipelines.register, reg, by=caller().name)
        s.pipeline_sweeper.wake()  # a stale alert of it resolves now
        return _pb.RegisterPipelineResponse(pipeline=self._proto(pipeline),
                                            report_interval=duration(report_interval(s.pipelines.settings.stale_after)))

    async def ReportPipelineStatus(self, request: _pb.ReportPipelineStatusRequest,
                                   context: grpc.aio.ServicerContext):
        report = report_from_proto(request)
        s = self.services
        pipeline, was_stale = await s.run(s.pipelines.report, report)
        if was_stale:
            s.pipeline_sweeper.wake()  # resolve its stale alert now, not at the next sweep
        return self._proto(pipeline)

    async def ListPipelines(self, request: _pb.ListPipelinesRequest, context: grpc.aio.ServicerContext):
        problems = Violations()
        if request.model:
            validation.check_name(request.model, problems, field="model")
        problems.raise_if_any()
        size = page_size_or_default(request.page_size)
        after = decode_page_token(request.page_token, kind="pipelines")
        s = self.services
        found = await s.run(s.pipelines.list, model=request.model or None, after=after, limit=size + 1)
        more = len(found) > size
        found = found[:size]
        token = encode_page_token("pipelines", found[-1].name) if more and found else ""
        return _pb.ListPipelinesResponse(pipelines=[self._proto(p) for p in found], next_page_token=token)

    async def GetPipeline(self, request: _pb.GetPipelineRequest, context: grpc.aio.ServicerContext):
        problems = Violations()
        check_pipeline_name(request.name, problems)
        problems.raise_if_any()
        return self._proto(await self.services.run(self.services.pipelines.get, request.name))

    async def SendPipelineCommand(self, request: _pb.SendPipelineCommandRequest,
                                  context: grpc.aio.ServicerContext):
        new = new_command_from_proto(request)
        s = self.services
        change = await s.run(s.pipelines.send, new, by=caller().name)
        s.pipeline_announcer.announce([change])  # the pipeline's streams send it now
        return command_to_proto(change.command)

    async def WatchPipelineCommands(self, request: _pb.WatchPipelineCommandsRequest,
                                    context: grpc.aio.ServicerContext) -> AsyncIterator[_pb.PipelineCommand]:
        problems = Violations()
        check_pipeline_name(request.pipeline, problems, field="pipeline")
        problems.raise_if_any()
        set_audit_target(request.pipeline)
        s = self.services
        sent: set[str] = set()  # ids this stream sent: each once per stream, every unacknowledged one per stream
        while True:
            # Subscribe before reading: a command stored in between is then a queued nudge, not lost.
            subscription = s.hub.subscribe(pipeline_topic(request.pipeline))
            try:
                while True:
                    commands, _ = await s.run(s.pipelines.deliver, request.pipeline)
                    for command in commands:
                        if command.id not in sent:
                            sent.add(command.id)
                            yield command_to_proto(command)
                    sent &= {c.id for c in commands}  # acknowledged ones never come back: forget them
                    await subscription.get()  # a nudge: something changed, read again
            except SubscriberOverflow:
                continue  # fell behind the nudges: read the database again
            except StopAsyncIteration:
                return  # the server is shutting down: end the stream cleanly
            finally:
                subscription.close()

    async def UpdatePipelineCommand(self, request: _pb.UpdatePipelineCommandRequest,
                                    context: grpc.aio.ServicerContext):
        update = update_from_proto(request)
        s = self.services
        change = await s.run(s.pipelines.update, update)
        s.pipeline_announcer.announce([change])
        if change.command.awaits_deployment:
            s.pipeline_sweeper.wake()  # start its rollout now
        return command_to_proto(change.command)

    async def GetPipelineCommand(self, request: _pb.GetPipelineCommandRequest, context: grpc.aio.ServicerContext):
        check_id(request.id)
        return command_to_proto(await self.services.run(self.services.pipelines.get_command, request.id))

    async def CancelPipelineCommand(self, request: _pb.CancelPipelineCommandRequest,
                                    context: grpc.aio.ServicerContext):
        check_id(request.id)
        if len(request.reason) > MAX_REASON:
            raise ValidationError(FieldViolation("reason", f"must be at most {MAX_REASON} characters"))
        s = self.services
        change = await s.run(s.pipelines.cancel, request.id, by=caller().name, reason=request.reason)
        s.pipeline_announcer.announce([change])
        return command_to_proto(change.command)

    async def ListPipelineCommands(self, request: _pb.ListPipelineCommandsRequest,
                                   context: grpc.aio.ServicerContext):
        problems = Violations()
        if request.pipeline:
            check_pipeline_name(request.pipeline, problems, field="pipeline")
        problems.raise_if_any()
        size = page_size_or_default(request.page_size)
        after = decode_page_token(request.page_token, kind="pipeline-commands")
        if after is not None:
            check_id(after, field="page_token")
        states = command_states_from_proto(list(request.states)) or None
        s = self.services
        found = await s.run(s.pipelines.list_commands, pipeline=request.pipeline or None, states=states,
                            after=after, limit=size + 1)
        more = len(found) > size
        found = found[:size]
        token = encode_page_token("pipeline-commands", found[-1].id) if more and found else ""
        return _pb.ListPipelineCommandsResponse(commands=[command_to_proto(c) for c in found], next_page_token=token)
