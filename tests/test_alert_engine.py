"""The alert engine on a real database (SQLite and PostgreSQL): de-dup, severity rise, ack, silence,
resolve, recurrence, cursors, notification routing, and rotation of alerts and the audit log."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from modelctl_server.alerts.engine import AlertEngine
from modelctl_server.alerts.lifecycle import TRANSITIONS, IllegalAlertChange, check_change
from modelctl_server.alerts.model import AlertKind, AlertState, Change, Severity, Signal
from modelctl_server.alerts.silences import SilenceService
from modelctl_server.audit import AuditLog
from modelctl_server.clock import FakeClock
from modelctl_server.errors import NotFoundError, ValidationError
from modelctl_server.notify.destinations import parse_destination
from modelctl_server.notify.routing import Router
from modelctl_server.store.alert_tables import OutboxRow
from modelctl_server.store.alerts import AlertStore
from modelctl_server.store.db import Database
from modelctl_server.store.tables import AuditRow


@pytest.fixture
def env(database_url: str):  # type: ignore[no-untyped-def]
    db = Database(database_url)
    db.migrate()
    clock = FakeClock()
    announced: list = []
    hook = parse_destination("json://127.0.0.1:9/hook", min_severity=Severity.WARNING)
    store = AlertStore(db)
    engine = AlertEngine(store, clock, router=Router([hook], repeat_interval=3600), announce=announced.extend)
    yield engine, SilenceService(store, clock), clock, db, announced
    db.dispose()


def _signal(severity: Severity = Severity.ERROR, model: str = "fraud", rule: str = "error_rate") -> Signal:
    return Signal(AlertKind.THRESHOLD, rule, severity, f"{rule} too high", model, "1")


def _outbox(db: Database) -> list[OutboxRow]:
    with db.read() as s:
        return list(s.scalars(select(OutboxRow).order_by(OutboxRow.id)))


def test_repeat_while_open_is_one_alert_with_a_count_and_recurrence_opens_a_new_one(env) -> None:  # type: ignore[no-untyped-def]
    engine, _, clock, db, announced = env
    first = engine.raise_signal(_signal())[0]
    clock.advance(10)
    again = engine.raise_signal(_signal())[0]
    assert first.change is Change.RAISED and again.change is Change.UPDATED
    assert again.alert.id == first.alert.id and again.alert.count == 2
    assert again.cursor == first.cursor + 1
    resolved = engine.resolve(first.alert.fingerprint, "cleared")[0]
    assert resolved.alert.state is AlertState.RESOLVED and resolved.alert.resolved_at == clock.now()
    assert engine.resolve(first.alert.fingerprint) == []  # nothing open: no change, no event
    recurrence = engine.raise_signal(_signal())[0]
    assert recurrence.change is Change.RAISED and recurrence.alert.id != first.alert.id
    assert [e.cursor for e in announced] == [1, 2, 3, 4]
    assert [e.cursor for e in engine.store.events_after(1, 10)] == [2, 3, 4]
    # Other rules, models and versions are other alerts.
    assert engine.raise_signal(_signal(model="churn"))[0].change is Change.RAISED
    assert engine.raise_signal(_signal(rule="latency_p95"))[0].change is Change.RAISED


def test_a_severity_rise_is_flagged_again_even_when_acknowledged(env) -> None:  # type: ignore[no-untyped-def]
    engine, _, clock, db, _ = env
    alert = engine.raise_signal(_signal(Severity.WARNING))[0].alert
    acked = engine.acknowledge(alert.id, "alice")
    assert acked.acknowledged and acked.acknowledged_by == "alice" and acked.acknowledged_at == clock.now()
    assert engine.acknowledge(alert.id, "bob") == acked  # idempotent: still alice, no new event
    assert engine.store.last_cursor() == 2
    same = engine.raise_signal(_signal(Severity.WARNING))[0].alert
    assert same.acknowledged  # a plain repeat keeps the acknowledgement
    rose = engine.raise_signal(_signal(Severity.CRITICAL))[0].alert
    assert rose.severity is Severity.CRITICAL and not rose.acknowledged and rose.acknowledged_by == ""
    lower = engine.raise_signal(_signal(Severity.WARNING))[0].alert
    assert lower.severity is Severity.CRITICAL  # severity never drops while open
    # Notifications: the raise, then the rise; the repeats within repeat_interval notify nobody.
    assert [r.title.split("]")[0] for r in _outbox(db)] == ["[WARNING", "[CRITICAL"]
    with pytest.raises(NotFoundError):
        engine.acknowledge("nosuchalert", "alice")


def test_repeat_notifies_again_after_repeat_interval_and_resolution_goes_to_those_notified(env) -> None:  # type: ignore[no-untyped-def]
    engine, _, clock, db, _ = env
    engine.raise_signal(_signal())
    clock.advance(3599)
    engine.raise_signal(_signal())
    assert len(_outbox(db)) == 1
    clock.advance(2)
    engine.raise_signal(_signal())
    info = engine.raise_signal(_signal(Severity.INFO, model="quiet"))[0].alert  # below the destination's WARNING
    engine.resolve(info.fingerprint)
    engine.resolve(_signal().fingerprint)
    rows = _outbox(db)
    assert len(rows) == 3 and rows[-1].notify_type == "success" and rows[-1].title.startswith("[RESOLVED]")
    assert "modelctl alerts ack" in rows[0].body and "fraud" in rows[0].body


def test_an_acknowledged_alert_sends_no_reminders_until_its_severity_rises(env) -> None:  # type: ignore[no-untyped-def]
    engine, _, clock, db, _ = env
    alert = engine.raise_signal(_signal())[0].alert
    engine.acknowledge(alert.id, "alice")
    clock.advance(3601)  # past repeat_interval: an unacknowledged alert would remind the destination
    assert engine.raise_signal(_signal())[0].change is Change.UPDATED
    assert len(_outbox(db)) == 1
    engine.raise_signal(_signal(Severity.CRITICAL))  # a rise clears the acknowledgement and notifies
    engine.resolve(alert.fingerprint)  # and the resolution reaches those who heard of it
    assert [r.title[:10] for r in _outbox(db)] == ["[ERROR] fr", "[CRITICAL]", "[RESOLVED]"]

def test_silenced_alerts_are_recorded_and_streamed_but_not_notified(env) -> None:  # type: ignore[no-untyped-def]
    engine, silences, clock, db, announced = env
    silence = silences.create(model="fraud", kind=AlertKind.THRESHOLD, duration_seconds=3600,
                              comment="feature store maintenance", created_by="alice")
    event = engine.raise_signal(_signal())[0]
    assert event.alert.silenced and announced[-1] is event and _outbox(db) == []
    other = engine.raise_signal(_signal(model="churn"))[0]
    assert not other.alert.silenced and len(_outbox(db)) == 1
    assert [s.id for s in silences.list()] == [silence.id]
    expired = silences.expire(silence.id, "bob")
    assert expired.expired_by == "bob" and not expired.active(clock.now())
    assert silences.expire(silence.id, "carol").expired_by == "bob"  # idempotent
    assert silences.list() == [] and len(silences.list(include_expired=True)) == 1
    assert not engine.raise_signal(_signal())[0].alert.silenced  # the next change notifies again
    assert len(_outbox(db)) == 2
    with pytest.raises(NotFoundError):
        silences.expire("nosuch", "bob")


def test_a_resolution_during_a_silence_is_streamed_but_not_notified(env) -> None:  # type: ignore[no-untyped-def]
    engine, silences, clock, db, announced = env
    raised = engine.raise_signal(_signal())[0]
    assert len(_outbox(db)) == 1  # told before the silence
    silence = silences.create(model="fraud", kind=AlertKind.THRESHOLD, duration_seconds=3600,
                              comment="maintenance", created_by="alice")
    resolved = engine.resolve(raised.alert.fingerprint, "cleared")[0]
    assert resolved.alert.silenced and announced[-1] is resolved and len(_outbox(db)) == 1
    silences.expire(silence.id, "alice")
    again = engine.raise_signal(_signal())[0]
    assert not again.alert.silenced and len(_outbox(db)) == 2
    assert not engine.resolve(again.alert.fingerprint)[0].alert.silenced and len(_outbox(db)) == 3


def test_a_rule_repeating_a_firing_condition_counts_but_writes_an_event_only_as_a_reminder(env) -> None:  # type: ignore[no-untyped-def]
    engine, _, clock, db, announced = env
    engine.repeat_interval = 3600
    firing = Signal(AlertKind.THRESHOLD, "error_rate", Severity.ERROR, "error rate 9.0% > 5.0%", "fraud", "1",
                    periodic=True)
    raised = engine.raise_signal(firing)[0]
    for i in range(359):  # an hour of evaluations every 10 s, the measured value moving each time
        clock.advance(10)
        assert engine.raise_signal(Signal(**{**firing.__dict__, "message": f"error rate {9 + i % 3}.0% > 5.0%"})) == []
    alert = engine.get(raised.alert.id)
    assert alert.count == 360 and alert.updated_at == clock.now() and alert.message == "error rate 10.0% > 5.0%"
    assert [e.cursor for e in announced] == [1] and engine.store.last_cursor() == 1 and len(_outbox(db)) == 1
    clock.advance(10)  # an hour since its last event: one reminder, streamed and notified again
    reminder = engine.raise_signal(firing)[0]
    assert (reminder.change, reminder.cursor, reminder.alert.count) == (Change.UPDATED, 2, 361)
    assert len(_outbox(db)) == 2
    clock.advance(10)
    assert engine.raise_signal(firing) == []  # the next hour starts quiet again
    rose = engine.raise_signal(Signal(**{**firing.__dict__, "severity": Severity.CRITICAL}))[0]  # at once
    assert (rose.change, rose.alert.severity, rose.alert.count) == (Change.UPDATED, Severity.CRITICAL, 363)
    assert engine.resolve(firing.fingerprint)[0].alert.count == 363
    assert [e.change for e in engine.store.events_after(0, 100)] == [
        Change.RAISED, Change.UPDATED, Change.UPDATED, Change.RESOLVED]


def test_a_round_of_signals_raises_new_alerts_first_and_counts_repeats_as_one_by_one_would(env) -> None:  # type: ignore[no-untyped-def]
    engine, _, clock, db, announced = env
    engine.repeat_interval = 60

    def firing(model: str, severity: Severity = Severity.ERROR, message: str = "error rate 9%") -> Signal:
        return Signal(AlertKind.THRESHOLD, "error_rate", severity, message, model, "1", periodic=True)

    a, b, c, d = (engine.raise_signal(firing(m))[0].alert for m in "abcd")
    engine.acknowledge(a.id, "alice")
    engine.resolve(d.fingerprint)
    clock.advance(30)
    announced.clear()
    events = engine.raise_signals([firing("new"), firing("a", message="error rate 10%"),
                                   firing("b", Severity.CRITICAL), firing("d"), firing("c")])
    # New alerts first (d's was resolved: a new one), each announced on its own; then the repeats, in one
    # transaction: b's severity rose (an event), a and c are quiet (counted on their rows only).
    assert [(e.alert.model, e.change) for e in events] == [
        ("new", Change.RAISED), ("d", Change.RAISED), ("b", Change.UPDATED)]
    assert [e.cursor for e in events] == [7, 8, 9] and announced == events
    assert events[1].alert.id != d.id
    a_now, b_now, c_now = (engine.get(x.id) for x in (a, b, c))
    assert (a_now.count, a_now.message, a_now.acknowledged_by, a_now.updated_at) == (
        2, "error rate 10%", "alice", clock.now())
    assert (b_now.count, b_now.severity, b_now.acknowledged) == (2, Severity.CRITICAL, False)
    assert (c_now.count, c_now.updated_at) == (2, clock.now())
    clock.advance(40)  # a's and c's last events are 70 s old: reminders; b's and new's are 40 s old
    events = engine.raise_signals([firing("a"), firing("b", Severity.CRITICAL), firing("c"), firing("new")])
    assert [(e.alert.model, e.change, e.alert.count) for e in events] == [
        ("a", Change.UPDATED, 3), ("c", Change.UPDATED, 3)]
    assert engine.get(a.id).acknowledged  # a reminder is no rise: the acknowledgement stays
    clock.advance(10)
    announced.clear()
    assert engine.raise_signals([firing("a"), firing("b", Severity.CRITICAL), firing("c"), firing("new")]) == []
    assert announced == []
    assert [engine.get(x.id).count for x in (a, b, c)] == [4, 4, 4]
    assert engine.store.last_cursor() == 11 and engine.raise_signals([]) == []


def test_a_silence_begun_while_an_alert_is_open_mutes_its_repeats_and_shows_on_read(env) -> None:  # type: ignore[no-untyped-def]
    engine, silences, clock, db, _ = env
    engine.repeat_interval = 3600
    alert = engine.raise_signal(_signal())[0].alert
    other = engine.raise_signal(_signal(model="churn"))[0].alert
    assert len(_outbox(db)) == 2 and not alert.silenced
    silence = silences.create(model="fraud", duration_seconds=86400, comment="retraining", created_by="alice")
    # ListAlerts reads: the open alert of fraud is silenced now; churn's is not
    marked = {a.id: a.silenced for a in silences.mark(engine.store.list(_any(), limit=10))}
    assert marked == {alert.id: True, other.id: False}
    clock.advance(3601)  # past repeat_interval: the repeat would remind the destination, but it is silenced
    repeat = engine.raise_signal(_signal())[0]
    assert repeat.change is Change.UPDATED and repeat.alert.silenced
    rose = engine.raise_signal(_signal(Severity.CRITICAL))[0]  # even a severity rise
    assert rose.alert.silenced
    periodic = Signal(**{**_signal(Severity.CRITICAL).__dict__, "periodic": True})
    clock.advance(3601)
    assert engine.raise_signal(periodic)[0].alert.silenced  # and a rule's reminder
    assert len(_outbox(db)) == 2  # nothing queued while silenced
    silences.expire(silence.id, "alice")
    assert [a.silenced for a in silences.mark([engine.get(alert.id)])] == [False]
    resolved = engine.resolve(other.fingerprint)[0].alert
    silences.create(model="churn", duration_seconds=60, comment="late", created_by="alice")
    # a resolved alert keeps what its last change recorded: the silence came after
    assert [a.silenced for a in silences.mark([engine.get(resolved.id)])] == [False]


def test_a_silence_expires_by_time_and_matches_min_severity(env) -> None:  # type: ignore[no-untyped-def]
    engine, silences, clock, _, _ = env
    silences.create(model="fraud", min_severity=Severity.ERROR, duration_seconds=60, comment="deploy window",
                    created_by="alice")
    assert not engine.raise_signal(_signal(Severity.WARNING, rule="a"))[0].alert.silenced
    assert engine.raise_signal(_signal(Severity.ERROR, rule="b"))[0].alert.silenced
    clock.advance(61)
    assert not engine.raise_signal(_signal(Severity.ERROR, rule="c"))[0].alert.silenced


@pytest.mark.parametrize("kwargs, field", [
    (dict(duration_seconds=60, comment="x"), "model"),
    (dict(model="fraud", duration_seconds=0, comment="x"), "duration"),
    (dict(model="fraud", duration_seconds=200 * 86400, comment="x"), "duration"),
    (dict(model="fraud", duration_seconds=60, comment=" "), "comment"),
    (dict(model="fraud", duration_seconds=60, comment="x" * 501), "comment"),
    (dict(model="fraud", duration_seconds=60, comment="a\x00b"), "comment"),  # PostgreSQL stores no NUL
    (dict(version="1", duration_seconds=60, comment="x"), "version"),
    (dict(model="bad name!", duration_seconds=60, comment="x"), "model"),
])
def test_bad_silences_name_the_field(env, kwargs, field) -> None:  # type: ignore[no-untyped-def]
    _, silences, _, _, _ = env
    with pytest.raises(ValidationError) as err:
        silences.create(created_by="alice", **kwargs)
    assert field in [v.field for v in err.value.violations]


def test_every_change_is_checked_against_the_table() -> None:
    assert check_change(None, Change.RAISED) is AlertState.OPEN
    assert check_change(AlertState.OPEN, Change.RESOLVED) is AlertState.RESOLVED
    for change in (Change.UPDATED, Change.RESOLVED, Change.RAISED):
        assert (AlertState.RESOLVED, change) not in TRANSITIONS
        with pytest.raises(IllegalAlertChange):
            check_change(AlertState.RESOLVED, change)


def test_rotation_removes_the_oldest_resolved_alerts_never_open_ones(env) -> None:  # type: ignore[no-untyped-def]
    engine, _, clock, db, _ = env
    ids = []
    for i in range(5):
        alert = engine.raise_signal(_signal(rule=f"r{i}"))[0].alert
        ids.append(alert.id)
        clock.advance(60)
        if i < 4:
            engine.resolve(alert.fingerprint)
    # Owed notifications are kept until sent: mark them sent, as the worker would.
    with db.session() as s:
        s.execute(OutboxRow.__table__.update().values(state="SENT"))
    assert engine.store.rotate(older_than=clock.now() - dt.timedelta(days=30), keep=3) == 2
    left = {a.id for a in engine.store.list(_any(), limit=100)}
    assert left == set(ids[2:])
    # By age: every resolved one is older than "now + 1 day"; the open one stays.
    assert engine.store.rotate(older_than=clock.now() + dt.timedelta(days=1), keep=100) == 2
    assert [a.id for a in engine.store.list(_any(), limit=100)] == [ids[4]]
    assert engine.store.rotate(older_than=clock.now() + dt.timedelta(days=1), keep=0) == 0
    assert engine.store.events_after(0, 100)[-1].alert.id == ids[4]


def test_audit_log_rotation_by_age_and_count(env) -> None:  # type: ignore[no-untyped-def]
    engine, _, clock, db, _ = env
    audit = AuditLog(db, clock)
    for i in range(6):
        audit.record(rpc=f"Rpc{i}", outcome="OK")
        clock.advance(86400)
    assert engine.store.rotate_audit(older_than=clock.now() - dt.timedelta(days=4, hours=12), keep=100) == 2
    assert engine.store.rotate_audit(older_than=clock.now() - dt.timedelta(days=365), keep=3) == 1
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditRow)) == 3
    assert [e.rpc for e in audit.list().events] == ["Rpc5", "Rpc4", "Rpc3"]


def _any():  # type: ignore[no-untyped-def]
    from modelctl_server.alerts.model import AlertFilter

    return AlertFilter()
