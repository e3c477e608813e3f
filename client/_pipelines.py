"""Pipeline calls: register and report (pipeline services), send and follow commands (operators).

`PipelineCalls` (sync) and `AsyncPipelineCalls` hold the same methods with the
same signatures. Kinds, states and strategies are taken by name ("optimize",
"reload-config", "acknowledged", "canary") or enum value. A pipeline service
normally uses `modelctl.PipelineAgent`, which calls these for it.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Iterable, Iterator, Mapping, Union

from modelctl.v1 import pipeline_pb2 as _pb

from ._calls import AsyncCaller, AsyncStream, Stream, SyncCaller
from ._deployment_requests import DurationLike, StrategyLike, deployment_params, duration_seconds, strategy_value
from ._deployment_requests import _enum_value as _value

#: A kind by name ("optimize", "retrain", "pause", "resume", "reload-config") or a `PipelineCommandKind` value.
KindLike = Union[str, int]
#: A command state by name ("pending", "acknowledged", ...) or a `PipelineCommandState` value.
CommandStateLike = Union[str, int]
#: A pipeline state by name ("idle", "running", "optimizing", "paused", "failed") or a `PipelineState` value.
PipelineStateLike = Union[str, int]

KIND_NAMES = ("optimize", "retrain", "pause", "resume", "reload-config")
COMMAND_STATE_NAMES = ("pending", "delivered", "acknowledged", "succeeded", "failed", "expired", "cancelled")
PIPELINE_STATE_NAMES = ("idle", "running", "optimizing", "paused", "failed")
FINAL_COMMAND_STATES = frozenset(_pb.PipelineCommandState.Value(f"PIPELINE_COMMAND_STATE_{s.upper()}")
                                 for s in ("succeeded", "failed", "expired", "cancelled"))


def kind_value(kind: KindLike) -> int:
    return _value(_pb.PipelineCommandKind, kind, "PIPELINE_COMMAND_KIND_", KIND_NAMES, "command kind")


def kind_name(value: int) -> str:
    """"reload-config" for PIPELINE_COMMAND_KIND_RELOAD_CONFIG: the CLI's spelling."""
    return _pb.PipelineCommandKind.Name(value).removeprefix("PIPELINE_COMMAND_KIND_").lower().replace("_", "-")


def command_state_value(state: CommandStateLike) -> int:
    return _value(_pb.PipelineCommandState, state, "PIPELINE_COMMAND_STATE_", COMMAND_STATE_NAMES, "command state")


def command_state_name(value: int) -> str:
    """"ACKNOWLEDGED" for PIPELINE_COMMAND_STATE_ACKNOWLEDGED."""
    return _pb.PipelineCommandState.Name(value).removeprefix("PIPELINE_COMMAND_STATE_")


def pipeline_state_value(state: PipelineStateLike) -> int:
    return _value(_pb.PipelineState, state, "PIPELINE_STATE_", PIPELINE_STATE_NAMES, "pipeline state")


def pipeline_state_name(value: int) -> str:
    return _pb.PipelineState.Name(value).removeprefix("PIPELINE_STATE_")


def is_final(state: int) -> bool:
    return state in FINAL_COMMAND_STATES


def status_request(name: str, state: PipelineStateLike, job: str = "", progress: float = 0.0,
                   last_result: _pb.PipelineResult | None = None,
                   details: Mapping[str, str] | None = None) -> _pb.ReportPipelineStatusRequest:
    request = _pb.ReportPipelineStatusRequest(name=name, state=pipeline_state_value(state), job=job,
                                              progress=progress, details=dict(details or {}))
    if last_result is not None:
        request.last_result.CopyFrom(last_result)
    return request


def send_request(pipeline: str, kind: KindLike, model: str = "", parameters: Mapping[str, str] | None = None, *,
                 config: str | Mapping[str, Any] | None = None, then_deploy: StrategyLike | None = None,
                 deploy_params: Mapping[str, Any] | None = None,
                 ack_timeout: DurationLike | None = None) -> _pb.SendPipelineCommandRequest:
    """`config` may be JSON text (sent as is, so the server judges it) or a mapping (serialised here)."""
    request = _pb.SendPipelineCommandRequest(pipeline=pipeline, kind=kind_value(kind), model=model,
                                             parameters={k: str(v) for k, v in (parameters or {}).items()})
    if config is not None:
        request.config = config if isinstance(config, str) else json.dumps(config)
    if then_deploy is not None:
        request.then_deploy.strategy = strategy_value(then_deploy)
        request.then_deploy.params.CopyFrom(deployment_params(**dict(deploy_params or {})))
    if ack_timeout is not None:
        request.ack_timeout.FromNanoseconds(int(duration_seconds(ack_timeout, "ack_timeout") * 1e9))
    return request


