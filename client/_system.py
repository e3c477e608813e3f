"""System calls: status, restart, the audit log and API tokens."""

from __future__ import annotations

from typing import AsyncIterator, Iterator, Literal, Union

from modelctl.v1 import system_pb2 as _system

from ._calls import AsyncCaller, SyncCaller
from ._durations import DurationLike, duration_seconds

RoleName = Literal["viewer", "operator", "admin"]
ROLE_NAMES: tuple[RoleName, ...] = ("viewer", "operator", "admin")
#: A role by name ("viewer"), or the `modelctl.v1.Role` enum value.
RoleLike = Union[str, int]
#: A token lifetime in seconds, or a timedelta.
#: A token lifetime: seconds, a timedelta, or text like "30d".
TtlLike = DurationLike


def role_value(role: RoleLike) -> int:
    """The `Role` enum value for "viewer" / "operator" / "admin" (any case) or an enum value."""
    if isinstance(role, int):
        if role not in _system.Role.values() or role == _system.ROLE_UNSPECIFIED:
            raise ValueError(f"unknown role value {role}")
        return role
    name = role.strip().lower()
    if name not in ROLE_NAMES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLE_NAMES)}")
    return _system.Role.Value(f"ROLE_{name.upper()}")


def role_name(value: int) -> str:
    """"viewer" for ROLE_VIEWER, and so on; the reverse of `role_value`."""
    return _system.Role.Name(value).removeprefix("ROLE_").lower()


def create_token_request(name: str, role: RoleLike, ttl: TtlLike | None = None) -> _system.CreateTokenRequest:
    request = _system.CreateTokenRequest(name=name, role=role_value(role))
    if ttl is not None:
        request.ttl.FromNanoseconds(round(duration_seconds(ttl, "ttl") * 1e9))
    return request


def audit_request(*, rpc: str = "", token_id: str = "", outcome: str = "", page_size: int = 0,
                  page_token: str = "") -> _system.ListAuditEventsRequest:
    return _system.ListAuditEventsRequest(page_size=page_size, page_token=page_token, rpc=rpc,
                                          token_id=token_id, outcome=outcome)


class SystemCalls(SyncCaller):
    def system_status(self, *, timeout: float | None = None) -> _system.SystemStatus:
        return self._call(self._stub.GetSystemStatus, _system.GetSystemStatusRequest(), timeout)

    def restart(self, reason: str = "", *, timeout: float | None = None) -> _system.RestartSystemResponse:
        """Reload the server's config and restart its background components (admin)."""
        return self._call(self._stub.RestartSystem, _system.RestartSystemRequest(reason=reason), timeout)

    def list_audit_events(self, *, rpc: str = "", token_id: str = "", outcome: str = "", page_size: int = 0,
                          page_token: str = "", timeout: float | None = None) -> _system.ListAuditEventsResponse:
        """One page of audit events, newest first."""
        request = audit_request(rpc=rpc, token_id=token_id, outcome=outcome, page_size=page_size,
                                page_token=page_token)
        return self._call(self._stub.ListAuditEvents, request, timeout)

    def iter_audit_events(self, *, rpc: str = "", token_id: str = "", outcome: str = "", page_size: int = 0,
                          timeout: float | None = None) -> Iterator[_system.AuditEvent]:
        return self._pages(
            lambda token: self.list_audit_events(rpc=rpc, token_id=token_id, outcome=outcome,
                                                 page_size=page_size, page_token=token, timeout=timeout),
            lambda page: page.events)

    def create_token(self, name: str, role: RoleLike, *, ttl: TtlLike | None = None,
                     timeout: float | None = None) -> _system.CreateTokenResponse:
        """A new bearer token (admin), labelled `name` in the audit log.

        `.token` is the secret, shown this once: the server keeps only its hash. No `ttl`, no expiry.
        """
        return self._call(self._stub.CreateToken, create_token_request(name, role, ttl), timeout)

    def revoke_token(self, token_id: str, *, timeout: float | None = None) -> _system.Token:
        return self._call(self._stub.RevokeToken, _system.RevokeTokenRequest(id=token_id), timeout)

    def list_tokens(self, *, include_inactive: bool = False,
                    timeout: float | None = None) -> list[_system.Token]:
        """Tokens (admin), oldest first; revoked and expired ones only with `include_inactive`."""
        request = _system.ListTokensRequest(include_inactive=include_inactive)
        return list(self._call(self._stub.ListTokens, request, timeout).tokens)


class AsyncSystemCalls(AsyncCaller):
    async def system_status(self, *, timeout: float | None = None) -> _system.SystemStatus:
        return await self._call(self._stub.GetSystemStatus, _system.GetSystemStatusRequest(), timeout)

    async def restart(self, reason: str = "", *, timeout: float | None = None) -> _system.RestartSystemResponse:
        return await self._call(self._stub.RestartSystem, _system.RestartSystemRequest(reason=reason), timeout)

    async def list_audit_events(self, *, rpc: str = "", token_id: str = "", outcome: str = "",
                                page_size: int = 0, page_token: str = "",
                                timeout: float | None = None) -> _system.ListAuditEventsResponse:
        request = audit_request(rpc=rpc, token_id=token_id, outcome=outcome, page_size=page_size,
                                page_token=page_token)
        return await self._call(self._stub.ListAuditEvents, request, timeout)

    def iter_audit_events(self, *, rpc: str = "", token_id: str = "", outcome: str = "", page_size: int = 0,
                          timeout: float | None = None) -> AsyncIterator[_system.AuditEvent]:
        return self._pages(
            lambda token: self.list_audit_events(rpc=rpc, token_id=token_id, outcome=outcome,
                                                 page_size=page_size, page_token=token, timeout=timeout),
            lambda page: page.events)

    async def create_token(self, name: str, role: RoleLike, *, ttl: TtlLike | None = None,
                           timeout: float | None = None) -> _system.CreateTokenResponse:
        return await self._call(self._stub.CreateToken, create_token_request(name, role, ttl), timeout)

    async def revoke_token(self, token_id: str, *, timeout: float | None = None) -> _system.Token:
        return await self._call(self._stub.RevokeToken, _system.RevokeTokenRequest(id=token_id), timeout)

    async def list_tokens(self, *, include_inactive: bool = False,
                          timeout: float | None = None) -> list[_system.Token]:
        request = _system.ListTokensRequest(include_inactive=include_inactive)
        return list((await self._call(self._stub.ListTokens, request, timeout)).tokens)
