"""Pipeline and pipeline-command wire <-> domain: the only place the two meet."""

from __future__ import annotations

from modelctl.v1 import deployment_pb2 as _deployment_pb
from modelctl.v1 import pipeline_pb2 as _pb

from ..deployments.params import ParamOverrides
from ..errors import FieldViolation, ValidationError, Violations
from ..pipelines.model import (
    CommandKind,
    CommandUpdate,
    NewCommand,
    Pipeline,
    PipelineCommand,
    PipelineResult,
    PipelineState,
    Registration,
    StatusReport,
    ThenDeploy,
)
from ..pipelines.states import CommandState
from ..registry import validation
from ._time import datetime_of, duration, seconds_of, ts
from .deployment_convert import _STRATEGIES, overrides_from_proto

_STATES = {s: _pb.PipelineState.Value(f"PIPELINE_STATE_{s.value}") for s in PipelineState}
_STATES_BACK = {v: k for k, v in _STATES.items()}
_KINDS = {k: _pb.PipelineCommandKind.Value(f"PIPELINE_COMMAND_KIND_{k.value}") for k in CommandKind}
_KINDS_BACK = {v: k for k, v in _KINDS.items()}
_CSTATES = {s: _pb.PipelineCommandState.Value(f"PIPELINE_COMMAND_STATE_{s.value}") for s in CommandState}
_CSTATES_BACK = {v: k for k, v in _CSTATES.items()}
_STRATEGIES_BACK = {v: k for k, v in _STRATEGIES.items()}

MAX_ENTRIES = 64
MAX_TEXT = 4096
MAX_CONFIG = 1024 * 1024


def check_pipeline_name(name: str, problems: Violations, field: str = "name") -> None:
    validation.check_name(name, problems, field=field)


def check_id(command_id: str, field: str = "id") -> None:
    if not command_id:
        raise ValidationError(FieldViolation(field, "is required: the id SendPipelineCommand returned"))
    if len(command_id) > 32 or not command_id.isalnum():
        raise ValidationError(FieldViolation(field, f"{command_id[:40]!r} is not a command id"))


def _check_map(values: dict[str, str], problems: Violations, field: str) -> None:
    if len(values) > MAX_ENTRIES:
        problems.add(field, f"at most {MAX_ENTRIES} entries")
    for key, value in values.items():
        if not key or len(key) > 128:
            problems.add(field, f"key {key[:40]!r} must be 1-128 characters")
        if len(value) > MAX_TEXT:
            problems.add(f"{field}[{key[:40]}]", f"must be at most {MAX_TEXT} characters")


def registration_from_proto(r: _pb.RegisterPipelineRequest) -> Registration:
    problems = Violations()
    check_pipeline_name(r.name, problems)
    if len(r.models) > MAX_ENTRIES:
        problems.add("models", f"at most {MAX_ENTRIES} models")
    for i, model in enumerate(r.models):
        validation.check_name(model, problems, field=f"models[{i}]")
    if r.version:
        validation.check_version(r.version, problems)
    _check_map(dict(r.labels), problems, "labels")
    problems.raise_if_any()
    return Registration(name=r.name, models=tuple(dict.fromkeys(r.models)), version=r.version, labels=dict(r.labels))


def report_from_proto(r: _pb.ReportPipelineStatusRequest) -> StatusReport:
    problems = Violations()
    check_pipeline_name(r.name, problems)
    if r.state not in _STATES_BACK:
        problems.add("state", "is required: IDLE, RUNNING, OPTIMIZING, PAUSED or FAILED (PIPELINE_STATE_...)")
    if not 0 <= r.progress <= 100:  # NaN fails this too
        problems.add("progress", f"{r.progress:g} is not a percentage between 0 and 100")
    if len(r.job) > MAX_TEXT:
        problems.add("job", f"must be at most {MAX_TEXT} characters")
    _check_map(dict(r.details), problems, "details")
    result = None
    if r.HasField("last_result"):
        lr = r.last_result
        if lr.model:
            validation.check_name(lr.model, problems, field="last_result.model")
        if lr.version:
            validation.check_version(lr.version, problems, field="last_result.version")
        if len(lr.metrics) > MAX_ENTRIES:
            problems.add("last_result.metrics", f"at most {MAX_ENTRIES} entries")
        result = PipelineResult(model=lr.model, version=lr.version, metrics=dict(lr.metrics), summary=lr.summary,
                                finished_at=datetime_of(lr.finished_at, "last_result.finished_at")
                                if lr.HasField("finished_at") else None)
    problems.raise_if_any()
    return StatusReport(name=r.name, state=_STATES_BACK[r.state], job=r.job, progress=r.progress,
                        last_result=result, details=dict(r.details))


