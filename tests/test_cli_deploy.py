"""`modelctl deploy | rollback | deployments | traffic | metrics`: output, exit codes, a real controller."""

from __future__ import annotations

import json
from typing import Iterator

import pytest
from click.testing import CliRunner, Result

import modelctl
from modelctl.cli import _watch
from modelctl.cli.main import cli
from modelctl.types import Deployment, DeploymentEvent, DeploymentEventKind, DeploymentState

from rollout_support import MetricsFeeder, eventually, fast_server, first_step, make_live, register

DEPLOYMENT_FIELDS = {"id", "model", "version", "previous_version", "strategy", "state", "step",
                     "traffic_percent", "reason"}
FAST = ("--interval", "100ms", "--min-samples", "5", "--progress-deadline", "30s")


def _state(name: str) -> int:
    return DeploymentState.Value(f"DEPLOYMENT_STATE_{name}")


def _event(seq: int, kind: str, state: str, step: int, traffic: float, message: str = "") -> DeploymentEvent:
    return DeploymentEvent(seq=seq, deployment_id="d1", state=_state(state), step=step,
                           traffic_percent=traffic, message=message,
                           kind=DeploymentEventKind.Value(f"DEPLOYMENT_EVENT_KIND_{kind}"))


# --- rendering and usage (no server) ---------------------------------------------------------------------


def test_the_progress_bar_fills_by_step() -> None:
    assert _watch.progress_bar(3, 5) == "[██████░░░░]"
    assert _watch.progress_bar(0, 5) == "[░░░░░░░░░░]" and _watch.progress_bar(5, 5) == "[██████████]"
    assert _watch.progress_line(_state("PROGRESSING"), 3, 5, 25.0) == "[██████░░░░] step 3/5 25% PROGRESSING"
    ascii_line = _watch.progress_line(_state("PAUSED"), 1, 1, 0, ascii_only=True)
    assert ascii_line == "[##########] step 1/1 0% PAUSED"


def test_final_lines_say_what_happened_and_why() -> None:
    done = Deployment(id="d1", model="fraud", version="2", previous_version="1", state=_state("SUCCEEDED"),
                      traffic_percent=100)
    assert _watch.final_line(done) == "SUCCEEDED: fraud 2 serves 100% of traffic (deployment d1)"
    assert _watch.exit_code(done) == 0
    failed = Deployment(id="d2", model="fraud", version="3", previous_version="2",
                        state=_state("ROLLED_BACK"), reason="error-rate gate failed:\n0.5 > 0.05")
    assert _watch.final_line(failed) == ("ROLLED_BACK: error-rate gate failed: 0.5 > 0.05 "
                                         "(fraud 3, deployment d2; traffic back on 2)")
    unhappy = ("ROLLED_BACK", "ABORTED", "FAILED")
    assert {_watch.exit_code(Deployment(state=_state(s))) for s in unhappy} == {1}


def test_plain_event_lines_carry_kind_step_traffic_state_and_message() -> None:
    line = _watch.event_line(_event(2, "STEP_STARTED", "PROGRESSING", 2, 10, "step 2/5: 2 at 10%"), 5)
    assert line.endswith("STEP_STARTED      step 2/5  10%  PROGRESSING  step 2/5: 2 at 10%")


def test_on_a_terminal_each_step_gets_one_line_redrawn_in_place(capsys: pytest.CaptureFixture[str]) -> None:
    context = modelctl.cli._context.CliContext(modelctl.ConnectionOptions())
    follower = _watch.Follower(context, Deployment(total_steps=2), terminal=True)
    for event in (_event(1, "CREATED", "PENDING", 0, 0), _event(2, "STEP_STARTED", "PROGRESSING", 1, 50),
                  _event(3, "GATE_FAILED", "PROGRESSING", 1, 50),
                  _event(4, "STEP_STARTED", "PROGRESSING", 2, 100),
                  _event(5, "SUCCEEDED", "SUCCEEDED", 2, 100)):
        follower(event)
    assert follower.finish(Deployment(id="d1", model="m", version="2", state=_state("SUCCEEDED"),
                                      traffic_percent=100)) == 0
    lines = capsys.readouterr().out.split("\n")
    assert [line.rsplit("\r", 1)[-1].replace("\x1b[K", "") for line in lines] == [
        "[░░░░░░░░░░] step 0/2 0% PENDING",
        "[█████░░░░░] step 1/2 50% PROGRESSING",  # redrawn once for the failed gate, same step
        "[██████████] step 2/2 100% SUCCEEDED",
        "SUCCEEDED: m 2 serves 100% of traffic (deployment d1)",
        "",
    ]
    assert lines[1].count("\r") == 2


