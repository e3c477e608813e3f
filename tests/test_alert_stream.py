"""StreamAlerts and `Client.stream_alerts`: same events in order for every subscriber, resume by cursor with
no gap and no duplicate (also across a restart), a slow subscriber never delays a fast one, bad input."""

from __future__ import annotations

import itertools
import threading

import grpc
import pytest

import modelctl
from modelctl.v1 import alert_pb2
from modelctl_server.alerts.engine import AlertEngine
from modelctl_server.alerts.model import AlertKind, Severity, Signal
from modelctl_server.clock import SystemClock
from modelctl_server.store.alerts import AlertStore
from modelctl_server.store.db import Database

from grpc_helpers import bad_fields, stub

QUIET = {"MODELCTL_ALERTS_CPU_PERCENT": "100", "MODELCTL_ALERTS_MEMORY_PERCENT": "100",
         "MODELCTL_ALERTS_LOOP_LAG": "60s"}


def _signal(i: int, severity: Severity = Severity.ERROR, model: str = "fraud") -> Signal:
    return Signal(AlertKind.THRESHOLD, f"rule{i}", severity, f"condition {i}", model, "1")


def _collect(api, request, n: int, out: list, ready: threading.Event | None = None) -> threading.Thread:  # type: ignore[no-untyped-def]
    def run() -> None:
        call = api.StreamAlerts(request, timeout=30)
        if ready is not None:
            ready.set()
        for event in itertools.islice(call, n):
            out.append(event)
        call.cancel()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_two_subscribers_see_the_same_events_in_order(server_factory) -> None:  # type: ignore[no-untyped-def]
    srv = server_factory(**QUIET)
    api = stub(srv.address, srv.admin_token)
    a: list = []
    b: list = []
    threads = [_collect(api, alert_pb2.StreamAlertsRequest(from_start=True), 6, out) for out in (a, b)]
    for i in range(3):
        alert = srv.app.alerts.raise_signal(_signal(i))[0].alert
        srv.app.alerts.acknowledge(alert.id, "alice")
    for t in threads:
        t.join(20)
    assert [e.cursor for e in a] == [e.cursor for e in b] == list(range(1, 7))
    assert [alert_pb2.AlertEventKind.Name(e.kind) for e in a[:2]] == ["ALERT_EVENT_KIND_RAISED",
                                                                       "ALERT_EVENT_KIND_ACKNOWLEDGED"]
    assert a[1].alert.acknowledged_by == "alice" and a[0].alert.acknowledged is False  # each as it was then


def test_filters_and_history_only(server_factory) -> None:  # type: ignore[no-untyped-def]
    srv = server_factory(**QUIET)
    api = stub(srv.address, srv.admin_token)
    srv.app.alerts.raise_signal(_signal(1, Severity.INFO))
    srv.app.alerts.raise_signal(_signal(2, Severity.CRITICAL))
    srv.app.alerts.raise_signal(_signal(3, Severity.CRITICAL, model="churn"))
    got = list(api.StreamAlerts(alert_pb2.StreamAlertsRequest(
        from_start=True, history_only=True, min_severity=alert_pb2.ALERT_SEVERITY_ERROR, model="fraud"), timeout=10))
    assert [e.alert.message for e in got] == ["condition 2"]


