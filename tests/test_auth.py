"""Authentication and authorisation: every RPC × {no token, unknown token, viewer, operator, admin}."""

from __future__ import annotations

import hashlib
import os
import stat

import grpc
import pytest

from modelctl.v1 import (
    alert_pb2,
    controller_pb2,
    deployment_pb2,
    drift_pb2,
    experiment_pb2,
    pipeline_pb2,
    registry_pb2,
    system_pb2,
)
from modelctl_server.api.policy import POLICIES

from grpc_helpers import stub

ROLES = ["viewer", "operator", "admin"]

# The role each RPC of the foundation needs, as DESIGN.md states it (checked against the policy table).
REQUIRED = {
    "RegisterModel": "operator",
    "UploadArtifact": "operator",
    "ListModels": "viewer",
    "GetModel": "viewer",
    "ArchiveModelVersion": "operator",
    "GetSystemStatus": "viewer",
    "RestartSystem": "admin",
    "ListAuditEvents": "viewer",
    "CreateToken": "admin",
    "RevokeToken": "admin",
    "ListTokens": "admin",
    "DeployModel": "operator",
    "RollbackModel": "operator",
    "GetDeployment": "viewer",
    "ListDeployments": "viewer",
    "WatchDeployment": "viewer",
    "PromoteDeployment": "operator",
    "PauseDeployment": "operator",
    "ResumeDeployment": "operator",
    "AbortDeployment": "operator",
    "GetTrafficSplit": "viewer",
    "WatchTrafficSplit": "viewer",
    "RegisterInstance": "operator",
    "Heartbeat": "operator",
    "WatchAssignment": "viewer",
    "ReportMetrics": "operator",
    "StartExperiment": "operator",
    "GetExperiment": "viewer",
    "ListExperiments": "viewer",
    "StopExperiment": "operator",
    "GetDriftReport": "viewer",
    "ListAlerts": "viewer",
    "GetAlert": "viewer",
    "AcknowledgeAlert": "operator",
    "StreamAlerts": "viewer",
    "CreateSilence": "operator",
    "ListSilences": "viewer",
    "ExpireSilence": "operator",
    "TestNotifications": "admin",
    "RegisterPipeline": "operator",
    "ReportPipelineStatus": "operator",
    "ListPipelines": "viewer",
    "GetPipeline": "viewer",
    "SendPipelineCommand": "operator",
    "WatchPipelineCommands": "operator",
    "UpdatePipelineCommand": "operator",
    "GetPipelineCommand": "viewer",
    "CancelPipelineCommand": "operator",
    "ListPipelineCommands": "viewer",
}


