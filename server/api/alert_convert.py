"""Alerts, alert events, silences and notification deliveries: wire <-> domain."""

from __future__ import annotations

import datetime as dt

from modelctl.v1 import alert_pb2 as _pb

from ..alerts.model import Alert, AlertEvent, AlertFilter, AlertKind, AlertState, Change, Severity, Silence
from ..errors import FieldViolation, ValidationError
from ._time import datetime_of, duration, ts

_SEVERITIES = {s: _pb.AlertSeverity.Value(f"ALERT_SEVERITY_{s.name}") for s in Severity}
_SEVERITIES_BACK = {v: k for k, v in _SEVERITIES.items()}
_KINDS = {k: _pb.AlertKind.Value(f"ALERT_KIND_{k.value}") for k in AlertKind}
_KINDS_BACK = {v: k for k, v in _KINDS.items()}
_STATES = {s: _pb.AlertState.Value(f"ALERT_STATE_{s.value}") for s in AlertState}
_STATES_BACK = {v: k for k, v in _STATES.items()}
_CHANGES = {c: _pb.AlertEventKind.Value(f"ALERT_EVENT_KIND_{c.value}") for c in Change}


def severity_from_proto(value: int, field: str) -> Severity | None:
    """None for UNSPECIFIED (no filter); INVALID_ARGUMENT for a number that is no severity."""
    if value == _pb.ALERT_SEVERITY_UNSPECIFIED:
        return None
    if value not in _SEVERITIES_BACK:
        raise ValidationError(FieldViolation(field, "must be ALERT_SEVERITY_INFO, _WARNING, _ERROR or _CRITICAL"))
    return _SEVERITIES_BACK[value]


def kind_from_proto(value: int, field: str = "kind") -> AlertKind | None:
    if value == _pb.ALERT_KIND_UNSPECIFIED:
        return None
    if value not in _KINDS_BACK:
        raise ValidationError(FieldViolation(field, "must be ALERT_KIND_THRESHOLD, _DRIFT, _DEPLOYMENT, "
                                                    "_EXPERIMENT or _SYSTEM"))
    return _KINDS_BACK[value]


def state_from_proto(value: int, field: str = "state") -> AlertState | None:
    if value == _pb.ALERT_STATE_UNSPECIFIED:
        return None
    if value not in _STATES_BACK:
        raise ValidationError(FieldViolation(field, "must be ALERT_STATE_OPEN or ALERT_STATE_RESOLVED"))
    return _STATES_BACK[value]


def filter_from_proto(r: _pb.ListAlertsRequest) -> AlertFilter:
    since = datetime_of(r.since, "since") if r.HasField("since") else None
    until = datetime_of(r.until, "until") if r.HasField("until") else None
    if since is not None and until is not None and until <= since:
        raise ValidationError(FieldViolation("until", "must be after since"))
    return AlertFilter(min_severity=severity_from_proto(r.min_severity, "min_severity"),
                       state=state_from_proto(r.state), model=r.model, kind=kind_from_proto(r.kind),
                       since=since, until=until)


def alert_to_proto(a: Alert) -> _pb.Alert:
    return _pb.Alert(
        id=a.id, severity=_SEVERITIES[a.severity], kind=_KINDS[a.kind], model=a.model, version=a.version,
        message=a.message, state=_STATES[a.state], acknowledged=a.acknowledged, acknowledged_by=a.acknowledged_by,
        acknowledged_at=ts(a.acknowledged_at), count=a.count, created_at=ts(a.created_at),
        updated_at=ts(a.updated_at), resolved_at=ts(a.resolved_at), labels=a.labels, deployment_id=a.deployment_id,
        silenced=a.silenced, rule=a.rule, fingerprint=a.fingerprint)


def event_to_proto(e: AlertEvent) -> _pb.AlertEvent:
    return _pb.AlertEvent(cursor=e.cursor, kind=_CHANGES[e.change], alert=alert_to_proto(e.alert), time=ts(e.time))


def silence_to_proto(s: Silence, now: dt.datetime) -> _pb.Silence:
    return _pb.Silence(id=s.id, model=s.model, version=s.version,
                       kind=_KINDS[s.kind] if s.kind else _pb.ALERT_KIND_UNSPECIFIED,
                       min_severity=_SEVERITIES[s.min_severity], created_at=ts(s.created_at),
                       expires_at=ts(s.expires_at), created_by=s.created_by, comment=s.comment,
                       active=s.active(now), expired_by=s.expired_by)


def delivery_to_proto(destination: str, delivered: bool, error: str, elapsed: float) -> _pb.NotificationDelivery:
    return _pb.NotificationDelivery(destination=destination, delivered=delivered, error=error,
                                    elapsed=duration(elapsed))
