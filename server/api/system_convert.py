"""System wire <-> domain: status, audit events, tokens."""

from __future__ import annotations

from modelctl.v1 import system_pb2 as _pb

from ..audit import AuditEvent
from ..auth import Role, TokenInfo
from ..errors import FieldViolation, ValidationError
from ..system.components import ComponentState, ComponentStatus
from ..system.status import SystemSnapshot
from ._time import duration, ts

_COMPONENT_STATES = {
    ComponentState.STARTING: _pb.COMPONENT_STATE_STARTING, ComponentState.RUNNING: _pb.COMPONENT_STATE_RUNNING,
    ComponentState.STOPPED: _pb.COMPONENT_STATE_STOPPED, ComponentState.FAILED: _pb.COMPONENT_STATE_FAILED,
}
_ROLES = {Role.VIEWER: _pb.ROLE_VIEWER, Role.OPERATOR: _pb.ROLE_OPERATOR, Role.ADMIN: _pb.ROLE_ADMIN}
_ROLES_BACK = {v: k for k, v in _ROLES.items()}


def role_from_proto(value: int, field: str = "role") -> Role:
    if value not in _ROLES_BACK:
        raise ValidationError(FieldViolation(field, "must be ROLE_VIEWER, ROLE_OPERATOR or ROLE_ADMIN"))
    return _ROLES_BACK[value]


def role_to_proto(role: Role | str) -> int:
    if isinstance(role, str):
        if not role:
            return _pb.ROLE_UNSPECIFIED
        role = Role.parse(role)
    return _ROLES[role]


def status_to_proto(s: SystemSnapshot) -> _pb.SystemStatus:
    return _pb.SystemStatus(
        version=s.version, started_at=ts(s.started_at), uptime=duration(s.uptime_seconds),
        process_cpu_percent=s.process_cpu_percent, system_cpu_percent=s.system_cpu_percent,
        memory=_pb.MemoryStatus(process_rss_bytes=s.process_rss_bytes, system_total_bytes=s.system_total_bytes,
                                system_available_bytes=s.system_available_bytes,
                                system_percent=s.system_memory_percent),
        database=_pb.DatabaseStatus(reachable=s.database.reachable, latency=duration(s.database.latency_seconds),
                                    backend=s.database.backend, error=s.database.error),
        model_count=s.model_count, version_count=s.version_count,
        components=[component_to_proto(c) for c in s.components],
        auth_enabled=s.auth_enabled, tls_enabled=s.tls_enabled, open_files=s.open_files)


def component_to_proto(c: ComponentStatus) -> _pb.ComponentStatus:
    return _pb.ComponentStatus(name=c.name, state=_COMPONENT_STATES[c.state], detail=c.detail, since=ts(c.since))


def audit_event_to_proto(e: AuditEvent) -> _pb.AuditEvent:
    return _pb.AuditEvent(id=e.id, time=ts(e.time), token_id=e.token_id, token_name=e.token_name,
                          role=role_to_proto(e.role), rpc=e.rpc, target=e.target, outcome=e.outcome,
                          detail=e.detail, peer=e.peer)


def token_to_proto(t: TokenInfo) -> _pb.Token:
    return _pb.Token(id=t.id, name=t.name, role=role_to_proto(t.role), created_at=ts(t.created_at),
                     expires_at=ts(t.expires_at), revoked=t.revoked_at is not None, created_by=t.created_by)
