"""Rolling updates: instances move in batches and confirm by heartbeat; lost instances are excluded.

Heartbeats are expected every 5 s (lost after 15 s of silence). Parameters: deploy_support.FAST
(10 s per batch, 60 s to confirm), batches of max_unavailable + max_surge instances.
"""

from __future__ import annotations

import pytest

from modelctl_server.deployments import ParamOverrides, Strategy, resolve_params
from modelctl_server.deployments.rolling import batch_size
from modelctl_server.errors import FailedPreconditionError, NotFoundError, ValidationError

from deploy_support import World, history

ROLLING = Strategy.ROLLING
PROG = "PROGRESSING"
CREATED = ("CREATED", "PENDING", 0, 0.0)
FOUR = ["i1", "i2", "i3", "i4"]
ONE_BY_ONE = ParamOverrides(step_interval=10, min_samples=20, progress_deadline=60, max_unavailable="1",
                            max_surge="0")


@pytest.fixture
def world() -> World:
    w = World()
    w.repo.add_model("fraud", ["v1", "v2"], live="v1")  # type: ignore[attr-defined]
    for n, instance_id in enumerate(FOUR):
        w.instances.register("fraud", instance_id, f"10.0.0.{n}:8080")
    w.heartbeat_all(FOUR)
    return w


def assignments(world: World, ids: list[str] = FOUR) -> dict[str, str | None]:
    return {i: world.instances.assignment("fraud", i) for i in ids}


def test_instances_start_on_the_live_version(world: World) -> None:
    assert assignments(world) == {i: "v1" for i in FOUR}
    instance = world.instances.get("fraud", "i2")
    assert (instance.address, instance.loaded_version, instance.healthy, instance.lost) == (
        "10.0.0.1:8080", "v1", True, False)


def test_rolling_moves_batches_confirmed_by_heartbeats(world: World) -> None:
    d = world.deploy("v2", ROLLING)
    events = world.tick(d)
    # 25 % unavailable + 25 % surge of 4 instances: two at a time.
    assert history(events) == [("STEP_STARTED", PROG, 1, 50.0)]
    assert events[0].message == "batch 1: i1, i2 -> v2 (50% of instances)"
    assert assignments(world) == {"i1": "v2", "i2": "v2", "i3": "v1", "i4": "v1"}
    assert world.split() == {"v1": 50.0, "v2": 50.0}
    world.clock.advance(5)
    world.heartbeat_all(FOUR)  # i1, i2 load v2 and say so
    assert history(world.tick(d, 5)) == [("STEP_STARTED", PROG, 2, 100.0)]
    world.clock.advance(5)
    world.heartbeat_all(FOUR)
    assert history(world.tick(d, 5)) == [("SUCCEEDED", "SUCCEEDED", 2, 100.0)]
    assert world.history(d) == [CREATED, ("STEP_STARTED", PROG, 1, 50.0), ("STEP_STARTED", PROG, 2, 100.0),
                                ("SUCCEEDED", "SUCCEEDED", 2, 100.0)]
    assert world.split() == {"v2": 100.0}
    assert assignments(world) == {i: "v2" for i in FOUR}
    with world.repo.transaction() as tx:
        assert tx.get_model("fraud").live_version == "v2"  # type: ignore[union-attr]


def test_next_batch_waits_for_confirmation(world: World) -> None:
    d = world.deploy("v2", ROLLING)
    world.tick(d)
    world.clock.advance(5)
    world.heartbeat_all(["i1", "i3", "i4"])  # i2 has not loaded v2 yet
    world.instances.heartbeat("fraud", "i2", "v1", True)
    assert world.tick(d, 5) == []
    world.heartbeat_all(FOUR)
    assert history(world.tick(d)) == [("STEP_STARTED", PROG, 2, 100.0)]


def test_batch_not_healthy_in_time_rolls_back_the_moved_instances(world: World) -> None:
    d = world.deploy("v2", ROLLING)
    world.tick(d)
    for _ in range(6):
        world.heartbeat_all(["i1", "i3", "i4"])
        world.instances.heartbeat("fraud", "i2", "v1", True)  # never loads v2 (unhealthy on v2 fails fast)
        events = world.tick(d, 10)
    assert history(events) == [("ROLLBACK_STARTED", "ROLLING_BACK", 1, 0.0)]
    dep = world.controller.get(d)
    assert dep.reason == "batch 1 not healthy within 1m: i2 (loaded v1)"
    # The assignments go back first; the rollback is done when the instances confirm.
    assert assignments(world) == {i: "v1" for i in FOUR}
    assert world.split() == {"v1": 100.0}
    assert world.tick(d) == []
    world.heartbeat_all(FOUR)
    assert history(world.tick(d, 1)) == [("ROLLED_BACK", "ROLLED_BACK", 1, 0.0)]
    assert world.history(d) == [CREATED, ("STEP_STARTED", PROG, 1, 50.0),
                                ("ROLLBACK_STARTED", "ROLLING_BACK", 1, 0.0),
                                ("ROLLED_BACK", "ROLLED_BACK", 1, 0.0)]


