"""Domain errors -> gRPC status with rich details (the only place this happens)."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ..errors import ModelctlError, ValidationError


def to_grpc_status(error: ModelctlError) -> grpc.Status:
    code = grpc.StatusCode[error.code]
    details = []
    if isinstance(error, ValidationError):
        bad_request = error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in error.violations])
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        details.append(packed)
    if error.retriable:
        retry = any_pb2.Any()
        retry.Pack(error_details_pb2.RetryInfo())
        details.append(retry)
    message = status_pb2.Status(code=getattr(code_pb2, code.name), message=error.message, details=details)
    return rpc_status.to_status(message)


def status_for(code: grpc.StatusCode, message: str) -> grpc.Status:
    return rpc_status.to_status(status_pb2.Status(code=getattr(code_pb2, code.name), message=message))
