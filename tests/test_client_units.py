"""The SDK's pure parts: options from the environment, channel arguments, artifacts, error conversion."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
from pathlib import Path

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from modelctl import ConnectionOptions, RetryPolicy, errors
from modelctl._artifacts import PreparedArtifact, is_uri
from modelctl._channel import IDEMPOTENT_READS, MAX_MESSAGE_BYTES, channel_arguments
from modelctl._system import create_token_request, role_name, role_value
from modelctl.v1 import system_pb2

# --- options ----------------------------------------------------------------------------------------------


def test_options_default_to_localhost_without_a_token() -> None:
    options = ConnectionOptions.from_env({})
    assert options.address == "127.0.0.1:50051"
    assert options.token is None
    assert not options.uses_tls


def test_options_read_modelctl_addr_and_token_and_explicit_values_win() -> None:
    env = {"MODELCTL_ADDR": "ctl.example:443", "MODELCTL_TOKEN": "secret"}
    assert ConnectionOptions.from_env(env).address == "ctl.example:443"
    assert ConnectionOptions.from_env(env).token == "secret"
    overridden = ConnectionOptions.from_env(env, address="other:1", token=None)
    assert (overridden.address, overridden.token) == ("other:1", "secret")


def test_options_refuse_a_client_certificate_without_its_key() -> None:
    with pytest.raises(ValueError, match="key"):
        ConnectionOptions(client_cert="cert.pem")


def test_a_ca_certificate_turns_tls_on() -> None:
    assert ConnectionOptions(ca_cert="ca.pem").uses_tls


def test_retry_policy_refuses_what_grpc_would_silently_ignore() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=9)


# --- channel ----------------------------------------------------------------------------------------------


def test_channel_keepalive_suits_long_streams_and_the_server_ping_policy() -> None:
    args = dict(channel_arguments(ConnectionOptions()))
    assert args["grpc.keepalive_time_ms"] == 30_000  # the server accepts pings every 10 s or slower
    assert args["grpc.keepalive_permit_without_calls"] == 0
    assert args["grpc.max_send_message_length"] == MAX_MESSAGE_BYTES == 16 * 1024 * 1024
    assert args["grpc.max_receive_message_length"] == MAX_MESSAGE_BYTES


def test_only_idempotent_reads_are_retried_and_only_on_unavailable() -> None:
    config = json.loads(dict(channel_arguments(ConnectionOptions()))["grpc.service_config"])
    (method_config,) = config["methodConfig"]
    methods = {entry["method"] for entry in method_config["name"]}
    assert methods == set(IDEMPOTENT_READS) == {
        "ListModels", "GetModel", "GetSystemStatus", "ListAuditEvents", "GetDeployment", "ListDeployments",
        "WatchDeployment", "GetTrafficSplit", "WatchTrafficSplit", "WatchAssignment"}
    assert method_config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]


def test_retries_can_be_turned_off() -> None:
    args = dict(channel_arguments(ConnectionOptions(retry=None)))
    assert "grpc.service_config" not in args
    assert args["grpc.enable_retries"] == 0


# --- artifacts --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("s3://bucket/model.pkl", True), ("https://host/m.onnx", True), ("file:///models/m.pkl", True),
    ("model.pkl", False), ("/tmp/model.pkl", False), ("C:\\models\\m.pkl", False),
])
def test_uris_are_told_from_local_paths(text: str, expected: bool) -> None:
    assert is_uri(text) is expected


def test_a_path_is_hashed_then_streamed_header_first(tmp_path: Path) -> None:
    data = os.urandom(2500)
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    seen: list[tuple[int, int]] = []
    with PreparedArtifact(path, chunk_size=1000) as artifact:
        messages = list(artifact.requests(lambda sent, total: seen.append((sent, total))))
    header = messages[0].header
    assert (header.filename, header.sha256, header.size_bytes) == ("model.pkl", hashlib.sha256(data).hexdigest(),
                                                                   2500)
    assert b"".join(m.chunk for m in messages[1:]) == data
    assert [len(m.chunk) for m in messages[1:]] == [1000, 1000, 500]
    assert seen == [(1000, 2500), (2000, 2500), (2500, 2500)]


class _Pipe(io.RawIOBase):
    """A readable stream that cannot seek, like stdin or a socket."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        chunk = self._data.read(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)


def test_an_unseekable_stream_is_spooled_so_it_can_be_hashed_first() -> None:
    data = os.urandom(3000)
    with PreparedArtifact(_Pipe(data), chunk_size=1024) as artifact:
        messages = list(artifact.requests())
    assert messages[0].header.sha256 == hashlib.sha256(data).hexdigest()
    assert b"".join(m.chunk for m in messages[1:]) == data