def update_request(command_id: str, state: CommandStateLike, result: str = "", error: str = "",
                   version: str = "") -> _pb.UpdatePipelineCommandRequest:
    return _pb.UpdatePipelineCommandRequest(id=command_id, state=command_state_value(state), result=result,
                                            error=error, version=version)


def list_commands_request(pipeline: str = "", states: Iterable[CommandStateLike] = (), page_size: int = 0,
                          page_token: str = "") -> _pb.ListPipelineCommandsRequest:
    return _pb.ListPipelineCommandsRequest(pipeline=pipeline, states=[command_state_value(s) for s in states],
                                           page_size=page_size, page_token=page_token)


class PipelineCalls(SyncCaller):
    def register_pipeline(self, name: str, models: Iterable[str] = (), version: str = "",
                          labels: Mapping[str, str] | None = None, *,
                          timeout: float | None = None) -> _pb.RegisterPipelineResponse:
        """Register (or update) pipeline `name`; the response says how often to report status."""
        request = _pb.RegisterPipelineRequest(name=name, models=list(models), version=version,
                                              labels=dict(labels or {}))
        return self._call(self._stub.RegisterPipeline, request, timeout)

    def report_pipeline_status(self, name: str, state: PipelineStateLike, job: str = "", progress: float = 0.0, *,
                               last_result: _pb.PipelineResult | None = None,
                               details: Mapping[str, str] | None = None,
                               timeout: float | None = None) -> _pb.Pipeline:
        """What the pipeline does now; `progress` is 0-100."""
        request = status_request(name, state, job, progress, last_result, details)
        return self._call(self._stub.ReportPipelineStatus, request, timeout)

    def get_pipeline(self, name: str, *, timeout: float | None = None) -> _pb.Pipeline:
        return self._call(self._stub.GetPipeline, _pb.GetPipelineRequest(name=name), timeout)

    def list_pipelines(self, *, model: str = "", page_size: int = 0, page_token: str = "",
                       timeout: float | None = None) -> _pb.ListPipelinesResponse:
        request = _pb.ListPipelinesRequest(model=model, page_size=page_size, page_token=page_token)
        return self._call(self._stub.ListPipelines, request, timeout)

    def iter_pipelines(self, *, model: str = "", page_size: int = 0,
                       timeout: float | None = None) -> Iterator[_pb.Pipeline]:
        return self._pages(lambda token: self.list_pipelines(model=model, page_size=page_size, page_token=token,
                                                             timeout=timeout),
                           lambda page: page.pipelines)

    def send_pipeline_command(self, pipeline: str, kind: KindLike, model: str = "",
                              parameters: Mapping[str, str] | None = None, *,
                              config: str | Mapping[str, Any] | None = None,
                              then_deploy: StrategyLike | None = None, deploy_params: Mapping[str, Any] | None = None,
                              ack_timeout: DurationLike | None = None,
                              timeout: float | None = None) -> _pb.PipelineCommand:
        """Queue a command; `then_deploy` ("canary", ...) rolls out the version an OPTIMIZE or RETRAIN registers,
        with `deploy_params` as `Client.deploy` takes them (steps=, interval=, ...)."""
        request = send_request(pipeline, kind, model, parameters, config=config, then_deploy=then_deploy,
                               deploy_params=deploy_params, ack_timeout=ack_timeout)
        return self._call(self._stub.SendPipelineCommand, request, timeout)

    def watch_pipeline_commands(self, pipeline: str, *, timeout: float | None = None) -> Stream[_pb.PipelineCommand]:
        """Every command the pipeline has not acknowledged, then new ones. No reconnection: `PipelineAgent` has it."""
        return self._stream(self._stub.WatchPipelineCommands, _pb.WatchPipelineCommandsRequest(pipeline=pipeline),
                            timeout)

    def update_pipeline_command(self, command_id: str, state: CommandStateLike, result: str = "", error: str = "",
                                version: str = "", *, timeout: float | None = None) -> _pb.PipelineCommand:
        """Acknowledge a command, or end it: "succeeded" (with the `version` registered) or "failed"."""
        return self._call(self._stub.UpdatePipelineCommand,
                          update_request(command_id, state, result, error, version), timeout)

    def get_pipeline_command(self, command_id: str, *, timeout: float | None = None) -> _pb.PipelineCommand:
        return self._call(self._stub.GetPipelineCommand, _pb.GetPipelineCommandRequest(id=command_id), timeout)

    def cancel_pipeline_command(self, command_id: str, reason: str = "", *,
                                timeout: float | None = None) -> _pb.PipelineCommand:
        return self._call(self._stub.CancelPipelineCommand,
                          _pb.CancelPipelineCommandRequest(id=command_id, reason=reason), timeout)

    def list_pipeline_commands(self, pipeline: str = "", states: Iterable[CommandStateLike] = (), *,
                               page_size: int = 0, page_token: str = "",
                               timeout: float | None = None) -> _pb.ListPipelineCommandsResponse:
        return self._call(self._stub.ListPipelineCommands,
                          list_commands_request(pipeline, states, page_size, page_token), timeout)

    def iter_pipeline_commands(self, pipeline: str = "", states: Iterable[CommandStateLike] = (), *,
                               page_size: int = 0, timeout: float | None = None) -> Iterator[_pb.PipelineCommand]:
        states = tuple(states)
        return self._pages(lambda token: self.list_pipeline_commands(pipeline, states, page_size=page_size,
                                                                     page_token=token, timeout=timeout),
                           lambda page: page.commands)


