"""`modelctl.Client` against a real controller (the `live_server` fixture)."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from concurrent import futures
from pathlib import Path
from typing import Iterator

import grpc
import pytest
import trustme
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

import modelctl
from modelctl import ConnectionOptions, RetryPolicy, errors
from modelctl._channel import create_channel
from modelctl.types import ModelVersionState, Role
from modelctl.v1 import controller_pb2_grpc, registry_pb2


@pytest.fixture
def admin(live_server) -> Iterator[modelctl.Client]:  # type: ignore[no-untyped-def]
    with modelctl.Client(live_server.address, token=live_server.admin_token) as client:
        yield client


def _artifact(tmp_path: Path, size: int = 300_000) -> tuple[Path, str]:
    data = os.urandom(size)
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


# --- lifecycle --------------------------------------------------------------------------------------------


def test_upload_then_register_records_the_sha256(admin: modelctl.Client, tmp_path: Path) -> None:
    path, digest = _artifact(tmp_path, 2_500_000)
    progress: list[tuple[int, int]] = []
    upload = admin.upload_artifact(path, progress=lambda sent, total: progress.append((sent, total)))
    assert (upload.sha256, upload.size_bytes) == (digest, 2_500_000)
    assert progress[-1] == (2_500_000, 2_500_000) and len(progress) == 3  # 1 MiB chunks

    registered = admin.register_model("fraud", "1.0.0", upload.artifact_uri, sha256=upload.sha256,
                                      framework="sklearn", metrics={"auc": 0.91}, tags={"team": "risk"})
    version = registered.model_version
    assert (version.name, version.version, version.sha256) == ("fraud", "1.0.0", digest)
    assert version.state == ModelVersionState.Value("MODEL_VERSION_STATE_READY")
    assert dict(version.metrics) == {"auc": 0.91} and dict(version.tags) == {"team": "risk"}
    assert admin.get_model("fraud").versions[0].sha256 == digest


def test_register_a_local_file_in_one_call(admin: modelctl.Client, tmp_path: Path) -> None:
    path, digest = _artifact(tmp_path)
    assert admin.register_model("fraud", "1", path).model_version.sha256 == digest
    from_file_object = admin.register_model("fraud", "2", io.BytesIO(path.read_bytes()))
    assert from_file_object.model_version.sha256 == digest
    assert from_file_object.model_version.artifact_uri.startswith("file://")


def test_a_uri_is_recorded_as_is(admin: modelctl.Client) -> None:
    version = admin.register_model("churn", "2", "s3://models/churn/2.onnx").model_version
    assert (version.artifact_uri, version.sha256) == ("s3://models/churn/2.onnx", "")


def test_a_wrong_declared_digest_is_refused_naming_the_header_field(admin: modelctl.Client, tmp_path: Path) -> None:
    path, _ = _artifact(tmp_path)
    with pytest.raises(errors.InvalidArgumentError) as caught:
        admin.upload_artifact(path, sha256="0" * 64)
    assert [v.field for v in caught.value.violations] == ["header.sha256"]


def test_pages_and_filters(admin: modelctl.Client) -> None:
    for index in range(5):
        admin.register_model(f"model-{index}", "1", f"gs://bucket/{index}.bin",
                             tags={"team": "risk" if index % 2 else "growth"})
    first = admin.list_models(page_size=2)
    assert len(first.models) == 2 and first.next_page_token
    assert [m.name for m in admin.iter_models(page_size=2)] == [f"model-{i}" for i in range(5)]
    assert [m.name for m in admin.iter_models(tags={"team": "risk"})] == ["model-1", "model-3"]
    assert [m.name for m in admin.iter_models(name_prefix="model-4")] == ["model-4"]


def test_archive_hides_a_version_from_default_listings(admin: modelctl.Client) -> None:
    admin.register_model("fraud", "1", "s3://b/1")
    admin.register_model("fraud", "2", "s3://b/2")
    archived = admin.archive_version("fraud", "1")
    assert archived.state == ModelVersionState.Value("MODEL_VERSION_STATE_ARCHIVED")
    (listed,) = admin.iter_models()
    assert [v.version for v in listed.versions] == ["2"]
    (with_archived,) = admin.iter_models(include_archived=True)
    assert [v.version for v in with_archived.versions] == ["2", "1"]


def test_validation_errors_name_every_bad_field(admin: modelctl.Client) -> None:
    with pytest.raises(errors.InvalidArgumentError) as caught:
        admin.register_model("Not A Name", "", "ftp://host/x")
    assert {v.field for v in caught.value.violations} == {"name", "version", "artifact_uri"}


def test_status_codes_become_their_error_classes(admin: modelctl.Client) -> None:
    with pytest.raises(errors.NotFoundError):
        admin.get_model("nobody")
    admin.register_model("fraud", "1", "s3://b/1")
    with pytest.raises(errors.AlreadyExistsError):
        admin.register_model("fraud", "1", "s3://b/1")


# --- auth and tokens --------------------------------------------------------------------------------------


def test_the_token_travels_as_bearer_metadata_on_plaintext(live_server) -> None:  # type: ignore[no-untyped-def]
    with modelctl.Client(live_server.address) as anonymous, pytest.raises(errors.UnauthenticatedError):
        anonymous.system_status()
    with modelctl.Client(live_server.address, token="mctl_unknown") as stranger, \
            pytest.raises(errors.UnauthenticatedError):
        stranger.system_status()
    with modelctl.Client(live_server.address, token=live_server.make_token("viewer")) as viewer:
        assert viewer.system_status().auth_enabled
        with pytest.raises(errors.PermissionDeniedError):
            viewer.register_model("fraud", "1", "s3://b/1")


def test_created_tokens_work_until_revoked(admin: modelctl.Client, live_server) -> None:  # type: ignore[no-untyped-def]
    issued = admin.create_token("ci", "operator", ttl=3600)
    assert (issued.name, issued.role) == ("ci", Role.Value("ROLE_OPERATOR"))
    assert issued.HasField("expires_at")
    with modelctl.Client(live_server.address, token=issued.token) as ci:
        ci.register_model("fraud", "1", "s3://b/1")
        revoked = admin.revoke_token(issued.id)
        assert revoked.revoked
        with pytest.raises(errors.UnauthenticatedError):
            ci.get_model("fraud")


def test_address_and_token_come_from_the_environment(live_server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MODELCTL_ADDR", live_server.address)
    monkeypatch.setenv("MODELCTL_TOKEN", live_server.admin_token)
    with modelctl.Client() as client:
        assert client.address == live_server.address
        assert client.system_status().version


# --- system -----------------------------------------------------------------------------------------------


def test_status_restart_and_the_audit_log(admin: modelctl.Client) -> None:
    admin.register_model("fraud", "1", "s3://b/1")
    status = admin.system_status()
    assert status.database.reachable and status.model_count == 1
    restarted = admin.restart("reload after config change")
    assert restarted.status.version == status.version
    events = list(admin.iter_audit_events(page_size=1))
    assert [e.rpc for e in events][:2] == ["RestartSystem", "RegisterModel"]  # newest first
    assert [e.target for e in admin.iter_audit_events(rpc="RegisterModel")] == ["fraud:1"]


# --- retries: a scripted servicer stands in for a controller that is briefly overloaded -------------------


class _Flaky(controller_pb2_grpc.ModelControllerServicer):
    """Answers UNAVAILABLE (as the real controller does, with details) a set number of times."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def _count(self, rpc: str, context: grpc.ServicerContext) -> None:
        with self._lock:
            self.calls[rpc] = self.calls.get(rpc, 0) + 1
            failing = self.calls[rpc] <= self.failures
        if failing:
            retry = any_pb2.Any()
            retry.Pack(error_details_pb2.RetryInfo())
            context.abort_with_status(rpc_status.to_status(status_pb2.Status(
                code=code_pb2.UNAVAILABLE, message="database unreachable", details=[retry])))

    def GetModel(self, request, context):  # type: ignore[no-untyped-def]
        self._count("GetModel", context)
        return registry_pb2.Model(name=request.name)

    def RegisterModel(self, request, context):  # type: ignore[no-untyped-def]
        self._count("RegisterModel", context)
        return registry_pb2.RegisterModelResponse()