def _call(api, rpc: str):  # type: ignore[no-untyped-def]
    """Calls `rpc` with a well-formed request."""
    data = b"artifact"
    if rpc == "UploadArtifact":
        return api.UploadArtifact(iter([
            registry_pb2.UploadArtifactRequest(header=registry_pb2.ArtifactHeader(
                sha256=hashlib.sha256(data).hexdigest())),
            registry_pb2.UploadArtifactRequest(chunk=data)]))
    requests = {
        "RegisterModel": registry_pb2.RegisterModelRequest(name="m", version=os.urandom(4).hex(),
                                                           artifact_uri="s3://b/k"),
        "ListModels": registry_pb2.ListModelsRequest(),
        "GetModel": registry_pb2.GetModelRequest(name="m"),
        "ArchiveModelVersion": registry_pb2.ArchiveModelVersionRequest(name="m", version="old"),
        "GetSystemStatus": system_pb2.GetSystemStatusRequest(),
        "RestartSystem": system_pb2.RestartSystemRequest(reason="test"),
        "ListAuditEvents": system_pb2.ListAuditEventsRequest(),
        "CreateToken": system_pb2.CreateTokenRequest(name="x", role=system_pb2.ROLE_VIEWER),
        "RevokeToken": system_pb2.RevokeTokenRequest(id="doesnotexist"),
        "ListTokens": system_pb2.ListTokensRequest(),
        "DeployModel": deployment_pb2.DeployModelRequest(model="m", version="nope",
                                                         strategy=deployment_pb2.DEPLOYMENT_STRATEGY_CANARY),
        "RollbackModel": deployment_pb2.RollbackModelRequest(model="m"),
        "GetDeployment": deployment_pb2.GetDeploymentRequest(id="missing"),
        "ListDeployments": deployment_pb2.ListDeploymentsRequest(),
        "WatchDeployment": deployment_pb2.WatchDeploymentRequest(id="missing"),
        "PromoteDeployment": deployment_pb2.DeploymentActionRequest(id="missing"),
        "PauseDeployment": deployment_pb2.DeploymentActionRequest(id="missing"),
        "ResumeDeployment": deployment_pb2.DeploymentActionRequest(id="missing"),
        "AbortDeployment": deployment_pb2.DeploymentActionRequest(id="missing"),
        "GetTrafficSplit": deployment_pb2.GetTrafficSplitRequest(model="m"),
        "WatchTrafficSplit": deployment_pb2.WatchTrafficSplitRequest(model="nope"),
        "RegisterInstance": deployment_pb2.RegisterInstanceRequest(model="m", instance_id="i-1"),
        "Heartbeat": deployment_pb2.HeartbeatRequest(model="m", instance_id="ghost"),
        "WatchAssignment": deployment_pb2.WatchAssignmentRequest(model="m", instance_id="ghost"),
        "ReportMetrics": deployment_pb2.ReportMetricsRequest(samples=[deployment_pb2.MetricsSample(
            model="m", version="old", requests=1)]),
        "StartExperiment": experiment_pb2.StartExperimentRequest(model="m", control_version="old",
                                                                 treatment_version="missing"),
        "GetExperiment": experiment_pb2.GetExperimentRequest(id="missing"),
        "ListExperiments": experiment_pb2.ListExperimentsRequest(),
        "StopExperiment": experiment_pb2.StopExperimentRequest(id="missing"),
        "GetDriftReport": drift_pb2.GetDriftReportRequest(model="m", version="old"),
        "ListAlerts": alert_pb2.ListAlertsRequest(),
        "GetAlert": alert_pb2.GetAlertRequest(id="missing"),
        "AcknowledgeAlert": alert_pb2.AcknowledgeAlertRequest(id="missing"),
        # history_only: the replay (empty here), then the stream ends instead of following.
        "StreamAlerts": alert_pb2.StreamAlertsRequest(from_start=True, history_only=True),
        "CreateSilence": alert_pb2.CreateSilenceRequest(model="m", duration={"seconds": 60}, comment="test"),
        "ListSilences": alert_pb2.ListSilencesRequest(),
        "ExpireSilence": alert_pb2.ExpireSilenceRequest(id="missing"),
        "TestNotifications": alert_pb2.TestNotificationsRequest(),
        "RegisterPipeline": pipeline_pb2.RegisterPipelineRequest(name="p", models=["m"]),
        "ReportPipelineStatus": pipeline_pb2.ReportPipelineStatusRequest(name="ghost",
                                                                         state=pipeline_pb2.PIPELINE_STATE_IDLE),
        "ListPipelines": pipeline_pb2.ListPipelinesRequest(),
        "GetPipeline": pipeline_pb2.GetPipelineRequest(name="ghost"),
        "SendPipelineCommand": pipeline_pb2.SendPipelineCommandRequest(
            pipeline="ghost", kind=pipeline_pb2.PIPELINE_COMMAND_KIND_PAUSE),
        # an unknown pipeline: NOT_FOUND once admitted, so the stream ends at once
        "WatchPipelineCommands": pipeline_pb2.WatchPipelineCommandsRequest(pipeline="ghost"),
        "UpdatePipelineCommand": pipeline_pb2.UpdatePipelineCommandRequest(
            id="missing", state=pipeline_pb2.PIPELINE_COMMAND_STATE_ACKNOWLEDGED),
        "GetPipelineCommand": pipeline_pb2.GetPipelineCommandRequest(id="missing"),
        "CancelPipelineCommand": pipeline_pb2.CancelPipelineCommandRequest(id="missing"),
        "ListPipelineCommands": pipeline_pb2.ListPipelineCommandsRequest(),
    }
    result = getattr(api, rpc)(requests[rpc], timeout=10)
    if rpc.startswith("Watch") or rpc == "StreamAlerts":
        return list(result)  # each of these ends with NOT_FOUND once admitted
    return result


