"""System RPCs: status, restart, audit log, tokens."""

from __future__ import annotations

import grpc

from modelctl.v1 import system_pb2 as _pb

from ..errors import FieldViolation, ValidationError
from ._time import seconds_of, ts
from .context import caller
from .services import Services
from .system_convert import (
    audit_event_to_proto,
    component_to_proto,
    role_from_proto,
    role_to_proto,
    status_to_proto,
    token_to_proto,
)


class SystemRpcs:
    services: Services

    async def _status(self) -> _pb.SystemStatus:
        s = self.services
        counts = await s.run(_safe_counts, s)
        snapshot = await s.run(s.probe.snapshot, counts=counts, components=s.supervisor.statuses(),
                               auth_enabled=s.settings.auth.enabled, tls_enabled=s.settings.tls_enabled)
        status = status_to_proto(snapshot)
        await self._alert_status(status)  # type: ignore[attr-defined]  # AlertRpcs, in the same servicer
        return status

    async def GetSystemStatus(self, request: _pb.GetSystemStatusRequest, context: grpc.aio.ServicerContext):
        return await self._status()

    async def RestartSystem(self, request: _pb.RestartSystemRequest, context: grpc.aio.ServicerContext):
        if len(request.reason) > 500:
            raise ValidationError(FieldViolation("reason", "must be at most 500 characters"))
        result = await self.services.restart()
        return _pb.RestartSystemResponse(status=await self._status(), changed_keys=result.changed_keys,
                                         ignored_keys=result.ignored_keys,
                                         failed_components=[component_to_proto(c) for c in result.failed])

    async def ListAuditEvents(self, request: _pb.ListAuditEventsRequest, context: grpc.aio.ServicerContext):
        page = await self.services.run(self.services.audit.list, page_size=request.page_size,
                                       page_token=request.page_token, rpc=request.rpc, token_id=request.token_id,
                                       outcome=request.outcome)
        return _pb.ListAuditEventsResponse(events=[audit_event_to_proto(e) for e in page.events],
                                           next_page_token=page.next_page_token)

    async def CreateToken(self, request: _pb.CreateTokenRequest, context: grpc.aio.ServicerContext):
        role = role_from_proto(request.role)
        ttl = seconds_of(request.ttl) if request.HasField("ttl") else None
        issued = await self.services.run(self.services.tokens.create, request.name, role, ttl_seconds=ttl,
                                         created_by=caller().name)
        return _pb.CreateTokenResponse(id=issued.info.id, token=issued.secret, role=role_to_proto(issued.info.role),
                                       name=issued.info.name, expires_at=ts(issued.info.expires_at))

    async def ListTokens(self, request: _pb.ListTokensRequest, context: grpc.aio.ServicerContext):
        tokens = await self.services.run(self.services.tokens.list, include_inactive=request.include_inactive)
        return _pb.ListTokensResponse(tokens=[token_to_proto(t) for t in tokens])

    async def RevokeToken(self, request: _pb.RevokeTokenRequest, context: grpc.aio.ServicerContext):
        if not request.id:
            raise ValidationError(FieldViolation("id", "is required: the token id CreateToken returned"))
        if len(request.id) > 32:
            raise ValidationError(FieldViolation("id", "is not a token id (at most 32 characters)"))
        info = await self.services.run(self.services.tokens.revoke, request.id)
        return token_to_proto(info)


def _safe_counts(s: Services) -> tuple[int, int]:
    # A status call must answer even when the database does not; the probe reports it unreachable.
    try:
        return s.registry.counts()
    except Exception:  # noqa: BLE001
        return (0, 0)
