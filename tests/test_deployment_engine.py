"""The controller's operations and guarantees: create rules, rollback, restarts, crashes mid-transaction."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Iterator

import pytest

from modelctl_server.config import DeploymentSettings, ThresholdSettings
from modelctl_server.deployments import (
    DeploymentController,
    InMemoryDeploymentRepository,
    ParamOverrides,
    Phase,
    Strategy,
)
from modelctl_server.errors import FailedPreconditionError, NotFoundError, ValidationError
from modelctl_server.telemetry import MetricsStore

from deploy_support import FAST, ScriptedMetrics, World, history

CANARY, IMMEDIATE = Strategy.CANARY, Strategy.IMMEDIATE
PROG = "PROGRESSING"


@pytest.fixture
def world() -> World:
    w = World()
    w.repo.add_model("fraud", ["v1", "v2", "v3"], live="v1", archived=["v0"])  # type: ignore[attr-defined]
    return w


def run_to_success(world: World, d: str, version: str) -> None:
    world.tick(d)
    while world.phase(d) == PROG:
        world.healthy_step(d, version, seconds=20)


# --- create -------------------------------------------------------------------------------------------------

def test_create_stores_a_pending_deployment(world: World) -> None:
    created = world.controller.create("fraud", "v2", CANARY, FAST, created_by="alice")
    dep = created.deployment
    assert (dep.id, dep.model, dep.version, dep.previous_version, dep.strategy, dep.phase, dep.step) == (
        "d1", "fraud", "v2", "v1", CANARY, Phase.PENDING, 0)
    assert (dep.created_by, dep.created_at, dep.step_started_at, dep.finished_at) == (
        "alice", world.clock.now(), None, None)
    assert dep.params.step_interval == 10
    assert history(created.events) == [("CREATED", "PENDING", 0, 0.0)]
    assert created.events[0].message == "canary deployment of fraud v2 created by alice (replacing v1)"
    assert world.controller.get("d1") == dep
    assert world.split() == {"v1": 100.0}  # nothing moves before the first tick


def test_new_config_defaults_apply_to_new_deployments_only(world: World) -> None:
    first = world.deploy("v2", CANARY, overrides=None)
    world.controller.reconfigure(DeploymentSettings(step_interval=5.0, min_samples=3),
                                 ThresholdSettings(error_rate=0.2))
    assert world.controller.get(first).params.step_interval == 30.0
    world.controller.abort(first)
    second = world.controller.get(world.deploy("v3", CANARY, overrides=None)).params
    assert (second.step_interval, second.min_samples, second.thresholds.error_rate) == (5.0, 3, 0.2)


def test_unknown_model_or_version_is_not_found(world: World) -> None:
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        world.deploy("v2", CANARY, model="nope")
    with pytest.raises(NotFoundError, match="model fraud has no version 'v9'"):
        world.deploy("v9", CANARY)


def test_archived_version_cannot_be_deployed(world: World) -> None:
    with pytest.raises(FailedPreconditionError, match="fraud version v0 is archived"):
        world.deploy("v0", CANARY)


def test_live_version_cannot_be_deployed_again(world: World) -> None:
    with pytest.raises(FailedPreconditionError, match="fraud version v1 is already live"):
        world.deploy("v1", CANARY)


def test_one_active_deployment_per_model(world: World) -> None:
    d = world.deploy("v2", CANARY)
    world.tick(d)
    with pytest.raises(FailedPreconditionError) as err:
        world.deploy("v3", IMMEDIATE)
    assert err.value.message == ("fraud already has an active deployment d1 (v2, PROGRESSING); "
                                 "wait for it to finish or abort it")
    world.controller.abort(d)
    assert world.deploy("v3", IMMEDIATE) == "d2"


def test_a_rolled_back_version_may_be_deployed_again(world: World) -> None:
    d = world.deploy("v2", CANARY)
    world.tick(d)
    world.clock.advance(1)
    world.report("v2", 40, errors=40)
    assert world.phase(d) == "ROLLED_BACK"
    again = world.deploy("v2", CANARY)
    assert again != d
    run_to_success(world, again, "v2")
    assert world.phase(again) == "SUCCEEDED"


def test_bad_parameters_store_nothing(world: World) -> None:
    with pytest.raises(ValidationError) as err:
        world.deploy("v2", CANARY, ParamOverrides(step_interval=0.01))
    assert [v.field for v in err.value.violations] == ["step_interval"]
    assert world.controller.list() == []


def test_first_deployment_of_a_model(world: World) -> None:
    world.repo.add_model("churn", ["a"])  # type: ignore[attr-defined]
    d = world.deploy("a", CANARY, model="churn")
    assert world.controller.get(d).previous_version is None
    # With no other version to send the rest to, the first step already carries everything.
    assert history(world.tick(d)) == [("STEP_STARTED", PROG, 1, 100.0)]
    assert world.split("churn") == {"a": 100.0}
    world.clock.advance(1)
    events = world.report("a", 40, errors=40, model="churn")
    assert events[-1].message == "traffic taken off a (it was the first deployment)"
    assert world.split("churn") == {}


# --- rollback -----------------------------------------------------------------------------------------------

def test_rollback_returns_to_the_previous_version_at_once(world: World) -> None:
    d = world.deploy("v2", CANARY)
    run_to_success(world, d, "v2")
    rolled = world.controller.rollback("fraud", created_by="erin")
    assert rolled.deployment.version == "v1"
    assert rolled.deployment.strategy is IMMEDIATE
    assert rolled.deployment.params.bake_time == 0
    # Created, switched and (nothing to bake) finished in one call: traffic is back before it returns.
    assert history(rolled.events) == [("CREATED", "PENDING", 0, 0.0), ("STEP_STARTED", PROG, 1, 100.0),
                                      ("SUCCEEDED", "SUCCEEDED", 1, 100.0)]
    assert rolled.deployment.phase.value == "SUCCEEDED"
    assert history(world.tick(rolled.deployment.id)) == []
    assert world.split() == {"v1": 100.0}
    with world.repo.transaction() as tx:
        model = tx.get_model("fraud")
    assert (model.live_version, model.previous_version) == ("v1", "v2")  # type: ignore[union-attr]


def test_rollback_to_a_named_version(world: World) -> None:
    rolled = world.controller.rollback("fraud", to_version="v3")
    assert rolled.deployment.version == "v3"
    assert world.split() == {"v3": 100.0}


def test_rollback_without_a_previous_version(world: World) -> None:
    world.repo.add_model("churn", ["a"], live="a")  # type: ignore[attr-defined]
    with pytest.raises(FailedPreconditionError, match="churn has no previous version to roll back to"):
        world.controller.rollback("churn")
    with pytest.raises(NotFoundError):
        world.controller.rollback("nope")


def test_rollback_during_a_deployment_names_it(world: World) -> None:
    d = world.deploy("v2", CANARY)
    world.repo.add_model("fraud", ["v1", "v2", "v3"], live="v2", previous="v1")  # type: ignore[attr-defined]
    with pytest.raises(FailedPreconditionError, match=f"active deployment {d} "):
        world.controller.rollback("fraud")


# --- restarts and crashes -----------------------------------------------------------------------------------

def test_a_restarted_controller_continues_at_the_stored_step(world: World) -> None:
    d = world.deploy("v2", CANARY)
    world.tick(d)
    world.healthy_step(d, "v2")
    world.healthy_step(d, "v2")
    assert world.controller.get(d).step == 3
    # A new process: a new controller and empty metrics, the same stored state.
    world.store = MetricsStore(world.clock)
    world.controller = DeploymentController(world.repo, world.clock, world.store, new_id=lambda: "unused")
    assert world.tick(d) == []  # ticking again right away changes nothing
    assert world.split() == {"v1": 75.0, "v2": 25.0}
    while world.phase(d) == PROG:
        world.healthy_step(d, "v2")
    steps = [e.step for e in world.controller.events(d) if e.kind.value == "STEP_STARTED"]
    assert steps == [1, 2, 3, 4, 5]  # none repeated, none skipped
    assert [e.seq for e in world.controller.events(d)] == list(range(1, 8))


class _CrashingRepository(InMemoryDeploymentRepository):
    """Dies inside the next transaction that appends an event: after its traffic change, before commit."""

    armed = False

    @contextlib.contextmanager
    def transaction(self) -> Iterator:  # type: ignore[override]
        with super().transaction() as tx:
            if self.armed:
                self.armed = False

                def crash(*args: object, **kwargs: object) -> None:
                    raise RuntimeError("power cut")

                tx.append_event = crash  # type: ignore[method-assign]
            yield tx


def test_a_crash_mid_step_leaves_nothing_half_done() -> None:
    repo = _CrashingRepository()
    repo.add_model("fraud", ["v1", "v2"], live="v1")
    world = World(repo)
    d = world.deploy("v2", CANARY)
    world.tick(d)
    world.clock.advance(1)
    world.report("v2", 40)
    world.clock.advance(9)
    repo.armed = True
    with pytest.raises(RuntimeError, match="power cut"):
        world.controller.advance(d)
    # The traffic change of step 2 was written in the same transaction: it is gone too.
    assert world.split() == {"v1": 95.0, "v2": 5.0}
    assert world.controller.get(d).step == 1
    assert history(world.tick(d)) == [("STEP_STARTED", PROG, 2, 10.0)]
    assert [e.step for e in world.controller.events(d)] == [0, 1, 2]


# --- reads and the loop -------------------------------------------------------------------------------------

def test_list_is_newest_first_with_filters_and_pages(world: World) -> None:
    world.repo.add_model("churn", ["a", "b"])  # type: ignore[attr-defined]
    first = world.deploy("v2", CANARY)
    world.controller.abort(first)
    world.clock.advance(1)
    second = world.deploy("a", CANARY, model="churn")
    world.clock.advance(1)
    third = world.deploy("v3", CANARY)
    assert [d.id for d in world.controller.list()] == [third, second, first]
    assert [d.id for d in world.controller.list(model="fraud")] == [third, first]
    assert [d.id for d in world.controller.list(phases={Phase.ABORTED})] == [first]
    page = world.controller.list(limit=2)
    assert [d.id for d in world.controller.list(after=page[-1].id, limit=2)] == [first]
    assert sorted(world.controller.active_ids()) == sorted([second, third])


def test_events_replay_from_a_sequence_number(world: World) -> None:
    d = world.deploy("v2", CANARY)
    world.tick(d)
    world.healthy_step(d, "v2")
    assert [e.seq for e in world.controller.events(d, after_seq=1)] == [2, 3]
    assert world.controller.events(d, after_seq=3) == []
    with pytest.raises(NotFoundError, match="deployment 'nope' not found"):
        world.controller.events("nope")


def test_unknown_ids_are_not_found(world: World) -> None:
    for call in (world.controller.get, world.controller.advance, world.controller.pause,
                 world.controller.evaluations):
        with pytest.raises(NotFoundError):
            call("nope")
    with pytest.raises(NotFoundError):
        world.controller.traffic_split("nope")


def test_metrics_without_an_active_deployment_do_nothing(world: World) -> None:
    assert world.report("v2", 100, errors=100) == []


class _BrokenForChurn(MetricsStore):
    def window(self, model, version, since, until):  # type: ignore[no-untyped-def]
        if model == "churn":
            raise RuntimeError("metrics backend down")
        return super().window(model, version, since, until)


def test_advance_all_goes_on_when_one_deployment_fails() -> None:
    broken = World(store=_BrokenForChurn)
    broken.repo.add_model("fraud", ["v1", "v2"], live="v1")  # type: ignore[attr-defined]
    broken.repo.add_model("churn", ["a", "b"], live="a")  # type: ignore[attr-defined]
    f = broken.deploy("v2", CANARY)
    c = broken.deploy("b", CANARY, model="churn")
    broken.controller.advance_all()  # both start: the first step reads no metrics
    broken.clock.advance(1)
    broken.report("v2", 40)
    broken.clock.advance(9)
    events = broken.controller.advance_all()
    assert [(e.deployment_id, e.step) for e in events] == [(f, 2)]
    assert broken.controller.get(c).step == 1


def test_the_engine_runs_on_any_metrics_source() -> None:
    scripted = ScriptedMetrics({"v2": (100, 0, 80.0)})
    world = World(metrics=scripted)
    world.repo.add_model("fraud", ["v1", "v2"], live="v1")  # type: ignore[attr-defined]
    d = world.deploy("v2", CANARY)
    world.tick(d)
    assert history(world.tick(d, 10)) == [("STEP_STARTED", PROG, 2, 10.0)]
    scripted.windows["v2"] = (100, 30, 80.0)
    assert history(world.controller.on_metrics("fraud", "v2")) == [
        ("ROLLBACK_STARTED", "ROLLING_BACK", 2, 0.0), ("ROLLED_BACK", "ROLLED_BACK", 2, 0.0)]


def test_event_times_follow_the_clock(world: World) -> None:
    d = world.deploy("v2", CANARY)
    world.tick(d, 3)
    times = [e.time for e in world.controller.events(d)]
    assert times[1] - times[0] == dt.timedelta(seconds=3)