def test_a_rollback_the_instances_never_confirm_fails(world: World) -> None:
    d = world.deploy("v2", ROLLING)
    world.tick(d)
    world.clock.advance(1)
    world.report("v2", 40, errors=40)
    for _ in range(6):
        world.heartbeat_all(["i2", "i3", "i4"])
        world.instances.heartbeat("fraud", "i1", "v2", True)  # stuck on the bad version
        events = world.tick(d, 10)
    assert history(events) == [("FAILED", "FAILED", 1, 0.0)]
    assert world.controller.get(d).reason == (
        "error-rate gate failed: 1.000 > 0.050 over 40 requests at step 1 (50%); "
        "rollback not confirmed within 1m: i1 (loaded v2)")


def test_rolling_fast_fails_on_the_new_versions_metrics(world: World) -> None:
    d = world.deploy("v2", ROLLING)
    world.tick(d)
    world.clock.advance(2)
    assert history(world.report("v2", 30, errors=10)) == [("ROLLBACK_STARTED", "ROLLING_BACK", 1, 0.0)]
    assert assignments(world) == {i: "v1" for i in FOUR}
    world.heartbeat_all(FOUR)
    assert history(world.tick(d)) == [("ROLLED_BACK", "ROLLED_BACK", 1, 0.0)]


def test_silent_instances_are_marked_lost_and_excluded(world: World) -> None:
    d = world.deploy("v2", ROLLING, ONE_BY_ONE)
    assert history(world.tick(d)) == [("STEP_STARTED", PROG, 1, 25.0)]
    # i3 and i4 go silent from here on.
    world.clock.advance(5)
    world.heartbeat_all(["i1", "i2"])
    world.clock.advance(5)
    world.heartbeat_all(["i1", "i2"])
    assert history(world.tick(d)) == [("STEP_STARTED", PROG, 2, 50.0)]
    world.clock.advance(6)
    world.heartbeat_all(["i1", "i2"])
    events = world.tick(d)
    # At 16 s, 16 s after their last heartbeat (> 3 x 5 s): both lost, and the two left are all on v2.
    assert history(events) == [("INSTANCE_LOST", PROG, 2, 100.0), ("INSTANCE_LOST", PROG, 2, 100.0)]
    assert [e.message for e in events] == ["instance i3 lost: no heartbeat for 15s; excluded",
                                           "instance i4 lost: no heartbeat for 15s; excluded"]
    assert world.instances.get("fraud", "i3").lost
    world.heartbeat_all(["i1", "i2"])
    assert history(world.tick(d, 4)) == [("SUCCEEDED", "SUCCEEDED", 2, 100.0)]
    # A lost instance that comes back is no longer lost, and loads what is live now.
    assert world.instances.heartbeat("fraud", "i3", "v1", True) == "v2"
    assert not world.instances.get("fraud", "i3").lost


def test_all_instances_lost_fails_at_the_deadline(world: World) -> None:
    d = world.deploy("v2", ROLLING)
    world.tick(d)
    assert world.tick(d, 10) == []
    # Nobody serving: the shares are of no instance, so the new version has none.
    assert history(world.tick(d, 10)) == [("INSTANCE_LOST", PROG, 1, 0.0)] * 4
    for _ in range(3):
        assert world.tick(d, 10) == []
    events = world.tick(d, 10)
    assert history(events) == [("FAILED", "FAILED", 1, 0.0)]
    assert world.controller.get(d).reason == (
        "no serving instance of fraud for 1m: every one stopped sending heartbeats")
    assert assignments(world) == {i: "v1" for i in FOUR}


def test_rolling_pause_resume(world: World) -> None:
    d = world.deploy("v2", ROLLING)
    world.tick(d)
    world.controller.pause(d)
    for _ in range(10):
        world.heartbeat_all(FOUR)
        assert world.tick(d, 10) == []  # paused: no batch moves, and no deadline runs
    world.controller.resume(d)
    world.heartbeat_all(FOUR)
    assert world.tick(d, 9) == []
    assert history(world.tick(d, 1)) == [("STEP_STARTED", PROG, 2, 100.0)]


