"""Which destinations an alert change is owed to, decided inside the alert's own transaction.

- silenced (also a resolution during a silence, as Alertmanager does) or acknowledged: nobody (the
  change is still recorded and streamed);
- raised: every destination whose severity, model and kind filters it passes;
- updated: on a severity rise at once; a plain repeat only after `repeat_interval`
  since that destination last heard of the alert, and never once acknowledged;
- resolved: the destinations that heard of the alert.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from ..alerts.model import Alert, Change
from . import messages
from .destinations import Destination
from .messages import Notification


class NotifiedLookup(Protocol):
    def last_notified(self, alert_id: str, destination: str) -> dt.datetime | None: ...

    def owed_destinations(self, alert_id: str) -> set[str]: ...


class Router:
    def __init__(self, destinations: list[Destination], *, repeat_interval: float) -> None:
        self.destinations = list(destinations)
        self.repeat_interval = repeat_interval

    def plan(self, lookup: NotifiedLookup, change: Change, alert: Alert, previous: Alert | None,
             now: dt.datetime) -> list[Notification]:
        if change is Change.ACKNOWLEDGED or alert.silenced or not self.destinations:
            return []
        if change is Change.RESOLVED:
            told = lookup.owed_destinations(alert.id)
            targets = [d for d in self.destinations if d.key in told]
        elif change is Change.RAISED:
            targets = [d for d in self.destinations if d.wants(alert)]
        else:
            rose = previous is not None and alert.severity > previous.severity
            if alert.acknowledged and not rose:
                return []  # someone is on it: no reminders (a rise cleared the acknowledgement)
            targets = [d for d in self.destinations if d.wants(alert)
                       and (rose or self._repeat_due(lookup, alert, d, now))]
        return [self._message(d, change, alert, previous) for d in targets]

    def _repeat_due(self, lookup: NotifiedLookup, alert: Alert, d: Destination, now: dt.datetime) -> bool:
        last = lookup.last_notified(alert.id, d.key)
        return last is None or (now - last).total_seconds() >= self.repeat_interval

    @staticmethod
    def _message(d: Destination, change: Change, alert: Alert, previous: Alert | None) -> Notification:
        shown = change
        if change is Change.UPDATED and not (previous is not None and alert.severity > previous.severity):
            shown = Change.RAISED  # a reminder reads like the first message, not "severity raised"
        return Notification(destination=d.key, scheme=d.scheme, severity=alert.severity,
                            notify_type=messages.notify_type(alert, change), title=messages.title(alert, shown),
                            body=messages.body(alert, change))
