"""Canary rollouts driven with a fake clock and scripted traffic: the exact events of every scenario.

Parameters (deploy_support.FAST): 5/10/25/50/100 %, 10 s per step, 20 samples per gate,
a 60 s progress deadline, failure limit 2.
"""

from __future__ import annotations

import re

import pytest

from modelctl_server.deployments import ParamOverrides, Phase, Strategy, Verdict
from modelctl_server.errors import FailedPreconditionError

from deploy_support import ScriptedDrift, World, history

CANARY = Strategy.CANARY
C, S, G, RB, RD = "CREATED", "STEP_STARTED", "GATE_FAILED", "ROLLBACK_STARTED", "ROLLED_BACK"
PROG = "PROGRESSING"
BACK_AT_1 = [(RB, "ROLLING_BACK", 1, 0.0), (RD, "ROLLED_BACK", 1, 0.0)]
BACK_AT_2 = [(RB, "ROLLING_BACK", 2, 0.0), (RD, "ROLLED_BACK", 2, 0.0)]


@pytest.fixture
def world() -> World:
    w = World()
    w.repo.add_model("fraud", ["v1", "v2", "v3"], live="v1", previous="v0")  # type: ignore[attr-defined]
    return w


def steps_so_far(last: int) -> list[tuple[str, str, int, float]]:
    percents = [5.0, 10.0, 25.0, 50.0, 100.0]
    return [(C, "PENDING", 0, 0.0)] + [(S, PROG, n, percents[n - 1]) for n in range(1, last + 1)]


def test_healthy_canary_walks_every_step_and_goes_live(world: World) -> None:
    d = world.deploy("v2", CANARY)
    assert world.split() == {"v1": 100.0}
    world.tick(d)
    assert world.split() == {"v1": 95.0, "v2": 5.0}
    for _ in range(5):
        world.healthy_step(d, "v2")
    assert world.history(d) == steps_so_far(5) + [("SUCCEEDED", "SUCCEEDED", 5, 100.0)]
    assert world.split() == {"v2": 100.0}
    dep = world.controller.get(d)
    assert (dep.phase, dep.step, dep.traffic_percent, dep.reason) == (Phase.SUCCEEDED, 5, 100.0, "")
    assert dep.finished_at == world.clock.now()
    with world.repo.transaction() as tx:
        model = tx.get_model("fraud")
    assert (model.live_version, model.previous_version) == ("v2", "v1")  # type: ignore[union-attr]
    # Every step's analysis is stored: two gates per step, all passing.
    evaluations = world.controller.evaluations(d)
    assert len(evaluations) == 10 and {e.verdict for e in evaluations} == {Verdict.PASS}
    assert [e.step for e in evaluations[::2]] == [1, 2, 3, 4, 5]


def test_each_tick_takes_at_most_one_step(world: World) -> None:
    d = world.deploy("v2", CANARY)
    world.tick(d)
    world.clock.advance(1)
    world.report("v2", 500)
    # Long after several intervals, one tick still moves one step.
    assert history(world.tick(d, 100)) == [(S, PROG, 2, 10.0)]
    assert world.tick(d) == []  # the new step has just begun


def test_a_step_waits_for_its_interval(world: World) -> None:
    d = world.deploy("v2", CANARY)
    world.tick(d)
    world.clock.advance(1)
    world.report("v2", 100)
    assert world.tick(d, 8) == []
    assert history(world.tick(d, 1)) == [(S, PROG, 2, 10.0)]


def test_non_critical_gate_failing_up_to_the_limit_rolls_back(world: World) -> None:
    d = world.deploy("v2", CANARY)
    world.tick(d)
    for _ in range(2):
        world.clock.advance(1)
        world.report("v2", 40, latency_ms=1500)
        world.tick(d, 9)
    assert world.history(d) == steps_so_far(1) + [
        (G, PROG, 1, 5.0), (G, PROG, 1, 5.0), (RB, "ROLLING_BACK", 1, 0.0), (RD, "ROLLED_BACK", 1, 0.0)]
    assert world.split() == {"v1": 100.0}
    dep = world.controller.get(d)
    assert dep.failed_checks == 2
    assert re.fullmatch(r"failure limit reached \(2 of 2\): latency-p95 gate failed: 1\d{3}ms > 1000ms "
                        r"over 40 samples at step 1 \(5%\)", dep.reason), dep.reason
    with world.repo.transaction() as tx:
        model = tx.get_model("fraud")
    assert (model.live_version, model.previous_version) == ("v1", "v0")  # type: ignore[union-attr]


def test_one_failed_analysis_below_the_limit_repeats_the_step(world: World) -> None:
    d = world.deploy("v2", CANARY)
    world.tick(d)
    world.clock.advance(1)
    world.report("v2", 40, latency_ms=1500)
    events = world.tick(d, 9)
    assert history(events) == [(G, PROG, 1, 5.0)]
    assert events[0].message.endswith("(failure 1 of 2); analysing the step again")
    # The step is analysed again over a fresh window: the slow traffic is not in it.
    world.healthy_step(d, "v2")
    assert world.controller.get(d).step == 2


