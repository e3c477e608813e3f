"""The deployment repository contract, run alike on memory, a SQLite file and a scratch PostgreSQL database;
the 0002 migration; and whole rollouts on the SQL store, across a controller restart.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from pathlib import Path
from typing import Callable, Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from modelctl_server.deployments import (
    ActiveDeploymentConflict,
    Deployment,
    DeploymentParams,
    DeploymentRepository,
    EventKind,
    Gate,
    GateEvaluation,
    InMemoryDeploymentRepository,
    Instance,
    Phase,
    Strategy,
    Verdict,
)
from modelctl_server.errors import FailedPreconditionError
from modelctl_server.store.db import Database, alembic_config
from modelctl_server.store.deployment_tables import DeploymentRow
from modelctl_server.store.deployments import SqlDeploymentRepository, protected_versions, traffic_lookup
from modelctl_server.store.tables import Base, ModelRow

from deploy_support import FAST, START, World, history, seed_model

MY_TABLES = {"deployments", "deployment_events", "gate_evaluations", "traffic_weights", "serving_instances"}


@dataclasses.dataclass
class Backend:
    repo: DeploymentRepository
    seed: Callable[..., None]
    db: Database | None = None


def _sql_backend(url: str) -> Backend:
    db = Database(url)
    db.migrate()
    return Backend(SqlDeploymentRepository(db), lambda *a, **k: seed_model(db, *a, **k), db)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        repo = InMemoryDeploymentRepository()
        yield Backend(repo, repo.add_model)
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    b = _sql_backend(url)
    yield b
    assert b.db is not None
    b.db.dispose()


@pytest.fixture
def sql_url(database_url: str) -> str:
    """conftest's database_url: a SQLite file, then a scratch PostgreSQL database."""
    return database_url


def deployment(id: str, model: str = "fraud", version: str = "v2", phase: Phase = Phase.PENDING,
               minutes: int = 0) -> Deployment:
    at = START + dt.timedelta(minutes=minutes)
    return Deployment(id=id, model=model, version=version, previous_version="v1", strategy=Strategy.CANARY,
                      phase=phase, step=0, traffic_percent=0.0, failed_checks=0, reason="",
                      params=DeploymentParams(steps=(20, 100), critical_gates=frozenset({Gate.LATENCY_P95})),
                      created_at=at, updated_at=at, step_started_at=None, finished_at=None,
                      created_by="alice")


# --- the repository contract --------------------------------------------------------------------------------

def test_deployments_round_trip(backend: Backend) -> None:
    backend.seed("fraud", ["v1", "v2"], live="v1")
    d = deployment("d1")
    with backend.repo.transaction() as tx:
        tx.insert_deployment(d)
    later = START + dt.timedelta(seconds=90)
    moved = dataclasses.replace(d, phase=Phase.PROGRESSING, step=1, traffic_percent=12.5, failed_checks=1,
                                reason="why", updated_at=later, step_started_at=later)
    with backend.repo.transaction() as tx:
        assert tx.get_deployment("d1", lock=True) == d
        tx.update_deployment(moved)
    with backend.repo.transaction() as tx:
        assert tx.get_deployment("d1") == moved
        assert tx.active_deployment("fraud") == moved
        assert tx.active_deployment_ids() == ["d1"]
        assert tx.get_deployment("nope") is None


def test_a_second_active_deployment_is_refused_by_the_store(backend: Backend) -> None:
    backend.seed("fraud", ["v1", "v2", "v3"], live="v1")
    with backend.repo.transaction() as tx:
        tx.insert_deployment(deployment("d1"))
    with pytest.raises(ActiveDeploymentConflict):
        with backend.repo.transaction() as tx:
            tx.insert_deployment(deployment("d2", version="v3"))
    with backend.repo.transaction() as tx:
        assert tx.get_deployment("d2") is None
        done = dataclasses.replace(tx.get_deployment("d1"), phase=Phase.ABORTED)  # type: ignore[arg-type]
        tx.update_deployment(done)
    with backend.repo.transaction() as tx:
        tx.insert_deployment(deployment("d2", version="v3"))
        assert tx.active_deployment("fraud").id == "d2"  # type: ignore[union-attr]