def test_every_rpc_has_a_policy_matching_the_design() -> None:
    service = controller_pb2.DESCRIPTOR.services_by_name["ModelController"]
    declared = {m.name for m in service.methods}
    assert declared <= set(POLICIES), f"RPCs without a policy: {declared - set(POLICIES)}"
    assert declared == set(REQUIRED), f"auth matrix does not cover: {declared ^ set(REQUIRED)}"
    for rpc, role in REQUIRED.items():
        assert POLICIES[rpc].role.name.lower() == role, rpc


@pytest.fixture
def tokens(live_server):  # type: ignore[no-untyped-def]
    admin = stub(live_server.address, live_server.admin_token)
    admin.RegisterModel(registry_pb2.RegisterModelRequest(name="m", version="old", artifact_uri="s3://b/k"))
    out = {role: live_server.make_token(role) for role in ROLES}
    out["admin"] = live_server.admin_token
    return out


@pytest.mark.parametrize("rpc", sorted(REQUIRED))
def test_auth_matrix(live_server, tokens, rpc: str) -> None:  # type: ignore[no-untyped-def]
    for caller, token in [("none", None), ("unknown", "mctl_nope_nope")] + [(r, tokens[r]) for r in ROLES]:
        api = stub(live_server.address, token)
        try:
            _call(api, rpc)
            code = grpc.StatusCode.OK
        except grpc.RpcError as err:
            code = err.code()
        if caller in ("none", "unknown"):
            assert code == grpc.StatusCode.UNAUTHENTICATED, (rpc, caller, code)
        elif ROLES.index(caller) < ROLES.index(REQUIRED[rpc]):
            assert code == grpc.StatusCode.PERMISSION_DENIED, (rpc, caller, code)
        else:
            # Allowed: whatever the call's own outcome (ArchiveModelVersion of the same version twice
            # is FAILED_PRECONDITION, RevokeToken of a made-up id NOT_FOUND), it is not an auth refusal.
            assert code not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
                                grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), (rpc, caller, code)


def test_denied_calls_are_audited(live_server, tokens) -> None:  # type: ignore[no-untyped-def]
    viewer = stub(live_server.address, tokens["viewer"])
    with pytest.raises(grpc.RpcError):
        _call(viewer, "RegisterModel")
    with pytest.raises(grpc.RpcError):
        _call(stub(live_server.address, None), "GetModel")
    events = stub(live_server.address, tokens["admin"]).ListAuditEvents(system_pb2.ListAuditEventsRequest()).events
    outcomes = [(e.rpc, e.outcome, e.token_name) for e in events]
    assert ("RegisterModel", "PERMISSION_DENIED", "test-viewer") in outcomes
    assert ("GetModel", "UNAUTHENTICATED", "") in outcomes


