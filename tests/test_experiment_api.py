"""The experiment RPCs over real gRPC, on real servers (port 0) with a fake clock: the split they set,
exclusivity with deployments, outcomes fed through ReportMetrics, promotion, metrics, restarts on
SQLite and PostgreSQL, and every bad input.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Callable

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from modelctl.v1 import deployment_pb2 as dpb
from modelctl.v1 import experiment_pb2 as epb
from modelctl.v1 import registry_pb2 as rpb
from modelctl_server.clock import FakeClock
from modelctl_server.experiments import stats

from conftest import make_settings
from grpc_helpers import bad_fields, stub

RUNNING, STOPPED, PROMOTED = epb.EXPERIMENT_STATE_RUNNING, epb.EXPERIMENT_STATE_STOPPED, epb.EXPERIMENT_STATE_PROMOTED


class Shop:
    """A controller with model `shop` (versions 1-3, 1 live) and the calls the tests make."""

    def __init__(self, srv: Any, clock: FakeClock, *, setup: bool = True) -> None:
        self.srv = srv
        self.clock = clock
        self.api = stub(srv.address, srv.admin_token)
        if setup:
            for version in ("1", "2", "3"):
                self.api.RegisterModel(rpb.RegisterModelRequest(name="shop", version=version,
                                                                artifact_uri=f"s3://m/{version}"))
            self.api.DeployModel(dpb.DeployModelRequest(model="shop", version="1",
                                                        strategy=dpb.DEPLOYMENT_STRATEGY_IMMEDIATE,
                                                        params=dpb.DeploymentParams(bake_time=Duration(seconds=0))))
            self.tick()
            self.tick()
            assert self.split() == {"1": 100.0}

    def tick(self) -> None:
        self.srv.call(self.srv.app.reconciler.tick())

    def start(self, treatment: str = "2", control: str = "1", **kw: Any) -> epb.Experiment:
        return self.api.StartExperiment(epb.StartExperimentRequest(model="shop", control_version=control,
                                                                   treatment_version=treatment, **kw))

    def get(self, eid: str) -> epb.Experiment:
        return self.api.GetExperiment(epb.GetExperimentRequest(id=eid))

    def stop(self, eid: str, **kw: Any) -> epb.Experiment:
        return self.api.StopExperiment(epb.StopExperimentRequest(id=eid, **kw))

    def split(self) -> dict[str, float]:
        return dict(self.api.GetTrafficSplit(dpb.GetTrafficSplitRequest(model="shop")).weights)

    def convert(self, version: str, successes: int, trials: int, **kw: Any) -> None:
        self.api.ReportMetrics(dpb.ReportMetricsRequest(samples=[dpb.MetricsSample(
            model="shop", version=version, requests=trials,
            outcome=dpb.Outcome(successes=successes, trials=trials), **kw)]))

    def gauge(self, name: str, **labels: str) -> float | None:
        return self.srv.app.recorder.registry.get_sample_value(name, labels)


def _shop(server_factory: Callable[..., Any], **env: str) -> Shop:
    clock = FakeClock(dt.datetime.now(dt.timezone.utc).replace(microsecond=0))
    return Shop(server_factory(clock=clock, **env), clock)


@pytest.fixture
def shop(server_factory: Callable[..., Any]) -> Shop:
    return _shop(server_factory)


def _error(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


def test_start_sets_the_split_watchers_see_it_and_stop_restores_it(shop: Shop) -> None:
    watch = shop.api.WatchTrafficSplit(dpb.WatchTrafficSplitRequest(model="shop"), timeout=10)
    assert dict(next(watch).weights) == {"1": 100.0}
    started = shop.start(treatment_percent=10, metric=epb.EXPERIMENT_METRIC_VALUE, min_effect=0.05)
    assert (started.model, started.control_version, started.treatment_version, started.treatment_percent,
            started.metric, started.state, started.min_effect, started.alpha, started.power) == (
        "shop", "1", "2", 10.0, epb.EXPERIMENT_METRIC_VALUE, RUNNING, 0.05, 0.05, 0.8)
    assert started.created_by == "bootstrap-admin" and started.created_at.seconds == int(shop.clock.now().timestamp())
    assert started.result.test == "Welch's t-test" and started.result.p_value == 1.0
    assert dict(next(watch).weights) == {"1": 90.0, "2": 10.0}
    assert shop.split() == {"1": 90.0, "2": 10.0}
    model = shop.api.GetModel(rpb.GetModelRequest(name="shop"))
    assert dict(model.traffic) == {"1": 90.0, "2": 10.0} and model.live_version == "1"
    stopped = shop.stop(started.id, reason="done")
    assert (stopped.state, stopped.reason, stopped.stopped_by) == (
        STOPPED, "stopped by bootstrap-admin: done", "bootstrap-admin")
    assert dict(next(watch).weights) == {"1": 100.0}
    watch.cancel()
    err = _error(lambda: shop.stop(started.id))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details() == f"experiment {started.id} is STOPPED and cannot become STOPPED (that is final)"


def test_experiments_and_deployments_exclude_each_other_with_exact_messages(shop: Shop) -> None:
    eid = shop.start().id
    for call in (lambda: shop.api.DeployModel(dpb.DeployModelRequest(model="shop", version="3",
                                                                      strategy=dpb.DEPLOYMENT_STRATEGY_CANARY)),
                 lambda: shop.api.RollbackModel(dpb.RollbackModelRequest(model="shop", to_version="3"))):
        err = _error(call)
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert err.details() == (f"shop has a running experiment {eid}; stop it first (modelctl experiments stop "
                                 f"{eid}, or --promote-winner to deploy its winner)")
    err = _error(lambda: shop.start("3"))
    assert (err.code(), err.details()) == (grpc.StatusCode.FAILED_PRECONDITION,
                                           f"shop already has a running experiment {eid}; stop it first")
    err = _error(lambda: shop.api.ArchiveModelVersion(rpb.ArchiveModelVersionRequest(name="shop", version="2")))
    assert (err.code(), err.details()) == (grpc.StatusCode.FAILED_PRECONDITION,
                                           "shop version 2 is part of a deployment or experiment in progress")
    shop.stop(eid)
    dep = shop.api.DeployModel(dpb.DeployModelRequest(model="shop", version="3",
                                                      strategy=dpb.DEPLOYMENT_STRATEGY_CANARY))
    shop.tick()  # its first step, whether or not the woken reconciler took it already
    err = _error(lambda: shop.start())
    assert (err.code(), err.details()) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        f"shop has an active deployment {dep.id} (3, PROGRESSING); "
        "an experiment can start once it finishes or is aborted")


def test_outcomes_reported_through_report_metrics_decide_and_promote_a_canary(shop: Shop) -> None:
    eid = shop.start().id
    shop.convert("1", 500, 5000)
    shop.convert("2", 750, 5000)
    got = shop.get(eid)
    r = got.result
    assert (r.control.samples, r.treatment.samples, r.control.value, r.treatment.value) == (5000, 5000, 0.1, 0.15)
    assert r.significant and r.winner == "2" and r.p_value < 1e-9 and r.fixed_horizon_p_value < 1e-12
    assert r.lift == pytest.approx(0.5) and r.lift_ci_low < 0.5 < r.lift_ci_high
    assert r.summary.startswith("treatment 2 wins: conversion 15.00% (2) vs 10.00% (1)")
    assert shop.gauge("modelctl_experiment_samples", model="shop", arm="treatment", version="2") == 5000
    assert shop.gauge("modelctl_experiment_value", model="shop", arm="control", version="1") == pytest.approx(0.1)
    assert shop.gauge("modelctl_experiment_p_value", model="shop") == r.p_value
    assert shop.gauge("modelctl_experiment_lift", model="shop") == pytest.approx(0.5)
    assert shop.gauge("modelctl_experiment_significant", model="shop") == 1

    promoted = shop.stop(eid, promote_winner=True)
    assert promoted.state == PROMOTED and promoted.deployment_id and promoted.result.winner == "2"
    assert promoted.reason == f"treatment 2 won; promoted by bootstrap-admin with a canary deployment " \
                              f"(deployment {promoted.deployment_id})"
    dep = shop.api.GetDeployment(dpb.GetDeploymentRequest(id=promoted.deployment_id))
    assert (dep.model, dep.version, dep.previous_version, dep.strategy) == (
        "shop", "2", "1", dpb.DEPLOYMENT_STRATEGY_CANARY)
    shop.tick()
    assert shop.split() == {"1": 95.0, "2": 5.0}  # the canary's first step
    assert shop.gauge("modelctl_experiment_samples", model="shop", arm="treatment", version="2") is None
    assert shop.gauge("modelctl_experiment_p_value", model="shop") is None
    assert shop.get(eid).deployment_id == promoted.deployment_id


def test_promotion_without_a_significant_winner_is_refused_and_changes_nothing(shop: Shop) -> None:
    eid = shop.start().id
    shop.convert("1", 50, 500)
    shop.convert("2", 52, 500)
    err = _error(lambda: shop.stop(eid, promote_winner=True))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details().startswith(f"experiment {eid} has no significant winner to promote: always-valid p = 1 "
                                    "(needs < 0.05)")
    assert shop.get(eid).state == RUNNING and shop.split() == {"1": 50.0, "2": 50.0}


def test_list_pages_newest_first_and_filters(shop: Shop) -> None:
    first = shop.start().id
    shop.stop(first)
    shop.clock.advance(1)
    second = shop.start("3").id
    page = shop.api.ListExperiments(epb.ListExperimentsRequest(page_size=1))
    assert [e.id for e in page.experiments] == [second] and page.next_page_token
    rest = shop.api.ListExperiments(epb.ListExperimentsRequest(page_size=1, page_token=page.next_page_token))
    assert [e.id for e in rest.experiments] == [first] and rest.next_page_token == ""
    running = shop.api.ListExperiments(epb.ListExperimentsRequest(model="shop", states=[RUNNING]))
    assert [e.id for e in running.experiments] == [second]
    assert list(shop.api.ListExperiments(epb.ListExperimentsRequest(model="nothing")).experiments) == []


@pytest.mark.parametrize(("request_", "fields"), [
    (epb.StartExperimentRequest(), ["model", "control_version", "treatment_version"]),
    (epb.StartExperimentRequest(model="Shop!", control_version="1", treatment_version="2"), ["model"]),
    (epb.StartExperimentRequest(model="shop", control_version="1 2", treatment_version="2"), ["control_version"]),
    (epb.StartExperimentRequest(model="shop", control_version="1", treatment_version="1"), ["treatment_version"]),
    (epb.StartExperimentRequest(model="shop", control_version="1", treatment_version="2", treatment_percent=0),
     ["treatment_percent"]),
    (epb.StartExperimentRequest(model="shop", control_version="1", treatment_version="2", treatment_percent=100),
     ["treatment_percent"]),
    (epb.StartExperimentRequest(model="shop", control_version="1", treatment_version="2",
                                treatment_percent=float("nan")), ["treatment_percent"]),
    (epb.StartExperimentRequest(model="shop", control_version="1", treatment_version="2", metric=9), ["metric"]),
    (epb.StartExperimentRequest(model="shop", control_version="1", treatment_version="2", min_effect=0),
     ["min_effect"]),
    (epb.StartExperimentRequest(model="shop", control_version="1", treatment_version="2",
                                min_effect=float("inf")), ["min_effect"]),
    (epb.StartExperimentRequest(model="shop", control_version="1", treatment_version="2", min_effect=-0.1,
                                treatment_percent=-5), ["treatment_percent", "min_effect"]),
])
def test_bad_start_requests_name_each_field(shop: Shop, request_: epb.StartExperimentRequest,
                                            fields: list[str]) -> None:
    err = _error(lambda: shop.api.StartExperiment(request_))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_fields(err) == fields
    assert shop.split() == {"1": 100.0}


def test_bad_ids_tokens_and_filters(shop: Shop) -> None:
    cases: list[tuple[Callable[[], Any], list[str]]] = [
        (lambda: shop.get(""), ["id"]),
        (lambda: shop.get("not-an-id"), ["id"]),
        (lambda: shop.get("x" * 33), ["id"]),
        (lambda: shop.stop(""), ["id"]),
        (lambda: shop.stop("abc", reason="r" * 501), ["reason"]),
        (lambda: shop.api.ListExperiments(epb.ListExperimentsRequest(page_token="garbage")), ["page_token"]),
        (lambda: shop.api.ListExperiments(epb.ListExperimentsRequest(page_size=-1)), ["page_size"]),
        (lambda: shop.api.ListExperiments(epb.ListExperimentsRequest(states=[7])), ["states"]),
        (lambda: shop.api.ListExperiments(epb.ListExperimentsRequest(model="BAD!")), ["model"]),
    ]
    for call, fields in cases:
        err = _error(call)
        assert (err.code(), bad_fields(err)) == (grpc.StatusCode.INVALID_ARGUMENT, fields), err.details()
    for call, text in [(lambda: shop.get("abc123"), "experiment 'abc123' not found"),
                       (lambda: shop.stop("abc123"), "experiment 'abc123' not found"),
                       (lambda: shop.start("9"), "model shop has no version '9'"),
                       (lambda: shop.api.StartExperiment(epb.StartExperimentRequest(
                           model="nope", control_version="1", treatment_version="2")), "model 'nope' not found")]:
        err = _error(call)
        assert (err.code(), err.details()) == (grpc.StatusCode.NOT_FOUND, text)
    err = _error(lambda: shop.start("3", control="2"))
    assert (err.code(), err.details()) == (grpc.StatusCode.FAILED_PRECONDITION,
                                           "the control must be shop's live version 1, not 2")


def _restart_keeps_everything(server_factory: Callable[..., Any], data: Path, **env: str) -> None:
    settings = make_settings(data, **env)
    clock = FakeClock(dt.datetime.now(dt.timezone.utc).replace(microsecond=0))
    first = Shop(server_factory(settings, clock=clock), clock)
    eid = first.start().id
    first.convert("1", 500, 5000)
    first.convert("2", 750, 5000)
    before = first.get(eid)
    first.srv.stop()

    again = Shop(server_factory(settings, clock=clock), clock, setup=False)  # same database
    after = again.get(eid)
    assert (after.state, after.result.control.samples, after.result.treatment.samples, after.result.p_value) == (
        RUNNING, 5000, 5000, before.result.p_value)
    assert again.split() == {"1": 50.0, "2": 50.0}
    again.convert("2", 10, 100)  # the restarted server counts for the experiment it loaded
    assert again.get(eid).result.treatment.samples == 5100
    assert again.stop(eid).state == STOPPED and again.split() == {"1": 100.0}


def test_a_restart_on_the_same_sqlite_file_keeps_the_experiment_and_its_sums(
        server_factory: Callable[..., Any], tmp_path: Path) -> None:
    _restart_keeps_everything(server_factory, tmp_path / "data")


def test_a_restart_on_postgresql_keeps_the_experiment_and_its_sums(
        server_factory: Callable[..., Any], tmp_path: Path, pg_url: str) -> None:
    _restart_keeps_everything(server_factory, tmp_path / "data", MODELCTL_DATABASE_URL=pg_url)


def test_the_refresher_exports_running_experiments_and_drops_stopped_ones(shop: Shop) -> None:
    eid = shop.start().id
    shop.convert("1", 40, 400)
    shop.convert("2", 44, 400)
    refresher = shop.srv.app.experiment_refresher
    shop.srv.call(refresher.tick())
    assert shop.gauge("modelctl_experiment_samples", model="shop", arm="control", version="1") == 400
    assert shop.gauge("modelctl_experiment_srm_p_value", model="shop") == 1.0
    baseline = stats.rate_summary(40, 400)
    required = stats.required_per_arm(baseline, baseline, rate=True, min_effect=0.02, alpha=0.05, power=0.8,
                                      treatment_share=0.5)
    assert required is not None and shop.gauge("modelctl_experiment_samples_needed", model="shop") == required[1] - 400
    shop.srv.app.experiments.stop(eid)  # stopped behind the RPCs' back (another replica, say)
    shop.srv.call(refresher.tick())
    assert shop.gauge("modelctl_experiment_samples", model="shop", arm="control", version="1") is None


def test_a_tiny_min_effect_or_share_still_reads_and_stops(shop: Shop) -> None:
    # samples_needed divides by (min_effect x rate)², which underflows: it must cap, not crash the read and stop.
    for kw in ({"min_effect": 1e-300}, {"min_effect": 1e-160}, {"treatment_percent": 1e-300}):
        eid = shop.start(**kw).id
        shop.convert("1", 50, 500)
        shop.convert("2", 60, 500)
        assert shop.get(eid).result.samples_needed == stats.MAX_SAMPLES_NEEDED - 500  # capped, less what it has
        assert shop.stop(eid).state == STOPPED and shop.split() == {"1": 100.0}


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_arm_counts_saturate_instead_of_overflowing(server_factory: Callable[..., Any], tmp_path: Path,
                                                    request: pytest.FixtureRequest, database: str) -> None:
    env = {} if database == "sqlite" else {"MODELCTL_DATABASE_URL": request.getfixturevalue("pg_url")}
    shop = _shop(server_factory, **env)
    eid = shop.start().id
    most = 2 ** 63 - 1
    # Two samples of one request add up beyond BIGINT, and so do two requests.
    big = dpb.MetricsSample(model="shop", version="2", requests=most, outcome=dpb.Outcome(successes=1, trials=most))
    shop.api.ReportMetrics(dpb.ReportMetricsRequest(samples=[big, big]))
    shop.convert("1", 1, most)
    shop.convert("1", 1, most)
    result = shop.get(eid).result
    assert (result.control.samples, result.treatment.samples) == (most, most)
    assert shop.stop(eid).state == STOPPED
