"""`modelctl.Client`: the synchronous SDK.

Its methods come from one mixin per area of the contract (`_lifecycle`,
`_system`, ...); a new area adds a mixin module and one base class here.
"""

from __future__ import annotations

import grpc

from modelctl.v1 import controller_pb2_grpc as _grpc

from ._alerts import AlertCalls
from ._channel import create_channel
from ._dataplane import DataPlaneCalls
from ._deployments import DeploymentCalls
from ._drift import DriftCalls
from ._experiments import ExperimentCalls
from ._lifecycle import LifecycleCalls
from ._options import ConnectionOptions, RetryPolicy
from ._pipelines import PipelineCalls
from ._system import SystemCalls


class Client(LifecycleCalls, DeploymentCalls, DataPlaneCalls, DriftCalls, ExperimentCalls, AlertCalls,
             PipelineCalls, SystemCalls):
    """A connection to one modelctl controller.

    With no arguments it dials `MODELCTL_ADDR` (default 127.0.0.1:50051) with
    `MODELCTL_TOKEN`; arguments override the environment, and `options=` takes
    a ready `ConnectionOptions` as is. The channel connects on the first call,
    so constructing a client never blocks. Use it as a context manager, or call
    `close()`. Every failed call raises a `modelctl.errors.ModelctlError`.
    """

    def __init__(self, address: str | None = None, *, token: str | None = None, ca_cert: str | None = None,
                 client_cert: str | None = None, client_key: str | None = None, tls: bool | None = None,
                 timeout: float | None = None, retry: RetryPolicy | None = None,
                 options: ConnectionOptions | None = None) -> None:
        self._options = options or ConnectionOptions.from_env(
            address=address, token=token, ca_cert=ca_cert, client_cert=client_cert, client_key=client_key,
            tls=tls, timeout=timeout, retry=retry)
        self._channel: grpc.Channel = create_channel(self._options)
        self._stub = _grpc.ModelControllerStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(address={self._options.address!r})"
