"""Immediate and blue-green rollouts (canary has its own file), plus the step plans behind all three.

Parameters (deploy_support.FAST): 10 s analysis, 20 s bake, 20 samples per gate, 60 s deadline.
"""

from __future__ import annotations

import pytest

from modelctl_server.deployments import ParamOverrides, Strategy, resolve_params
from modelctl_server.deployments.strategies import PlannedStep, step_split, traffic_plan

from deploy_support import FAST, World, history

IMMEDIATE, BLUE_GREEN = Strategy.IMMEDIATE, Strategy.BLUE_GREEN
PROG = "PROGRESSING"
CREATED = ("CREATED", "PENDING", 0, 0.0)
ROLLED_BACK = [("ROLLBACK_STARTED", "ROLLING_BACK", 1, 0.0), ("ROLLED_BACK", "ROLLED_BACK", 1, 0.0)]


@pytest.fixture
def world() -> World:
    w = World()
    w.repo.add_model("fraud", ["v1", "v2"], live="v1")  # type: ignore[attr-defined]
    return w


# --- plans --------------------------------------------------------------------------------------------------

def test_plans() -> None:
    p = resolve_params(Strategy.CANARY, FAST)
    assert traffic_plan(IMMEDIATE, p) == (PlannedStep(100.0, 20.0, True),)
    assert traffic_plan(BLUE_GREEN, p) == (PlannedStep(0.0, 10.0, True), PlannedStep(100.0, 20.0, True))
    assert [s.percent for s in traffic_plan(Strategy.CANARY, p)] == [5, 10, 25, 50, 100]
    unwatched = resolve_params(IMMEDIATE, ParamOverrides(bake_time=0))
    assert traffic_plan(IMMEDIATE, unwatched) == (PlannedStep(100.0, 0.0, False),)
    with pytest.raises(ValueError):
        traffic_plan(Strategy.ROLLING, p)


def test_splits_keep_the_version_not_in_use_loaded() -> None:
    assert step_split("v2", "v1", 0) == {"v1": 100, "v2": 0}
    assert step_split("v2", "v1", 25) == {"v1": 75, "v2": 25}
    assert step_split("v2", "v1", 100) == {"v1": 0, "v2": 100}
    # A first deployment has nowhere else to send traffic.
    assert step_split("v1", None, 5) == {"v1": 100}


# --- immediate ----------------------------------------------------------------------------------------------

def test_immediate_switches_at_once_and_succeeds_after_the_bake(world: World) -> None:
    d = world.deploy("v2", IMMEDIATE)
    assert history(world.tick(d)) == [("STEP_STARTED", PROG, 1, 100.0)]
    # The old version stays in the split at 0 until the bake ends: ready for an instant rollback.
    assert world.split() == {"v1": 0.0, "v2": 100.0}
    world.clock.advance(1)
    world.report("v2", 40)
    assert world.tick(d, 18) == []
    assert history(world.tick(d, 1)) == [("SUCCEEDED", "SUCCEEDED", 1, 100.0)]
    assert world.history(d) == [CREATED, ("STEP_STARTED", PROG, 1, 100.0),
                                ("SUCCEEDED", "SUCCEEDED", 1, 100.0)]
    assert world.split() == {"v2": 100.0}


def test_immediate_fast_fails_during_the_bake(world: World) -> None:
    d = world.deploy("v2", IMMEDIATE)
    world.tick(d)
    world.clock.advance(3)
    assert history(world.report("v2", 40, errors=8)) == ROLLED_BACK
    assert world.split() == {"v1": 100.0}
    assert world.controller.get(d).reason == (
        "error-rate gate failed: 0.200 > 0.050 over 40 requests at step 1 (100%)")


def test_immediate_rolls_back_when_the_bake_keeps_failing(world: World) -> None:
    d = world.deploy("v2", IMMEDIATE)
    world.tick(d)
    for _ in range(2):
        world.clock.advance(1)
        world.report("v2", 40, latency_ms=2500)
        world.tick(d, 19)
    assert world.history(d) == [CREATED, ("STEP_STARTED", PROG, 1, 100.0), ("GATE_FAILED", PROG, 1, 100.0),
                                ("GATE_FAILED", PROG, 1, 100.0)] + ROLLED_BACK
    assert world.split() == {"v1": 100.0}


def test_immediate_fails_without_samples_by_the_deadline(world: World) -> None:
    d = world.deploy("v2", IMMEDIATE)
    world.tick(d)
    assert world.tick(d, 59) == []
    assert history(world.tick(d, 1)) == [("FAILED", "FAILED", 1, 0.0)]
    assert world.split() == {"v1": 100.0}
    assert world.controller.get(d).reason.startswith("progress deadline of 1m exceeded at step 1 (100%): ")


def test_immediate_without_bake_is_not_watched(world: World) -> None:
    d = world.deploy("v2", IMMEDIATE, ParamOverrides(bake_time=0))
    world.tick(d)
    assert history(world.tick(d)) == [("SUCCEEDED", "SUCCEEDED", 1, 100.0)]


