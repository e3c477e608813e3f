"""Deployment parameters: config defaults, per-deployment overrides, one error naming every bad field."""

from __future__ import annotations

import pytest

from modelctl_server.config import DeploymentSettings, ThresholdSettings
from modelctl_server.deployments import (
    DeploymentParams,
    Gate,
    ParamOverrides,
    Strategy,
    Thresholds,
    resolve_params,
)
from modelctl_server.deployments.params import resolve_amount
from modelctl_server.errors import ValidationError


def fields_of(err: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    return {v.field for v in err.value.violations}


def test_defaults_come_from_config() -> None:
    defaults = DeploymentSettings(steps=(10, 100), step_interval=5.0, min_samples=7, failure_limit=3,
                                  progress_deadline=50.0, bake_time=9.0)
    thresholds = ThresholdSettings(error_rate=0.01, latency_p95_ms=250.0, drift_score=0.2)
    p = resolve_params(Strategy.CANARY, None, defaults=defaults, thresholds=thresholds)
    assert (p.steps, p.step_interval, p.min_samples, p.failure_limit, p.progress_deadline, p.bake_time) == (
        (10, 100), 5.0, 7, 3, 50.0, 9.0)
    t = p.thresholds
    assert (t.error_rate, t.latency_p95_ms, t.drift_score) == (0.01, 250.0, 0.2)
    assert p.thresholds.max_error_rate_increase is None
    assert p.critical_gates == {Gate.ERROR_RATE}


def test_overrides_win_over_defaults() -> None:
    p = resolve_params(Strategy.CANARY, ParamOverrides(
        steps=(20, 50, 100), step_interval=0.1, min_samples=5, error_rate=0.2, max_error_rate_increase=0.02,
        critical_gates=("error_rate", "latency_p95"), max_unavailable="1", max_surge="0"))
    assert p.steps == (20, 50, 100)
    assert p.step_interval == 0.1
    assert p.thresholds.error_rate == 0.2
    assert p.thresholds.max_error_rate_increase == 0.02
    assert p.critical_gates == {Gate.ERROR_RATE, Gate.LATENCY_P95}
    assert (p.max_unavailable, p.max_surge) == ("1", "0")


def test_no_critical_gates_is_allowed() -> None:
    assert resolve_params(Strategy.CANARY, ParamOverrides(critical_gates=())).critical_gates == frozenset()


@pytest.mark.parametrize(("overrides", "field"), [
    (ParamOverrides(step_interval=0.05), "step_interval"),
    (ParamOverrides(min_samples=0), "min_samples"),
    (ParamOverrides(failure_limit=0), "failure_limit"),
    (ParamOverrides(bake_time=-1), "bake_time"),
    (ParamOverrides(progress_deadline=0), "progress_deadline"),
    (ParamOverrides(step_interval=60, progress_deadline=30), "progress_deadline"),
    (ParamOverrides(steps=()), "steps"),
    (ParamOverrides(steps=(10, 5, 100)), "steps"),
    (ParamOverrides(steps=(10, 50)), "steps"),
    (ParamOverrides(steps=(0, 100)), "steps"),
    (ParamOverrides(steps=(50, 150)), "steps"),
    (ParamOverrides(error_rate=1.5), "error_rate"),
    (ParamOverrides(latency_p95_ms=0), "latency_p95_ms"),
    (ParamOverrides(drift_score=-0.1), "drift_score"),
    (ParamOverrides(max_error_rate_increase=2), "max_error_rate_increase"),
    (ParamOverrides(relative_alpha=0.9), "relative_alpha"),
    (ParamOverrides(critical_gates=("error_rate", "vibes")), "critical_gates"),
    (ParamOverrides(max_unavailable="lots"), "max_unavailable"),
    (ParamOverrides(max_surge="120%"), "max_surge"),
    (ParamOverrides(max_unavailable="0", max_surge="0%"), "max_unavailable"),
])
def test_bad_values_name_their_field(overrides: ParamOverrides, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        resolve_params(Strategy.CANARY, overrides)
    assert fields_of(err) == {field}
    assert err.value.code == "INVALID_ARGUMENT"


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as err:
        resolve_params(Strategy.CANARY, ParamOverrides(step_interval=0.01, min_samples=0, error_rate=-1))
    assert fields_of(err) == {"step_interval", "min_samples", "error_rate"}


def test_deadline_is_checked_against_the_wait_the_strategy_has() -> None:
    # Immediate waits for the bake time, not the step interval.
    resolve_params(Strategy.IMMEDIATE, ParamOverrides(step_interval=600, bake_time=10, progress_deadline=60))
    with pytest.raises(ValidationError) as err:
        resolve_params(Strategy.IMMEDIATE, ParamOverrides(bake_time=120, progress_deadline=60))
    assert "bake_time (120s)" in err.value.message
    with pytest.raises(ValidationError):
        resolve_params(Strategy.BLUE_GREEN,
                       ParamOverrides(step_interval=10, bake_time=120, progress_deadline=60))


def test_params_survive_storage() -> None:
    p = resolve_params(Strategy.CANARY, ParamOverrides(steps=(1, 2.5, 100), max_error_rate_increase=0.01,
                                                       critical_gates=("latency_p95",)))
    assert DeploymentParams.from_dict(p.to_dict()) == p


def test_stored_params_missing_newer_keys_take_defaults() -> None:
    stored = {"steps": [50, 100], "thresholds": {"error_rate": 0.1}}
    assert DeploymentParams.from_dict(stored) == DeploymentParams(steps=(50, 100),
                                                                  thresholds=Thresholds(error_rate=0.1))


@pytest.mark.parametrize(("text", "total", "round_up", "expected"), [
    ("2", 10, False, 2), ("25%", 10, False, 2), ("25%", 10, True, 3), ("0%", 4, True, 0),
    ("100%", 3, False, 3),
])
def test_rolling_amounts(text: str, total: int, round_up: bool, expected: int) -> None:
    assert resolve_amount(text, total, round_up=round_up) == expected
