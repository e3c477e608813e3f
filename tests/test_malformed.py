"""No request, however malformed, gets UNKNOWN or INTERNAL or takes the server down."""

from __future__ import annotations

import hashlib
from typing import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelctl.v1 import controller_pb2, registry_pb2, system_pb2

from conftest import ThreadedServer
from grpc_helpers import bad_fields, stub

MAX_MESSAGE = 65536
SERVICE = controller_pb2.DESCRIPTOR.services_by_name["ModelController"]
UNARY = [m.name for m in SERVICE.methods if not m.client_streaming and not m.server_streaming]
CLIENT_STREAMING = [m.name for m in SERVICE.methods if m.client_streaming]
SERVER_STREAMING = [m.name for m in SERVICE.methods if m.server_streaming and not m.client_streaming]
GARBAGE = [
    pytest.param(b"\xff\xff\xff\xff", id="bad-tag"),
    pytest.param(b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", id="huge-length"),
    pytest.param(b"\x0a\x05ab", id="truncated"),
    pytest.param(b"\x80", id="unterminated-varint"),
    pytest.param(b"\x0f", id="end-group-tag"),
]


@pytest.fixture
def server(server_factory: Callable[..., ThreadedServer]) -> ThreadedServer:
    return server_factory(MODELCTL_SERVER_MAX_MESSAGE_BYTES=str(MAX_MESSAGE))


@pytest.fixture
def channel(server: ThreadedServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as ch:
        yield ch


def path(rpc: str) -> str:
    return f"/{SERVICE.full_name}/{rpc}"


def raw_unary(channel: grpc.Channel, method: str, payload: bytes, token: str | None) -> grpc.RpcError:
    """Send `payload` as-is as the request of a unary method; return the error it must cause."""
    call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    metadata = [("authorization", f"Bearer {token}")] if token else None
    with pytest.raises(grpc.RpcError) as err:
        call(payload, metadata=metadata, timeout=10)
    return err.value


def raw_upload(channel: grpc.Channel, messages: list[bytes], token: str) -> grpc.RpcError:
    call = channel.stream_unary(path("UploadArtifact"), request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as err:
        call(iter(messages), metadata=[("authorization", f"Bearer {token}")], timeout=10)
    return err.value


def assert_still_serving(server: ThreadedServer) -> None:
    with grpc.insecure_channel(server.address) as ch:
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    status = stub(server.address, server.admin_token).GetSystemStatus(system_pb2.GetSystemStatusRequest(),
                                                                      timeout=10)
    assert status.database.reachable


def header(data: bytes) -> registry_pb2.UploadArtifactRequest:
    return registry_pb2.UploadArtifactRequest(header=registry_pb2.ArtifactHeader(
        filename="m.bin", sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data)))


def chunk(data: bytes) -> registry_pb2.UploadArtifactRequest:
    return registry_pb2.UploadArtifactRequest(chunk=data)


def test_the_lists_cover_the_whole_service() -> None:
    covered = set(UNARY) | set(CLIENT_STREAMING) | set(SERVER_STREAMING)
    assert covered == {m.name for m in SERVICE.methods}, "a new kind of RPC: cover it here"


# --- garbage bytes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rpc", UNARY)
def test_garbage_to_every_unary_rpc_is_invalid_argument(server: ThreadedServer, channel: grpc.Channel,
                                                        rpc: str) -> None:
    for payload in GARBAGE:
        err = raw_unary(channel, path(rpc), payload.values[0], server.admin_token)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (rpc, payload.id, err.code(), err.details())
        assert "malformed request" in err.details()
    assert_still_serving(server)


@pytest.mark.parametrize("rpc", SERVER_STREAMING)
def test_garbage_to_every_server_stream_is_invalid_argument(server: ThreadedServer, channel: grpc.Channel,
                                                            rpc: str) -> None:
    call = channel.unary_stream(path(rpc), request_serializer=None, response_deserializer=None)
    for payload in GARBAGE:
        with pytest.raises(grpc.RpcError) as err:
            list(call(payload.values[0], metadata=[("authorization", f"Bearer {server.admin_token}")], timeout=10))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (rpc, payload.id, err.value.code())
    assert_still_serving(server)


def _string_fields() -> list[tuple[str, int]]:
    """(rpc, field number) for every string field of every unary request type."""
    return [(m.name, f.number) for m in SERVICE.methods if m.name in UNARY
            for f in m.input_type.fields if f.type == f.TYPE_STRING]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


@pytest.mark.parametrize("rpc,number", _string_fields())
def test_invalid_utf8_in_a_string_field_is_invalid_argument(server: ThreadedServer, channel: grpc.Channel,
                                                            rpc: str, number: int) -> None:
    payload = _varint(number << 3 | 2) + b"\x02\xff\xfe"
    err = raw_unary(channel, path(rpc), payload, server.admin_token)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (rpc, number, err.details())


def test_garbage_is_refused_only_after_authentication(server: ThreadedServer, channel: grpc.Channel) -> None:
    err = raw_unary(channel, path("GetModel"), b"\xff\xff", token=None)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    viewer = server.make_token("viewer")
    err = raw_unary(channel, path("CreateToken"), b"\xff\xff", token=viewer)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


def test_malformed_mutation_is_audited(server: ThreadedServer, channel: grpc.Channel) -> None:
    raw_unary(channel, path("RegisterModel"), b"\xff\xff", server.admin_token)
    events = stub(server.address, server.admin_token).ListAuditEvents(
        system_pb2.ListAuditEventsRequest(rpc="RegisterModel"), timeout=10).events
    assert [e.outcome for e in events] == ["INVALID_ARGUMENT"]


@pytest.mark.parametrize("position", ["first", "later"])
def test_garbage_in_an_upload_stream_is_invalid_argument_and_leaves_nothing(
        server: ThreadedServer, channel: grpc.Channel, position: str) -> None:
    data = b"x" * 1000
    messages = [b"\xff\xff"] if position == "first" else [
        header(data).SerializeToString(), chunk(data[:500]).SerializeToString(), b"\xff\xff"]
    err = raw_upload(channel, messages, server.admin_token)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert list((server.data_dir / "models" / "tmp").glob("*")) == []
    assert_still_serving(server)


@pytest.mark.parametrize("method", ["/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch",
                                    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"])
def test_garbage_to_health_and_reflection_is_invalid_argument(server: ThreadedServer, channel: grpc.Channel,
                                                              method: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        if method.endswith("Check"):
            channel.unary_unary(method)(b"\xff\xff", timeout=10)
        elif method.endswith("Watch"):
            list(channel.unary_stream(method)(b"\xff\xff", timeout=10))
        else:
            list(channel.stream_stream(method)(iter([b"\xff\xff"]), timeout=10))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert_still_serving(server)


def test_unknown_method_is_unimplemented(server: ThreadedServer, channel: grpc.Channel) -> None:
    err = raw_unary(channel, path("DropAllTables"), b"", server.admin_token)
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED


def test_unknown_fields_are_ignored_not_fatal(server: ThreadedServer, channel: grpc.Channel) -> None:
    # field 99 (varint) is unknown to GetSystemStatusRequest: newer clients may send fields we do not know
    call = channel.unary_unary(path("GetSystemStatus"), request_serializer=None,
                               response_deserializer=system_pb2.SystemStatus.FromString)
    status = call(b"\x98\x06\x01", metadata=[("authorization", f"Bearer {server.admin_token}")], timeout=10)
    assert status.database.reachable


# --- size limits ------------------------------------------------------------------------------------------


def test_unary_message_over_the_limit_is_resource_exhausted(server: ThreadedServer,
                                                            channel: grpc.Channel) -> None:
    request = registry_pb2.RegisterModelRequest(name="big", version="1", artifact_uri="s3://b/k",
                                                description="d" * MAX_MESSAGE)
    err = raw_unary(channel, path("RegisterModel"), request.SerializeToString(), server.admin_token)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_still_serving(server)


def test_upload_chunk_over_the_limit_is_resource_exhausted_and_leaves_nothing(
        server: ThreadedServer, channel: grpc.Channel
) -> None:
    data = b"y" * (MAX_MESSAGE + 1)
    err = raw_upload(channel, [header(data).SerializeToString(), chunk(data).SerializeToString()],
                     server.admin_token)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert list((server.data_dir / "models" / "tmp").glob("*")) == []
    assert_still_serving(server)


def test_upload_in_chunks_under_the_limit_is_fine(server: ThreadedServer) -> None:
    data = bytes(range(256)) * 1024  # 256 KiB, four times the message limit, in 32 KiB chunks
    requests = [header(data)] + [chunk(data[i:i + 32768]) for i in range(0, len(data), 32768)]
    response = stub(server.address, server.admin_token).UploadArtifact(iter(requests), timeout=10)
    assert response.sha256 == hashlib.sha256(data).hexdigest()


# --- upload stream shape ----------------------------------------------------------------------------------


def test_upload_starting_with_a_chunk_names_header(server: ThreadedServer) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub(server.address, server.admin_token).UploadArtifact(iter([chunk(b"abc"), chunk(b"def")]),
                                                                timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(err.value) == ["header"]


def test_empty_upload_stream_names_header(server: ThreadedServer) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub(server.address, server.admin_token).UploadArtifact(iter([]), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(err.value) == ["header"]


def test_second_header_in_an_upload_names_header_and_leaves_nothing(server: ThreadedServer) -> None:
    data = b"z" * 100
    requests = [header(data), chunk(data), header(data)]
    with pytest.raises(grpc.RpcError) as err:
        stub(server.address, server.admin_token).UploadArtifact(iter(requests), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(err.value) == ["header"]
    assert list((server.data_dir / "models" / "tmp").glob("*")) == []


def test_empty_oneof_message_in_an_upload_is_invalid_argument(server: ThreadedServer) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub(server.address, server.admin_token).UploadArtifact(iter([registry_pb2.UploadArtifactRequest()]),
                                                                timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(err.value) == ["header"]
