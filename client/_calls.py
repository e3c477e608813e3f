"""How the clients make a call: deadline, error conversion, and walking pages.

`SyncCaller` and `AsyncCaller` are the bases the per-area method mixins
(`_lifecycle`, `_system`, ...) rely on: a mixin builds a request and hands the
stub method to `_call`, so every RPC gets the same deadline rule and turns a
`grpc.RpcError` into a `modelctl.errors.ModelctlError` in this one place.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, Protocol, Sequence, TypeVar

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


class SyncCaller(_Caller):
    _stub: _grpc.ModelControllerStub

    def _call(self, method: Callable[..., R], request: Any, timeout: float | None = None, *,
              default_deadline: bool = True) -> R:
        try:
            return method(request, timeout=self._deadline(timeout, default_deadline))
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
