"""The alert engine: the one path every source raises through, and the only writer of alerts.

`raise_signal(signal)` looks for the open alert with the signal's fingerprint and,
checked against `lifecycle.TRANSITIONS`, opens a new one (RAISED) or counts a
repeat into it (UPDATED; a rise in severity clears the acknowledgement so it is
flagged again). `resolve`, `acknowledge` are the other changes. Each change
commits in one transaction with its event (the stream's cursor) and the
notifications it owes (the outbox), and is announced only after that commit.

A rule re-asserts a firing condition every `alerts.evaluate_interval` (a
`periodic` signal). Such a repeat always counts (`count`, message, `updated_at`
on the alert row), but it is a change event (streamed, routed to the outbox)
only when the severity rises or `repeat_interval` has passed since the alert's
last event: a reminder, which the router may notify. Otherwise one firing alert
would write 8,640 event rows a day and wake every subscriber for nothing new.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from typing import Callable, Iterable

from ..clock import Clock
from ..errors import NotFoundError
from ..store.alerts import AlertStore, AlertTx
from .lifecycle import check_change
from .model import Alert, AlertEvent, AlertKind, AlertState, Change, Signal

log = logging.getLogger(__name__)

Announce = Callable[[list[AlertEvent]], None]


class AlertEngine:
    def __init__(self, store: AlertStore, clock: Clock, *, router=None,  # type: ignore[no-untyped-def]
                 announce: Announce | None = None, new_id: Callable[[], str] | None = None,
                 repeat_interval: float = 4 * 3600.0) -> None:
        self.store = store
        self._clock = clock
        #: A periodic repeat writes a reminder event at most this often (`notifications.repeat_interval`).
        self.repeat_interval = repeat_interval
        #: Decides the notifications a change owes (`notify.routing.Router`); None sends none.
        self.router = router
        self._announce = announce or (lambda events: None)
        self._new_id = new_id or (lambda: uuid.uuid4().hex[:16])

    # --- changes --------------------------------------------------------------------------------------------

    def raise_signal(self, signal: Signal) -> list[AlertEvent]:
        """Open an alert for `signal`, or count it into the open one with its fingerprint.

        One transaction per signal, also for a rule's round of many: batching a round's quiet repeats
        into one commit made a new alert in that round wait for all of them (bench/alert_fanout.py).
        """
        with self.store.transaction() as tx:
            tx.lock()
            events = self._raise(tx, signal, self._clock.now())
        self._announce(events)
        return events

    def raise_signals(self, signals: list[Signal]) -> list[AlertEvent]:
        """A rule round's signals: each new alert in its own transaction, announced at once, then every
        repeat of an already open alert together in one transaction of a few statements.

        A round re-asserts every firing condition. With a transaction per repeat (four statements each),
        a round of N open alerts held the GIL for N commits every `alerts.evaluate_interval`, also while
        a new alert was being streamed to its subscribers (bench/alert_fanout.py). Which signals are
        repeats is read before the changes; a guess that turns out wrong only changes the order, since
        each is decided again under the lock.
        """
        if not signals:
            return []
        open_now = self.store.open_fingerprints(sorted({s.kind for s in signals}, key=lambda k: k.value))
        events = [e for s in signals if s.fingerprint not in open_now for e in self.raise_signal(s)]
        repeats = [s for s in signals if s.fingerprint in open_now]
        if repeats:
            with self.store.transaction() as tx:
                tx.lock()
                counted = self._count_repeats(tx, repeats, self._clock.now())
            self._announce(counted)
            events += counted
        return events

    def resolve(self, fingerprint: str, message: str = "") -> list[AlertEvent]:
        """Resolve the open alert with this fingerprint; nothing when none is open."""
        with self.store.transaction() as tx:
            tx.lock()
            current = tx.open_alert(fingerprint)
            if current is None:
                return []
            events = [self._resolve(tx, current, message)]
        self._announce(events)
        return events

    def resolve_all(self, kind: AlertKind, *, model: str | None = None, keep: Iterable[str] = (),
                    message: str = "") -> list[AlertEvent]:
        """Resolve every open alert of `kind` (of `model`) whose fingerprint is not in `keep`."""
        keep = set(keep)
        with self.store.transaction() as tx:
            tx.lock()
            events = [self._resolve(tx, a, message) for a in tx.open_alerts(kind, model)
                      if a.fingerprint not in keep]
        self._announce(events)
        return events

    def acknowledge(self, alert_id: str, by: str) -> Alert:
        """Record who and when; acknowledging again changes nothing and returns the alert as it is."""
        with self.store.transaction() as tx:
            tx.lock()
            current = tx.get(alert_id)
            if current is None:
                raise NotFoundError(f"alert {alert_id!r} not found")
            if current.acknowledged:
                return current
            check_change(current.state, Change.ACKNOWLEDGED)
            now = self._clock.now()
            alert = dataclasses.replace(current, acknowledged_by=by, acknowledged_at=now, updated_at=now)
            events = [self._commit(tx, Change.ACKNOWLEDGED, alert, current, now)]
        self._announce(events)
        return alert

    # --- reads ----------------------------------------------------------------------------------------------

    def get(self, alert_id: str) -> Alert:
        alert = self.store.get(alert_id)
        if alert is None:
            raise NotFoundError(f"alert {alert_id!r} not found")
        return alert

    # --- inside a change ------------------------------------------------------------------------------------

    def _raise(self, tx: AlertTx, signal: Signal, now: dt.datetime) -> list[AlertEvent]:
        current = tx.open_alert(signal.fingerprint)
        if current is None:
            check_change(None, Change.RAISED)
            alert = Alert(id=self._new_id(), fingerprint=signal.fingerprint, kind=signal.kind, rule=signal.rule,
                          model=signal.model, version=signal.version, severity=signal.severity,
                          state=AlertState.OPEN, message=signal.message, labels=dict(signal.labels),
                          deployment_id=signal.deployment_id, count=1, acknowledged_by="",
                          acknowledged_at=None, silenced=False, created_at=now, updated_at=now, resolved_at=None)
            return [self._commit(tx, Change.RAISED, alert, None, now)]
        alert, rose = self._repeat(current, signal, now)
        # check a rule's repeat says anything new: else it is counted on the row, not an event
        if signal.periodic and not rose and not self._reminder_due(tx.last_event_time(current.id), now):
            tx.save(alert)
            return []
        return [self._commit(tx, Change.UPDATED, alert, current, now)]

    def _count_repeats(self, tx: AlertTx, signals: list[Signal], now: dt.datetime) -> list[AlertEvent]:
        """`_raise` for many signals at once: the open alerts and their last event times in two reads,
        the quiet repeats (only counted) in one write; the rest go through `_raise`/`_commit` as usual."""
        current = tx.open_alerts_by_fingerprint([s.fingerprint for s in signals])
        last_events = tx.last_event_times([a.id for a in current.values()])
        events: list[AlertEvent] = []
        quiet: dict[str, Alert] = {}
        for signal in signals:
            before = current.get(signal.fingerprint)
            if before is None:
                events += self._raise(tx, signal, now)  # resolved since the round began: a new alert
                continue
            alert, rose = self._repeat(before, signal, now)
            if signal.periodic and not rose and not self._reminder_due(last_events.get(before.id), now):
                quiet[alert.id] = alert
            else:
                quiet.pop(alert.id, None)  # a second signal for the same alert in one round
                events.append(self._commit(tx, Change.UPDATED, alert, before, now))
                last_events[alert.id] = now
            current[signal.fingerprint] = alert
        tx.save_counted(list(quiet.values()))
        return events

    @staticmethod
    def _repeat(current: Alert, signal: Signal, now: dt.datetime) -> tuple[Alert, bool]:
        """The open alert with `signal` counted into it, and whether its severity rose."""
        check_change(current.state, Change.UPDATED)
        rose = signal.severity > current.severity
        alert = dataclasses.replace(
            current, severity=max(signal.severity, current.severity), message=signal.message,
            labels={**current.labels, **signal.labels},
            deployment_id=signal.deployment_id or current.deployment_id, count=current.count + 1,
            updated_at=now,
            # a rise is flagged again even if someone acknowledged the milder alert
            acknowledged_by="" if rose else current.acknowledged_by,
            acknowledged_at=None if rose else current.acknowledged_at)
        return alert, rose

    def _reminder_due(self, last_event: dt.datetime | None, now: dt.datetime) -> bool:
        return last_event is None or (now - last_event).total_seconds() >= self.repeat_interval

    def _resolve(self, tx: AlertTx, current: Alert, message: str) -> AlertEvent:
        check_change(current.state, Change.RESOLVED)
        now = self._clock.now()
        alert = dataclasses.replace(current, state=AlertState.RESOLVED, resolved_at=now, updated_at=now,
                                    message=message or current.message)
        return self._commit(tx, Change.RESOLVED, alert, current, now)

    def _commit(self, tx: AlertTx, change: Change, alert: Alert, previous: Alert | None,
                now: dt.datetime) -> AlertEvent:
        if change is not Change.ACKNOWLEDGED:
            # Silences apply to what happens while they are active: this change, not the alert forever.
            alert = dataclasses.replace(alert, silenced=any(s.matches(alert) for s in tx.active_silences(now)))
        tx.save(alert)
        event = AlertEvent(cursor=tx.next_cursor(), change=change, alert=alert, time=now)
        tx.add_event(event)
        if self.router is not None:
            for notification in self.router.plan(tx, change, alert, previous, now):
                tx.add_outbox(event.cursor, alert.id, notification, now)
        return event