def test_created_token_works_with_its_role_and_stops_after_revoke(live_server) -> None:  # type: ignore[no-untyped-def]
    admin = stub(live_server.address, live_server.admin_token)
    created = admin.CreateToken(system_pb2.CreateTokenRequest(name="ci", role=system_pb2.ROLE_OPERATOR))
    assert created.token and created.id and created.role == system_pb2.ROLE_OPERATOR
    op = stub(live_server.address, created.token)
    op.RegisterModel(registry_pb2.RegisterModelRequest(name="m", version="1", artifact_uri="s3://b/k"))
    assert op.GetModel(registry_pb2.GetModelRequest(name="m")).versions[0].created_by == "ci"
    with pytest.raises(grpc.RpcError) as err:
        op.CreateToken(system_pb2.CreateTokenRequest(name="escalate", role=system_pb2.ROLE_ADMIN))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    revoked = admin.RevokeToken(system_pb2.RevokeTokenRequest(id=created.id))
    assert revoked.revoked
    with pytest.raises(grpc.RpcError) as err:
        op.ListModels(registry_pb2.ListModelsRequest())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as err:
        admin.RevokeToken(system_pb2.RevokeTokenRequest(id=created.id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_token_validation(live_server) -> None:  # type: ignore[no-untyped-def]
    from grpc_helpers import bad_fields

    admin = stub(live_server.address, live_server.admin_token)
    for request, field in [
        (system_pb2.CreateTokenRequest(name="x"), "role"),
        (system_pb2.CreateTokenRequest(name="", role=system_pb2.ROLE_VIEWER), "name"),
        (system_pb2.CreateTokenRequest(name="n" * 129, role=system_pb2.ROLE_VIEWER), "name"),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            admin.CreateToken(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in bad_fields(err.value)
    with pytest.raises(grpc.RpcError) as err:
        admin.RevokeToken(system_pb2.RevokeTokenRequest())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_fields(err.value) == ["id"]


def test_expired_token_is_refused(server_factory) -> None:  # type: ignore[no-untyped-def]
    from google.protobuf.duration_pb2 import Duration

    from modelctl_server.clock import FakeClock

    clock = FakeClock()
    srv = server_factory(clock=clock)
    admin = stub(srv.address, srv.admin_token)
    created = admin.CreateToken(system_pb2.CreateTokenRequest(name="short", role=system_pb2.ROLE_VIEWER,
                                                              ttl=Duration(seconds=60)))
    viewer = stub(srv.address, created.token)
    viewer.ListModels(registry_pb2.ListModelsRequest())
    srv.call(_advance(clock, 61))
    with pytest.raises(grpc.RpcError) as err:
        viewer.ListModels(registry_pb2.ListModelsRequest())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED and "expired" in err.value.details()


async def _advance(clock, seconds: float) -> None:  # type: ignore[no-untyped-def]
    clock.advance(seconds)  # on the server's loop: FakeClock wakes sleepers there


def test_tokens_are_stored_hashed(live_server) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from modelctl_server.store.tables import TokenRow

    secret = live_server.make_token("viewer")
    with live_server.app.db.session() as s:
        hashes = list(s.scalars(select(TokenRow.token_hash)))
    assert hashlib.sha256(secret.encode()).hexdigest() in hashes
    assert all(secret not in h for h in hashes)


def test_admin_token_file_is_private(live_server) -> None:  # type: ignore[no-untyped-def]
    path = live_server.data_dir / "admin.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == live_server.admin_token


def test_health_needs_no_token(live_server) -> None:  # type: ignore[no-untyped-def]
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    channel = grpc.insecure_channel(live_server.address)
    resp = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert resp.status == health_pb2.HealthCheckResponse.SERVING
    resp = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="modelctl.v1.ModelController"))
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


def test_the_last_admin_token_cannot_be_revoked(live_server) -> None:  # type: ignore[no-untyped-def]
    admin = stub(live_server.address, live_server.admin_token)
    first_id = admin.ListAuditEvents(system_pb2.ListAuditEventsRequest()).events  # warm-up call, audited nothing
    assert first_id == []
    second = admin.CreateToken(system_pb2.CreateTokenRequest(name="admin-2", role=system_pb2.ROLE_ADMIN))
    admin2 = stub(live_server.address, second.token)
    bootstrap_id = live_server.app.tokens.authenticate(live_server.admin_token).token_id
    admin2.RevokeToken(system_pb2.RevokeTokenRequest(id=bootstrap_id))
    with pytest.raises(grpc.RpcError) as err:
        admin2.RevokeToken(system_pb2.RevokeTokenRequest(id=second.id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "last admin" in err.value.details()
