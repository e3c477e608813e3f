"""The one interceptor every ModelController call passes through.

In order: authenticate the bearer token, check the RPC's role, run the
servicer, turn a domain error into a gRPC status with details, record the
call in the audit log (mutating and denied calls), and count it in metrics.
Health and reflection skip auth (probes send no token). Request bytes that do
not parse are refused with INVALID_ARGUMENT for every service (see `malformed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable, ContextManager

import grpc
from grpc.aio import AbortError

from ..audit import AuditLog
from ..auth import Identity, Role, TokenService
from ..errors import ModelctlError, PermissionDeniedError, UnauthenticatedError
from .context import audit_target, current_identity
from .malformed import checked, guard, rebuild
from .policy import POLICIES, RpcPolicy
from .status import status_for, to_grpc_status

log = logging.getLogger(__name__)

SERVICE_PREFIX = "/modelctl.v1.ModelController/"
#: An RPC missing from the policy table is admin-only and audited: safe by default.
_FALLBACK = RpcPolicy(Role.ADMIN, True)

Runner = Callable[..., Awaitable[Any]]
CallObserver = Callable[[str, str, float], None]
#: (rpc, is a server stream) -> a context counting the call in flight (or the stream open) while it runs.
CallTracker = Callable[[str, bool], ContextManager[None]]


class ControllerInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, tokens: TokenService, audit: AuditLog, run: Runner, *, auth_enabled: bool,
                 observe: CallObserver | None = None, track: CallTracker | None = None) -> None:
        self._tokens = tokens
        self._audit = audit
        self._run = run  # runs blocking store work on the thread pool
        self._auth_enabled = auth_enabled
        self._observe = observe or (lambda _rpc, _code, _seconds: None)
        self._track = track or (lambda _rpc, _stream: contextlib.nullcontext())
        #: method -> (the servicer's handler, our wrapped copy): wrapped once, not on every call.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(self, continuation, handler_call_details):  # type: ignore[no-untyped-def]
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None:
            return handler
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = self._wrap_handler(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap_handler(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if not method.startswith(SERVICE_PREFIX):
            return rebuild(handler, guard)
        rpc = method[len(SERVICE_PREFIX):]
        policy = POLICIES.get(rpc, _FALLBACK)

        def wrap(behavior: Callable[..., Any]) -> Callable[..., Any]:
            if inspect.isasyncgenfunction(behavior):
                return self._wrap_stream(rpc, policy, behavior)
            return self._wrap_unary(rpc, policy, behavior)
        return rebuild(handler, wrap, rpc)  # rpc: its byte and repeated-field limits (see limits)

    # The audit record is written before the caller hears the outcome: a call that was
    # acknowledged is always in the audit log.

    def _wrap_unary(self, rpc: str, policy: RpcPolicy, behavior: Callable[..., Awaitable[Any]]):  # type: ignore[no-untyped-def]
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
            start = time.perf_counter()
            call = _Call(rpc, policy, request, context)
            with self._track(rpc, False):
                try:
                    await self._admit(call)
                    response = await behavior(checked(request), context)
                except BaseException as exc:  # noqa: BLE001 - every failure is mapped below
                    await self._fail(call, exc, start)
                    raise
                call.outcome = "OK"
                await self._finish(call, start)
                return response
        return wrapper

    def _wrap_stream(self, rpc: str, policy: RpcPolicy, behavior: Callable[..., AsyncIterator[Any]]):  # type: ignore[no-untyped-def]
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            start = time.perf_counter()
            call = _Call(rpc, policy, request, context)
            with self._track(rpc, True):
                try:
                    await self._admit(call)
                    async for item in behavior(checked(request), context):
                        yield item
                except BaseException as exc:  # noqa: BLE001
                    await self._fail(call, exc, start)
                    raise
                call.outcome = "OK"
                await self._finish(call, start)
        return wrapper

    async def _admit(self, call: _Call) -> None:
        """Authenticate and authorise; raises a domain error on refusal."""
        if not self._auth_enabled:
            call.identity = Identity.anonymous_admin()
        else:
            token = _bearer_token(call.context)
            if token is None:
                call.denied = True
                raise UnauthenticatedError("missing bearer token: send 'authorization: Bearer <token>'")
            try:
                # Known tokens are answered from memory on the event loop; only a miss reads the table.
                call.identity = self._tokens.cached(token) or await self._run(self._tokens.authenticate, token)
            except UnauthenticatedError:
                call.denied = True
                raise
            if not call.identity.role.allows(call.policy.role):
                call.denied = True
                raise PermissionDeniedError(
                    f"{call.rpc} needs the {call.policy.role.name.lower()} role; "
                    f"token {call.identity.name!r} has {call.identity.role.name.lower()}")
        current_identity.set(call.identity)

    async def _fail(self, call: _Call, exc: BaseException, start: float) -> None:
        """Record the failure, then end the call with its status (or let cancellation through)."""
        status: grpc.Status | None = None
        if isinstance(exc, ModelctlError):
            call.outcome, call.detail = exc.code, exc.message
            status = to_grpc_status(exc)
        elif isinstance(exc, AbortError):
            # The servicer (or grpc itself) already set the status.
            code = call.context.code()
            call.outcome = code.name if isinstance(code, grpc.StatusCode) else "ABORTED"
        elif isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
            # The client went away or the server is stopping: nobody to report to.
            call.outcome = "CANCELLED"
        else:
            call.outcome, call.detail = "INTERNAL", repr(exc)
            log.error("unexpected error in %s", call.rpc, exc_info=exc)
            status = status_for(grpc.StatusCode.INTERNAL, f"internal error in {call.rpc}; the server log has details")
        await self._finish(call, start)
        if status is not None:
            await call.context.abort_with_status(status)

    async def _finish(self, call: _Call, start: float) -> None:
        self._observe(call.rpc, call.outcome, time.perf_counter() - start)
        if not (call.policy.mutating or call.denied):
            return
        identity = call.identity
        target = audit_target.get() or _safe_target(call)
        try:
            await self._run(self._audit.record, rpc=call.rpc, outcome=call.outcome,
                            token_id=identity.token_id if identity else "",
                            token_name=identity.name if identity else "",
                            role=identity.role.name.lower() if identity else "",
                            target=target, detail=call.detail, peer=call.context.peer() or "")
        except Exception:  # noqa: BLE001 - the call's own outcome must not change because of the audit write
            log.exception("could not write the audit event for %s", call.rpc)


class _Call:
    __slots__ = ("rpc", "policy", "request", "context", "identity", "outcome", "detail", "denied")

    def __init__(self, rpc: str, policy: RpcPolicy, request: Any, context: grpc.aio.ServicerContext) -> None:
        self.rpc = rpc
        self.policy = policy
        self.request = request
        self.context = context
        self.identity: Identity | None = None
        self.outcome = "UNKNOWN"
        self.detail = ""
        self.denied = False


def _bearer_token(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def _safe_target(call: _Call) -> str:
    if hasattr(call.request, "__aiter__"):
        return ""
    try:
        return call.policy.target(call.request)
    except Exception:  # noqa: BLE001 - a missing field must not break auditing
        return ""