def test_events_are_numbered_per_deployment(backend: Backend) -> None:
    backend.seed("fraud", ["v1", "v2"], live="v1")
    backend.seed("churn", ["a"])
    with backend.repo.transaction() as tx:
        tx.insert_deployment(deployment("d1"))
        tx.insert_deployment(deployment("d2", model="churn", version="a"))
        for n in range(3):
            tx.append_event("d1", EventKind.STEP_STARTED, Phase.PROGRESSING, n, 5.0 * n, f"m{n}", START)
        first = tx.append_event("d2", EventKind.CREATED, Phase.PENDING, 0, 0.0, "hello", START)
    assert (first.seq, first.model, first.message) == (1, "churn", "hello")
    with backend.repo.transaction() as tx:
        events = tx.list_events("d1")
        assert [(e.seq, e.step, e.traffic_percent, e.message) for e in events] == [
            (1, 0, 0.0, "m0"), (2, 1, 5.0, "m1"), (3, 2, 10.0, "m2")]
        assert events[0].time == START and events[0].model == "fraud"
        assert [e.seq for e in tx.list_events("d1", after_seq=1, limit=1)] == [2]
        assert tx.list_events("d1", after_seq=3) == []


def test_evaluations_keep_the_latest(backend: Backend) -> None:
    backend.seed("fraud", ["v1", "v2"], live="v1")
    ev = GateEvaluation("d1", 1, Gate.ERROR_RATE, None, 0.05, START, START, 0.0, Verdict.WAIT, True,
                        "0 of 50")
    with backend.repo.transaction() as tx:
        tx.insert_deployment(deployment("d1"))
        tx.add_evaluations([dataclasses.replace(ev, step=n, value=n / 10) for n in range(5)])
    with backend.repo.transaction() as tx:
        latest = tx.list_evaluations("d1", limit=2)
    assert [(e.step, e.value) for e in latest] == [(3, 0.3), (4, 0.4)]
    assert dataclasses.replace(latest[0], step=1, value=None) == ev


def test_traffic_and_live_versions(backend: Backend) -> None:
    backend.seed("fraud", ["v1", "v2"], live="v1")
    with backend.repo.transaction() as tx:
        assert tx.get_traffic("fraud") == {"v1": 100.0}
        tx.set_traffic("fraud", {"v1": 87.5, "v2": 12.5})
        tx.set_live_versions("fraud", "v2", "v1")
    with backend.repo.transaction() as tx:
        assert tx.get_traffic("fraud") == {"v1": 87.5, "v2": 12.5}
        assert tx.get_model("fraud", lock=True) == type(tx.get_model("fraud"))("fraud", "v2", "v1")
        tx.set_traffic("fraud", {})
    with backend.repo.transaction() as tx:
        assert tx.get_traffic("fraud") == {}
        assert tx.get_version("fraud", "v2").archived is False  # type: ignore[union-attr]
        assert tx.get_version("fraud", "v9") is None
        assert tx.get_model("nope") is None


def test_instances(backend: Backend) -> None:
    backend.seed("fraud", ["v1", "v2"], live="v1")
    t = [START + dt.timedelta(seconds=s) for s in range(4)]
    with backend.repo.transaction() as tx:
        for name in ("i2", "i1"):
            tx.save_instance(Instance("fraud", name, f"{name}:80", "v1", None, False, t[0], t[0], False))
        assert tx.get_instance("fraud", "i9") is None
        assert tx.record_heartbeat("fraud", "i9", "v1", True, t[1]) is None
    with backend.repo.transaction() as tx:
        beat = tx.record_heartbeat("fraud", "i1", "v1", True, t[2])
        assert beat == Instance("fraud", "i1", "i1:80", "v1", "v1", True, t[0], t[2], False)
        tx.assign_instances("fraud", ["i1", "i2"], "v2")
        # i1 spoke at t2: only i2, silent since t0, is lost.
        assert tx.mark_lost("fraud", ["i1", "i2"], heard_before=t[1]) == ["i2"]
        assert tx.mark_lost("fraud", ["i2"], heard_before=t[3]) == []  # already lost
    with backend.repo.transaction() as tx:
        listed = tx.list_instances("fraud")
        assert [(i.instance_id, i.assigned_version, i.lost) for i in listed] == [
            ("i1", "v2", False), ("i2", "v2", True)]
        tx.save_instance(dataclasses.replace(listed[1], address="new:80", lost=False))
        assert tx.get_instance("fraud", "i2").address == "new:80"  # type: ignore[union-attr]


