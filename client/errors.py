"""Errors the SDK raises: one class per gRPC status the controller uses.

Every failed call surfaces as a `ModelctlError` built from the `grpc.RpcError`
by `from_rpc_error`, with the status code, the server's message and, for
INVALID_ARGUMENT, the `google.rpc.BadRequest` field violations, so callers can
say which field was wrong without parsing text. `ModelctlError` still derives
from `grpc.RpcError`, so code written against the raw stubs keeps catching it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

if TYPE_CHECKING:
    from modelctl.v1 import deployment_pb2


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, as the server named it (e.g. `name`, `tags[team]`)."""

    field: str
    description: str


class ModelctlError(grpc.RpcError):
    """A call to the controller failed."""

    #: Status code this class stands for; instances carry the actual one in `code`.
    status: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    #: True when trying the same call again later may succeed.
    retriable: bool = False

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None,
                 violations: tuple[FieldViolation, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.status
        self.violations = violations

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class InvalidArgumentError(ModelctlError):
    """The request was malformed; `violations` names each bad field."""

    status = grpc.StatusCode.INVALID_ARGUMENT


class NotFoundError(ModelctlError):
    status = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(ModelctlError):
    status = grpc.StatusCode.ALREADY_EXISTS


class FailedPreconditionError(ModelctlError):
    """The request is valid but the current state forbids it (e.g. archiving the live version)."""

    status = grpc.StatusCode.FAILED_PRECONDITION


class UnauthenticatedError(ModelctlError):
    """No token, or a token the server does not know (unknown, expired or revoked)."""

    status = grpc.StatusCode.UNAUTHENTICATED


class PermissionDeniedError(ModelctlError):
    """The token is valid but its role is not enough for this call."""

    status = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhaustedError(ModelctlError):
    status = grpc.StatusCode.RESOURCE_EXHAUSTED
    retriable = True


class DeadlineExceededError(ModelctlError):
    status = grpc.StatusCode.DEADLINE_EXCEEDED
    retriable = True


class WaitTimeoutError(DeadlineExceededError):
    """`wait_for_deployment` gave up before the deployment reached a final state.

    `deployment` is its last known state (None if it could not be fetched).
    """

    def __init__(self, message: str, *, deployment: deployment_pb2.Deployment | None = None) -> None:
        super().__init__(message)
        self.deployment = deployment


class UnavailableError(ModelctlError):
    """The server answered that it cannot serve right now (e.g. its database is down)."""

    status = grpc.StatusCode.UNAVAILABLE
    retriable = True


class ServerUnreachableError(UnavailableError):
    """No connection to the controller: refused, unresolvable, or the TLS handshake failed."""

    def __init__(self, message: str, *, address: str, reason: str) -> None:
        super().__init__(message)
        self.address = address
        #: gRPC's own account of the failure, e.g. "Connection refused".
        self.reason = reason


class InternalError(ModelctlError):
    """The server failed in a way it did not expect; its log has the details."""

    status = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[ModelctlError]] = {
    cls.status: cls for cls in (InvalidArgumentError, NotFoundError, AlreadyExistsError, FailedPreconditionError,
                                UnauthenticatedError, PermissionDeniedError, ResourceExhaustedError,
                                DeadlineExceededError, UnavailableError, InternalError)
}
_BY_CODE[grpc.StatusCode.OUT_OF_RANGE] = InvalidArgumentError
_BY_CODE[grpc.StatusCode.DATA_LOSS] = InternalError


def from_rpc_error(error: grpc.RpcError, *, address: str = "") -> ModelctlError:
    """The `ModelctlError` for a failed call; `address` is the controller the client dialled."""
    if isinstance(error, ModelctlError):
        return error
    code = _code(error)
    message = _details(error) or code.name
    status = _rich_status(error)
    if code is grpc.StatusCode.UNAVAILABLE and status is None:
        # Our server always attaches details to UNAVAILABLE; none means the
        # call never reached it (refused, DNS, TLS handshake, connection reset).
        return ServerUnreachableError(f"cannot reach the modelctl server at {address or '?'}: {message}",
                                      address=address, reason=message)
    violations: tuple[FieldViolation, ...] = ()
    if status is not None:
        violations = tuple(_field_violations(status))
        message = status.message or message
    cls = _BY_CODE.get(code, ModelctlError)
    return cls(message, code=code, violations=violations)


def _code(error: grpc.RpcError) -> grpc.StatusCode:
    code = getattr(error, "code", None)
    return code() if callable(code) else grpc.StatusCode.UNKNOWN


def _details(error: grpc.RpcError) -> str:
    details = getattr(error, "details", None)
    return (details() if callable(details) else "") or ""


def _rich_status(error: grpc.RpcError):  # type: ignore[no-untyped-def]
    """The `google.rpc.Status` from the trailers, or None when the server sent none."""
    if not callable(getattr(error, "trailing_metadata", None)):
        return None
    try:
        return rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:
        # The trailer disagrees with the call's own code or message: trust the call.
        return None


def _field_violations(status) -> list[FieldViolation]:  # type: ignore[no-untyped-def]
    found: list[FieldViolation] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            found.extend(FieldViolation(v.field, v.description) for v in bad_request.field_violations)
    return found