class AsyncPipelineCalls(AsyncCaller):
    async def register_pipeline(self, name: str, models: Iterable[str] = (), version: str = "",
                                labels: Mapping[str, str] | None = None, *,
                                timeout: float | None = None) -> _pb.RegisterPipelineResponse:
        request = _pb.RegisterPipelineRequest(name=name, models=list(models), version=version,
                                              labels=dict(labels or {}))
        return await self._call(self._stub.RegisterPipeline, request, timeout)

    async def report_pipeline_status(self, name: str, state: PipelineStateLike, job: str = "",
                                     progress: float = 0.0, *, last_result: _pb.PipelineResult | None = None,
                                     details: Mapping[str, str] | None = None,
                                     timeout: float | None = None) -> _pb.Pipeline:
        request = status_request(name, state, job, progress, last_result, details)
        return await self._call(self._stub.ReportPipelineStatus, request, timeout)

    async def get_pipeline(self, name: str, *, timeout: float | None = None) -> _pb.Pipeline:
        return await self._call(self._stub.GetPipeline, _pb.GetPipelineRequest(name=name), timeout)

    async def list_pipelines(self, *, model: str = "", page_size: int = 0, page_token: str = "",
                             timeout: float | None = None) -> _pb.ListPipelinesResponse:
        request = _pb.ListPipelinesRequest(model=model, page_size=page_size, page_token=page_token)
        return await self._call(self._stub.ListPipelines, request, timeout)

    def iter_pipelines(self, *, model: str = "", page_size: int = 0,
                       timeout: float | None = None) -> AsyncIterator[_pb.Pipeline]:
        return self._pages(lambda token: self.list_pipelines(model=model, page_size=page_size, page_token=token,
                                                             timeout=timeout),
                           lambda page: page.pipelines)

    async def send_pipeline_command(self, pipeline: str, kind: KindLike, model: str = "",
                                    parameters: Mapping[str, str] | None = None, *,
                                    config: str | Mapping[str, Any] | None = None,
                                    then_deploy: StrategyLike | None = None,
                                    deploy_params: Mapping[str, Any] | None = None,
                                    ack_timeout: DurationLike | None = None,
                                    timeout: float | None = None) -> _pb.PipelineCommand:
        request = send_request(pipeline, kind, model, parameters, config=config, then_deploy=then_deploy,
                               deploy_params=deploy_params, ack_timeout=ack_timeout)
        return await self._call(self._stub.SendPipelineCommand, request, timeout)

    def watch_pipeline_commands(self, pipeline: str, *,
                                timeout: float | None = None) -> AsyncStream[_pb.PipelineCommand]:
        return self._stream(self._stub.WatchPipelineCommands, _pb.WatchPipelineCommandsRequest(pipeline=pipeline),
                            timeout)

    async def update_pipeline_command(self, command_id: str, state: CommandStateLike, result: str = "",
                                      error: str = "", version: str = "", *,
                                      timeout: float | None = None) -> _pb.PipelineCommand:
        return await self._call(self._stub.UpdatePipelineCommand,
                                update_request(command_id, state, result, error, version), timeout)

    async def get_pipeline_command(self, command_id: str, *, timeout: float | None = None) -> _pb.PipelineCommand:
        return await self._call(self._stub.GetPipelineCommand, _pb.GetPipelineCommandRequest(id=command_id),
                                timeout)

    async def cancel_pipeline_command(self, command_id: str, reason: str = "", *,
                                      timeout: float | None = None) -> _pb.PipelineCommand:
        return await self._call(self._stub.CancelPipelineCommand,
                                _pb.CancelPipelineCommandRequest(id=command_id, reason=reason), timeout)

    async def list_pipeline_commands(self, pipeline: str = "", states: Iterable[CommandStateLike] = (), *,
                                     page_size: int = 0, page_token: str = "",
                                     timeout: float | None = None) -> _pb.ListPipelineCommandsResponse:
        return await self._call(self._stub.ListPipelineCommands,
                                list_commands_request(pipeline, states, page_size, page_token), timeout)
