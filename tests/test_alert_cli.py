"""`modelctl alerts | silences | notifications` through the real CLI against real controllers: list with
filters, show, ack (twice), watch (as events come, JSON Lines, -q, Ctrl-C, a server restart), silences,
`notifications test` against a real json:// receiver, and bad input (exit 2 usage, exit 1 one line)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from modelctl.cli.main import cli
from modelctl_server.alerts.model import AlertKind, Severity, Signal

from conftest import make_settings
from notify_support import Receiver, free_port

QUIET = {"MODELCTL_ALERTS_CPU_PERCENT": "100", "MODELCTL_ALERTS_MEMORY_PERCENT": "100",
         "MODELCTL_ALERTS_LOOP_LAG": "60s"}
ALERT_FIELDS = {"id", "severity", "kind", "model", "version", "message", "state", "acknowledged", "acknowledged_by",
                "count", "created_at", "deployment_id"}


def invoke(srv: Any, *args: str, token: str | None = None) -> Result:
    env = {"MODELCTL_ADDR": srv.address, "MODELCTL_TOKEN": token or srv.admin_token}
    return CliRunner(env=env).invoke(cli, list(args), catch_exceptions=False)


def ok(result: Result, code: int = 0) -> Result:
    assert result.exit_code == code, (result.stdout, result.stderr)
    if code == 0:
        assert result.stderr == ""
    return result


def failed(result: Result) -> str:
    """An operation that failed: exit 1 and one line on stderr, no traceback."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("modelctl: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def _signal(rule: str, severity: Severity = Severity.ERROR, model: str = "fraud") -> Signal:
    return Signal(AlertKind.THRESHOLD, rule, severity, f"{rule} of {model} too high", model, "1")


@pytest.fixture
def srv(server_factory):  # type: ignore[no-untyped-def]
    return server_factory(**QUIET)


def _raise(srv: Any, signal_: Signal) -> str:
    return srv.app.alerts.raise_signal(signal_)[0].alert.id


def test_list_filters_show_and_ack_twice(srv) -> None:  # type: ignore[no-untyped-def]
    error = _raise(srv, _signal("error_rate"))
    warning = _raise(srv, _signal("latency_p95", Severity.WARNING))
    critical = _raise(srv, _signal("error_rate", Severity.CRITICAL, model="churn"))
    srv.app.alerts.resolve(srv.app.alerts.get(critical).fingerprint, "cleared")

    listed = json.loads(ok(invoke(srv, "-o", "json", "alerts", "list")).stdout)
    assert [a["id"] for a in listed] == [critical, warning, error]  # newest first
    assert all(ALERT_FIELDS <= set(a) for a in listed)
    assert (listed[2]["severity"], listed[2]["kind"], listed[2]["state"], listed[2]["count"]) == (
        "ALERT_SEVERITY_ERROR", "ALERT_KIND_THRESHOLD", "ALERT_STATE_OPEN", "1")
    assert ok(invoke(srv, "alerts", "list", "--severity", "error", "-q")).stdout.split() == [critical, error]
    assert ok(invoke(srv, "alerts", "list", "--state", "open", "--model", "fraud", "-q")).stdout.split() == [
        warning, error]
    assert ok(invoke(srv, "alerts", "list", "--state", "resolved", "-q")).stdout.split() == [critical]
    assert ok(invoke(srv, "alerts", "list", "--kind", "deployment")).stdout.strip() == "No alerts."
    assert ok(invoke(srv, "alerts", "list", "--limit", "1", "-q")).stdout.split() == [critical]
    table = ok(invoke(srv, "alerts", "list")).stdout
    assert table.splitlines()[0].split()[:4] == ["ID", "SEVERITY", "KIND", "STATE"]
    assert "latency_p95 of fraud too high" in table and "RESOLVED" in table

    shown = ok(invoke(srv, "alerts", "show", error)).stdout
    assert "ERROR" in shown and "THRESHOLD (error_rate)" in shown and "Acknowledged" in shown
    as_json = json.loads(ok(invoke(srv, "alerts", "show", error, "-o", "json")).stdout)
    assert ALERT_FIELDS <= set(as_json) and as_json["acknowledged"] is False

    acked = ok(invoke(srv, "alerts", "ack", error)).stdout
    assert acked.startswith(f"Acknowledged {error} by bootstrap-admin at ")
    first = json.loads(ok(invoke(srv, "alerts", "show", error, "-o", "json")).stdout)
    again = json.loads(ok(invoke(srv, "alerts", "ack", error, "-o", "json")).stdout)  # idempotent
    assert (again["acknowledged"], again["acknowledged_by"], again["acknowledged_at"]) == (
        True, "bootstrap-admin", first["acknowledged_at"])
    assert ok(invoke(srv, "alerts", "ack", error, "-q")).stdout == f"{error}\n"
    assert "permission denied" in failed(invoke(srv, "alerts", "ack", warning, token=srv.make_token("viewer")))