@pytest.mark.parametrize("args, complaint", [
    (["deploy", "fraud", "2", "--strategy", "linear"], "linear"),
    (["deploy", "fraud", "2"], "--strategy"),
    (["deploy", "fraud", "2", "--strategy", "canary", "--steps", "10,5,100"], "increase"),
    (["deploy", "fraud", "2", "--strategy", "canary", "--steps", "5,50"], "100"),
    (["deploy", "fraud", "2", "--strategy", "rolling", "--max-unavailable", "many"], "percentage"),
    (["deploy", "fraud", "2", "--strategy", "canary", "--interval", "soon"], "30s"),
    (["deployments", "status", "d1", "--timeout", "0s"], "positive"),
    (["deployments", "list", "--state", "exploded"], "exploded"),
    (["metrics", "report", "fraud", "1", "--requests", "1", "--errors", "2"], "2 errors out of 1"),
])
def test_usage_errors_exit_2_before_calling_the_server(args: list[str], complaint: str) -> None:
    result = CliRunner(env={"MODELCTL_ADDR": "127.0.0.1:1"}).invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert complaint in result.stderr and "Traceback" not in result.output


# --- against a controller ----------------------------------------------------------------------------------


@pytest.fixture
def rollout_server(server_factory):  # type: ignore[no-untyped-def]
    return fast_server(server_factory)


@pytest.fixture
def server(rollout_server):  # type: ignore[no-untyped-def]
    """fraud 1 live, fraud 2 and 3 registered."""
    with modelctl.Client(rollout_server.address, token=rollout_server.admin_token) as client:
        register(client, "fraud", "1", "2", "3")
        make_live(client, "fraud", "1")
    return rollout_server


@pytest.fixture
def client(server) -> Iterator[modelctl.Client]:  # type: ignore[no-untyped-def]
    with modelctl.Client(server.address, token=server.admin_token) as connected:
        yield connected


def invoke(server, *args: str) -> Result:  # type: ignore[no-untyped-def]
    env = {"MODELCTL_ADDR": server.address, "MODELCTL_TOKEN": server.admin_token}
    return CliRunner(env=env).invoke(cli, list(args), catch_exceptions=False)


def canary(server, version: str, *args: str) -> Result:  # type: ignore[no-untyped-def]
    """`modelctl deploy fraud VERSION --strategy canary` with quick steps, and `args`."""
    return invoke(server, "deploy", "fraud", version, "--strategy", "canary", *FAST, *args)


def ok(result: Result, code: int = 0) -> Result:
    assert result.exit_code == code, result.output
    return result


def _show(server, deployment_id: str) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(ok(invoke(server, "deployments", "show", deployment_id, "-o", "json")).stdout)


def _report_until(server, deployment_id: str, version: str, errors: int, final: str) -> dict:  # type: ignore[no-untyped-def]
    """`metrics report` a window of traffic at a time until the deployment is in state `final`."""
    def reported_and_done() -> dict | None:
        ok(invoke(server, "metrics", "report", "fraud", version, "--requests", "10", "--errors", str(errors),
                  "--latency-ms", "12", "--latency-ms", "30"))
        shown = _show(server, deployment_id)
        return shown if shown["state"] == f"DEPLOYMENT_STATE_{final}" else None
    return eventually(reported_and_done, what=f"deployment {deployment_id} to be {final}")


