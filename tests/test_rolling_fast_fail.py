"""Rolling updates fail fast, as canaries do, and count their steps in batches.

The first unhealthy heartbeat of a moved instance that has the new version loaded
rolls its batch back inside that Heartbeat call, the way a critical gate does in
ReportMetrics; an instance still loading, or unhealthy on the old version, does not.
`total_steps` of a rolling update is its number of batches, and the CLI says "batch 2/4".
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration

from modelctl.cli import _watch
from modelctl.types import Deployment
from modelctl.v1 import deployment_pb2 as dpb
from modelctl.v1 import registry_pb2 as rpb
from modelctl_server.clock import FakeClock
from modelctl_server.deployments import ParamOverrides, Strategy

from deploy_support import World, history
from grpc_helpers import stub

ROLLING = Strategy.ROLLING
EIGHT = [f"i{n}" for n in range(1, 9)]
#: Batches of two: 8 instances move in 4 batches.
PAIRS = ParamOverrides(step_interval=10, progress_deadline=300, max_unavailable="1", max_surge="1")


@pytest.fixture
def world() -> World:
    w = World()
    w.repo.add_model("fraud", ["v1", "v2"], live="v1")  # type: ignore[attr-defined]
    for n, instance_id in enumerate(EIGHT):
        w.instances.register("fraud", instance_id, f"10.0.0.{n}:8080")
    w.heartbeat_all(EIGHT)
    return w


def test_total_steps_of_a_rolling_update_is_its_number_of_batches(world: World) -> None:
    d = world.deploy("v2", ROLLING, PAIRS)
    assert world.controller.get(d).total_steps == 4
    for _ in range(4):
        world.tick(d, 10)
        world.heartbeat_all(EIGHT)
    steps = [(e.step, e.message.split(":")[0]) for e in world.controller.events(d) if e.kind.value == "STEP_STARTED"]
    assert steps == [(1, "batch 1"), (2, "batch 2"), (3, "batch 3"), (4, "batch 4")]
    assert world.controller.get(d).total_steps == 4
    world.tick(d, 10)
    done = world.controller.get(d)
    assert (done.phase.value, done.step, done.total_steps) == ("SUCCEEDED", 4, 4)


def test_the_batch_count_follows_an_instance_joining_mid_rollout(world: World) -> None:
    d = world.deploy("v2", ROLLING, PAIRS)
    world.tick(d)
    world.instances.register("fraud", "i9", "10.0.0.9:8080")
    world.heartbeat_all(EIGHT + ["i9"])
    world.tick(d, 10)  # batch 2 moves; 5 instances are left, in batches of two
    assert (world.controller.get(d).step, world.controller.get(d).total_steps) == (2, 5)


def test_the_first_unhealthy_heartbeat_on_the_new_version_rolls_the_batch_back(world: World) -> None:
    d = world.deploy("v2", ROLLING, PAIRS)
    world.tick(d)  # batch 1: i1, i2 -> v2
    world.clock.advance(1)
    world.heartbeat_all(["i1"] + EIGHT[2:])
    world.instances.heartbeat("fraud", "i2", "v2", False)
    events = world.controller.on_instance_health("fraud")  # what the Heartbeat RPC calls, no tick
    assert history(events) == [("ROLLBACK_STARTED", "ROLLING_BACK", 1, 0.0)]
    dep = world.controller.get(d)
    assert dep.reason == "batch 1: i2 reported v2 loaded but unhealthy"
    assert {i: world.instances.assignment("fraud", i) for i in EIGHT} == {i: "v1" for i in EIGHT}
    assert world.split() == {"v1": 100.0}
    world.heartbeat_all(EIGHT)
    assert history(world.tick(d, 1)) == [("ROLLED_BACK", "ROLLED_BACK", 1, 0.0)]


def test_unhealthy_instances_that_do_not_run_the_new_version_do_not_roll_back(world: World) -> None:
    d = world.deploy("v2", ROLLING, PAIRS)
    world.tick(d)
    world.heartbeat_all(EIGHT[2:])
    world.instances.heartbeat("fraud", "i1", "v1", False)  # moved, still on the old version: loading
    world.instances.heartbeat("fraud", "i5", "v1", False)  # not moved: not this rollout's doing
    assert world.controller.on_instance_health("fraud") == []
    assert world.phase(d) == "PROGRESSING"


def test_a_paused_rolling_update_still_fails_fast(world: World) -> None:
    d = world.deploy("v2", ROLLING, PAIRS)
    world.tick(d)
    world.controller.pause(d)
    world.instances.heartbeat("fraud", "i1", "v2", False)
    assert history(world.controller.on_instance_health("fraud")) == [("ROLLBACK_STARTED", "ROLLING_BACK", 1, 0.0)]


def test_the_reconcile_loop_catches_what_a_heartbeat_did_not_roll_back(world: World) -> None:
    """Should the Heartbeat's own check fail (a lost race, an error), the next tick rolls back."""
    d = world.deploy("v2", ROLLING, PAIRS)
    world.tick(d)
    world.instances.heartbeat("fraud", "i2", "v2", False)
    assert history(world.tick(d, 1)) == [("ROLLBACK_STARTED", "ROLLING_BACK", 1, 0.0)]


