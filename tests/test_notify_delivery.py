"""Notifications through Apprise to real receivers: an SMTP server (aiosmtpd) for mailto:// and an HTTP
receiver for json://. Content, receiver down then up (every notification once), restart resumes pending."""

from __future__ import annotations

import time

import grpc
import pytest
from aiosmtpd.controller import Controller

from modelctl.v1 import alert_pb2, system_pb2
from modelctl_server.alerts.model import AlertKind, Severity, Signal
from modelctl_server.clock import FakeClock

from grpc_helpers import stub
from notify_support import Receiver, free_port


class _Smtp(Controller):
    """aiosmtpd's Controller on port 0: learn the bound port before its self-test connects."""

    def _trigger_server(self):  # type: ignore[no-untyped-def]
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.messages.append(envelope)
        return "250 OK"


#: System rules off: a busy test machine must not add CPU alerts to what the receivers count.
QUIET = {"MODELCTL_ALERTS_CPU_PERCENT": "100", "MODELCTL_ALERTS_MEMORY_PERCENT": "100",
         "MODELCTL_ALERTS_LOOP_LAG": "60s"}


def _until(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def _raise(srv, signal: Signal):  # type: ignore[no-untyped-def]
    return srv.app.alerts.raise_signal(signal)


async def _tick(srv) -> None:  # type: ignore[no-untyped-def]
    await srv.app.outbox.tick()


def _signal(i: int = 0, severity: Severity = Severity.ERROR) -> Signal:
    return Signal(AlertKind.DEPLOYMENT, f"deployment:d{i}", severity, f"deployment d{i} of fraud 1.3 rolled back",
                  "fraud", "1.3", deployment_id=f"d{i}", labels={"reason": "error rate 9% > 5%"})


def test_messages_arrive_by_mail_and_webhook_with_the_right_content(server_factory) -> None:  # type: ignore[no-untyped-def]
    mailbox = _Mailbox()
    smtp = _Smtp(mailbox, hostname="127.0.0.1", port=0)
    smtp.start()
    hook = Receiver()
    try:
        urls = (f"json://127.0.0.1:{hook.port}/hook,"
                f"mailto://127.0.0.1:{smtp.port}?from=modelctl@example.com&to=ops@example.com")
        srv = server_factory(MODELCTL_NOTIFICATIONS_URLS=urls, **QUIET)
        alert = _raise(srv, _signal())[0].alert
        _until(lambda: hook.posts and mailbox.messages)
        post = hook.posts[0]
        assert post["title"].startswith("[ERROR] fraud 1.3") and post["type"] == "failure"
        for text in ("Deployment: d0; reason: error rate 9% > 5%", f"modelctl alerts ack {alert.id}", "1.3"):
            assert text in post["message"]
        mail = mailbox.messages[0]
        assert mail.rcpt_tos == ["ops@example.com"]
        content = mail.content.decode(errors="replace")
        assert "[ERROR] fraud 1.3" in content and alert.id in content
        # INFO is below the default WARNING: not sent.
        _raise(srv, _signal(1, Severity.INFO))
        status = stub(srv.address, srv.admin_token).GetSystemStatus(system_pb2.GetSystemStatusRequest())
        assert {d.scheme: d.sent for d in status.notifications.destinations} == {"json": 1, "mailto": 1}
        assert status.notifications.outbox_pending == 0 and status.open_alerts["ERROR"] == 1
        sent = srv.app.recorder.registry.get_sample_value("modelctl_notifications_sent_total", {"scheme": "json"})
        assert sent == 1
    finally:
        smtp.stop()
        hook.stop()


def test_receiver_down_then_up_gets_every_notification_once(server_factory) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    clock = FakeClock()
    srv = server_factory(clock=clock, MODELCTL_NOTIFICATIONS_URLS=f"json://127.0.0.1:{port}/hook?token=s3cretTOKEN",
                         **QUIET)
    for i in range(3):
        _raise(srv, _signal(i))
    srv.call(_tick(srv))  # every send fails: nobody listens
    counts = srv.app.outbox.store.counts()
    assert counts[0].pending == 3 and counts[0].sent == 0
    status = stub(srv.address, srv.admin_token).GetSystemStatus(system_pb2.GetSystemStatusRequest())
    assert "s3cretTOKEN" not in str(status) and status.notifications.outbox_pending == 3
    hook = Receiver(port)
    try:
        for _ in range(4):  # retries are due after the back-off; ticking again sends nothing twice
            clock.advance(120)
            srv.call(_tick(srv))
        assert sorted(p["title"] for p in hook.posts) == sorted(
            f"[ERROR] fraud 1.3: deployment d{i} of fraud 1.3 rolled back" for i in range(3))
    finally:
        hook.stop()


def test_failed_for_good_after_max_attempts_and_visible(server_factory) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    srv = server_factory(clock=clock, MODELCTL_NOTIFICATIONS_URLS=f"json://127.0.0.1:{free_port()}/x",
                         MODELCTL_NOTIFICATIONS_MAX_ATTEMPTS="2", **QUIET)
    _raise(srv, _signal())
    for _ in range(3):
        srv.call(_tick(srv))
        clock.advance(120)
    status = stub(srv.address, srv.admin_token).GetSystemStatus(system_pb2.GetSystemStatusRequest())
    assert status.notifications.outbox_failed == 1 and status.notifications.outbox_pending == 0


def test_a_restart_resumes_pending_deliveries(server_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from conftest import make_settings

    port = free_port()
    settings = make_settings(tmp_path / "data", MODELCTL_NOTIFICATIONS_URLS=f"json://127.0.0.1:{port}/hook", **QUIET)
    first = server_factory(settings, clock=FakeClock())
    _raise(first, _signal())
    first.call(_tick(first))
    first.stop()
    hook = Receiver(port)
    try:
        server_factory(settings)  # real clock: the outbox worker ticks by itself
        _until(lambda: len(hook.posts) == 1)
        time.sleep(0.3)
        assert len(hook.posts) == 1
    finally:
        hook.stop()


def test_notifications_test_reports_per_destination(server_factory) -> None:  # type: ignore[no-untyped-def]
    hook = Receiver()
    try:
        down = f"json://user:hunter22@127.0.0.1:{free_port()}/x"
        srv = server_factory(MODELCTL_NOTIFICATIONS_URLS=f"json://127.0.0.1:{hook.port}/ok,{down}", **QUIET)
        api = stub(srv.address, srv.admin_token)
        deliveries = api.TestNotifications(alert_pb2.TestNotificationsRequest()).deliveries
        assert sorted(d.delivered for d in deliveries) == [False, True]
        assert all("hunter22" not in d.destination + d.error for d in deliveries)
        assert len(hook.posts) == 1 and hook.posts[0]["title"] == "modelctl test notification"
        one = api.TestNotifications(alert_pb2.TestNotificationsRequest(url=f"json://127.0.0.1:{hook.port}/x"))
        assert one.deliveries[0].delivered
        with pytest.raises(grpc.RpcError) as err:
            api.TestNotifications(alert_pb2.TestNotificationsRequest(url="nosuchscheme://x"))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        hook.stop()


def test_notifications_test_without_destinations_is_a_precondition(live_server) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as err:
        stub(live_server.address, live_server.admin_token).TestNotifications(alert_pb2.TestNotificationsRequest())
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