def test_canary_v2_succeeds_on_healthy_metrics_then_v3_with_errors_rolls_back(server) -> None:  # type: ignore[no-untyped-def]
    deployed = json.loads(ok(canary(server, "2", "-o", "json")).stdout)
    assert DEPLOYMENT_FIELDS <= set(deployed)
    assert (deployed["model"], deployed["version"], deployed["previous_version"], deployed["strategy"]) == (
        "fraud", "2", "1", "DEPLOYMENT_STRATEGY_CANARY")

    succeeded = _report_until(server, deployed["id"], "2", errors=0, final="SUCCEEDED")
    assert succeeded["traffic_percent"] == 100
    assert ok(invoke(server, "deployments", "status", deployed["id"])).stdout.count("SUCCEEDED") >= 1
    split = json.loads(ok(invoke(server, "traffic", "show", "fraud", "-o", "json")).stdout)
    assert set(split) == {"model", "weights"} and split["model"] == "fraud"
    assert split["weights"]["2"] == 100 and sum(split["weights"].values()) == 100

    v3 = ok(canary(server, "3", "-q")).stdout.strip()
    rolled_back = _report_until(server, v3, "3", errors=5, final="ROLLED_BACK")
    assert "error-rate" in rolled_back["reason"]
    split = json.loads(ok(invoke(server, "traffic", "show", "fraud", "-o", "json")).stdout)
    assert split["weights"]["2"] == 100
    assert ok(invoke(server, "traffic", "show", "fraud", "-q")).stdout == "2\n"

    status = ok(invoke(server, "deployments", "status", v3), code=1)
    assert "ROLLED_BACK" in status.stdout and "error-rate gate failed" in status.stdout
    shown = ok(invoke(server, "deployments", "show", v3)).stdout
    evaluation = next(line for line in shown.splitlines() if line.startswith("1 ") and "error_rate" in line)
    assert "FAIL" in evaluation and "0.05" in evaluation  # gate, value, threshold, window, samples, verdict
    assert "WINDOW" in shown and "SAMPLES" in shown


def test_watch_prints_plain_lines_when_piped_and_exits_0_on_success(server, client) -> None:  # type: ignore[no-untyped-def]
    with MetricsFeeder(client, "fraud", "2"):
        result = ok(canary(server, "2", "--watch"))
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Deployment ") and "(canary, 5 steps, replacing 1)" in lines[0]
    assert [line.split()[2] for line in lines[1:-1]] == ["CREATED"] + ["STEP_STARTED"] * 5 + ["SUCCEEDED"]
    assert "\r" not in result.stdout and "█" not in result.stdout
    assert lines[-1].startswith("SUCCEEDED: fraud 2 serves 100% of traffic")


def test_watch_exits_1_with_the_reason_on_the_last_line_when_rolled_back(server, client) -> None:  # type: ignore[no-untyped-def]
    with MetricsFeeder(client, "fraud", "2", errors=5):
        result = ok(canary(server, "2", "--watch"), code=1)
    last = result.stdout.splitlines()[-1]
    assert last.startswith("ROLLED_BACK: error-rate gate failed") and "traffic back on 1" in last
    listed = ok(invoke(server, "deployments", "list", "--state", "rolled_back", "-q"))
    (deployment_id,) = listed.stdout.split()
    replay = ok(invoke(server, "deployments", "watch", deployment_id), code=1).stdout  # replays, then ends
    assert replay.splitlines()[-1] == last


def test_watch_json_is_one_event_per_line_then_the_final_deployment(server, client) -> None:  # type: ignore[no-untyped-def]
    with MetricsFeeder(client, "fraud", "2"):
        result = ok(canary(server, "2", "--steps", "50,100", "--watch", "-o", "json"))
    *events, final = [json.loads(line) for line in result.stdout.splitlines()]
    assert [int(e["seq"]) for e in events] == list(range(1, len(events) + 1))
    assert [e["kind"] for e in events] == ["DEPLOYMENT_EVENT_KIND_CREATED"] + [
        "DEPLOYMENT_EVENT_KIND_STEP_STARTED"] * 2 + ["DEPLOYMENT_EVENT_KIND_SUCCEEDED"]
    assert DEPLOYMENT_FIELDS <= set(final)
    assert (final["state"], final["traffic_percent"], final["id"]) == (
        "DEPLOYMENT_STATE_SUCCEEDED", 100.0, events[0]["deployment_id"])


def test_watch_on_a_terminal_draws_a_progress_line_per_step(server, client,  # type: ignore[no-untyped-def]
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_watch, "stdout_is_terminal", lambda: True)
    with MetricsFeeder(client, "fraud", "2"):
        result = ok(canary(server, "2", "--steps", "25,50,100", "--watch"))
    # not splitlines(): it splits at \r too
    drawn = [line.rsplit("\r", 1)[-1] for line in result.stdout.split("\n")[1:-1]]
    assert drawn == ["[░░░░░░░░░░] step 0/3 0% PENDING", "[███░░░░░░░] step 1/3 25% PROGRESSING",
                     "[███████░░░] step 2/3 50% PROGRESSING", "[██████████] step 3/3 100% SUCCEEDED",
                     drawn[-1]]
    assert drawn[-1].startswith("SUCCEEDED: ")


