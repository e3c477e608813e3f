"""The deployment RPCs over real gRPC, with the server's clock faked so no test waits.

Each scenario asserts the exact ordered list of WatchDeployment events, as
progressive-delivery controllers test their rollouts.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from modelctl.v1 import deployment_pb2 as dpb
from modelctl.v1 import registry_pb2 as rpb
from modelctl_server.clock import FakeClock

from grpc_helpers import bad_fields, stub

CANARY = dpb.DEPLOYMENT_STRATEGY_CANARY
IMMEDIATE = dpb.DEPLOYMENT_STRATEGY_IMMEDIATE
BLUE_GREEN = dpb.DEPLOYMENT_STRATEGY_BLUE_GREEN


async def _advance(clock: FakeClock, seconds: float) -> None:
    clock.advance(seconds)  # on the server's loop: FakeClock wakes its sleepers there


class Controller:
    """A real server on a fake clock, and the calls the scenarios make."""

    def __init__(self, srv: Any, clock: FakeClock) -> None:
        self.srv = srv
        self.clock = clock
        self.api = stub(srv.address, srv.admin_token)

    def advance(self, seconds: float) -> None:
        self.srv.call(_advance(self.clock, seconds))

    def tick(self) -> None:
        self.srv.call(self.srv.app.reconciler.tick())

    def register(self, model: str, *versions: str) -> None:
        for v in versions:
            self.api.RegisterModel(rpb.RegisterModelRequest(name=model, version=v, artifact_uri=f"s3://m/{v}"))

    def deploy(self, model: str, version: str, strategy: int = CANARY, **params: Any) -> dpb.Deployment:
        dep = self.api.DeployModel(dpb.DeployModelRequest(model=model, version=version, strategy=strategy,
                                                          params=dpb.DeploymentParams(**params)))
        self.tick()
        return dep

    def report(self, model: str, version: str, requests: int = 20, errors: int = 0, latency: float = 40.0) -> None:
        self.api.ReportMetrics(dpb.ReportMetricsRequest(samples=[dpb.MetricsSample(
            model=model, version=version, requests=requests, errors=errors, latency_ms=[latency] * min(requests, 50))]))

    def get(self, dep_id: str) -> dpb.Deployment:
        return self.api.GetDeployment(dpb.GetDeploymentRequest(id=dep_id))

    def split(self, model: str) -> dict[str, float]:
        return dict(self.api.GetTrafficSplit(dpb.GetTrafficSplitRequest(model=model)).weights)

    def history(self, dep_id: str, after_seq: int = 0) -> list[tuple[str, str, int, float]]:
        events = self.api.WatchDeployment(dpb.WatchDeploymentRequest(id=dep_id, after_seq=after_seq), timeout=10)
        return [(dpb.DeploymentEventKind.Name(e.kind).removeprefix("DEPLOYMENT_EVENT_KIND_"),
                 dpb.DeploymentState.Name(e.state).removeprefix("DEPLOYMENT_STATE_"), e.step, e.traffic_percent)
                for e in events]

    def make_live(self, model: str, version: str) -> None:
        dep = self.deploy(model, version, IMMEDIATE, bake_time=Duration(seconds=0))
        self.tick()
        assert self.get(dep.id).state == dpb.DEPLOYMENT_STATE_SUCCEEDED


@pytest.fixture
def ctl(server_factory) -> Controller:  # type: ignore[no-untyped-def]
    clock = FakeClock(dt.datetime.now(dt.timezone.utc))
    srv = server_factory(clock=clock, MODELCTL_DEPLOYMENT_MIN_SAMPLES="10")
    c = Controller(srv, clock)
    c.register("fraud", "1", "2", "3")
    c.make_live("fraud", "1")
    return c


def canary(c: Controller, version: str = "2") -> dpb.Deployment:
    return c.deploy("fraud", version, CANARY, steps=[50, 100], step_interval=Duration(seconds=30))


def pass_step(c: Controller, version: str = "2") -> None:
    c.advance(1)  # a report made exactly at the step's start belongs to the step before
    c.report("fraud", version)
    c.report("fraud", "1")
    c.advance(30)
    c.tick()


def test_first_deployment_goes_live(ctl: Controller) -> None:
    model = ctl.api.GetModel(rpb.GetModelRequest(name="fraud"))
    assert model.live_version == "1" and dict(model.traffic) == {"1": 100.0}


def test_canary_success_history_and_traffic(ctl: Controller) -> None:
    dep = canary(ctl)
    assert dep.state == dpb.DEPLOYMENT_STATE_PENDING and dep.previous_version == "1" and dep.total_steps == 2
    assert ctl.split("fraud") == {"1": 50.0, "2": 50.0}
    pass_step(ctl)
    assert ctl.split("fraud") == {"2": 100.0, "1": 0.0} or ctl.split("fraud") == {"2": 100.0}
    pass_step(ctl)
    final = ctl.get(dep.id)
    assert final.state == dpb.DEPLOYMENT_STATE_SUCCEEDED and final.traffic_percent == 100 and final.reason == ""
    assert [e.verdict for e in final.evaluations] and all(
        e.verdict == dpb.GATE_VERDICT_PASS for e in final.evaluations)
    assert ctl.history(dep.id) == [
        ("CREATED", "PENDING", 0, 0.0),
        ("STEP_STARTED", "PROGRESSING", 1, 50.0),
        ("STEP_STARTED", "PROGRESSING", 2, 100.0),
        ("SUCCEEDED", "SUCCEEDED", 2, 100.0),
    ]
    model = ctl.api.GetModel(rpb.GetModelRequest(name="fraud"))
    assert (model.live_version, model.previous_version) == ("2", "1")
    assert {v: w for v, w in model.traffic.items() if w} == {"2": 100.0}


def test_fast_fail_rolls_back_before_the_report_is_answered(ctl: Controller) -> None:
    dep = canary(ctl)
    ctl.advance(1)
    ctl.report("fraud", "2", requests=40, errors=20)
    # No tick, no time passing: the report itself rolled the canary back.
    assert {v: w for v, w in ctl.split("fraud").items() if w} == {"1": 100.0}
    final = ctl.get(dep.id)
    assert final.state == dpb.DEPLOYMENT_STATE_ROLLED_BACK
    assert "error-rate" in final.reason and "0.500" in final.reason
    failed = [e for e in final.evaluations if e.verdict == dpb.GATE_VERDICT_FAIL]
    assert failed and failed[0].gate == "error_rate" and failed[0].critical and failed[0].samples == 40
    assert ctl.history(dep.id) == [
        ("CREATED", "PENDING", 0, 0.0),
        ("STEP_STARTED", "PROGRESSING", 1, 50.0),
        ("ROLLBACK_STARTED", "ROLLING_BACK", 1, 0.0),
        ("ROLLED_BACK", "ROLLED_BACK", 1, 0.0),
    ]
    assert ctl.api.GetModel(rpb.GetModelRequest(name="fraud")).live_version == "1"
    # The rolled-back version may be deployed again: a new deployment.
    again = canary(ctl)
    assert again.id != dep.id


def test_too_few_samples_wait_then_the_progress_deadline_fails(ctl: Controller) -> None:
    dep = ctl.deploy("fraud", "2", CANARY, steps=[50, 100], step_interval=Duration(seconds=30),
                     progress_deadline=Duration(seconds=60))
    ctl.advance(1)
    ctl.report("fraud", "2", requests=3)  # below min_samples: the gate waits
    ctl.advance(30)
    ctl.tick()
    assert ctl.get(dep.id).state == dpb.DEPLOYMENT_STATE_PROGRESSING and ctl.get(dep.id).step == 1
    ctl.advance(30)
    ctl.tick()
    final = ctl.get(dep.id)
    assert final.state == dpb.DEPLOYMENT_STATE_FAILED and "progress deadline" in final.reason
    assert {v: w for v, w in ctl.split("fraud").items() if w} == {"1": 100.0}
    assert [k for k, *_ in ctl.history(dep.id)] == ["CREATED", "STEP_STARTED", "FAILED"]


def test_pause_resume_promote(ctl: Controller) -> None:
    dep = canary(ctl)
    paused = ctl.api.PauseDeployment(dpb.DeploymentActionRequest(id=dep.id, reason="investigating"))
    assert paused.state == dpb.DEPLOYMENT_STATE_PAUSED
    ctl.advance(1)
    ctl.report("fraud", "2")
    ctl.advance(60)
    ctl.tick()
    assert ctl.get(dep.id).step == 1  # paused: no step taken
    resumed = ctl.api.ResumeDeployment(dpb.DeploymentActionRequest(id=dep.id))
    assert resumed.state == dpb.DEPLOYMENT_STATE_PROGRESSING
    promoted = ctl.api.PromoteDeployment(dpb.DeploymentActionRequest(id=dep.id))
    assert promoted.state == dpb.DEPLOYMENT_STATE_SUCCEEDED and promoted.traffic_percent == 100
    assert [k for k, *_ in ctl.history(dep.id)] == ["CREATED", "STEP_STARTED", "PAUSED", "RESUMED", "SUCCEEDED"]
    with pytest.raises(grpc.RpcError) as err:
        ctl.api.PauseDeployment(dpb.DeploymentActionRequest(id=dep.id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_abort_returns_traffic(ctl: Controller) -> None:
    dep = canary(ctl)
    aborted = ctl.api.AbortDeployment(dpb.DeploymentActionRequest(id=dep.id, reason="wrong build"))
    assert aborted.state == dpb.DEPLOYMENT_STATE_ABORTED and "wrong build" in aborted.reason
    assert {v: w for v, w in ctl.split("fraud").items() if w} == {"1": 100.0}
    assert [k for k, *_ in ctl.history(dep.id)] == ["CREATED", "STEP_STARTED", "ABORTED"]


def test_rollback_model_returns_to_the_previous_version(ctl: Controller) -> None:
    canary(ctl)
    pass_step(ctl)
    pass_step(ctl)
    back = ctl.api.RollbackModel(dpb.RollbackModelRequest(model="fraud", reason="pager"))
    # Traffic moves back and, with nothing to bake, the rollback is done within the call.
    assert back.version == "1" and back.strategy == IMMEDIATE and back.traffic_percent == 100
    assert back.state == dpb.DEPLOYMENT_STATE_SUCCEEDED
    assert {v: w for v, w in ctl.split("fraud").items() if w} == {"1": 100.0}
    model = ctl.api.GetModel(rpb.GetModelRequest(name="fraud"))
    assert model.live_version == "1" and {v: w for v, w in model.traffic.items() if w} == {"1": 100.0}
    named = ctl.api.RollbackModel(dpb.RollbackModelRequest(model="fraud", to_version="3"))
    assert named.version == "3" and named.state == dpb.DEPLOYMENT_STATE_SUCCEEDED
    assert ctl.api.GetModel(rpb.GetModelRequest(name="fraud")).live_version == "3"


def test_one_active_deployment_per_model(ctl: Controller) -> None:
    dep = canary(ctl)
    with pytest.raises(grpc.RpcError) as err:
        canary(ctl, "3")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and dep.id in err.value.details()
    ctl.api.AbortDeployment(dpb.DeploymentActionRequest(id=dep.id))
    with pytest.raises(grpc.RpcError) as err:
        ctl.deploy("fraud", "1")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "live" in err.value.details()


def test_validation_and_not_found(ctl: Controller) -> None:
    cases = [
        (dpb.DeployModelRequest(model="fraud", version="2"), "strategy"),
        (dpb.DeployModelRequest(model="Fraud", version="2", strategy=CANARY), "model"),
        (dpb.DeployModelRequest(model="fraud", version="2", strategy=CANARY,
                                params=dpb.DeploymentParams(step_interval=Duration(nanos=10_000_000))),
         "params.step_interval"),
        (dpb.DeployModelRequest(model="fraud", version="2", strategy=CANARY,
                                params=dpb.DeploymentParams(steps=[50, 10])), "params.steps"),
        (dpb.DeployModelRequest(model="fraud", version="2", strategy=CANARY,
                                params=dpb.DeploymentParams(thresholds=dpb.Thresholds(error_rate=2))),
         "params.thresholds.error_rate"),
    ]
    for request, field in cases:
        with pytest.raises(grpc.RpcError) as err:
            ctl.api.DeployModel(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, err.value.details())
        assert field in bad_fields(err.value), (field, bad_fields(err.value))
    for request in (dpb.DeployModelRequest(model="nope", version="1", strategy=CANARY),
                    dpb.DeployModelRequest(model="fraud", version="9", strategy=CANARY)):
        with pytest.raises(grpc.RpcError) as err:
            ctl.api.DeployModel(request)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        ctl.api.GetDeployment(dpb.GetDeploymentRequest(id="doesnotexist"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        ctl.api.GetDeployment(dpb.GetDeploymentRequest(id="../x"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_fields(err.value) == ["id"]


def test_report_metrics_validation(ctl: Controller) -> None:
    def report(**sample: Any) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as err:
            ctl.api.ReportMetrics(dpb.ReportMetricsRequest(samples=[dpb.MetricsSample(**sample)]))
        return err.value

    err = report(model="fraud", version="2", requests=1, errors=5)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_fields(err) == ["samples[0].errors"]
    err = report(model="fraud", version="2", requests=1, latency_ms=[-1.0])
    assert bad_fields(err) == ["samples[0].latency_ms"]
    err = report(model="fraud", version="9", requests=1)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as e:
        ctl.api.ReportMetrics(dpb.ReportMetricsRequest())
    assert bad_fields(e.value) == ["samples"]


def test_list_deployments_pages_and_filters(ctl: Controller) -> None:
    ctl.advance(1)  # newest first is by creation time; give each deployment its own instant
    first = canary(ctl)
    ctl.api.AbortDeployment(dpb.DeploymentActionRequest(id=first.id))
    ctl.advance(1)
    second = canary(ctl)
    page = ctl.api.ListDeployments(dpb.ListDeploymentsRequest(model="fraud", page_size=2))
    assert [d.id for d in page.deployments][:2] == [second.id, first.id] and page.next_page_token
    rest = ctl.api.ListDeployments(dpb.ListDeploymentsRequest(model="fraud", page_size=2,
                                                              page_token=page.next_page_token))
    assert len(rest.deployments) == 1 and not rest.next_page_token  # the first, immediate deployment
    aborted = ctl.api.ListDeployments(dpb.ListDeploymentsRequest(states=[dpb.DEPLOYMENT_STATE_ABORTED]))
    assert [d.id for d in aborted.deployments] == [first.id]


def test_watch_streams_live_until_final_and_resumes(ctl: Controller) -> None:
    dep = canary(ctl)
    received: list[tuple[int, str]] = []
    done = threading.Event()

    def watch() -> None:
        for e in ctl.api.WatchDeployment(dpb.WatchDeploymentRequest(id=dep.id), timeout=20):
            received.append((e.seq, dpb.DeploymentEventKind.Name(e.kind)))
        done.set()
    t = threading.Thread(target=watch)
    t.start()
    pass_step(ctl)
    pass_step(ctl)
    assert done.wait(20)
    t.join()
    assert [s for s, _ in received] == [1, 2, 3, 4]
    assert received[-1][1] == "DEPLOYMENT_EVENT_KIND_SUCCEEDED"
    # A client that reconnects with its last seq gets only what it missed.
    assert [k for k, *_ in ctl.history(dep.id, after_seq=2)] == ["STEP_STARTED", "SUCCEEDED"]
    assert ctl.history(dep.id, after_seq=4) == []


def test_watch_traffic_split_sends_current_then_changes(ctl: Controller) -> None:
    splits: list[dict[str, float]] = []
    stream = ctl.api.WatchTrafficSplit(dpb.WatchTrafficSplitRequest(model="fraud"), timeout=20)
    splits.append(dict(next(stream).weights))
    dep = canary(ctl)
    splits.append(dict(next(stream).weights))
    ctl.api.AbortDeployment(dpb.DeploymentActionRequest(id=dep.id))
    splits.append(dict(next(stream).weights))
    stream.cancel()
    nonzero = [{v: w for v, w in s.items() if w} for s in splits]
    assert nonzero == [{"1": 100.0}, {"1": 50.0, "2": 50.0}, {"1": 100.0}]


def test_instances_heartbeat_and_assignment(ctl: Controller) -> None:
    inst = ctl.api.RegisterInstance(dpb.RegisterInstanceRequest(model="fraud", instance_id="pod-a",
                                                                address="10.0.0.1:8080"))
    assert inst.assigned_version == "1"
    hb = ctl.api.Heartbeat(dpb.HeartbeatRequest(model="fraud", instance_id="pod-a", loaded_version="1", healthy=True))
    assert hb.assigned_version == "1" and hb.heartbeat_interval.seconds == 5
    stream = ctl.api.WatchAssignment(dpb.WatchAssignmentRequest(model="fraud", instance_id="pod-a"), timeout=20)
    assert next(stream).version == "1"
    stream.cancel()
    with pytest.raises(grpc.RpcError) as err:
        ctl.api.Heartbeat(dpb.HeartbeatRequest(model="fraud", instance_id="ghost", loaded_version="1", healthy=True))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        ctl.api.RegisterInstance(dpb.RegisterInstanceRequest(model="fraud", instance_id=""))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "instance_id" in bad_fields(err.value)


def test_blue_green_switches_after_analysis(ctl: Controller) -> None:
    dep = ctl.deploy("fraud", "2", BLUE_GREEN, step_interval=Duration(seconds=30), bake_time=Duration(seconds=30))
    assert ctl.split("fraud").get("2", 0) == 0  # preview: analysed on shadow traffic, no live traffic
    pass_step(ctl)
    assert {v: w for v, w in ctl.split("fraud").items() if w} == {"2": 100.0}
    assert "1" in ctl.split("fraud")  # the old version stays ready for an instant rollback while baking
    pass_step(ctl)
    assert ctl.get(dep.id).state == dpb.DEPLOYMENT_STATE_SUCCEEDED


def test_deployment_metrics_are_exported(ctl: Controller) -> None:
    import urllib.request

    dep = canary(ctl)
    ctl.advance(1)
    ctl.report("fraud", "2", requests=40, errors=20)
    assert ctl.get(dep.id).state == dpb.DEPLOYMENT_STATE_ROLLED_BACK
    port = ctl.srv.app.metrics.port
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'modelctl_rollbacks_total{model="fraud"} 1.0' in body
    assert 'modelctl_deployment_state{model="fraud",modelctl_deployment_state="ROLLED_BACK"} 1.0' in body
    assert 'modelctl_model_requests_total{model="fraud",version="2"} 40.0' in body
    assert 'modelctl_model_errors_total{model="fraud",version="2"} 20.0' in body
    assert "modelctl_breach_to_rollback_seconds_count" in body  # 0 or 1: the reconcile loop may catch it first


def test_acknowledged_metric_reports_survive_a_restart(server_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from conftest import make_settings

    settings = make_settings(tmp_path / "data", MODELCTL_DEPLOYMENT_MIN_SAMPLES="10")
    first = Controller(server_factory(settings, clock=FakeClock(dt.datetime.now(dt.timezone.utc))), None)  # type: ignore[arg-type]
    first.clock = first.srv.app.clock  # type: ignore[assignment]
    first.register("fraud", "1", "2")
    first.make_live("fraud", "1")
    dep = canary(first)
    first.advance(1)
    first.report("fraud", "2", requests=20)  # acknowledged: enough samples for the step
    first.srv.stop()

    # A new process on the same database, its clock where the first one stopped.
    clock = FakeClock(first.clock.now())
    second = Controller(server_factory(settings, clock=clock), clock)
    second.advance(30)
    second.tick()  # no new report: the journal brought the evidence back
    assert second.get(dep.id).step == 2


# --- waiting gates explain themselves ----------------------------------------------------------------------


def _gates(d: dpb.Deployment) -> dict[str, tuple[str, str]]:
    return {g.gate: (dpb.GateVerdict.Name(g.verdict).removeprefix("GATE_VERDICT_"), g.detail) for g in d.current_gates}


def test_a_waiting_step_says_what_each_gate_lacks(ctl: Controller) -> None:
    """The new user's canary: --min-samples 5, two reports of one latency each, then silence."""
    dep = ctl.deploy("fraud", "2", CANARY, steps=[50, 100], step_interval=Duration(seconds=30), min_samples=5)
    ctl.advance(1)
    for _ in range(2):
        ctl.api.ReportMetrics(dpb.ReportMetricsRequest(samples=[dpb.MetricsSample(
            model="fraud", version="2", requests=1, latency_ms=[40.0])]))
    ctl.advance(10)
    shown = ctl.get(dep.id)
    assert _gates(shown) == {"error_rate": ("WAIT", "2 of 5 requests"), "latency_p95": ("WAIT", "2 of 5 samples")}
    assert shown.waiting_for == ("step 1 is watched for 19s more; error-rate has 2 of 5 requests, "
                                 "latency-p95 has 2 of 5 samples")
    # Past the interval, the step still waits, and says only what the gates lack.
    ctl.advance(30)
    ctl.tick()
    shown = ctl.get(dep.id)
    assert shown.state == dpb.DEPLOYMENT_STATE_PROGRESSING and shown.step == 1
    assert shown.waiting_for == "error-rate has 2 of 5 requests, latency-p95 has 2 of 5 samples"
    assert list(shown.evaluations) == []  # nothing stored per read or per waiting tick


def test_current_gates_show_passing_verdicts_and_end_with_the_deployment(ctl: Controller) -> None:
    dep = canary(ctl)
    ctl.advance(1)
    ctl.report("fraud", "2", requests=20, errors=0, latency=40.0)
    shown = ctl.get(dep.id)
    assert _gates(shown) == {"error_rate": ("PASS", "0.000 <= 0.050 over 20 requests"),
                             "latency_p95": ("PASS", "40ms <= 1000ms over 20 samples")}
    assert shown.waiting_for == "step 1 is watched for 29s more"
    ctl.api.PauseDeployment(dpb.DeploymentActionRequest(id=dep.id))
    assert ctl.get(dep.id).waiting_for == "paused at step 1: resume to continue"
    ctl.api.AbortDeployment(dpb.DeploymentActionRequest(id=dep.id))
    final = ctl.get(dep.id)
    assert list(final.current_gates) == [] and final.waiting_for == ""