# --- over gRPC: inside the Heartbeat call ------------------------------------------------------------------


@pytest.fixture
def api(server_factory) -> Any:  # type: ignore[no-untyped-def]
    clock = FakeClock(dt.datetime.now(dt.timezone.utc))
    srv = server_factory(clock=clock)
    api = stub(srv.address, srv.admin_token)
    for v in ("1", "2"):
        api.RegisterModel(rpb.RegisterModelRequest(name="fraud", version=v, artifact_uri=f"s3://m/{v}"))
    api.DeployModel(dpb.DeployModelRequest(model="fraud", version="1", strategy=dpb.DEPLOYMENT_STRATEGY_IMMEDIATE,
                                           params=dpb.DeploymentParams(bake_time=Duration(seconds=0))))
    for _ in range(2):
        srv.call(srv.app.reconciler.tick())
    for instance_id in EIGHT:
        api.RegisterInstance(dpb.RegisterInstanceRequest(model="fraud", instance_id=instance_id))
        api.Heartbeat(dpb.HeartbeatRequest(model="fraud", instance_id=instance_id, loaded_version="1", healthy=True))
    return srv, api


def test_heartbeat_rolls_back_before_it_answers_and_total_is_batches(api: Any) -> None:
    srv, stub_ = api
    dep = stub_.DeployModel(dpb.DeployModelRequest(
        model="fraud", version="2", strategy=dpb.DEPLOYMENT_STRATEGY_ROLLING,
        params=dpb.DeploymentParams(max_unavailable="1", max_surge="1", progress_deadline=Duration(seconds=300))))
    assert dep.total_steps == 4
    srv.call(srv.app.reconciler.tick())
    moved = stub_.GetDeployment(dpb.GetDeploymentRequest(id=dep.id))
    assert (moved.step, moved.total_steps) == (1, 4)
    assert _watch.step_of(moved) == "batch 1/4"
    reply = stub_.Heartbeat(dpb.HeartbeatRequest(model="fraud", instance_id="i1", loaded_version="2", healthy=False))
    # Answered after the rollback committed: the instance is told to go back at once.
    assert reply.assigned_version == "1"
    after = stub_.GetDeployment(dpb.GetDeploymentRequest(id=dep.id))
    assert after.state == dpb.DEPLOYMENT_STATE_ROLLING_BACK
    assert "i1 reported 2 loaded but unhealthy" in after.reason
    assert {v: w for v, w in stub_.GetTrafficSplit(dpb.GetTrafficSplitRequest(model="fraud")).weights.items()
            if w} == {"1": 100.0}


def test_the_cli_says_batch_for_rolling_and_step_for_the_others() -> None:
    rolling = Deployment(strategy=dpb.DEPLOYMENT_STRATEGY_ROLLING, step=2, total_steps=4)
    canary = Deployment(strategy=dpb.DEPLOYMENT_STRATEGY_CANARY, step=2, total_steps=5)
    assert (_watch.step_of(rolling), _watch.step_of(canary)) == ("batch 2/4", "step 2/5")
    assert _watch.progress_line(dpb.DEPLOYMENT_STATE_PROGRESSING, 2, 4, 25.0, unit="batch") == (
        "[█████░░░░░] batch 2/4 25% PROGRESSING")
    assert "rolling, 4 batches" in _watch.start_line(rolling)