def test_rolling_promote_assigns_everyone(world: World) -> None:
    d = world.deploy("v2", ROLLING)
    world.tick(d)
    assert history(world.controller.promote(d).events) == [("SUCCEEDED", "SUCCEEDED", 1, 100.0)]
    assert assignments(world) == {i: "v2" for i in FOUR}
    assert world.split() == {"v2": 100.0}


def test_rolling_abort_moves_instances_back(world: World) -> None:
    d = world.deploy("v2", ROLLING)
    world.tick(d)
    assert history(world.controller.abort(d).events) == [("ABORTED", "ABORTED", 1, 0.0)]
    assert assignments(world) == {i: "v1" for i in FOUR}
    assert world.split() == {"v1": 100.0}


def test_an_instance_registering_mid_rollout_is_moved_in_a_later_batch(world: World) -> None:
    d = world.deploy("v2", ROLLING)
    world.tick(d)
    world.instances.register("fraud", "i5", "10.0.0.5:8080")
    assert world.instances.assignment("fraud", "i5") == "v1"
    for _ in range(3):
        world.heartbeat_all(FOUR + ["i5"])
        world.tick(d, 10)
    assert world.phase(d) == "SUCCEEDED"
    assert world.instances.assignment("fraud", "i5") == "v2"
    assert [e.message for e in world.controller.events(d) if e.kind.value == "STEP_STARTED"] == [
        "batch 1: i1, i2 -> v2 (50% of instances)", "batch 2: i3, i4, i5 -> v2 (100% of instances)"]


def test_rolling_needs_live_instances() -> None:
    world = World()
    world.repo.add_model("fraud", ["v1", "v2"], live="v1")  # type: ignore[attr-defined]
    with pytest.raises(FailedPreconditionError, match="has none alive"):
        world.deploy("v2", ROLLING)
    world.instances.register("fraud", "i1", "")
    world.clock.advance(60)  # registered, then silent
    with pytest.raises(FailedPreconditionError, match="has none alive"):
        world.deploy("v2", ROLLING)


def test_instance_calls_validate_and_need_registration(world: World) -> None:
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        world.instances.register("nope", "i1", "")
    with pytest.raises(NotFoundError, match="is not registered; register it first"):
        world.instances.heartbeat("fraud", "i9", "v1", True)
    with pytest.raises(ValidationError) as err:
        world.instances.register("fraud", "", "x" * 300)
    assert {v.field for v in err.value.violations} == {"instance_id", "address"}
    with pytest.raises(NotFoundError):
        world.instances.assignment("fraud", "i9")


def test_reregistering_keeps_the_assignment(world: World) -> None:
    d = world.deploy("v2", ROLLING)
    world.tick(d)
    world.instances.register("fraud", "i1", "10.9.9.9:8080")
    assert world.instances.get("fraud", "i1").address == "10.9.9.9:8080"
    assert world.instances.assignment("fraud", "i1") == "v2"


@pytest.mark.parametrize(("unavailable", "surge", "live", "expected"), [
    ("25%", "25%", 4, 2), ("25%", "25%", 3, 1), ("1", "0", 10, 1), ("0", "2", 10, 2), ("50%", "0%", 10, 5),
    ("10%", "0%", 3, 1),  # rounds to nothing, but a rollout must still move
])
def test_batch_size(unavailable: str, surge: str, live: int, expected: int) -> None:
    params = resolve_params(ROLLING, ParamOverrides(max_unavailable=unavailable, max_surge=surge))
    assert batch_size(params, live) == expected


def test_a_restarted_controller_does_not_count_its_own_downtime_against_instances(world: World) -> None:
    """Heartbeats sent while the controller was down went nowhere: nobody is lost for them."""
    from modelctl_server.deployments import DeploymentController

    d = world.deploy("v2", ROLLING, ONE_BY_ONE)
    assert history(world.tick(d)) == [("STEP_STARTED", PROG, 1, 25.0)]
    world.heartbeat_all(FOUR)  # i1 confirms v2
    world.clock.advance(30)  # the controller is down for 30 s (6 heartbeats); instances keep trying, unheard
    world.controller = DeploymentController(world.repo, world.clock, world.metrics, heartbeat_interval=5.0)
    # Nobody is marked lost: the confirmed batch stands and the next one moves, one instance, as before.
    assert history(world.controller.advance(d)) == [("STEP_STARTED", PROG, 2, 50.0)]
    world.heartbeat_all(FOUR)  # they reach the restarted controller
    assert assignments(world) == {"i1": "v2", "i2": "v2", "i3": "v1", "i4": "v1"}
    # Once it has been up for three heartbeat intervals, silence counts again.
    world.clock.advance(16)
    events = world.controller.advance(d)
    assert [e.kind.value for e in events].count("INSTANCE_LOST") == 4
