"""modelctl: the Python SDK and CLI of the modelctl control plane.

    import modelctl

    with modelctl.Client() as client:          # MODELCTL_ADDR / MODELCTL_TOKEN
        client.register_model("fraud", "1.2.0", "model.pkl")      # uploads, then registers
        client.register_model("churn", "7", "s3://models/churn/7.onnx")  # a URI is recorded as is
        for model in client.iter_models():
            print(model.name, model.live_version)

        deployment = client.deploy("fraud", "1.3.0", "canary", steps=[10, 50, 100], interval="1m")
        final = client.wait_for_deployment(deployment.id, timeout="30m")

    with modelctl.TrafficRouter("fraud", default_version="1.2.0") as router:   # in a pipeline service
        version = router.choose(request_key=user_id)       # sticky per key, weighted by the live split

`modelctl.AsyncClient` has the same methods as coroutines. Failed calls raise
`modelctl.errors.ModelctlError` subclasses; reads are retried on UNAVAILABLE,
writes never are.
"""

from __future__ import annotations

from . import errors, types
from ._artifacts import ArtifactSource, ProgressCallback
from ._calls import AsyncStream, Stream
from ._dataplane import SampleLike
from ._deployment_requests import FINAL_STATES as FINAL_DEPLOYMENT_STATES
from ._deployment_requests import DurationLike, LimitLike, StateLike, StrategyLike
from ._options import DEFAULT_ADDRESS, DEFAULT_TIMEOUT, ConnectionOptions, RetryPolicy
from ._system import RoleLike, RoleName, TtlLike
from .agent import AsyncPipelineAgent, CommandContext, CommandResult, PipelineAgent
from .aio import AsyncClient
from .client import Client
from .errors import FieldViolation, ModelctlError
from .router import AsyncTrafficRouter, NoTrafficSplitError, TrafficRouter

__all__ = [
    "Client",
    "AsyncClient",
    "TrafficRouter",
    "AsyncTrafficRouter",
    "NoTrafficSplitError",
    "PipelineAgent",
    "AsyncPipelineAgent",
    "CommandContext",
    "CommandResult",
    "Stream",
    "AsyncStream",
    "ConnectionOptions",
    "RetryPolicy",
    "DEFAULT_ADDRESS",
    "DEFAULT_TIMEOUT",
    "ArtifactSource",
    "ProgressCallback",
    "RoleLike",
    "RoleName",
    "TtlLike",
    "StrategyLike",
    "StateLike",
    "DurationLike",
    "LimitLike",
    "SampleLike",
    "FINAL_DEPLOYMENT_STATES",
    "ModelctlError",
    "FieldViolation",
    "errors",
    "types",
]
