"""Deployment alerts over real gRPC: one per deployment, newer ones supersede older ones, and an alert
that a crash lost between the deployment's commit and its alert is raised by the next start."""

from __future__ import annotations

from typing import Any

from google.protobuf.duration_pb2 import Duration

from modelctl.v1 import alert_pb2
from modelctl.v1 import deployment_pb2 as dpb
from modelctl.v1 import registry_pb2 as rpb

from conftest import make_settings
from grpc_helpers import stub
from rollout_support import eventually

QUIET = {"MODELCTL_ALERTS_CPU_PERCENT": "100", "MODELCTL_ALERTS_MEMORY_PERCENT": "100",
         "MODELCTL_ALERTS_LOOP_LAG": "60s", "MODELCTL_ALERTS_EVALUATE_INTERVAL": "1h",
         "MODELCTL_DEPLOYMENT_MIN_SAMPLES": "10"}


def _deployment_alerts(api: Any) -> dict[str, tuple[str, str]]:
    alerts = api.ListAlerts(alert_pb2.ListAlertsRequest()).alerts
    return {a.deployment_id: (alert_pb2.AlertSeverity.Name(a.severity).removeprefix("ALERT_SEVERITY_"),
                              alert_pb2.AlertState.Name(a.state).removeprefix("ALERT_STATE_"))
            for a in alerts if a.kind == alert_pb2.ALERT_KIND_DEPLOYMENT}


def _roll_back_a_canary(api: Any) -> str:
    dep = api.DeployModel(dpb.DeployModelRequest(model="fraud", version="2", strategy=dpb.DEPLOYMENT_STRATEGY_CANARY,
                                                 params=dpb.DeploymentParams(step_interval=Duration(seconds=60))))
    eventually(lambda: api.GetDeployment(dpb.GetDeploymentRequest(id=dep.id)).step == 1 or None, what="step 1")
    api.ReportMetrics(dpb.ReportMetricsRequest(samples=[dpb.MetricsSample(model="fraud", version="2", requests=50,
                                                                          errors=25)]))
    assert api.GetDeployment(dpb.GetDeploymentRequest(id=dep.id)).state == dpb.DEPLOYMENT_STATE_ROLLED_BACK
    return dep.id


def test_an_alert_lost_between_commit_and_alert_is_raised_at_the_next_start(server_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path / "data", **QUIET)
    first = server_factory(settings)
    api = stub(first.address, first.admin_token)
    for version in ("1", "2"):
        api.RegisterModel(rpb.RegisterModelRequest(name="fraud", version=version, artifact_uri=f"s3://m/{version}"))
    live = api.DeployModel(dpb.DeployModelRequest(
        model="fraud", version="1", strategy=dpb.DEPLOYMENT_STRATEGY_IMMEDIATE,
        params=dpb.DeploymentParams(bake_time=Duration(seconds=0))))
    eventually(lambda: _deployment_alerts(api).get(live.id) == ("INFO", "OPEN") or None, what="the success alert")
    # The process dies right after the rollback committed, before its alert: here, the listener is gone.
    first.app.announcer.listeners.remove(first.app.deployment_alerts)
    rolled_back = _roll_back_a_canary(api)
    assert rolled_back not in _deployment_alerts(api)
    first.stop()

    second = server_factory(settings)
    api = stub(second.address, second.admin_token)
    # The rollback is news; the success it superseded is resolved, not raised again. The raise and the
    # resolution are two commits: wait for both, not for the first only.
    expected = {rolled_back: ("ERROR", "OPEN"), live.id: ("INFO", "RESOLVED")}
    alerts = eventually(lambda: _deployment_alerts(api) if _deployment_alerts(api) == expected else None,
                        what="the caught-up rollback alert, and the success it superseded resolved")
    assert alerts == expected
    # A third start finds nothing to catch up: still one alert per deployment.
    second.stop()
    third = server_factory(settings)
    api = stub(third.address, third.admin_token)
    assert len(api.ListAlerts(alert_pb2.ListAlertsRequest(kind=alert_pb2.ALERT_KIND_DEPLOYMENT)).alerts) == 2
