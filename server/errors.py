"""Domain errors, each knowing the gRPC status it becomes.

The domain raises these; exactly one place (`modelctl_server.api.interceptor`)
turns them into a gRPC status. The code is a `grpc.StatusCode` *name* so that
the domain never imports gRPC.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, reported in a `google.rpc.BadRequest` detail."""

    field: str
    description: str


class ModelctlError(Exception):
    """Base of every error the controller reports to a caller on purpose."""

    code: str = "FAILED_PRECONDITION"
    #: True when the same call may succeed if simply tried again later.
    retriable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(ModelctlError):
    """The request is malformed; `violations` names each bad field."""

    code = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation] | FieldViolation, message: str | None = None) -> None:
        if isinstance(violations, FieldViolation):
            violations = [violations]
        self.violations = list(violations)
        if message is None:
            message = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(message)


class NotFoundError(ModelctlError):
    code = "NOT_FOUND"


class AlreadyExistsError(ModelctlError):
    code = "ALREADY_EXISTS"


class FailedPreconditionError(ModelctlError):
    code = "FAILED_PRECONDITION"


class UnauthenticatedError(ModelctlError):
    code = "UNAUTHENTICATED"


class PermissionDeniedError(ModelctlError):
    code = "PERMISSION_DENIED"


class ResourceExhaustedError(ModelctlError):
    code = "RESOURCE_EXHAUSTED"
    retriable = True


class UnavailableError(ModelctlError):
    """A dependency (the database, say) cannot be reached right now."""

    code = "UNAVAILABLE"
    retriable = True


class Violations:
    """Collects field violations so a request reports every bad field at once."""

    def __init__(self) -> None:
        self._items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self._items.append(FieldViolation(field, description))

    def extend(self, items: list[FieldViolation]) -> None:
        self._items.extend(items)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def raise_if_any(self) -> None:
        if self._items:
            raise ValidationError(self._items)
