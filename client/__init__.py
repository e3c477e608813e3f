"""modelctl: the Python SDK and CLI of the modelctl control plane.

    import modelctl

    with modelctl.Client() as client:          # MODELCTL_ADDR / MODELCTL_TOKEN
        client.register_model("fraud", "1.2.0", "model.pkl")      # uploads, then registers
        client.register_model("churn", "7", "s3://models/churn/7.onnx")  # a URI is recorded as is
        for model in client.iter_models():
            print(model.name, model.live_version)

`modelctl.AsyncClient` has the same methods as coroutines. Failed calls raise
`modelctl.errors.ModelctlError` subclasses; reads are retried on UNAVAILABLE,
writes never are.
"""

from __future__ import annotations

from . import errors, types
from ._artifacts import ArtifactSource, ProgressCallback
from ._options import DEFAULT_ADDRESS, DEFAULT_TIMEOUT, ConnectionOptions, RetryPolicy
from ._system import RoleLike, RoleName, TtlLike
from .aio import AsyncClient
from .client import Client
from .errors import FieldViolation, ModelctlError

__all__ = [
    "Client",
    "AsyncClient",
    "ConnectionOptions",
    "RetryPolicy",
    "DEFAULT_ADDRESS",
    "DEFAULT_TIMEOUT",
    "ArtifactSource",
    "ProgressCallback",
    "RoleLike",
    "RoleName",
    "TtlLike",
    "ModelctlError",
    "FieldViolation",
    "errors",
    "types",
]
