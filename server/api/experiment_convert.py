"""Experiment wire <-> domain: the only place the experiment messages meet the domain records."""

from __future__ import annotations

import math

from modelctl.v1 import experiment_pb2 as _pb

from ..errors import FieldViolation, ValidationError, Violations
from ..experiments.model import Metric, StartRequest
from ..experiments.results import ArmResult, ExperimentResult
from ..experiments.service import ExperimentView
from ..experiments.states import ExperimentState
from ..registry import validation
from ._time import ts

_METRICS = {metric: _pb.ExperimentMetric.Value(f"EXPERIMENT_METRIC_{metric.value}") for metric in Metric}
_METRICS_BACK = {v: k for k, v in _METRICS.items()}
_STATES = {state: _pb.ExperimentState.Value(f"EXPERIMENT_STATE_{state.value}") for state in ExperimentState}
_STATES_BACK = {v: k for k, v in _STATES.items()}
DEFAULT_TREATMENT_PERCENT = 50.0


def metric_from_proto(value: int, field: str = "metric") -> Metric:
    """UNSPECIFIED means the default, conversion."""
    if value == _pb.EXPERIMENT_METRIC_UNSPECIFIED:
        return Metric.CONVERSION
    if value not in _METRICS_BACK:
        raise ValidationError(FieldViolation(
            field, f"{value} is not a metric: CONVERSION, VALUE, ERROR_RATE or LATENCY (EXPERIMENT_METRIC_...)"))
    return _METRICS_BACK[value]


def states_from_proto(values: list[int], field: str = "states") -> list[ExperimentState]:
    out = []
    for v in values:
        if v not in _STATES_BACK:
            raise ValidationError(FieldViolation(
                field, f"{v} is not an experiment state: RUNNING, STOPPED or PROMOTED"))
        out.append(_STATES_BACK[v])
    return out


def start_request_from_proto(r: _pb.StartExperimentRequest) -> StartRequest:
    """Every bad field at once; an unset treatment_percent is 50, an unset min_effect the configured one."""
    problems = Violations()
    validation.check_name(r.model, problems, field="model")
    validation.check_version(r.control_version, problems, field="control_version")
    validation.check_version(r.treatment_version, problems, field="treatment_version")
    if r.control_version and r.control_version == r.treatment_version:
        problems.add("treatment_version", f"must differ from control_version ({r.control_version[:40]})")
    percent = r.treatment_percent if r.HasField("treatment_percent") else DEFAULT_TREATMENT_PERCENT
    if not (math.isfinite(percent) and 0 < percent < 100):
        problems.add("treatment_percent", "must be a percentage strictly between 0 and 100, e.g. 50")
    if r.HasField("min_effect") and not (math.isfinite(r.min_effect) and r.min_effect > 0):
        problems.add("min_effect", "must be a finite relative lift above 0, e.g. 0.02 for 2 %")
    metric = Metric.CONVERSION
    try:
        metric = metric_from_proto(r.metric)
    except ValidationError as exc:
        problems.extend(exc.violations)
    problems.raise_if_any()
    return StartRequest(model=r.model, control_version=r.control_version, treatment_version=r.treatment_version,
                        treatment_percent=percent, metric=metric,
                        min_effect=r.min_effect if r.HasField("min_effect") else None)


def _arm_to_proto(a: ArmResult) -> _pb.ArmResult:
    return _pb.ArmResult(version=a.version, samples=a.samples, value=a.value, std_dev=a.std_dev)


def result_to_proto(r: ExperimentResult) -> _pb.ExperimentResult:
    return _pb.ExperimentResult(
        winner=r.winner or "", significant=r.significant, p_value=r.p_value, lift=r.lift,
        lift_ci_low=r.lift_ci_low, lift_ci_high=r.lift_ci_high, control=_arm_to_proto(r.control),
        treatment=_arm_to_proto(r.treatment), samples_needed=r.samples_needed or 0, srm_p_value=r.srm_p_value,
        sample_ratio_mismatch=r.sample_ratio_mismatch, fixed_horizon_p_value=r.fixed_horizon_p_value,
        test=r.test, summary=r.summary)


def experiment_to_proto(view: ExperimentView) -> _pb.Experiment:
    e = view.experiment
    return _pb.Experiment(
        id=e.id, model=e.model, control_version=e.control_version, treatment_version=e.treatment_version,
        treatment_percent=e.treatment_percent, metric=_METRICS[e.metric], state=_STATES[e.state],
        created_at=ts(e.created_at), stopped_at=ts(e.stopped_at), result=result_to_proto(view.result),
        min_effect=e.min_effect, alpha=e.alpha, power=e.power, created_by=e.created_by, stopped_by=e.stopped_by,
        deployment_id=e.deployment_id or "", reason=e.reason)