def test_a_failed_transaction_leaves_no_trace(backend: Backend) -> None:
    backend.seed("fraud", ["v1", "v2"], live="v1")
    with pytest.raises(RuntimeError):
        with backend.repo.transaction() as tx:
            tx.insert_deployment(deployment("d1"))
            tx.set_traffic("fraud", {"v2": 100.0})
            tx.append_event("d1", EventKind.CREATED, Phase.PENDING, 0, 0.0, "x", START)
            raise RuntimeError("crash")
    with backend.repo.transaction() as tx:
        assert tx.get_deployment("d1") is None
        assert tx.get_traffic("fraud") == {"v1": 100.0}


def test_listing_pages_newest_first(backend: Backend) -> None:
    backend.seed("fraud", ["v1", "v2"], live="v1")
    backend.seed("churn", ["a"])
    with backend.repo.transaction() as tx:
        tx.insert_deployment(deployment("a1", phase=Phase.ABORTED, minutes=0))
        tx.insert_deployment(deployment("b2", model="churn", version="a", minutes=1))
        tx.insert_deployment(deployment("a3", phase=Phase.FAILED, minutes=2))
        tx.insert_deployment(deployment("a4", phase=Phase.FAILED, minutes=2))
    with backend.repo.transaction() as tx:
        assert [d.id for d in tx.list_deployments()] == ["a4", "a3", "b2", "a1"]
        assert [d.id for d in tx.list_deployments(after="a3", limit=1)] == ["b2"]
        picked = tx.list_deployments(model="fraud", phases={Phase.ABORTED, Phase.PENDING})
        assert [d.id for d in picked] == ["a1"]
        assert tx.list_deployments(after="unknown") == []


# --- migrations and registry hooks (SQL only) ---------------------------------------------------------------

def test_migration_matches_the_tables_and_downgrades(sql_url: str) -> None:
    db = Database(sql_url)
    try:
        db.migrate()
        with db.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        mine = [d for d in diffs if MY_TABLES & set(str(d).replace("'", " ").replace(",", " ").split())]
        assert mine == []
        with db.engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
        assert not MY_TABLES & set(sa.inspect(db.engine).get_table_names())
        db.migrate()
        assert MY_TABLES <= set(sa.inspect(db.engine).get_table_names())
    finally:
        db.dispose()


def test_registry_hooks_see_traffic_and_protect_deployment_versions(sql_url: str) -> None:
    b = _sql_backend(sql_url)
    try:
        b.seed("fraud", ["v1", "v2", "v3"], live="v1")
        world = World(b.repo)
        d = world.deploy("v3", Strategy.CANARY)
        world.tick(d)
        assert b.db is not None
        with b.db.session() as s:
            model = s.scalars(sa.select(ModelRow).where(ModelRow.name == "fraud")).one()
            assert traffic_lookup(s, [model]) == {model.id: {"v1": 95.0, "v3": 5.0}}
            assert protected_versions(s, model) == {"v1", "v3"}
        world.controller.abort(d)
        with b.db.session() as s:
            assert protected_versions(s, s.get(ModelRow, model.id)) == set()  # type: ignore[arg-type]
    finally:
        assert b.db is not None
        b.db.dispose()


# --- whole rollouts on the SQL store ------------------------------------------------------------------------

