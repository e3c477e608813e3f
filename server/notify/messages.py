"""What a notification says: title and body for one alert change, and for a group of them.

A person reading it on a phone must learn severity, model and version, what
happened, the deployment and its reason when there is one, and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..alerts.model import Alert, AlertKind, Change, Severity


@dataclass(frozen=True)
class Notification:
    """One message owed to one destination, as the outbox stores it."""

    destination: str
    scheme: str
    severity: Severity
    #: Apprise's notify type: info, warning, failure or success.
    notify_type: str
    title: str
    body: str


_TYPES = {Severity.INFO: "info", Severity.WARNING: "warning", Severity.ERROR: "failure",
          Severity.CRITICAL: "failure"}


def notify_type(alert: Alert, change: Change) -> str:
    return "success" if change is Change.RESOLVED else _TYPES[alert.severity]


def subject(alert: Alert) -> str:
    if alert.kind is AlertKind.SYSTEM:
        return "modelctl controller"
    return f"{alert.model} {alert.version}".strip()


def title(alert: Alert, change: Change) -> str:
    label = "RESOLVED" if change is Change.RESOLVED else alert.severity.name
    again = " (severity raised)" if change is Change.UPDATED else ""
    return f"[{label}] {subject(alert)}: {alert.message}{again}"[:250]


def body(alert: Alert, change: Change) -> str:
    lines = [
        f"Severity: {alert.severity.name}",
        f"Kind: {alert.kind.value.lower()} ({alert.rule})",
    ]
    if alert.model:
        lines.append(f"Model: {alert.model}" + (f"  version {alert.version}" if alert.version else ""))
    lines.append(f"What happened: {alert.message}")
    if alert.deployment_id:
        reason = alert.labels.get("reason", "")
        lines.append(f"Deployment: {alert.deployment_id}" + (f"; reason: {reason}" if reason else ""))
    lines.append(f"Alert: {alert.id}, first raised {alert.created_at:%Y-%m-%d %H:%M:%SZ}, seen {alert.count}x")
    if change is Change.RESOLVED:
        lines.append("Resolved: the condition cleared; nothing to do.")
    else:
        lines.append(f"What to do: look into it, then acknowledge with `modelctl alerts ack {alert.id}`")
    return "\n".join(lines)


def grouped(items: list[tuple[str, str, str]]) -> tuple[str, str, str]:
    """One message for several (title, body, notify_type) raised within group_wait: the worst type wins."""
    if len(items) == 1:
        return items[0]
    order = ["success", "info", "warning", "failure"]
    worst = max((t for _, _, t in items), key=lambda t: order.index(t) if t in order else 0)
    head = f"{len(items)} modelctl alerts: " + "; ".join(t for t, _, _ in items)
    text = "\n\n".join(f"{t}\n{b}" for t, b, _ in items)
    return head[:250], text, worst
