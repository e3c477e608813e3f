"""The alert's domain records: severities, kinds, the alert itself, its change events, silences, signals.

All frozen. A source never builds an `Alert`: it hands a `Signal` to the one raise
path (`AlertEngine.raise_signal`), which decides whether that opens a new alert,
updates an open one, or changes nothing.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from dataclasses import dataclass, field


class Severity(enum.IntEnum):
    """Ordered, so "at least WARNING" is a comparison; the values are stored."""

    INFO = 1
    WARNING = 2
    ERROR = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        """`warning`, `WARNING` or `ALERT_SEVERITY_WARNING`."""
        name = text.strip().upper().removeprefix("ALERT_SEVERITY_")
        try:
            return cls[name]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (one of {', '.join(s.name for s in cls)})") from None


class AlertKind(enum.Enum):
    THRESHOLD = "THRESHOLD"
    """A model version's error rate or p95 latency beyond its threshold over the alert window."""
    DRIFT = "DRIFT"
    """The drift report of a model version says drifted."""
    DEPLOYMENT = "DEPLOYMENT"
    """A deployment rolled back, failed, was aborted or succeeded."""
    EXPERIMENT = "EXPERIMENT"
    """Something an experiment concluded or ran into."""
    SYSTEM = "SYSTEM"
    """The controller itself: CPU, memory, event-loop lag, database, a background component."""


class AlertState(enum.Enum):
    OPEN = "OPEN"
    """The condition holds, or the event has not been dealt with."""
    RESOLVED = "RESOLVED"
    """The condition cleared. Final: a recurrence opens a new alert."""


class Change(enum.Enum):
    """What happened to an alert; each change is one event with its own cursor."""

    RAISED = "RAISED"
    UPDATED = "UPDATED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVED = "RESOLVED"


def fingerprint(kind: AlertKind, model: str, version: str, rule: str) -> str:
    """Repeats of one condition share it; while the alert is open they are de-duplicated into it."""
    raw = "\x1f".join((kind.value, model, version, rule))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Signal:
    """A source's claim that a condition holds now."""

    kind: AlertKind
    rule: str
    severity: Severity
    message: str
    model: str = ""
    version: str = ""
    deployment_id: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    #: Re-asserted by a rule on every evaluation while the condition holds (thresholds, drift, system,
    #: experiments), as opposed to an event that happened once (a deployment rolled back). The engine
    #: counts such a repeat but writes it as an event only on a severity rise or as a reminder.
    periodic: bool = False

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.kind, self.model, self.version, self.rule)


@dataclass(frozen=True)
class Alert:
    id: str
    fingerprint: str
    kind: AlertKind
    rule: str
    model: str
    version: str
    severity: Severity
    state: AlertState
    message: str
    labels: dict[str, str]
    deployment_id: str
    count: int
    acknowledged_by: str
    acknowledged_at: dt.datetime | None
    silenced: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    resolved_at: dt.datetime | None

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None


@dataclass(frozen=True)
class AlertEvent:
    """One change of one alert; `cursor` grows by one per change, across restarts."""

    cursor: int
    change: Change
    alert: Alert
    time: dt.datetime


@dataclass(frozen=True)
class Silence:
    id: str
    model: str
    version: str
    kind: AlertKind | None
    min_severity: Severity
    comment: str
    created_by: str
    created_at: dt.datetime
    expires_at: dt.datetime
    expired_by: str

    def active(self, now: dt.datetime) -> bool:
        return now < self.expires_at

    def matches(self, alert: Alert) -> bool:
        """Every matcher set must match; an empty one matches anything."""
        return ((not self.model or self.model == alert.model)
                and (not self.version or self.version == alert.version)
                and (self.kind is None or self.kind is alert.kind)
                and alert.severity >= self.min_severity)


@dataclass(frozen=True)
class AlertFilter:
    """What ListAlerts and StreamAlerts narrow by; None or empty means any."""

    min_severity: Severity | None = None
    state: AlertState | None = None
    model: str = ""
    kind: AlertKind | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def matches(self, alert: Alert) -> bool:
        return ((self.min_severity is None or alert.severity >= self.min_severity)
                and (self.state is None or alert.state is self.state)
                and (not self.model or alert.model == self.model)
                and (self.kind is None or alert.kind is self.kind)
                and (self.since is None or alert.created_at >= self.since)
                and (self.until is None or alert.created_at < self.until))