def test_fast_fail_rolls_back_on_the_breaching_report(world: World) -> None:
    d = world.deploy("v2", CANARY)
    world.tick(d)
    world.healthy_step(d, "v2")
    world.clock.advance(1)
    events = world.report("v2", 40, errors=20)
    # No tick: the report itself rolled back, long before the end of the 10 s step.
    assert history(events) == [(RB, "ROLLING_BACK", 2, 0.0), (RD, "ROLLED_BACK", 2, 0.0)]
    assert world.split() == {"v1": 100.0}
    dep = world.controller.get(d)
    assert dep.reason == "error-rate gate failed: 0.500 > 0.050 over 40 requests at step 2 (10%)"
    assert events[0].message == f"rolling back to v1: {dep.reason}"
    assert events[1].message == "traffic back on v1"
    assert world.history(d) == steps_so_far(2) + history(events)
    failed = world.controller.evaluations(d)[-1]
    assert (failed.verdict, failed.value, failed.samples, failed.critical) == (Verdict.FAIL, 0.5, 40, True)


def test_fast_fail_waits_for_min_samples(world: World) -> None:
    d = world.deploy("v2", CANARY)
    world.tick(d)
    world.clock.advance(1)
    assert world.report("v2", 10, errors=10) == []  # 10 of 20 samples: not judged yet
    assert world.phase(d) == PROG
    assert history(world.report("v2", 10, errors=0)) == BACK_AT_1


def test_stable_version_reports_do_not_fail_the_canary(world: World) -> None:
    d = world.deploy("v2", CANARY)
    world.tick(d)
    world.clock.advance(1)
    assert world.report("v1", 100, errors=100) == []
    assert world.report("v3", 100, errors=100) == []
    assert world.phase(d) == PROG


def test_progress_deadline_fails_a_step_without_samples(world: World) -> None:
    d = world.deploy("v2", CANARY)
    world.tick(d)
    world.clock.advance(1)
    world.report("v2", 5)
    assert world.tick(d, 9) == []  # t=10: the step's interval is over, but its gates wait
    for _ in range(4):
        assert world.tick(d, 10) == []  # t=20..50
    events = world.tick(d, 10)  # t=60: the deadline
    assert history(events) == [("FAILED", "FAILED", 1, 0.0)]
    assert world.split() == {"v1": 100.0}
    dep = world.controller.get(d)
    assert dep.reason == ("progress deadline of 1m exceeded at step 1 (5%): "
                          "error-rate has 5 of 20 requests, latency-p95 has 5 of 20 samples")
    assert events[0].message == f"failed: {dep.reason}; traffic back on v1"
    assert {e.verdict for e in world.controller.evaluations(d)} == {Verdict.WAIT}


def test_pause_holds_the_step_and_resume_restarts_its_window(world: World) -> None:
    d = world.deploy("v2", CANARY)
    world.tick(d)
    world.healthy_step(d, "v2")
    paused = world.controller.pause(d, by="bob")
    assert history(paused.events) == [("PAUSED", "PAUSED", 2, 10.0)]
    assert paused.events[0].message == "paused by bob at step 2 (10%)"
    world.clock.advance(1)
    world.report("v2", 100)
    # Paused for far longer than the interval and the deadline: nothing moves, nothing fails.
    assert world.tick(d, 300) == []
    resumed = world.controller.resume(d, by="bob")
    assert history(resumed.events) == [("RESUMED", PROG, 2, 10.0)]
    # The window starts again at resume: the traffic from before does not count.
    assert world.tick(d, 10) == []
    world.healthy_step(d, "v2")
    assert world.history(d) == steps_so_far(2) + [("PAUSED", "PAUSED", 2, 10.0), ("RESUMED", PROG, 2, 10.0),
                                                  (S, PROG, 3, 25.0)]


def test_a_paused_canary_still_fast_fails(world: World) -> None:
    d = world.deploy("v2", CANARY)
    world.tick(d)
    world.controller.pause(d)
    world.clock.advance(1)
    assert history(world.report("v2", 40, errors=40)) == BACK_AT_1
    assert world.split() == {"v1": 100.0}


def test_promote_skips_the_remaining_steps(world: World) -> None:
    d = world.deploy("v2", CANARY)
    world.tick(d)
    world.healthy_step(d, "v2")
    promoted = world.controller.promote(d, by="carol")
    assert history(promoted.events) == [("SUCCEEDED", "SUCCEEDED", 2, 100.0)]
    assert promoted.events[0].message == "promoted by carol: v2 takes 100% and is live"
    assert world.split() == {"v2": 100.0}
    assert world.tick(d, 60) == []


