"""A short fuzz run over every RPC, requests generated from the descriptors (see fuzz_requests).

For each RPC of ModelController (found in the descriptor, so a new one is fuzzed
without editing this file), hypothesis generates requests and identities. Each
call must answer with a status other than UNKNOWN or INTERNAL; a call that is
refused must leave the state it could have touched as it was (models, versions,
deployments, traffic, tokens, alerts, silences); and after it all the server
still answers health checks SERVING. `scripts/fuzz.py` is the long run.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelctl.v1 import alert_pb2, registry_pb2, system_pb2
from modelctl.v1 import deployment_pb2 as dpb
from modelctl_server.clock import FakeClock

from conftest import ThreadedServer, make_settings
from fuzz_requests import IDENTITIES, METHODS, Target, acceptable, requests
from grpc_helpers import stub

#: Per RPC; about 45 RPCs make this a run of 30-60 s on two cores.
EXAMPLES = 10
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadedServer, Target, Any]]:
    """One server for the run, on a fake clock so no rollout moves between two snapshots by itself."""
    data: Path = tmp_path_factory.mktemp("fuzz")
    srv = ThreadedServer(make_settings(data / "data"), clock=FakeClock(dt.datetime.now(dt.timezone.utc)))
    admin = stub(srv.address, srv.admin_token)
    for v in ("1", "2"):
        admin.RegisterModel(registry_pb2.RegisterModelRequest(name="fraud", version=v, artifact_uri=f"s3://m/{v}"))
    admin.DeployModel(dpb.DeployModelRequest(model="fraud", version="1", strategy=dpb.DEPLOYMENT_STRATEGY_IMMEDIATE,
                                             params=dpb.DeploymentParams(bake_time=Duration(seconds=0))))
    for _ in range(2):
        srv.call(srv.app.reconciler.tick())
    admin.RegisterInstance(dpb.RegisterInstanceRequest(model="fraud", instance_id="pod-a"))
    tokens = {role: srv.make_token(role) for role in ("viewer", "operator", "admin")}
    target = Target(srv.address, tokens)
    try:
        yield srv, target, admin
    finally:
        target.close()
        srv.stop()


def _snapshot(srv: ThreadedServer, admin: Any) -> tuple[Any, ...]:
    """What a refused call must not have changed. The reconcile loop settles first."""
    srv.call(srv.app.reconciler.tick())
    return (
        admin.ListModels(registry_pb2.ListModelsRequest(page_size=100, include_archived=True)),
        admin.ListDeployments(dpb.ListDeploymentsRequest(page_size=100)),
        admin.GetTrafficSplit(dpb.GetTrafficSplitRequest(model="fraud")),
        admin.ListTokens(system_pb2.ListTokensRequest(include_inactive=True)),
        admin.ListAlerts(alert_pb2.ListAlertsRequest(page_size=100)),
        admin.ListSilences(alert_pb2.ListSilencesRequest(include_expired=True)),
    )


@pytest.mark.parametrize("method", METHODS, ids=[m.name for m in METHODS])
def test_no_request_gets_unknown_or_internal_and_refusals_change_nothing(fuzzed: Any, method: Any) -> None:
    srv, target, admin = fuzzed

    @FUZZ_SETTINGS
    @given(payload=requests(method), identity=st.sampled_from(IDENTITIES))
    def one_call(payload: bytes, identity: str) -> None:
        before = _snapshot(srv, admin)
        outcome = target.call(method, payload, identity)
        assert acceptable(method, outcome), (method.name, identity, outcome, payload[:200].hex())
        if outcome.code != grpc.StatusCode.OK and not method.server_streaming:
            assert _snapshot(srv, admin) == before, (method.name, identity, outcome)

    one_call()


def test_the_server_is_still_serving_after_the_run(fuzzed: Any) -> None:
    srv, _, admin = fuzzed
    with grpc.insecure_channel(srv.address) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    assert admin.GetModel(registry_pb2.GetModelRequest(name="fraud")).name == "fraud"