def test_a_known_digest_skips_hashing_and_the_caller_file_stays_open() -> None:
    source = io.BytesIO(b"abc")
    with PreparedArtifact(source, sha256="AB" * 32, filename="x.bin") as artifact:
        assert artifact.header().header.sha256 == "ab" * 32
        assert artifact.size == 3
    assert not source.closed


def test_an_oversized_chunk_is_refused_before_anything_is_read() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        PreparedArtifact(io.BytesIO(b""), chunk_size=64 * 1024 * 1024)


# --- tokens -----------------------------------------------------------------------------------------------


def test_roles_by_name_or_enum_value() -> None:
    assert role_value("Viewer") == system_pb2.ROLE_VIEWER
    assert role_value(system_pb2.ROLE_ADMIN) == system_pb2.ROLE_ADMIN
    assert role_name(system_pb2.ROLE_OPERATOR) == "operator"
    with pytest.raises(ValueError, match="unknown role"):
        role_value("root")


def test_token_ttl_from_seconds_or_timedelta() -> None:
    assert create_token_request("ci", "viewer", 90).ttl.seconds == 90
    assert create_token_request("ci", "viewer", dt.timedelta(days=30)).ttl.seconds == 30 * 86400
    assert not create_token_request("ci", "viewer").HasField("ttl")
    with pytest.raises(ValueError, match="positive"):
        create_token_request("ci", "viewer", 0)


# --- errors -----------------------------------------------------------------------------------------------


class _FailedCall(grpc.RpcError):
    """What a failed call looks like to the SDK: code, details and trailing metadata."""

    def __init__(self, code: grpc.StatusCode, details: str, trailers: tuple = ()) -> None:
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple:
        return self._trailers


def _rich(code: grpc.StatusCode, message: str, *details: object) -> _FailedCall:
    packed = []
    for detail in details:
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)  # type: ignore[arg-type]
        packed.append(any_detail)
    status = rpc_status.to_status(status_pb2.Status(code=getattr(code_pb2, code.name), message=message,
                                                    details=packed))
    return _FailedCall(status.code, status.details, status.trailing_metadata)


def test_invalid_argument_carries_each_bad_field() -> None:
    bad_request = error_details_pb2.BadRequest(field_violations=[
        error_details_pb2.BadRequest.FieldViolation(field="name", description="is required"),
        error_details_pb2.BadRequest.FieldViolation(field="tags[team]", description="too long"),
    ])
    error = errors.from_rpc_error(_rich(grpc.StatusCode.INVALID_ARGUMENT, "bad request", bad_request))
    assert isinstance(error, errors.InvalidArgumentError)
    assert [v.field for v in error.violations] == ["name", "tags[team]"]
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert isinstance(error, grpc.RpcError)  # code written against the raw stubs still catches it


@pytest.mark.parametrize("code, cls", [
    (grpc.StatusCode.NOT_FOUND, errors.NotFoundError),
    (grpc.StatusCode.ALREADY_EXISTS, errors.AlreadyExistsError),
    (grpc.StatusCode.FAILED_PRECONDITION, errors.FailedPreconditionError),
    (grpc.StatusCode.UNAUTHENTICATED, errors.UnauthenticatedError),
    (grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDeniedError),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, errors.ResourceExhaustedError),
    (grpc.StatusCode.DEADLINE_EXCEEDED, errors.DeadlineExceededError),
    (grpc.StatusCode.INTERNAL, errors.InternalError),
    (grpc.StatusCode.ABORTED, errors.ModelctlError),
])
def test_each_status_code_has_its_class(code: grpc.StatusCode, cls: type) -> None:
    error = errors.from_rpc_error(_FailedCall(code, "it failed"))
    assert type(error) is cls
    assert (error.code, error.message) == (code, "it failed")


def test_unavailable_without_server_details_means_the_server_was_never_reached() -> None:
    refused = _FailedCall(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; Connection refused")
    error = errors.from_rpc_error(refused, address="127.0.0.1:1")
    assert isinstance(error, errors.ServerUnreachableError)
    assert error.address == "127.0.0.1:1"
    assert "Connection refused" in error.reason


def test_unavailable_from_the_server_itself_stays_plain_unavailable() -> None:
    down = _rich(grpc.StatusCode.UNAVAILABLE, "database unreachable", error_details_pb2.RetryInfo())
    error = errors.from_rpc_error(down, address="127.0.0.1:1")
    assert type(error) is errors.UnavailableError
    assert error.retriable


def test_a_lost_connection_is_retried_within_seconds_not_minutes() -> None:
    args = dict(channel_arguments(ConnectionOptions()))
    assert args["grpc.max_reconnect_backoff_ms"] <= 5_000  # gRPC's default is 120 s: a watch would go stale