def test_abort_gives_traffic_back(world: World) -> None:
    d = world.deploy("v2", CANARY)
    world.tick(d)
    world.healthy_step(d, "v2")
    aborted = world.controller.abort(d, by="dave")
    assert history(aborted.events) == [("ABORTED", "ABORTED", 2, 0.0)]
    assert aborted.events[0].message == "aborted by dave; traffic back on v1"
    assert aborted.deployment.reason == "aborted by dave"
    assert world.split() == {"v1": 100.0}


@pytest.mark.parametrize("operation", ["pause", "resume", "promote", "abort"])
def test_operations_on_a_finished_deployment_are_refused(world: World, operation: str) -> None:
    d = world.deploy("v2", CANARY)
    world.controller.abort(d)
    before = world.history(d)
    with pytest.raises(FailedPreconditionError, match=f"deployment {d} is ABORTED"):
        getattr(world.controller, operation)(d)
    assert world.history(d) == before


def test_resume_of_a_running_deployment_is_refused(world: World) -> None:
    d = world.deploy("v2", CANARY)
    world.tick(d)
    with pytest.raises(FailedPreconditionError, match="is PROGRESSING, not PAUSED"):
        world.controller.resume(d)
    world.repo.add_model("other", ["a"])  # type: ignore[attr-defined]
    pending = world.deploy("a", CANARY, model="other")
    with pytest.raises(FailedPreconditionError, match="is PENDING and cannot become PAUSED"):
        world.controller.pause(pending)
    # Resuming one that has not started must not mark it PROGRESSING without its first step.
    with pytest.raises(FailedPreconditionError, match="is PENDING, not PAUSED"):
        world.controller.resume(pending)
    assert world.phase(pending) == "PENDING"
    assert history(world.tick(pending)) == [("STEP_STARTED", PROG, 1, 100.0)]  # a first deploy: all of it


def test_relative_gate_fails_a_canary_worse_than_stable(world: World) -> None:
    overrides = ParamOverrides(step_interval=10, min_samples=20, progress_deadline=60, error_rate=0.5,
                               max_error_rate_increase=0.01, failure_limit=1)
    d = world.deploy("v2", CANARY, overrides)
    world.tick(d)
    world.clock.advance(1)
    world.report("v2", 400, errors=60)   # 15 %: under the absolute 50 %, far over stable
    world.report("v1", 400, errors=8)    # 2 %
    events = world.tick(d, 9)
    assert history(events) == [(G, PROG, 1, 5.0), (RB, "ROLLING_BACK", 1, 0.0), (RD, "ROLLED_BACK", 1, 0.0)]
    assert "relative-error-rate gate failed: new 0.150 vs stable 0.020" in world.controller.get(d).reason


def test_relative_gate_is_not_applied_once_the_canary_has_everything(world: World) -> None:
    overrides = ParamOverrides(steps=(50, 100), step_interval=10, min_samples=20, progress_deadline=60,
                               max_error_rate_increase=0.0)
    d = world.deploy("v2", CANARY, overrides)
    world.tick(d)
    world.healthy_step(d, "v2", stable="v1")
    # At 100 % the stable version takes no traffic: the gate would wait forever, so it is not evaluated.
    assert history(world.healthy_step(d, "v2")) == [("SUCCEEDED", "SUCCEEDED", 2, 100.0)]


def test_drift_gate_counts_as_a_failed_check() -> None:
    drift = ScriptedDrift({"v2": 0.4})
    world = World(drift=drift)
    world.repo.add_model("fraud", ["v1", "v2"], live="v1")  # type: ignore[attr-defined]
    d = world.deploy("v2", CANARY)
    world.tick(d)
    assert history(world.healthy_step(d, "v2")) == [(G, PROG, 1, 5.0)]
    drift.scores["v2"] = 0.01
    assert history(world.healthy_step(d, "v2")) == [(S, PROG, 2, 10.0)]
    drift.scores["v2"] = None  # no score: the gate is skipped, not failed
    assert history(world.healthy_step(d, "v2")) == [(S, PROG, 3, 25.0)]


def test_latency_can_be_made_critical(world: World) -> None:
    d = world.deploy("v2", CANARY, ParamOverrides(step_interval=10, min_samples=20, progress_deadline=60,
                                                  critical_gates=("error_rate", "latency_p95")))
    world.tick(d)
    world.clock.advance(1)
    assert history(world.report("v2", 30, latency_ms=4000)) == [
        (RB, "ROLLING_BACK", 1, 0.0), (RD, "ROLLED_BACK", 1, 0.0)]
    assert world.controller.get(d).reason.startswith("latency-p95 gate failed: ")


def test_fast_fail_window_is_the_current_step(world: World) -> None:
    # Healthy traffic of step 1 does not dilute a bad step 2: each step is judged on its own window.
    d = world.deploy("v2", CANARY)
    world.tick(d)
    world.clock.advance(1)
    assert world.report("v2", 200, errors=9) == []  # 4.5 %: fine
    world.tick(d, 9)
    world.clock.advance(2)
    # 2 in 20 is 10 %; with step 1's traffic it would read 11 in 220, exactly 5 %, and pass.
    assert history(world.report("v2", 20, errors=2)) == BACK_AT_2
