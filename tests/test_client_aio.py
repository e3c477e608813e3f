"""`modelctl.AsyncClient` against a real controller: the same API as `Client`, awaited."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from pathlib import Path
from typing import AsyncIterator

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import modelctl
from modelctl import ConnectionOptions, errors
from modelctl._channel import create_aio_channel
from modelctl.types import ModelVersionState, Role


@pytest.fixture
async def admin(live_server) -> AsyncIterator[modelctl.AsyncClient]:  # type: ignore[no-untyped-def]
    async with modelctl.AsyncClient(live_server.address, token=live_server.admin_token) as client:
        yield client


async def test_upload_register_and_get(admin: modelctl.AsyncClient, tmp_path: Path) -> None:
    data = os.urandom(2_200_000)
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    progress: list[int] = []
    registered = await admin.register_model("fraud", "1.0.0", path, framework="onnx",
                                            progress=lambda sent, _total: progress.append(sent))
    assert registered.model_version.sha256 == hashlib.sha256(data).hexdigest()
    assert progress[-1] == len(data)
    model = await admin.get_model("fraud")
    assert model.versions[0].size_bytes == len(data)
    assert model.versions[0].state == ModelVersionState.Value("MODEL_VERSION_STATE_READY")


async def test_upload_from_a_file_object_streams_the_bytes(admin: modelctl.AsyncClient) -> None:
    data = b"weights" * 50_000
    upload = await admin.upload_artifact(io.BytesIO(data), filename="w.bin", chunk_size=64 * 1024)
    assert (upload.sha256, upload.size_bytes) == (hashlib.sha256(data).hexdigest(), len(data))


async def test_iterating_every_page(admin: modelctl.AsyncClient) -> None:
    await asyncio.gather(*(admin.register_model(f"m{i}", "1", f"s3://b/{i}") for i in range(5)))
    names = [model.name async for model in admin.iter_models(page_size=2)]
    assert names == [f"m{i}" for i in range(5)]
    await admin.archive_version("m0", "1")
    versions = {m.name: len(m.versions) async for m in admin.iter_models(page_size=2)}
    assert versions == {"m0": 0, "m1": 1, "m2": 1, "m3": 1, "m4": 1}  # archived versions are left out


async def test_errors_carry_codes_and_fields(admin: modelctl.AsyncClient, live_server) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(errors.InvalidArgumentError) as caught:
        await admin.register_model("Bad Name", "1", "s3://b/1")
    assert [v.field for v in caught.value.violations] == ["name"]
    with pytest.raises(errors.NotFoundError):
        await admin.get_model("missing")
    async with modelctl.AsyncClient(live_server.address, token=live_server.make_token("viewer")) as viewer:
        with pytest.raises(errors.PermissionDeniedError):
            await viewer.restart()


async def test_unreachable_server() -> None:
    async with modelctl.AsyncClient("127.0.0.1:1", retry=None) as client:
        with pytest.raises(errors.ServerUnreachableError) as caught:
            await client.system_status()
    assert caught.value.address == "127.0.0.1:1"


async def test_tokens_status_and_audit(admin: modelctl.AsyncClient, live_server) -> None:  # type: ignore[no-untyped-def]
    issued = await admin.create_token("ci", "viewer")
    assert issued.role == Role.Value("ROLE_VIEWER") and not issued.HasField("expires_at")
    async with modelctl.AsyncClient(live_server.address, token=issued.token) as viewer:
        assert (await viewer.system_status()).database.reachable
        await admin.revoke_token(issued.id)
        with pytest.raises(errors.UnauthenticatedError):
            await viewer.system_status()
    token_calls = [event.rpc async for event in admin.iter_audit_events() if event.rpc.endswith("Token")]
    assert token_calls == ["RevokeToken", "CreateToken"]  # newest first


async def test_server_streams_pass_through_the_aio_token_interceptors(live_server) -> None:  # type: ignore[no-untyped-def]
    channel = create_aio_channel(ConnectionOptions(address=live_server.address, token=live_server.admin_token))
    async with channel:
        stream = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=10)
        async for update in stream:
            assert update.status == health_pb2.HealthCheckResponse.SERVING
            break
        stream.cancel()