@pytest.fixture
def flaky() -> Iterator[tuple[_Flaky, str]]:
    servicer = _Flaky(failures=2)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    controller_pb2_grpc.add_ModelControllerServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(0)


FAST_RETRY = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05)


def test_reads_are_retried_on_unavailable(flaky: tuple[_Flaky, str]) -> None:
    servicer, address = flaky
    with modelctl.Client(address, retry=FAST_RETRY) as client:
        assert client.get_model("fraud").name == "fraud"
    assert servicer.calls["GetModel"] == 3


def test_writes_are_never_retried(flaky: tuple[_Flaky, str]) -> None:
    servicer, address = flaky
    with modelctl.Client(address, retry=FAST_RETRY) as client, pytest.raises(errors.UnavailableError) as caught:
        client.register_model("fraud", "1", "s3://b/1")
    assert servicer.calls["RegisterModel"] == 1
    assert not isinstance(caught.value, errors.ServerUnreachableError)


def test_retries_can_be_switched_off(flaky: tuple[_Flaky, str]) -> None:
    servicer, address = flaky
    with modelctl.Client(options=ConnectionOptions(address=address, retry=None)) as client, \
            pytest.raises(errors.UnavailableError):
        client.get_model("fraud")
    assert servicer.calls["GetModel"] == 1