def test_resume_with_cursor_misses_nothing_repeats_nothing_across_a_restart(server_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from conftest import make_settings

    settings = make_settings(tmp_path / "data", **QUIET)
    first = server_factory(settings)
    token = first.admin_token
    for i in range(3):
        first.app.alerts.raise_signal(_signal(i))
    seen = list(stub(first.address, token).StreamAlerts(
        alert_pb2.StreamAlertsRequest(from_start=True, history_only=True), timeout=10))
    last = seen[-1].cursor
    first.app.alerts.raise_signal(_signal(3))  # happens while the client is away
    first.stop()
    second = server_factory(settings, environ={"MODELCTL_ADMIN_TOKEN": token})
    second.app.alerts.raise_signal(_signal(4))
    resumed = list(stub(second.address, token).StreamAlerts(
        alert_pb2.StreamAlertsRequest(after_cursor=last, history_only=True), timeout=10))
    assert [e.cursor for e in resumed] == [last + 1, last + 2]
    assert [e.alert.message for e in seen + resumed] == [f"condition {i}" for i in range(5)]


def test_sdk_stream_resumes_by_itself_after_a_restart(server_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from conftest import make_settings

    settings = make_settings(tmp_path / "data", **QUIET)
    first = server_factory(settings)
    token = first.admin_token
    first.app.alerts.raise_signal(_signal(0))
    got: list = []
    done = threading.Event()

    def follow() -> None:
        with modelctl.Client(first.address, token=token) as client:
            for event in client.stream_alerts(from_start=True):
                got.append(event)
                if len(got) == 3:
                    break
        done.set()
    threading.Thread(target=follow, daemon=True).start()
    while not got:
        threading.Event().wait(0.02)
    first.app.alerts.raise_signal(_signal(1))
    first.stop()
    # Same port: the client reconnects to the same address.
    port = int(first.address.rpartition(":")[2])
    settings2 = make_settings(tmp_path / "data", MODELCTL_SERVER_GRPC_ADDRESS=f"127.0.0.1:{port}", **QUIET)
    second = server_factory(settings2, environ={"MODELCTL_ADMIN_TOKEN": token})
    second.app.alerts.raise_signal(_signal(2))
    assert done.wait(30)
    assert [e.cursor for e in got] == [1, 2, 3] and [e.alert.message for e in got][-1] == "condition 2"


def test_a_live_only_sdk_stream_that_drops_before_its_first_event_misses_nothing(  # type: ignore[no-untyped-def]
        server_factory, tmp_path, monkeypatch) -> None:
    from modelctl import _alerts

    from conftest import make_settings

    settings = make_settings(tmp_path / "data", **QUIET)
    first = server_factory(settings)
    token = first.admin_token
    for i in range(2):
        first.app.alerts.raise_signal(_signal(i))  # history the live-only stream must not replay
    positioned = threading.Event()
    learn = _alerts._Resume.learn

    def spy(resume, header):  # type: ignore[no-untyped-def]
        learn(resume, header)
        if header is not None:
            positioned.set()
    monkeypatch.setattr(_alerts._Resume, "learn", spy)
    got: list = []
    done = threading.Event()

    def follow() -> None:
        with modelctl.Client(first.address, token=token) as client:
            for event in client.stream_alerts():  # live events only
                got.append(event)
                if len(got) == 3:
                    break
        done.set()
    threading.Thread(target=follow, daemon=True).start()
    assert positioned.wait(10)
    first.stop()  # before any event reached the client
    # While no server runs, another writer (a replica, a migration script) raises two alerts.
    db = Database(settings.database_url)
    try:
        for i in (2, 3):
            AlertEngine(AlertStore(db), SystemClock()).raise_signal(_signal(i))
    finally:
        db.dispose()
    port = int(first.address.rpartition(":")[2])
    settings2 = make_settings(tmp_path / "data", MODELCTL_SERVER_GRPC_ADDRESS=f"127.0.0.1:{port}", **QUIET)
    second = server_factory(settings2, environ={"MODELCTL_ADMIN_TOKEN": token})
    second.app.alerts.raise_signal(_signal(4))
    assert done.wait(30)
    assert [e.cursor for e in got] == [3, 4, 5]
    assert [e.alert.message for e in got] == ["condition 2", "condition 3", "condition 4"]


def test_the_stream_header_says_where_its_events_start(server_factory) -> None:  # type: ignore[no-untyped-def]
    srv = server_factory(**QUIET)
    for i in range(3):
        srv.app.alerts.raise_signal(_signal(i))
    api = stub(srv.address, srv.admin_token)
    for request, expected in [(alert_pb2.StreamAlertsRequest(), "3"),
                              (alert_pb2.StreamAlertsRequest(after_cursor=1), "1"),
                              (alert_pb2.StreamAlertsRequest(from_start=True), "0")]:
        call = api.StreamAlerts(request, timeout=10)
        assert dict(call.initial_metadata())["modelctl-alert-cursor"] == expected  # before any event
        call.cancel()


def test_a_slow_subscriber_does_not_delay_a_fast_one(server_factory) -> None:  # type: ignore[no-untyped-def]
    srv = server_factory(**QUIET)
    srv.app.hub._queue_size = 5  # a tiny buffer: the slow one overflows and is resynced from the database
    api = stub(srv.address, srv.admin_token)
    slow = api.StreamAlerts(alert_pb2.StreamAlertsRequest(from_start=True), timeout=60)  # never read
    fast: list = []
    ready = threading.Event()
    t = _collect(api, alert_pb2.StreamAlertsRequest(from_start=True), 200, fast, ready)
    ready.wait(5)
    for i in range(200):
        srv.app.alerts.raise_signal(_signal(i))
    t.join(30)
    assert [e.cursor for e in fast] == list(range(1, 201))
    # The slow one, read at last, still gets everything in order from the database.
    assert [e.cursor for e in itertools.islice(slow, 200)] == list(range(1, 201))
    slow.cancel()


@pytest.mark.parametrize("request_, field", [
    (alert_pb2.StreamAlertsRequest(after_cursor=-1), "after_cursor"),
    (alert_pb2.StreamAlertsRequest(min_severity=99), "min_severity"),
    (alert_pb2.StreamAlertsRequest(model="bad name!"), "model"),
])
def test_bad_stream_requests(live_server, request_, field) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as err:
        list(stub(live_server.address, live_server.admin_token).StreamAlerts(request_, timeout=10))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_fields(err.value) == [field]


@pytest.mark.parametrize("call, request_, code", [
    ("ListAlerts", alert_pb2.ListAlertsRequest(page_token="garbage"), grpc.StatusCode.INVALID_ARGUMENT),
    ("ListAlerts", alert_pb2.ListAlertsRequest(kind=42), grpc.StatusCode.INVALID_ARGUMENT),
    ("ListAlerts", alert_pb2.ListAlertsRequest(state=7), grpc.StatusCode.INVALID_ARGUMENT),
    ("ListAlerts", alert_pb2.ListAlertsRequest(page_size=5000), grpc.StatusCode.INVALID_ARGUMENT),
    ("ListAlerts", alert_pb2.ListAlertsRequest(since={"seconds": 100}, until={"seconds": 50}),
     grpc.StatusCode.INVALID_ARGUMENT),
    ("GetAlert", alert_pb2.GetAlertRequest(id="nosuch"), grpc.StatusCode.NOT_FOUND),
    ("GetAlert", alert_pb2.GetAlertRequest(), grpc.StatusCode.INVALID_ARGUMENT),
    ("AcknowledgeAlert", alert_pb2.AcknowledgeAlertRequest(id="nosuch"), grpc.StatusCode.NOT_FOUND),
    ("AcknowledgeAlert", alert_pb2.AcknowledgeAlertRequest(id="../x"), grpc.StatusCode.INVALID_ARGUMENT),
    ("CreateSilence", alert_pb2.CreateSilenceRequest(model="m", comment="x"), grpc.StatusCode.INVALID_ARGUMENT),
    ("CreateSilence", alert_pb2.CreateSilenceRequest(comment="x", duration={"seconds": 60}),
     grpc.StatusCode.INVALID_ARGUMENT),
    ("CreateSilence", alert_pb2.CreateSilenceRequest(model="m", duration={"seconds": -5}, comment="x"),
     grpc.StatusCode.INVALID_ARGUMENT),
    ("ExpireSilence", alert_pb2.ExpireSilenceRequest(id="nosuch"), grpc.StatusCode.NOT_FOUND),
    ("CreateSilence", alert_pb2.CreateSilenceRequest(model="m", duration={"seconds": 60}, comment="a\x00b"),
     grpc.StatusCode.INVALID_ARGUMENT),
    ("TestNotifications", alert_pb2.TestNotificationsRequest(url="json://user:pa[ss@127.0.0.1:9/x"),
     grpc.StatusCode.INVALID_ARGUMENT),
])
def test_bad_inputs_get_clear_statuses(live_server, call, request_, code) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as err:
        getattr(stub(live_server.address, live_server.admin_token), call)(request_, timeout=10)
    assert err.value.code() == code, err.value.details()


def test_list_ack_and_silence_through_the_sdk(server_factory) -> None:  # type: ignore[no-untyped-def]
    srv = server_factory(**QUIET)
    for i in range(5):
        srv.app.alerts.raise_signal(_signal(i, Severity.WARNING if i % 2 else Severity.CRITICAL))
    with modelctl.Client(srv.address, token=srv.make_token("operator")) as client:
        alerts = list(client.iter_alerts(page_size=2))
        assert len(alerts) == 5 and alerts[0].message == "condition 4"  # newest first, over three pages
        critical = list(client.iter_alerts(min_severity="critical", state="open"))
        assert [a.message for a in critical] == ["condition 4", "condition 2", "condition 0"]
        acked = client.acknowledge_alert(alerts[0].id)
        assert acked.acknowledged and acked.acknowledged_by.startswith("test-operator")
        assert client.acknowledge_alert(alerts[0].id).acknowledged_at == acked.acknowledged_at
        silence = client.create_silence(model="fraud", duration="2h", comment="maintenance")
        assert silence.active and silence.created_by.startswith("test-operator")
        assert [s.id for s in client.list_silences()] == [silence.id]
        assert not client.expire_silence(silence.id).active


def test_a_nul_in_a_silence_comment_is_refused_and_still_audited_on_postgresql(server_factory, pg_url) -> None:  # type: ignore[no-untyped-def]
    from modelctl.v1 import system_pb2

    srv = server_factory(MODELCTL_DATABASE_URL=pg_url, **QUIET)
    api = stub(srv.address, srv.admin_token)
    with pytest.raises(grpc.RpcError) as err:
        api.CreateSilence(alert_pb2.CreateSilenceRequest(model="m", duration={"seconds": 60}, comment="a\x00b"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_fields(err.value) == ["comment"]
    events = api.ListAuditEvents(system_pb2.ListAuditEventsRequest(rpc="CreateSilence")).events
    # Refused before the handler (no text field may hold NUL), and still audited, naming the field.
    assert [e.outcome for e in events] == ["INVALID_ARGUMENT"] and "comment" in events[0].detail