def _until(condition: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def _after_subscribed(srv: Any, then: Any) -> threading.Thread:
    """Run `then` once a StreamAlerts call follows the live feed (the watch has started).

    Wait for the previous watch's subscription to be gone first, or `then` could run before the next one.
    """
    _until(lambda: srv.app.hub.subscriber_count("alerts") == 0)

    def run() -> None:
        _until(lambda: srv.app.hub.subscriber_count("alerts") == 1)
        then()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_watch_prints_events_as_they_come(srv) -> None:  # type: ignore[no-untyped-def]
    _raise(srv, _signal("old"))  # before the watch: not shown (live events only)

    def happen() -> None:
        alert_id = _raise(srv, _signal("error_rate"))
        _raise(srv, _signal("latency_p95", Severity.INFO))
        srv.app.alerts.acknowledge(alert_id, "alice")
    _after_subscribed(srv, happen)
    lines = ok(invoke(srv, "alerts", "watch", "--count", "3")).stdout.splitlines()
    assert [line.split()[2:4] for line in lines] == [["#2", "RAISED"], ["#3", "RAISED"], ["#4", "ACKNOWLEDGED"]]
    assert "error_rate of fraud too high" in lines[0] and "fraud 1" in lines[0]

    _after_subscribed(srv, lambda: [_raise(srv, _signal(f"r{i}", Severity.CRITICAL)) for i in range(2)])
    events = [json.loads(line) for line in ok(invoke(srv, "-o", "json", "alerts", "watch", "--count", "2",
                                                     "--severity", "critical")).stdout.splitlines()]
    assert [(e["cursor"], e["kind"], e["alert"]["severity"]) for e in events] == [
        ("5", "ALERT_EVENT_KIND_RAISED", "ALERT_SEVERITY_CRITICAL"),
        ("6", "ALERT_EVENT_KIND_RAISED", "ALERT_SEVERITY_CRITICAL")]
    assert ALERT_FIELDS <= set(events[0]["alert"])

    replayed = ok(invoke(srv, "alerts", "watch", "--after", "4", "--count", "2", "-q")).stdout.split()
    assert replayed == [e["alert"]["id"] for e in events]  # history after a cursor, then it would follow


def _console_script() -> str:
    beside_python = Path(sys.executable).parent / "modelctl"
    assert beside_python.exists(), "the modelctl console script is not installed (pip install -e .)"
    return str(beside_python)


class _Lines:
    """A child's stdout, line by line, with a deadline per line."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._q: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self._q.put(line) for line in proc.stdout or ()], daemon=True).start()

    def next(self, timeout: float = 20) -> str:
        return self._q.get(timeout=timeout)


def test_watch_follows_a_restart_and_stops_on_ctrl_c_without_a_traceback(server_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path / "data", **QUIET)
    first = server_factory(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELCTL_")}
    env.update(MODELCTL_ADDR=first.address, MODELCTL_TOKEN=first.admin_token)
    proc = subprocess.Popen([_console_script(), "-o", "json", "alerts", "watch"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lines = _Lines(proc)
        _after_subscribed(first, lambda: _raise(first, _signal("error_rate"))).join(30)
        assert json.loads(lines.next())["cursor"] == "1"
        first.stop()
        port = int(first.address.rpartition(":")[2])
        second = server_factory(make_settings(tmp_path / "data", MODELCTL_SERVER_GRPC_ADDRESS=f"127.0.0.1:{port}",
                                              **QUIET), environ={"MODELCTL_ADMIN_TOKEN": first.admin_token})
        _raise(second, _signal("latency_p95"))  # possibly before the watch is back: it resumes by cursor
        event = json.loads(lines.next())
        assert (event["cursor"], event["alert"]["message"]) == ("2", "latency_p95 of fraud too high")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 130
        assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_silence_list_and_expire(srv) -> None:  # type: ignore[no-untyped-def]
    alert_id = _raise(srv, _signal("error_rate"))  # open before the silence begins
    created = json.loads(ok(invoke(srv, "-o", "json", "alerts", "silence", "--model", "fraud", "--kind", "threshold",
                                   "--for", "2h", "--comment", "feature store maintenance")).stdout)
    assert (created["model"], created["kind"], created["active"], created["comment"], created["created_by"]) == (
        "fraud", "ALERT_KIND_THRESHOLD", True, "feature store maintenance", "bootstrap-admin")
    assert ok(invoke(srv, "silences", "list", "-q")).stdout.split() == [created["id"]]
    table = ok(invoke(srv, "silences", "list")).stdout
    assert "feature store maintenance" in table and "active" in table
    # the alert that was already open shows as silenced while the silence lasts
    assert json.loads(ok(invoke(srv, "alerts", "show", alert_id, "-o", "json")).stdout)["silenced"] is True
    assert "OPEN (silenced)" in ok(invoke(srv, "alerts", "list")).stdout

    expired = ok(invoke(srv, "silences", "expire", created["id"])).stdout
    assert "expired" in expired and "bootstrap-admin" in expired
    assert ok(invoke(srv, "silences", "expire", created["id"], "-q")).stdout == f"{created['id']}\n"  # idempotent
    assert ok(invoke(srv, "silences", "list")).stdout.strip() == "No silences."
    assert ok(invoke(srv, "silences", "list", "--all", "-q")).stdout.split() == [created["id"]]
    assert json.loads(ok(invoke(srv, "alerts", "show", alert_id, "-o", "json")).stdout)["silenced"] is False


def test_notifications_test_against_a_real_receiver(server_factory) -> None:  # type: ignore[no-untyped-def]
    hook = Receiver()
    try:
        down = f"json://user:hunter22@127.0.0.1:{free_port()}/x"
        srv = server_factory(MODELCTL_NOTIFICATIONS_URLS=f"json://127.0.0.1:{hook.port}/ok,{down}", **QUIET)
        both = invoke(srv, "notifications", "test")
        assert failed(both) == "modelctl: 1 of 2 destinations did not receive the test message\n"
        rows = both.stdout.splitlines()
        assert rows[0].split() == ["DESTINATION", "RESULT", "TOOK", "ERROR"]
        assert sorted(row.split()[1] for row in rows[1:]) == ["FAILED", "delivered"]
        assert "hunter22" not in both.stdout + both.stderr
        assert [p["title"] for p in hook.posts] == ["modelctl test notification"]

        one = json.loads(ok(invoke(srv, "-o", "json", "notifications", "test", "--url",
                                   f"json://127.0.0.1:{hook.port}/one")).stdout)
        assert [(d["delivered"], d["error"]) for d in one] == [(True, "")] and len(hook.posts) == 2
        quiet = ok(invoke(srv, "-q", "notifications", "test", "--url", f"json://127.0.0.1:{hook.port}/q")).stdout
        assert quiet.count("\n") == 1 and str(hook.port) in quiet

        assert "url" in failed(invoke(srv, "notifications", "test", "--url", "nosuchscheme://x"))
        assert "permission denied" in failed(invoke(srv, "notifications", "test",
                                                    token=srv.make_token("operator")))
    finally:
        hook.stop()


def test_notifications_test_without_destinations_says_what_to_do(srv) -> None:  # type: ignore[no-untyped-def]
    assert "give one to test with --url" in failed(invoke(srv, "notifications", "test"))


@pytest.mark.parametrize("args, complaint", [
    (["alerts", "list", "--severity", "bogus"], "--severity"),
    (["alerts", "list", "--state", "closed"], "--state"),
    (["alerts", "list", "--limit", "0"], "--limit"),
    (["alerts", "show"], "ID"),
    (["alerts", "watch", "--count", "0"], "--count"),
    (["alerts", "silence", "--model", "fraud", "--for", "soon", "--comment", "x"], "--for"),
    (["alerts", "silence", "--model", "fraud", "--for", "2h"], "--comment"),
    (["alerts", "silence", "--model", "fraud", "--kind", "weather", "--for", "2h", "--comment", "x"], "--kind"),
])
def test_usage_errors_exit_2_without_a_traceback(srv, args, complaint) -> None:  # type: ignore[no-untyped-def]
    result = invoke(srv, *args)
    assert result.exit_code == 2, result.output
    assert complaint in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("args, complaint", [
    (["alerts", "show", "nosuchalert"], "alert 'nosuchalert' not found"),
    (["alerts", "ack", "nosuchalert"], "alert 'nosuchalert' not found"),
    (["alerts", "show", "../etc"], "invalid request: id:"),
    (["alerts", "list", "--model", "bad name!"], "invalid request: model:"),
    (["alerts", "watch", "--model", "bad name!"], "invalid request: model:"),
    (["alerts", "silence", "--for", "2h", "--comment", "x"], "needs at least one matcher"),
    (["alerts", "silence", "--version", "2", "--for", "2h", "--comment", "x"], "version: needs model"),
    (["alerts", "silence", "--model", "fraud", "--for", "200d", "--comment", "x"], "duration:"),
    (["silences", "expire", "nosuchsilence"], "silence 'nosuchsilence' not found"),
])
def test_failures_exit_1_with_one_line(srv, args, complaint) -> None:  # type: ignore[no-untyped-def]
    assert complaint in failed(invoke(srv, *args))


def test_an_unreachable_server_is_one_line_too() -> None:
    result = CliRunner(env={"MODELCTL_ADDR": f"127.0.0.1:{free_port()}", "MODELCTL_TOKEN": "t"}).invoke(
        cli, ["--timeout", "2s", "alerts", "list"], catch_exceptions=False)
    assert failed(result).startswith("modelctl: cannot reach the modelctl server")