def new_command_from_proto(r: _pb.SendPipelineCommandRequest) -> NewCommand:
    problems = Violations()
    check_pipeline_name(r.pipeline, problems, field="pipeline")
    if r.kind not in _KINDS_BACK:
        problems.add("kind", "is required: OPTIMIZE, RETRAIN, PAUSE, RESUME or RELOAD_CONFIG")
    if r.model:
        validation.check_name(r.model, problems, field="model")
    _check_map(dict(r.parameters), problems, "parameters")
    if len(r.config) > MAX_CONFIG:
        problems.add("config", f"must be at most {MAX_CONFIG} bytes")
    then_deploy = None
    if r.HasField("then_deploy"):
        strategy = _STRATEGIES_BACK.get(r.then_deploy.strategy)
        if strategy is None:
            problems.add("then_deploy.strategy", "is required: IMMEDIATE, BLUE_GREEN, CANARY or ROLLING")
        else:
            try:
                then_deploy = ThenDeploy(strategy, overrides_from_proto(r.then_deploy.params))
            except ValidationError as exc:
                problems.extend([FieldViolation(f"then_deploy.{v.field.removeprefix('then_deploy.')}", v.description)
                                 for v in exc.violations])
    ack_timeout = None
    if r.HasField("ack_timeout"):
        ack_timeout = seconds_of(r.ack_timeout)
    problems.raise_if_any()
    return NewCommand(pipeline=r.pipeline, kind=_KINDS_BACK[r.kind], model=r.model, parameters=dict(r.parameters),
                      config=r.config, then_deploy=then_deploy, ack_timeout=ack_timeout)


def update_from_proto(r: _pb.UpdatePipelineCommandRequest) -> CommandUpdate:
    check_id(r.id)
    problems = Violations()
    state = _CSTATES_BACK.get(r.state)
    if state not in (CommandState.ACKNOWLEDGED, CommandState.SUCCEEDED, CommandState.FAILED):
        problems.add("state", "must be ACKNOWLEDGED, SUCCEEDED or FAILED (the controller sets the others)")
    if r.version:
        validation.check_version(r.version, problems)
    for name in ("result", "error"):
        if len(getattr(r, name)) > MAX_TEXT:
            problems.add(name, f"must be at most {MAX_TEXT} characters")
    problems.raise_if_any()
    assert state is not None
    return CommandUpdate(command_id=r.id, state=state, result=r.result, error=r.error, version=r.version)


def command_states_from_proto(values: list[int]) -> list[CommandState]:
    out = []
    for v in values:
        if v not in _CSTATES_BACK:
            raise ValidationError(FieldViolation("states", f"{v} is not a pipeline command state"))
        out.append(_CSTATES_BACK[v])
    return out


def pipeline_to_proto(p: Pipeline, *, stale: bool) -> _pb.Pipeline:
    out = _pb.Pipeline(name=p.name, models=list(p.models), version=p.version, labels=p.labels,
                       state=_STATES[p.state], job=p.job, progress=p.progress, last_seen=ts(p.last_seen),
                       stale=stale, details=p.details, registered_at=ts(p.registered_at),
                       registered_by=p.registered_by)
    if p.last_result is not None:
        r = p.last_result
        out.last_result.CopyFrom(_pb.PipelineResult(model=r.model, version=r.version, metrics=r.metrics,
                                                    summary=r.summary, finished_at=ts(r.finished_at)))
    return out


def command_to_proto(c: PipelineCommand) -> _pb.PipelineCommand:
    out = _pb.PipelineCommand(
        id=c.id, pipeline=c.pipeline, kind=_KINDS[c.kind], model=c.model, parameters=c.parameters,
        state=_CSTATES[c.state], result=c.result, error=c.error, created_at=ts(c.created_at),
        updated_at=ts(c.updated_at), deadline=ts(c.deadline), created_by=c.created_by,
        deployment_id=c.deployment_id, config=c.config, result_version=c.result_version,
        delivered_at=ts(c.delivered_at), acknowledged_at=ts(c.acknowledged_at), finished_at=ts(c.finished_at))
    if c.then_deploy is not None:
        out.then_deploy.CopyFrom(_pb.ThenDeploy(strategy=_STRATEGIES[c.then_deploy.strategy],
                                                params=_overrides_to_proto(c.then_deploy.overrides)))
    return out


def _overrides_to_proto(o: ParamOverrides) -> _deployment_pb.DeploymentParams:
    """Only what the command set: the rest stays unset, to take the config defaults when it deploys."""
    p = _deployment_pb.DeploymentParams(steps=[int(round(s)) for s in o.steps or ()],
                                        critical_gates=list(o.critical_gates or ()),
                                        max_unavailable=o.max_unavailable or "", max_surge=o.max_surge or "")
    for name in ("step_interval", "progress_deadline", "bake_time"):
        if getattr(o, name) is not None:
            getattr(p, name).CopyFrom(duration(getattr(o, name)))
    for name in ("min_samples", "failure_limit"):
        if getattr(o, name) is not None:
            setattr(p, name, getattr(o, name))
    for name in ("error_rate", "latency_p95_ms", "drift_score", "max_error_rate_increase", "relative_alpha"):
        if getattr(o, name) is not None:
            setattr(p.thresholds, name, getattr(o, name))
    return p


def report_interval(stale_after: float) -> float:
    """How often a pipeline should report: three reports per stale period, so one lost report is no alarm."""
    return max(0.1, stale_after / 3)

