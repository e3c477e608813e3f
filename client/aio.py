"""`modelctl.AsyncClient`: the asyncio SDK, method for method the same as `Client`."""

from __future__ import annotations

import grpc.aio

from modelctl.v1 import controller_pb2_grpc as _grpc

from ._alerts import AsyncAlertCalls
from ._channel import create_aio_channel
from ._dataplane import AsyncDataPlaneCalls
from ._deployments import AsyncDeploymentCalls
from ._drift import AsyncDriftCalls
from ._experiments import AsyncExperimentCalls
from ._lifecycle import AsyncLifecycleCalls
from ._options import ConnectionOptions, RetryPolicy
from ._pipelines import AsyncPipelineCalls
from ._system import AsyncSystemCalls


class AsyncClient(AsyncLifecycleCalls, AsyncDeploymentCalls, AsyncDataPlaneCalls, AsyncDriftCalls,
                  AsyncExperimentCalls, AsyncAlertCalls, AsyncPipelineCalls, AsyncSystemCalls):
    """A connection to one modelctl controller for asyncio code.

    Takes the same arguments as `modelctl.Client`. Create it inside the event
    loop that will use it; `async with AsyncClient() as client: ...` closes it.
    """

    def __init__(self, address: str | None = None, *, token: str | None = None, ca_cert: str | None = None,
                 client_cert: str | None = None, client_key: str | None = None, tls: bool | None = None,
                 timeout: float | None = None, retry: RetryPolicy | None = None,
                 options: ConnectionOptions | None = None) -> None:
        self._options = options or ConnectionOptions.from_env(
            address=address, token=token, ca_cert=ca_cert, client_cert=client_cert, client_key=client_key,
            tls=tls, timeout=timeout, retry=retry)
        self._channel: grpc.aio.Channel = create_aio_channel(self._options)
        self._stub = _grpc.ModelControllerStub(self._channel)  # type: ignore[assignment]

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncClient(address={self._options.address!r})"