def test_immediate_pause_resume_promote(world: World) -> None:
    d = world.deploy("v2", IMMEDIATE)
    world.tick(d)
    world.controller.pause(d)
    world.clock.advance(1)
    world.report("v2", 40)
    assert world.tick(d, 100) == []
    world.controller.resume(d)
    assert world.tick(d, 19) == []  # the bake starts over at resume
    promoted = world.controller.promote(d)
    assert world.history(d) == [CREATED, ("STEP_STARTED", PROG, 1, 100.0), ("PAUSED", "PAUSED", 1, 100.0),
                                ("RESUMED", PROG, 1, 100.0), ("SUCCEEDED", "SUCCEEDED", 1, 100.0)]
    assert promoted.deployment.phase.value == "SUCCEEDED"
    assert world.split() == {"v2": 100.0}


def test_immediate_abort_during_the_bake(world: World) -> None:
    d = world.deploy("v2", IMMEDIATE)
    world.tick(d)
    assert history(world.controller.abort(d).events) == [("ABORTED", "ABORTED", 1, 0.0)]
    assert world.split() == {"v1": 100.0}


# --- blue-green ---------------------------------------------------------------------------------------------

def test_blue_green_analyses_at_zero_then_switches_then_bakes(world: World) -> None:
    d = world.deploy("v2", BLUE_GREEN)
    world.tick(d)
    assert world.split() == {"v1": 100.0, "v2": 0.0}
    # Shadow traffic reported for v2 is what the pre-promotion analysis judges.
    assert history(world.healthy_step(d, "v2")) == [("STEP_STARTED", PROG, 2, 100.0)]
    assert world.split() == {"v1": 0.0, "v2": 100.0}
    world.clock.advance(1)
    world.report("v2", 40)
    assert history(world.tick(d, 19)) == [("SUCCEEDED", "SUCCEEDED", 2, 100.0)]
    assert world.split() == {"v2": 100.0}
    events = world.controller.events(d)
    assert history(events) == [CREATED, ("STEP_STARTED", PROG, 1, 0.0), ("STEP_STARTED", PROG, 2, 100.0),
                               ("SUCCEEDED", "SUCCEEDED", 2, 100.0)]
    assert events[1].message == "analysing v2 at 0% (shadow or test traffic) for 10s"
    assert events[2].message == (
        "switched to v2 at 100%; v1 kept ready until the bake time ends; watched for 20s")


def test_blue_green_never_switches_on_no_data(world: World) -> None:
    d = world.deploy("v2", BLUE_GREEN)
    world.tick(d)
    for _ in range(5):
        assert world.tick(d, 10) == []
    assert world.split() == {"v1": 100.0, "v2": 0.0}
    assert history(world.tick(d, 10)) == [("FAILED", "FAILED", 1, 0.0)]
    assert world.split() == {"v1": 100.0}


def test_blue_green_analysis_fast_fail_keeps_traffic_on_the_old_version(world: World) -> None:
    d = world.deploy("v2", BLUE_GREEN)
    world.tick(d)
    world.clock.advance(2)
    assert history(world.report("v2", 30, errors=30)) == ROLLED_BACK
    assert world.split() == {"v1": 100.0}
    assert world.controller.get(d).reason == (
        "error-rate gate failed: 1.000 > 0.050 over 30 requests at step 1 (0%)")


def test_blue_green_analysis_failing_twice_rolls_back(world: World) -> None:
    d = world.deploy("v2", BLUE_GREEN)
    world.tick(d)
    for _ in range(2):
        world.clock.advance(1)
        world.report("v2", 40, latency_ms=3000)
        world.tick(d, 9)
    assert world.history(d) == [CREATED, ("STEP_STARTED", PROG, 1, 0.0), ("GATE_FAILED", PROG, 1, 0.0),
                                ("GATE_FAILED", PROG, 1, 0.0)] + ROLLED_BACK


def test_blue_green_breach_during_the_bake_switches_back_at_once(world: World) -> None:
    d = world.deploy("v2", BLUE_GREEN)
    world.tick(d)
    world.healthy_step(d, "v2")
    world.clock.advance(1)
    assert history(world.report("v2", 40, errors=40)) == [
        ("ROLLBACK_STARTED", "ROLLING_BACK", 2, 0.0), ("ROLLED_BACK", "ROLLED_BACK", 2, 0.0)]
    assert world.split() == {"v1": 100.0}


def test_blue_green_promote_during_analysis_and_pause(world: World) -> None:
    d = world.deploy("v2", BLUE_GREEN)
    world.tick(d)
    world.controller.pause(d)
    world.clock.advance(1)
    world.report("v2", 40)
    assert world.tick(d, 30) == []
    world.controller.resume(d)
    world.controller.promote(d)
    assert world.history(d) == [CREATED, ("STEP_STARTED", PROG, 1, 0.0), ("PAUSED", "PAUSED", 1, 0.0),
                                ("RESUMED", PROG, 1, 0.0), ("SUCCEEDED", "SUCCEEDED", 1, 100.0)]
    assert world.split() == {"v2": 100.0}


def test_blue_green_abort_during_the_bake(world: World) -> None:
    d = world.deploy("v2", BLUE_GREEN)
    world.tick(d)
    world.healthy_step(d, "v2")
    assert history(world.controller.abort(d).events) == [("ABORTED", "ABORTED", 2, 0.0)]
    assert world.split() == {"v1": 100.0}