# --- TLS --------------------------------------------------------------------------------------------------


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    """A server certificate for 127.0.0.1 and a client certificate, each from its own CA."""
    server_ca, client_ca = trustme.CA(), trustme.CA()
    files = {name: tmp_path / f"{name}.pem" for name in
             ("server_ca", "server_cert", "server_key", "client_ca", "client_cert", "client_key")}
    server_ca.cert_pem.write_to_path(str(files["server_ca"]))
    client_ca.cert_pem.write_to_path(str(files["client_ca"]))
    for prefix, leaf in (("server", server_ca.issue_cert("127.0.0.1")), ("client", client_ca.issue_cert("ci"))):
        files[f"{prefix}_cert"].write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(files[f"{prefix}_key"]))
    return files


def test_mutual_tls_with_a_ca_file_and_a_client_certificate(server_factory, pki: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(MODELCTL_SERVER_TLS_CERT=str(pki["server_cert"]),
                            MODELCTL_SERVER_TLS_KEY=str(pki["server_key"]),
                            MODELCTL_SERVER_TLS_CLIENT_CA=str(pki["client_ca"]))
    with modelctl.Client(server.address, token=server.admin_token, ca_cert=str(pki["server_ca"]),
                         client_cert=str(pki["client_cert"]), client_key=str(pki["client_key"])) as client:
        assert client.system_status().tls_enabled
    without_certificate = ConnectionOptions(address=server.address, token=server.admin_token,
                                            ca_cert=str(pki["server_ca"]), retry=None, timeout=10)
    with modelctl.Client(options=without_certificate) as client, pytest.raises(errors.ServerUnreachableError):
        client.system_status()


def test_server_streams_pass_through_the_token_interceptor(live_server) -> None:  # type: ignore[no-untyped-def]
    # Later RPCs (WatchDeployment, StreamAlerts) are server streams; the health Watch stands in for them.
    channel = create_channel(ConnectionOptions(address=live_server.address, token=live_server.admin_token))
    with channel:
        stream = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=10)
        assert next(stream).status == health_pb2.HealthCheckResponse.SERVING
        stream.cancel()


def test_a_failure_while_streaming_an_upload_is_raised_as_itself(live_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(os.urandom(3 * 1024 * 1024))

    def progress(sent: int, total: int) -> None:
        raise RuntimeError("progress display broke")

    with modelctl.Client(live_server.address, token=live_server.admin_token) as client:
        with pytest.raises(RuntimeError, match="progress display broke"):
            client.upload_artifact(artifact, progress=progress)
