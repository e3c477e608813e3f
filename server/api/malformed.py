"""Requests whose bytes do not parse become INVALID_ARGUMENT, not UNKNOWN.

grpc answers a request deserializer's exception with UNKNOWN (unary) or raises
it inside the servicer (streams), where it would end as INTERNAL. So every
deserializer is wrapped to return a `Malformed` placeholder instead, and the
call is refused with INVALID_ARGUMENT once it reaches the handler: after
authentication for ModelController calls (so they are still audited and
counted), at once for the other services (health, reflection).

The same placeholder carries what `limits` refuses before any work: a message over
its RPC's byte limit (checked before parsing) or a repeated field over its entry
limit (checked right after).
"""

from __future__ import annotations

import inspect
from typing import Any, AsyncIterator, Callable

import grpc

from ..errors import ModelctlError
from . import limits


class MalformedRequestError(ModelctlError):
    """The request bytes are not a valid message of the RPC's request type."""

    code = "INVALID_ARGUMENT"


class Malformed:
    """Stands in for a request message that failed to parse."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def error(self) -> ModelctlError:
        return MalformedRequestError(f"malformed request: {self.reason}")


class Refused(Malformed):
    """Stands in for a request refused by `limits` (too many bytes, too many entries)."""

    __slots__ = ("_error",)

    def __init__(self, error: ModelctlError) -> None:
        super().__init__(error.message)
        self._error = error

    def error(self) -> ModelctlError:
        return self._error


def tolerant(deserializer: Callable[[bytes], Any] | None, rpc: str | None = None) -> Callable[[bytes], Any] | None:
    """`deserializer`, returning `Malformed` instead of raising, and `Refused` past `rpc`'s limits.

    `rpc` is the ModelController method name; None for other services (health,
    reflection), which get the default byte limit and no repeated-field walk.
    """
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        too_big = limits.check_size(rpc or "", len(data))
        if too_big is not None:
            return Refused(too_big)  # before parsing: the parse is what costs
        try:
            message = deserializer(data)
        except Exception as exc:  # noqa: BLE001 - DecodeError, bad UTF-8, ...: all mean "not this message"
            return Malformed(str(exc) or type(exc).__name__)
        try:
            refused = limits.check_repeated(rpc, message) if rpc is not None else None
            if refused is None and rpc is not None and rpc not in limits.OWN_TEXT_CHECKS:
                refused = limits.check_text(data, message)
        except Exception as exc:  # noqa: BLE001 - a deserializer must never raise (grpc answers UNKNOWN)
            return Malformed(f"cannot inspect the request: {exc}")
        return message if refused is None else Refused(refused)
    return parse


def checked(request: Any) -> Any:
    """The request (for a client stream, a checking iterator over it); `MalformedRequestError` on bad bytes."""
    if isinstance(request, Malformed):
        raise request.error()
    if hasattr(request, "__aiter__"):
        return _checked_stream(request)
    return request


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for item in requests:
        if isinstance(item, Malformed):
            raise item.error()
        yield item


def guard(behavior: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a handler of another service (health, reflection) so bad bytes abort with INVALID_ARGUMENT."""
    if inspect.isasyncgenfunction(behavior):
        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                async for item in behavior(checked(request), context):
                    yield item
            except ModelctlError as exc:
                await context.abort(grpc.StatusCode[exc.code], exc.message)
        return stream

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await behavior(checked(request), context)
        except ModelctlError as exc:
            await context.abort(grpc.StatusCode[exc.code], exc.message)
    return unary


def wire_or(serializer: Callable[[Any], bytes] | None) -> Callable[[Any], bytes] | None:
    """`serializer`, except that bytes pass through: a stream that sends one event to many subscribers
    serialises it once (see `alert_rpcs._ProtoCache`) instead of once per subscriber."""
    if serializer is None:
        return None

    def serialize(message: Any) -> bytes:
        return message if type(message) is bytes else serializer(message)
    return serialize


def rebuild(handler: grpc.RpcMethodHandler, wrap: Callable[[Callable[..., Any]], Callable[..., Any]],
            rpc: str | None = None) -> grpc.RpcMethodHandler:
    """A copy of `handler` with a tolerant, limited deserializer and its behavior passed through `wrap`."""
    kwargs = dict(request_deserializer=tolerant(handler.request_deserializer, rpc),
                  response_serializer=wire_or(handler.response_serializer))
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(wrap(handler.unary_unary), **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(wrap(handler.stream_unary), **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(wrap(handler.unary_stream), **kwargs)
    return grpc.stream_stream_rpc_method_handler(wrap(handler.stream_stream), **kwargs)