def test_status_exits_3_after_its_timeout_showing_the_last_known_state(server, client) -> None:  # type: ignore[no-untyped-def]
    deployment_id = ok(canary(server, "2", "-q")).stdout.strip()
    first_step(client, deployment_id)  # no traffic: it stays at step 1
    result = ok(invoke(server, "deployments", "status", deployment_id, "--timeout", "300ms", "-o", "json"),
                code=3)
    assert json.loads(result.stdout)["state"] == "DEPLOYMENT_STATE_PROGRESSING"
    assert result.stderr == (f"modelctl: timed out after 300ms: deployment {deployment_id} is still "
                             f"PROGRESSING at step 1/5 (5% of traffic)\n")


def test_operators_pause_resume_promote_abort_and_roll_back(server, client) -> None:  # type: ignore[no-untyped-def]
    first = ok(canary(server, "2", "-q")).stdout.strip()
    first_step(client, first)
    again = ok(invoke(server, "deploy", "fraud", "3", "--strategy", "canary"), code=1)
    assert again.stderr.startswith("modelctl: ") and first in again.stderr
    assert len(again.stderr.splitlines()) == 1

    paused = ok(invoke(server, "deployments", "pause", first, "--reason", "dashboards"))
    assert "Paused deployment" in paused.stdout
    assert ok(invoke(server, "deployments", "list", "--state", "paused", "-q")).stdout.split() == [first]
    assert "State:          PROGRESSING" in ok(invoke(server, "deployments", "resume", first)).stdout
    ok(invoke(server, "deployments", "promote", first))
    ok(invoke(server, "deployments", "status", first, "--timeout", "30s"))

    second = ok(canary(server, "3", "-q")).stdout.strip()
    first_step(client, second)
    aborted = json.loads(ok(invoke(server, "deployments", "abort", second, "--reason", "wrong build",
                                   "-o", "json")).stdout)
    assert aborted["state"] == "DEPLOYMENT_STATE_ABORTED" and "wrong build" in aborted["reason"]
    ok(invoke(server, "deployments", "status", second), code=1)

    back = ok(invoke(server, "rollback", "fraud", "--to", "1", "--reason", "business metrics", "--watch"))
    assert back.stdout.splitlines()[-1].startswith("SUCCEEDED: fraud 1 serves 100% of traffic")
    table = ok(invoke(server, "deployments", "list", "--model", "fraud", "--limit", "3")).stdout.splitlines()
    assert table[0].split()[:6] == ["ID", "MODEL", "VERSION", "PREVIOUS", "STRATEGY", "STATE"]
    assert [row.split()[2] for row in table[1:]] == ["1", "3", "2"]  # newest first


def test_metrics_report_for_an_unknown_version_is_one_line_exit_1(server) -> None:  # type: ignore[no-untyped-def]
    result = ok(invoke(server, "metrics", "report", "fraud", "9", "--requests", "5"), code=1)
    assert result.stderr.startswith("modelctl: ") and "not registered" in result.stderr
    accepted = ok(invoke(server, "metrics", "report", "fraud", "1", "--requests", "5", "--p95-ms", "40",
                         "-q"))
    assert accepted.stdout == "1\n"


def test_an_unknown_deployment_is_one_line_exit_1(server) -> None:  # type: ignore[no-untyped-def]
    for command in ("show", "status", "watch", "abort"):
        result = ok(invoke(server, "deployments", command, "d0000000"), code=1)
        assert result.stderr.startswith("modelctl: ") and len(result.stderr.splitlines()) == 1, command


def test_the_relative_gate_compares_the_canary_with_the_stable_version(server) -> None:  # type: ignore[no-untyped-def]
    # The absolute gate is out of the way (100 %); only "no worse than stable by 2 points" judges.
    deployed = ok(canary(server, "2", "-q", "--steps", "50,100", "--max-error-rate", "1",
                         "--max-error-rate-increase", "0.02", "--critical-gate", "relative_error_rate")).stdout.strip()
    shown = _show(server, deployed)
    assert shown["params"]["critical_gates"] == ["relative_error_rate"]
    assert shown["params"]["thresholds"]["max_error_rate_increase"] == 0.02

    def reported_and_done() -> dict | None:
        ok(invoke(server, "metrics", "report", "fraud", "1", "--requests", "100", "--errors", "1"))
        ok(invoke(server, "metrics", "report", "fraud", "2", "--requests", "100", "--errors", "25"))
        current = _show(server, deployed)
        return current if current["state"] == "DEPLOYMENT_STATE_ROLLED_BACK" else None
    rolled_back = eventually(reported_and_done, what="the relative gate to roll the canary back")
    assert "relative-error-rate gate failed" in rolled_back["reason"]
