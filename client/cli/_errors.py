"""Every failure of a command becomes one line on stderr and exit code 1.

`ModelctlGroup.invoke` (the root group) is the single place where SDK errors,
raw `grpc.RpcError`s and local I/O errors are turned into `CliError`. Usage
errors stay Click's own (exit code 2).
"""

from __future__ import annotations

import errno
from typing import IO, Any

import click
import grpc

from .. import errors
from ._context import CliContext
from ._parsing import format_duration


class CliError(click.ClickException):
    """A failure reported as `modelctl: <message>`, one line, exit code 1."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        # Server messages may span lines; the contract is one line per error.
        super().__init__(" ".join(message.split()))

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"modelctl: {self.format_message()}", file=file, err=file is None)


def describe(error: errors.ModelctlError, *, timeout: float | None = None) -> str:
    """The sentence an operator needs, with a hint at the option that fixes it."""
    if isinstance(error, errors.ServerUnreachableError):
        if _is_tls_failure(error.reason):
            return (f"TLS handshake with the modelctl server at {error.address} failed "
                    f"(check --ca-cert, --client-cert and --client-key): {error.reason}")
        return (f"cannot reach the modelctl server at {error.address} "
                f"(is it running? set --server or MODELCTL_ADDR)")
    if isinstance(error, errors.InvalidArgumentError) and error.violations:
        return "invalid request: " + "; ".join(f"{v.field}: {v.description}" for v in error.violations)
    if isinstance(error, errors.UnauthenticatedError):
        return f"not authenticated: {error.message} (set --token or MODELCTL_TOKEN)"
    if isinstance(error, errors.PermissionDeniedError):
        return f"permission denied: {error.message}"
    if isinstance(error, errors.DeadlineExceededError):
        waited = f" within {format_duration(timeout)}" if timeout else ""
        return f"the server did not answer{waited} (raise --timeout for slow calls)"
    if isinstance(error, (errors.NotFoundError, errors.AlreadyExistsError, errors.FailedPreconditionError,
                          errors.InvalidArgumentError)):
        return error.message
    return f"{error.code.name}: {error.message}"


def _is_tls_failure(reason: str) -> bool:
    lowered = reason.lower()
    return any(word in lowered for word in ("ssl", "tls", "handshake", "certificate"))


class ModelctlGroup(click.Group):
    """The root group: runs the command and converts whatever it raised."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except grpc.RpcError as exc:  # ModelctlError included: it derives from RpcError
            options = ctx.obj.options if isinstance(ctx.obj, CliContext) else None
            error = errors.from_rpc_error(exc, address=options.address if options else "")
            raise CliError(describe(error, timeout=options.timeout if options else None)) from None
        except (ValueError, OverflowError) as exc:
            # The SDK refuses a request it can tell is wrong before sending it.
            raise CliError(str(exc)) from None
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise  # `modelctl ... | head`: Click ends quietly on a closed pipe
            where = f"{exc.filename}: " if exc.filename else ""
            raise CliError(f"{where}{exc.strerror or exc}") from None
