"""The experiment service on a real database (a SQLite file and a scratch PostgreSQL): start, the split,
exclusivity with deployments both ways, the ingest hook inside the journal's transaction, stop, promotion,
and what survives a restart.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from typing import Any, Iterator

import pytest

from modelctl_server.clock import FakeClock
from modelctl_server.config import ExperimentSettings
from modelctl_server.deployments import DeploymentController, InMemoryDeploymentRepository, Phase, Strategy
from modelctl_server.errors import FailedPreconditionError, NotFoundError, ValidationError
from modelctl_server.experiments import ExperimentService, ExperimentState, Metric, StartRequest
from modelctl_server.store.db import Database
from modelctl_server.store.deployments import SqlDeploymentRepository
from modelctl_server.store.experiments import SqlExperimentRepository
from modelctl_server.store.metric_journal import MetricJournal
from modelctl_server.telemetry import MetricsStore
from modelctl_server.telemetry.sample import TelemetrySample

from deploy_support import START, seed_model


class CountingRepo:
    """Counts the transactions the service opens, to prove the no-experiment ingest path opens none."""

    def __init__(self, inner: SqlExperimentRepository) -> None:
        self.inner = inner
        self.opened = 0

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        self.opened += 1
        with self.inner.transaction() as tx:
            yield tx

    @contextlib.contextmanager
    def read(self) -> Iterator[Any]:
        self.opened += 1
        with self.inner.read() as tx:
            yield tx

    def writer(self, increments):  # type: ignore[no-untyped-def]
        return self.inner.writer(increments)


class Lab:
    """A service and a deployment controller sharing one database, on a fake clock."""

    def __init__(self, url: str, clock: FakeClock | None = None, *, seed: bool = True) -> None:
        self.clock = clock or FakeClock(START + dt.timedelta(hours=1))
        self.db = Database(url)
        self.db.migrate()
        if seed:
            seed_model(self.db, "shop", ["1", "2", "3"], live="1", archived=["0"])
            seed_model(self.db, "other", ["a", "b"], live="a")
        self.deploy_repo = SqlDeploymentRepository(self.db)
        deployment_ids = (f"d{n}" for n in itertools.count(1))
        self.deployments = DeploymentController(self.deploy_repo, self.clock, MetricsStore(self.clock),
                                                new_id=lambda: next(deployment_ids))
        self.repo = CountingRepo(SqlExperimentRepository(self.db))
        experiment_ids = (f"e{n}" for n in itertools.count(1))
        self.service = ExperimentService(self.repo, self.clock, ExperimentSettings(), self.deployments,
                                         new_id=lambda: next(experiment_ids))
        self.service.load()
        self.journal = MetricJournal(self.db)
        self.store = MetricsStore(self.clock)

    def start(self, treatment: str = "2", **kw: Any) -> str:
        request = StartRequest(model=kw.pop("model", "shop"), control_version=kw.pop("control", "1"),
                               treatment_version=treatment, **kw)
        return self.service.start(request, created_by="alice").experiment.id

    def feed(self, *samples: TelemetrySample) -> None:
        """What ReportMetrics does: journal the live reports, with the experiment sums, in one transaction."""
        reports = [self.store.prepare(s.model, s.version, requests=s.requests, errors=s.errors,
                                      latency_ms=s.latency_ms, at=s.at) for s in samples if not s.reference]
        self.journal.append(reports, also=self.service.journal_hook(samples))

    def sample(self, version: str, model: str = "shop", **kw: Any) -> TelemetrySample:
        return TelemetrySample(model=model, version=version, at=kw.pop("at", self.clock.now()), **kw)

    def split(self, model: str = "shop") -> dict[str, float]:
        return self.deployments.traffic_split(model)


@pytest.fixture
def lab(database_url: str) -> Iterator[Lab]:
    made = Lab(database_url)
    yield made
    made.db.dispose()


def _failed(call: Any) -> str:
    with pytest.raises(FailedPreconditionError) as err:
        call()
    return err.value.message


def test_start_sets_the_split_and_stop_gives_everything_back_to_the_control(lab: Lab) -> None:
    eid = lab.start(treatment_percent=20.0)
    assert lab.split() == {"1": 80.0, "2": 20.0}
    view = lab.service.get(eid)
    e = view.experiment
    assert (e.state, e.metric, e.min_effect, e.alpha, e.power, e.created_by) == (
        ExperimentState.RUNNING, Metric.CONVERSION, 0.02, 0.05, 0.8, "alice")
    assert (view.result.control.samples, view.result.p_value, view.result.winner) == (0, 1.0, None)
    stopped = lab.service.stop(eid, reason="enough", by="bob")
    assert stopped.deployment is None
    assert (stopped.view.experiment.state, stopped.view.experiment.reason) == (
        ExperimentState.STOPPED, "stopped by bob: enough")
    assert stopped.view.experiment.stopped_at == lab.clock.now()
    assert lab.split() == {"1": 100.0}
    assert _failed(lambda: lab.service.stop(eid)) == (
        "experiment e1 is STOPPED and cannot become STOPPED (that is final)")
    assert _failed(lambda: lab.service.stop(eid, promote_winner=True)) == (
        "experiment e1 is STOPPED and cannot become PROMOTED (that is final)")


def test_an_experiment_and_a_deployment_exclude_each_other_both_ways(lab: Lab) -> None:
    eid = lab.start()
    assert _failed(lambda: lab.deployments.create("shop", "3", Strategy.CANARY)) == (
        "shop has a running experiment e1; stop it first (modelctl experiments stop e1, or --promote-winner "
        "to deploy its winner)")
    assert _failed(lambda: lab.deployments.rollback("shop", "3")) == (
        "shop has a running experiment e1; stop it first (modelctl experiments stop e1, or --promote-winner "
        "to deploy its winner)")
    assert _failed(lambda: lab.start("3")) == "shop already has a running experiment e1; stop it first"
    lab.service.stop(eid)
    lab.deployments.create("shop", "3", Strategy.CANARY)
    assert _failed(lambda: lab.start("2")) == (
        "shop has an active deployment d1 (3, PENDING); an experiment can start once it finishes or is aborted")
    # another model is not concerned
    lab.start("b", model="other", control="a")


def test_start_refuses_what_cannot_be_compared(lab: Lab) -> None:
    assert _failed(lambda: lab.start("3", control="2")) == "the control must be shop's live version 1, not 2"
    assert _failed(lambda: lab.start("0")) == "shop version 0 is archived and cannot be in an experiment"
    with pytest.raises(NotFoundError, match="model shop has no version '9'"):
        lab.start("9")
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        lab.start(model="nope")
    with pytest.raises(ValidationError) as err:
        lab.start("1", treatment_percent=100.0, min_effect=0.0)
    assert [v.field for v in err.value.violations] == ["treatment_version", "treatment_percent", "min_effect"]
    assert lab.split() == {"1": 100.0}  # nothing refused changed the split


def test_the_hook_counts_live_samples_of_the_arms_from_the_start_only(lab: Lab) -> None:
    before = lab.clock.now()
    lab.clock.advance(10)
    eid = lab.start(metric=Metric.VALUE)
    lab.feed(lab.sample("1", requests=10, errors=1, successes=2, trials=10, values=[1.0, 3.0], latency_ms=[5.0]),
             lab.sample("2", requests=4, values=[2.0, 2.0, 5.0]),
             lab.sample("2", values=[100.0], reference=True),          # reference data: not traffic
             lab.sample("3", values=[100.0]),                          # not an arm
             lab.sample("1", values=[100.0], at=before),               # served before the experiment
             lab.sample("a", model="other", values=[100.0]))           # another model
    lab.feed(lab.sample("1", values=[2.0]))
    with lab.repo.inner.read() as tx:
        control, treatment = tx.arms([eid])[eid]
    assert (control.requests, control.errors, control.successes, control.trials) == (10, 1, 2, 10)
    assert (control.value_count, control.value_sum, control.value_sum_squares) == (3, 6.0, 14.0)
    assert (control.latency_count, control.latency_sum, control.latency_sum_squares) == (1, 5.0, 25.0)
    assert (treatment.requests, treatment.value_count, treatment.value_sum, treatment.value_sum_squares) == (
        4, 3, 9.0, 33.0)
    result = lab.service.get(eid).result
    assert (result.control.samples, result.control.value, result.treatment.value) == (3, 2.0, 3.0)


def test_with_no_running_experiment_the_hook_reads_nothing(lab: Lab) -> None:
    opened = lab.repo.opened
    assert lab.service.journal_hook([lab.sample("1", successes=1, trials=1)]) is None
    eid = lab.start()
    opened = lab.repo.opened
    assert lab.service.journal_hook([lab.sample("a", model="other", successes=1, trials=1)]) is None
    hook = lab.service.journal_hook([lab.sample("2", successes=1, trials=1)])
    assert hook is not None and lab.repo.opened == opened  # decided from memory
    lab.service.stop(eid)
    assert lab.service.journal_hook([lab.sample("2", successes=1, trials=1)]) is None
    # a hook built just before the stop adds nothing to the stopped experiment
    lab.journal.append([], also=hook)
    with lab.repo.inner.read() as tx:
        assert tx.arms([eid])[eid][1].trials == 0


def test_a_significant_treatment_is_promoted_with_a_canary(lab: Lab) -> None:
    eid = lab.start()
    lab.feed(lab.sample("1", successes=500, trials=5000), lab.sample("2", successes=750, trials=5000))
    outcome = lab.service.stop(eid, promote_winner=True, by="bob")
    e = outcome.view.experiment
    assert (e.state, e.deployment_id, outcome.view.result.winner) == (ExperimentState.PROMOTED, "d1", "2")
    assert e.reason == "treatment 2 won; promoted by bob with a canary deployment (deployment d1)"
    assert outcome.deployment is not None and [ev.kind.value for ev in outcome.deployment.events] == ["CREATED"]
    dep = lab.deployments.get("d1")
    assert (dep.model, dep.version, dep.previous_version, dep.strategy, dep.phase) == (
        "shop", "2", "1", Strategy.CANARY, Phase.PENDING)
    assert lab.split() == {"1": 100.0}
    lab.deployments.advance("d1")
    assert lab.split() == {"1": 95.0, "2": 5.0}  # the canary's first step
    assert lab.service.get(eid).experiment.deployment_id == "d1"


def test_promotion_needs_a_significant_winner_and_a_winning_control_just_stops(lab: Lab) -> None:
    eid = lab.start()
    lab.feed(lab.sample("1", successes=500, trials=5000), lab.sample("2", successes=505, trials=5000))
    message = _failed(lambda: lab.service.stop(eid, promote_winner=True))
    assert message.startswith("experiment e1 has no significant winner to promote: always-valid p = 1 (needs < 0.05); "
                              "not significant yet: conversion 10.10% (2) vs 10.00% (1)")
    assert message.endswith("Stop it without --promote-winner, or wait for more samples")
    assert lab.service.get(eid).experiment.state is ExperimentState.RUNNING and lab.split() == {"1": 50.0, "2": 50.0}
    lab.feed(lab.sample("2", successes=0, trials=5000))  # the treatment now converts at 5 %
    outcome = lab.service.stop(eid, promote_winner=True, by="bob")
    assert outcome.deployment is None and outcome.view.experiment.state is ExperimentState.STOPPED
    assert outcome.view.experiment.reason.startswith(
        "control 1 won (control 1 wins: conversion 5.05% (2) vs 10.00% (1)")
    assert outcome.view.experiment.reason.endswith("; stopped by bob, traffic stays on it")
    assert lab.split() == {"1": 100.0} and lab.deployments.list() == []


def test_the_sequential_p_value_is_kept_low_and_everything_survives_a_restart(database_url: str) -> None:
    first = Lab(database_url)
    eid = first.start()
    first.feed(first.sample("1", successes=500, trials=5000), first.sample("2", successes=750, trials=5000))
    low = first.service.get(eid).result.p_value
    assert low < 1e-9
    # the treatment's advantage washes out; the always-valid p-value does not rise again
    first.feed(first.sample("1", successes=5000, trials=50000), first.sample("2", successes=4750, trials=50000))
    assert first.service.get(eid).result.p_value == low
    first.db.dispose()

    again = Lab(database_url, first.clock, seed=False)  # a restarted controller on the same database
    view = again.service.get(eid)
    assert (view.experiment.sequential_p_value, view.result.control.samples, view.result.treatment.samples) == (
        low, 55000, 55000)
    assert again.service.journal_hook([again.sample("2", successes=1, trials=1)]) is not None  # loaded at start
    again.db.dispose()


def test_list_is_newest_first_paged_and_filtered(lab: Lab) -> None:
    first = lab.start()
    lab.service.stop(first)
    lab.clock.advance(1)
    second = lab.start("3")
    lab.clock.advance(1)
    third = lab.start("b", model="other", control="a")
    assert [v.experiment.id for v in lab.service.list()] == [third, second, first]
    page = lab.service.list(limit=2)
    assert [v.experiment.id for v in page] == [third, second]
    assert [v.experiment.id for v in lab.service.list(after=second, limit=2)] == [first]
    assert [v.experiment.id for v in lab.service.list(model="shop")] == [second, first]
    assert [v.experiment.id for v in lab.service.list(states=[ExperimentState.STOPPED])] == [first]
    assert lab.service.list(after="gone") == []
    assert lab.service.running_models == {"shop", "other"}


def test_the_in_memory_repository_also_refuses_a_deployment_during_an_experiment() -> None:
    repo = InMemoryDeploymentRepository()
    repo.add_model("shop", ["1", "2"], live="1")
    controller = DeploymentController(repo, FakeClock(START), MetricsStore(FakeClock(START)))
    repo.set_running_experiment("shop", "e7")
    assert _failed(lambda: controller.create("shop", "2", Strategy.CANARY)).startswith(
        "shop has a running experiment e7; stop it first")
    repo.set_running_experiment("shop", None)
    assert controller.create("shop", "2", Strategy.CANARY).deployment.version == "2"
