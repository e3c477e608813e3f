"""Deployment, traffic and telemetry wire <-> domain."""

from __future__ import annotations

from modelctl.v1 import deployment_pb2 as _pb

from ..deployments.engine import GateStatus
from ..deployments.model import Deployment, DeploymentEvent, EventKind, GateEvaluation, Instance, Verdict
from ..deployments.params import DeploymentParams, ParamOverrides
from ..deployments.phases import Phase, Strategy
from ..errors import FieldViolation, ValidationError
from ._time import duration, seconds_of, ts

_STRATEGIES = {
    Strategy.IMMEDIATE: _pb.DEPLOYMENT_STRATEGY_IMMEDIATE, Strategy.BLUE_GREEN: _pb.DEPLOYMENT_STRATEGY_BLUE_GREEN,
    Strategy.CANARY: _pb.DEPLOYMENT_STRATEGY_CANARY, Strategy.ROLLING: _pb.DEPLOYMENT_STRATEGY_ROLLING,
}
_STRATEGIES_BACK = {v: k for k, v in _STRATEGIES.items()}
_PHASES = {phase: _pb.DeploymentState.Value(f"DEPLOYMENT_STATE_{phase.value}") for phase in Phase}
_PHASES_BACK = {v: k for k, v in _PHASES.items()}
_KINDS = {kind: _pb.DeploymentEventKind.Value(f"DEPLOYMENT_EVENT_KIND_{kind.value}") for kind in EventKind}
_VERDICTS = {Verdict.PASS: _pb.GATE_VERDICT_PASS, Verdict.FAIL: _pb.GATE_VERDICT_FAIL,
             Verdict.WAIT: _pb.GATE_VERDICT_WAIT}


def strategy_from_proto(value: int) -> Strategy:
    if value not in _STRATEGIES_BACK:
        raise ValidationError(FieldViolation(
            "strategy", "must be IMMEDIATE, BLUE_GREEN, CANARY or ROLLING (DEPLOYMENT_STRATEGY_...)"))
    return _STRATEGIES_BACK[value]


def phases_from_proto(values: list[int], field: str = "states") -> list[Phase]:
    out = []
    for v in values:
        if v not in _PHASES_BACK:
            raise ValidationError(FieldViolation(field, f"{v} is not a deployment state"))
        out.append(_PHASES_BACK[v])
    return out


def overrides_from_proto(p: _pb.DeploymentParams) -> ParamOverrides:
    """Only what the request set; everything else keeps the server's config defaults."""
    t = p.thresholds

    def opt(msg, name):  # type: ignore[no-untyped-def]
        return getattr(msg, name) if msg.HasField(name) else None

    def dur(name: str) -> float | None:
        if not p.HasField(name):
            return None
        value = getattr(p, name)
        if value.seconds < 0 or value.nanos < 0:
            raise ValidationError(FieldViolation(f"params.{name}", "must not be negative"))
        return seconds_of(value)

    return ParamOverrides(
        steps=tuple(float(s) for s in p.steps) or None,
        step_interval=dur("step_interval"), min_samples=opt(p, "min_samples"), failure_limit=opt(p, "failure_limit"),
        progress_deadline=dur("progress_deadline"), bake_time=dur("bake_time"),
        error_rate=opt(t, "error_rate"), latency_p95_ms=opt(t, "latency_p95_ms"), drift_score=opt(t, "drift_score"),
        max_error_rate_increase=opt(t, "max_error_rate_increase"), relative_alpha=opt(t, "relative_alpha"),
        critical_gates=tuple(p.critical_gates) or None,
        max_unavailable=p.max_unavailable or None, max_surge=p.max_surge or None)


def params_to_proto(p: DeploymentParams) -> _pb.DeploymentParams:
    t = p.thresholds
    thresholds = _pb.Thresholds(error_rate=t.error_rate, latency_p95_ms=t.latency_p95_ms, drift_score=t.drift_score,
                                relative_alpha=t.relative_alpha)
    if t.max_error_rate_increase is not None:
        thresholds.max_error_rate_increase = t.max_error_rate_increase
    return _pb.DeploymentParams(
        steps=[int(round(s)) for s in p.steps], step_interval=duration(p.step_interval), min_samples=p.min_samples,
        failure_limit=p.failure_limit, progress_deadline=duration(p.progress_deadline),
        bake_time=duration(p.bake_time), thresholds=thresholds, max_unavailable=p.max_unavailable,
        max_surge=p.max_surge, critical_gates=sorted(g.value for g in p.critical_gates))


def evaluation_to_proto(e: GateEvaluation, evaluated_at=None) -> _pb.GateEvaluation:  # type: ignore[no-untyped-def]
    out = _pb.GateEvaluation(gate=e.gate.value, threshold=e.threshold, window_start=ts(e.window_start),
                             window_end=ts(e.window_end), samples=e.samples, verdict=_VERDICTS[e.verdict],
                             critical=e.critical, step=e.step, evaluated_at=ts(evaluated_at or e.window_end),
                             detail=e.detail)
    if e.value is not None:
        out.value = e.value
    return out


def deployment_to_proto(d: Deployment, evaluations: list[GateEvaluation] | None = None,
                        status: GateStatus | None = None) -> _pb.Deployment:
    # Rows from before migration 0006 stored no total: the plan's length, as it was then shown.
    total = d.total_steps or (len(d.params.steps) if d.strategy is Strategy.CANARY else 1)
    current = [evaluation_to_proto(e) for e in status.evaluations] if status else []
    return _pb.Deployment(
        id=d.id, model=d.model, version=d.version, previous_version=d.previous_version or "",
        strategy=_STRATEGIES[d.strategy], state=_PHASES[d.phase], step=d.step, traffic_percent=d.traffic_percent,
        reason=d.reason, params=params_to_proto(d.params), failed_checks=d.failed_checks,
        created_at=ts(d.created_at), updated_at=ts(d.updated_at), step_started_at=ts(d.step_started_at),
        finished_at=ts(d.finished_at), created_by=d.created_by,
        evaluations=[evaluation_to_proto(e) for e in reversed(evaluations or [])], total_steps=total,
        current_gates=current, waiting_for=status.waiting_for if status else "")


def event_to_proto(e: DeploymentEvent) -> _pb.DeploymentEvent:
    return _pb.DeploymentEvent(seq=e.seq, deployment_id=e.deployment_id, kind=_KINDS[e.kind], state=_PHASES[e.phase],
                               step=e.step, traffic_percent=e.traffic_percent, message=e.message, time=ts(e.time),
                               model=e.model)


def instance_to_proto(i: Instance) -> _pb.Instance:
    if i.lost:
        state = _pb.INSTANCE_STATE_LOST
    elif not i.healthy:
        state = _pb.INSTANCE_STATE_UNHEALTHY
    elif i.assigned_version and i.loaded_version != i.assigned_version:
        state = _pb.INSTANCE_STATE_UPDATING
    else:
        state = _pb.INSTANCE_STATE_READY
    return _pb.Instance(model=i.model, instance_id=i.instance_id, address=i.address,
                        assigned_version=i.assigned_version or "", loaded_version=i.loaded_version or "",
                        healthy=i.healthy, state=state, last_heartbeat=ts(i.last_heartbeat_at))
