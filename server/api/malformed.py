"""Requests whose bytes do not parse become INVALID_ARGUMENT, not UNKNOWN.

grpc answers a request deserializer's exception with UNKNOWN (unary) or raises
it inside the servicer (streams), where it would end as INTERNAL. So every
deserializer is wrapped to return a `Malformed` placeholder instead, and the
call is refused with INVALID_ARGUMENT once it reaches the handler: after
authentication for ModelController calls (so they are still audited and
counted), at once for the other services (health, reflection).
"""

from __future__ import annotations

import inspect
from typing import Any, AsyncIterator, Callable

import grpc

from ..errors import ModelctlError


class MalformedRequestError(ModelctlError):
    """The request bytes are not a valid message of the RPC's request type."""

    code = "INVALID_ARGUMENT"


class Malformed:
    """Stands in for a request message that failed to parse."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def error(self) -> MalformedRequestError:
        return MalformedRequestError(f"malformed request: {self.reason}")


def tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """`deserializer`, returning `Malformed` instead of raising."""
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # noqa: BLE001 - DecodeError, bad UTF-8, ...: all mean "not this message"
            return Malformed(str(exc) or type(exc).__name__)
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
            except MalformedRequestError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
        return stream

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await behavior(checked(request), context)
        except MalformedRequestError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
    return unary


def rebuild(handler: grpc.RpcMethodHandler, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]
            ) -> grpc.RpcMethodHandler:
    """A copy of `handler` with a tolerant deserializer and its behavior passed through `wrap`."""
    kwargs = dict(request_deserializer=tolerant(handler.request_deserializer),
                  response_serializer=handler.response_serializer)
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(wrap(handler.unary_unary), **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(wrap(handler.stream_unary), **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(wrap(handler.unary_stream), **kwargs)
    return grpc.stream_stream_rpc_method_handler(wrap(handler.stream_stream), **kwargs)
