"""How the clients make a call: deadline, error conversion, and walking pages.

`SyncCaller` and `AsyncCaller` are the bases the per-area method mixins
(`_lifecycle`, `_system`, ...) rely on: a mixin builds a request and hands the
stub method to `_call`, so every RPC gets the same deadline rule and turns a
`grpc.RpcError` into a `modelctl.errors.ModelctlError` in this one place.
Server streams go through `_stream`, which wraps the call in a `Stream` (or
`AsyncStream`) with the same error conversion and a `cancel()` that ends the
iteration quietly.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Awaitable, Callable, Generic, Iterator, Protocol, Sequence, TypeVar

import grpc

from modelctl.v1 import controller_pb2_grpc as _grpc

from . import errors
from ._options import ConnectionOptions

R = TypeVar("R")
T = TypeVar("T")


class _Page(Protocol):
    next_page_token: str


P = TypeVar("P", bound=_Page)


class _Caller:
    _options: ConnectionOptions

    @property
    def options(self) -> ConnectionOptions:
        return self._options

    @property
    def address(self) -> str:
        return self._options.address

    def _deadline(self, timeout: float | None, default_deadline: bool) -> float | None:
        """A per-call timeout wins; otherwise the client's default, unless the call opts out (uploads)."""
        if timeout is not None:
            return timeout
        return self._options.timeout if default_deadline else None

    def _error(self, exc: grpc.RpcError) -> errors.ModelctlError:
        return errors.from_rpc_error(exc, address=self._options.address)


def _metadata_value(metadata: Any, key: str) -> str | None:
    for k, v in metadata or ():
        if k == key:
            return v if isinstance(v, str) else v.decode()
    return None


class Stream(Generic[T]):
    """The messages of one server-streaming call, as an iterator.

    Streams have no deadline unless the call is given a `timeout`: a watch lasts as long as
    the thing watched. `cancel()` (safe from any thread) or leaving the `with` block ends the
    call; the iteration then stops without an error. Any other failure raises a `ModelctlError`.
    """

    def __init__(self, call: Any, convert: Callable[[grpc.RpcError], errors.ModelctlError]) -> None:
        self._call = call
        self._convert = convert
        self._cancelled = False

    def __iter__(self) -> Stream[T]:
        return self

    def __next__(self) -> T:
        try:
            return next(self._call)
        except grpc.RpcError as exc:
            if self._cancelled and errors._code(exc) is grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            raise self._convert(exc) from exc

    def header(self, key: str) -> str | None:
        """A value of the response's initial metadata; waits for it. None if the call ended without it."""
        return _metadata_value(self._call.initial_metadata(), key)

    def cancel(self) -> None:
        self._cancelled = True
        self._call.cancel()

    def __enter__(self) -> Stream[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cancel()


class AsyncStream(Generic[T]):
    """`Stream` for asyncio: `async for message in stream`, `cancel()`, `async with`."""

    def __init__(self, call: Any, convert: Callable[[grpc.RpcError], errors.ModelctlError]) -> None:
        self._call = call
        self._convert = convert
        self._messages: AsyncIterator[T] | None = None
        self._cancelled = False

    def __aiter__(self) -> AsyncStream[T]:
        return self

    async def __anext__(self) -> T:
        if self._cancelled:
            raise StopAsyncIteration
        if self._messages is None:
            self._messages = self._call.__aiter__()
        try:
            return await self._messages.__anext__()  # type: ignore[union-attr]
        except grpc.RpcError as exc:
            if self._cancelled and errors._code(exc) is grpc.StatusCode.CANCELLED:
                raise StopAsyncIteration from None
            raise self._convert(exc) from exc
        except asyncio.CancelledError:
            # grpc.aio reports its own cancel() as CancelledError; only ours ends the iteration quietly.
            if self._cancelled:
                raise StopAsyncIteration from None
            raise

    async def header(self, key: str) -> str | None:
        """As `Stream.header`; a call that failed first says so on the next `__anext__`, not here."""
        try:
            found = await self._call.initial_metadata()
        except grpc.RpcError:
            return None
        return _metadata_value(found, key)

    def cancel(self) -> None:
        self._cancelled = True
        self._call.cancel()

    async def __aenter__(self) -> AsyncStream[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.cancel()


class SyncCaller(_Caller):
    _stub: _grpc.ModelControllerStub

    def _call(self, method: Callable[..., R], request: Any, timeout: float | None = None, *,
              default_deadline: bool = True) -> R:
        try:
            return method(request, timeout=self._deadline(timeout, default_deadline))
        except grpc.RpcError as exc:
            raise self._error(exc) from exc

    def _stream(self, method: Callable[..., Any], request: Any, timeout: float | None = None) -> Stream[Any]:
        """A server-streaming call; no deadline unless `timeout` is given."""
        try:
            return Stream(method(request, timeout=timeout), self._error)
        except grpc.RpcError as exc:
            raise self._error(exc) from exc

    @staticmethod
    def _pages(fetch: Callable[[str], P], items: Callable[[P], Sequence[T]]) -> Iterator[T]:
        """Every item of every page; `fetch` gets the page token ("" for the first page)."""
        token = ""
        while True:
            page = fetch(token)
            yield from items(page)
            token = page.next_page_token
            if not token:
                return


class AsyncCaller(_Caller):
    _stub: _grpc.ModelControllerAsyncStub

    async def _call(self, method: Callable[..., Awaitable[R]], request: Any, timeout: float | None = None, *,
                    default_deadline: bool = True) -> R:
        try:
            return await method(request, timeout=self._deadline(timeout, default_deadline))
        except grpc.RpcError as exc:
            raise self._error(exc) from exc

    def _stream(self, method: Callable[..., Any], request: Any,
                timeout: float | None = None) -> AsyncStream[Any]:
        """A server-streaming call; it starts on the first `__anext__`. No deadline unless `timeout`."""
        return AsyncStream(method(request, timeout=timeout), self._error)

    @staticmethod
    async def _pages(fetch: Callable[[str], Awaitable[P]], items: Callable[[P], Sequence[T]]) -> AsyncIterator[T]:
        token = ""
        while True:
            page = await fetch(token)
            for item in items(page):
                yield item
            token = page.next_page_token
            if not token:
                return