def test_canary_survives_a_restart_on_the_sql_store(sql_url: str) -> None:
    b = _sql_backend(sql_url)
    b.seed("fraud", ["v1", "v2"], live="v1")
    world = World(b.repo)
    d = world.deploy("v2", Strategy.CANARY)
    world.tick(d)
    world.healthy_step(d, "v2")
    assert b.db is not None
    b.db.dispose()
    # A new process: a new database handle and controller, the same clock time and rows.
    restarted = World(_sql_backend(sql_url).repo, clock=world.clock)
    assert restarted.tick(d) == []
    assert restarted.split() == {"v1": 90.0, "v2": 10.0}
    while restarted.phase(d) == "PROGRESSING":
        restarted.healthy_step(d, "v2")
    percents = [5.0, 10.0, 25.0, 50.0, 100.0]
    assert restarted.history(d) == [("CREATED", "PENDING", 0, 0.0)] + [
        ("STEP_STARTED", "PROGRESSING", n, p) for n, p in enumerate(percents, 1)] + [
        ("SUCCEEDED", "SUCCEEDED", 5, 100.0)]
    assert restarted.split() == {"v2": 100.0}
    assert [e.verdict for e in restarted.controller.evaluations(d)] == [Verdict.PASS] * 10


def test_fast_fail_and_rolling_on_the_sql_store(sql_url: str) -> None:
    b = _sql_backend(sql_url)
    b.seed("fraud", ["v1", "v2", "v3"], live="v1")
    world = World(b.repo)
    d = world.deploy("v2", Strategy.CANARY)
    world.tick(d)
    world.clock.advance(1)
    assert history(world.report("v2", 40, errors=20)) == [
        ("ROLLBACK_STARTED", "ROLLING_BACK", 1, 0.0), ("ROLLED_BACK", "ROLLED_BACK", 1, 0.0)]
    assert world.split() == {"v1": 100.0}
    for name in ("i1", "i2"):
        world.instances.register("fraud", name, f"{name}:80")
    world.heartbeat_all(["i1", "i2"])
    r = world.deploy("v3", Strategy.ROLLING)
    world.tick(r)
    for _ in range(2):
        world.heartbeat_all(["i1", "i2"])
        world.tick(r, 10)
    assert world.history(r) == [
        ("CREATED", "PENDING", 0, 0.0), ("STEP_STARTED", "PROGRESSING", 1, 50.0),
        ("STEP_STARTED", "PROGRESSING", 2, 100.0), ("SUCCEEDED", "SUCCEEDED", 2, 100.0)]
    assert world.instances.heartbeat("fraud", "i1", "v3", True) == "v3"
    assert b.db is not None
    b.db.dispose()


def test_concurrent_creates_for_one_model_let_exactly_one_win(sql_url: str) -> None:
    b = _sql_backend(sql_url)
    b.seed("fraud", ["v1", "v2", "v3", "v4"], live="v1")
    worlds = [World(b.repo) for _ in range(3)]
    for n, w in enumerate(worlds):
        w.controller._new_id = lambda n=n: f"race{n}"  # type: ignore[method-assign]
    barrier = threading.Barrier(3)
    outcomes: list[str] = []

    def create(world: World, version: str) -> None:
        barrier.wait()
        try:
            outcomes.append(world.controller.create("fraud", version, Strategy.CANARY, FAST).deployment.id)
        except FailedPreconditionError as exc:
            outcomes.append(exc.message)

    threads = [threading.Thread(target=create, args=(w, v)) for w, v in zip(worlds, ["v2", "v3", "v4"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if o.startswith("race")]
    assert len(winners) == 1, outcomes
    assert all(f"active deployment {winners[0]} " in o for o in outcomes if o not in winners)
    assert b.db is not None
    with b.db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(DeploymentRow)) == 1
    b.db.dispose()


def test_concurrent_ticks_take_one_step(sql_url: str) -> None:
    b = _sql_backend(sql_url)
    b.seed("fraud", ["v1", "v2"], live="v1")
    world = World(b.repo)
    d = world.deploy("v2", Strategy.CANARY)
    world.tick(d)
    world.clock.advance(1)
    world.report("v2", 40)
    world.clock.advance(9)
    barrier = threading.Barrier(4)
    produced: list[int] = []

    def tick() -> None:
        barrier.wait()
        produced.append(len(world.controller.advance(d)))

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(produced) == [0, 0, 0, 1]
    assert world.split() == {"v1": 90.0, "v2": 10.0}
    assert b.db is not None
    b.db.dispose()
