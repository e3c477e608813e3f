"""The SDK's deployment, data-plane and telemetry calls: request building, then a real controller."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
import time
from typing import Iterator

import pytest

import modelctl
from modelctl import errors
from modelctl._backoff import Backoff
from modelctl._deployment_requests import (
    deployment_params,
    duration_seconds,
    is_final,
    metrics_samples,
    parse_limit,
    parse_steps,
    state_name,
    state_value,
    strategy_name,
    strategy_value,
)
from modelctl._deployments import deploy_request
from modelctl.types import DeploymentEventKind, DeploymentState, DeploymentStrategy, MetricsSample

from rollout_support import (
    FAST_CANARY,
    RECONCILE_INTERVAL,
    MetricsFeeder,
    eventually,
    fast_server,
    first_step,
    make_live,
    register,
)

SUCCEEDED = DeploymentState.Value("DEPLOYMENT_STATE_SUCCEEDED")
ROLLED_BACK = DeploymentState.Value("DEPLOYMENT_STATE_ROLLED_BACK")
PROGRESSING = DeploymentState.Value("DEPLOYMENT_STATE_PROGRESSING")
PAUSED = DeploymentState.Value("DEPLOYMENT_STATE_PAUSED")
ABORTED = DeploymentState.Value("DEPLOYMENT_STATE_ABORTED")

# --- request building (no server) ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, name", [
    ("canary", "CANARY"), ("Blue-Green", "BLUE_GREEN"), ("blue_green", "BLUE_GREEN"),
    ("IMMEDIATE", "IMMEDIATE"),
    ("DEPLOYMENT_STRATEGY_ROLLING", "ROLLING"),
])
def test_strategies_by_any_reasonable_name(text: str, name: str) -> None:
    assert strategy_value(text) == DeploymentStrategy.Value(f"DEPLOYMENT_STRATEGY_{name}")
    assert strategy_value(DeploymentStrategy.Value(f"DEPLOYMENT_STRATEGY_{name}")) == strategy_value(text)


def test_strategy_names_read_back_as_the_cli_spells_them() -> None:
    assert [strategy_name(strategy_value(n)) for n in ("immediate", "blue-green", "canary", "rolling")] == [
        "immediate", "blue-green", "canary", "rolling"]


@pytest.mark.parametrize("bad", ["linear", "", "unspecified", 0, 99])
def test_unknown_strategies_are_refused_before_any_call(bad: object) -> None:
    with pytest.raises(ValueError, match="strategy"):
        strategy_value(bad)  # type: ignore[arg-type]


def test_states_by_name_and_which_are_final() -> None:
    assert state_value("rolled-back") == state_value("ROLLED_BACK") == ROLLED_BACK
    assert state_name(SUCCEEDED) == "SUCCEEDED"
    assert {state_name(s) for s in DeploymentState.values() if is_final(s)} == {
        "SUCCEEDED", "ROLLED_BACK", "ABORTED", "FAILED"}
    assert modelctl.FINAL_DEPLOYMENT_STATES == {s for s in DeploymentState.values() if is_final(s)}


@pytest.mark.parametrize("value, seconds", [
    (30, 30.0), (0.1, 0.1), (dt.timedelta(minutes=5), 300.0), ("500ms", 0.5), ("1m30s", 90.0),
])
def test_durations_as_seconds_timedeltas_or_text(value: object, seconds: float) -> None:
    assert duration_seconds(value) == pytest.approx(seconds)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -1, "soon", float("nan"), dt.timedelta(0)])
def test_bad_durations_name_the_parameter(bad: object) -> None:
    with pytest.raises(ValueError, match="interval"):
        deployment_params(interval=bad)  # type: ignore[arg-type]


def test_deploy_request_sets_only_what_was_given() -> None:
    request = deploy_request("fraud", "2", "canary", steps=[10, 50, 100], interval="250ms", min_samples=20,
                             max_error_rate=0.02, max_unavailable=2, max_surge="50%")
    params = request.params
    assert (request.model, request.version, request.strategy) == ("fraud", "2", strategy_value("canary"))
    assert list(params.steps) == [10, 50, 100]
    assert params.step_interval.ToMilliseconds() == 250
    assert params.min_samples == 20 and not params.HasField("failure_limit")
    assert params.thresholds.error_rate == 0.02 and not params.thresholds.HasField("latency_p95_ms")
    assert not params.HasField("bake_time") and not params.HasField("progress_deadline")
    assert (params.max_unavailable, params.max_surge) == ("2", "50%")


def test_keywords_are_written_over_a_given_params_message() -> None:
    base = deployment_params(steps="5,100", min_samples=10, failure_limit=3)
    params = deployment_params(params=base, min_samples=99)
    assert (list(params.steps), params.min_samples, params.failure_limit) == ([5, 100], 99, 3)
    assert base.min_samples == 10  # the caller's message is copied, not changed


@pytest.mark.parametrize("steps", [[0, 100], [5, 10.5, 100], [5, 101], ["x"]])
def test_steps_are_whole_percentages(steps: list[object]) -> None:
    with pytest.raises(ValueError, match="steps"):
        deployment_params(steps=steps)  # type: ignore[arg-type]


def test_cli_steps_must_increase_and_end_at_100() -> None:
    assert parse_steps("5, 10,25,50,100") == (5, 10, 25, 50, 100)
    for bad, complaint in (("10,5,100", "increase"), ("5,10,50", "100"), ("", "at least one")):
        with pytest.raises(ValueError, match=complaint):
            parse_steps(bad)


@pytest.mark.parametrize("text, ok", [
    ("2", True), ("25%", True), ("-1", False), ("25 %%", False), ("a", False),
])
def test_rolling_limits_are_counts_or_percentages(text: str, ok: bool) -> None:
    if ok:
        assert parse_limit(text) == text
    else:
        with pytest.raises(ValueError):
            parse_limit(text)


def test_one_sample_by_keywords_or_a_batch() -> None:
    (one,) = metrics_samples(None, {"model": "fraud", "version": "2", "requests": 10, "errors": 1,
                                    "latency_ms": [3.0, 4.0], "latency_p95_ms": 4.0})
    assert (one.requests, one.errors, list(one.latency_ms), one.latency_p95_ms) == (10, 1, [3.0, 4.0], 4.0)
    assert not one.HasField("time")
    batch = metrics_samples([MetricsSample(model="a", version="1", requests=5),
                             {"model": "b", "version": "2", "requests": 3,
                              "time": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)}], {})
    assert [s.model for s in batch] == ["a", "b"] and batch[1].time.ToSeconds() == 1767225600


@pytest.mark.parametrize("samples, one, complaint", [
    (None, {"model": "fraud"}, "version"),
    ([], {"model": "fraud", "version": "1"}, "not both"),
    (None, {"model": "fraud", "version": "1", "requests": 1, "errors": 2}, "exceed"),
])
def test_malformed_reports_are_refused_locally(samples: object, one: dict, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        metrics_samples(samples, one)  # type: ignore[arg-type]


def test_backoff_doubles_with_jitter_and_gives_up_after_its_budget() -> None:
    now = [0.0]
    backoff = Backoff(initial=0.1, maximum=1.0, give_up_after=5.0, clock=lambda: now[0],
                      rng=lambda low, high: high)
    assert backoff.delay() == 0.0
    delays = []
    for _ in range(6):
        assert backoff.failed()
        delays.append(backoff.delay())
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    now[0] = 6.0
    assert not backoff.failed()  # lost for longer than give_up_after
    backoff.succeeded()
    assert backoff.failed() and backoff.delay() == 0.1


def test_waiting_on_a_controller_that_was_never_reached_fails_at_once() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening: refused
        with modelctl.Client(address, retry=None) as client:
            started = time.monotonic()
            with pytest.raises(errors.ServerUnreachableError):
                client.wait_for_deployment("d1", timeout=30)
    assert time.monotonic() - started < 5  # not the minute a lost connection gets to come back


# --- against a controller -----------------------------------------------------------------------------------


@pytest.fixture
def rollout_server(server_factory):  # type: ignore[no-untyped-def]
    return fast_server(server_factory)


@pytest.fixture
def client(rollout_server) -> Iterator[modelctl.Client]:  # type: ignore[no-untyped-def]
    with modelctl.Client(rollout_server.address, token=rollout_server.admin_token) as connected:
        yield connected


@pytest.fixture
def fraud_v1_live(client: modelctl.Client) -> modelctl.Client:
    register(client, "fraud", "1", "2", "3")
    make_live(client, "fraud", "1")
    return client


def _events(client: modelctl.Client, deployment_id: str) -> list[modelctl.types.DeploymentEvent]:
    return list(client.watch_deployment(deployment_id))


def test_a_healthy_canary_succeeds_and_wait_sees_every_event_once_in_order(
        fraud_v1_live: modelctl.Client) -> None:
    client = fraud_v1_live
    deployment = client.deploy("fraud", "2", "canary", steps=[20, 50, 100], **FAST_CANARY)
    assert (deployment.version, deployment.previous_version) == ("2", "1")
    assert deployment.total_steps == 3
    seen: list[modelctl.types.DeploymentEvent] = []
    with MetricsFeeder(client, "fraud", "2"):
        final = client.wait_for_deployment(deployment.id, timeout=30, on_event=seen.append)
    assert final.state == SUCCEEDED and final.traffic_percent == 100
    assert [e.seq for e in seen] == list(range(1, len(seen) + 1))
    kinds = [DeploymentEventKind.Name(e.kind).removeprefix("DEPLOYMENT_EVENT_KIND_") for e in seen]
    assert kinds == ["CREATED", "STEP_STARTED", "STEP_STARTED", "STEP_STARTED", "SUCCEEDED"]
    assert [e.traffic_percent for e in seen if e.kind == DeploymentEventKind.Value(
        "DEPLOYMENT_EVENT_KIND_STEP_STARTED")] == [20, 50, 100]
    assert dict(client.get_traffic_split("fraud").weights) in ({"2": 100.0}, {"1": 0.0, "2": 100.0})
    # a finished deployment's watch replays its history and ends
    assert [e.seq for e in _events(client, deployment.id)] == [e.seq for e in seen]
    assert [e.seq for e in client.watch_deployment(deployment.id, after_seq=3)] == [4, 5]


def test_an_erroring_canary_rolls_back_with_the_gate_in_the_reason(fraud_v1_live: modelctl.Client) -> None:
    client = fraud_v1_live
    deployment = client.deploy("fraud", "2", "canary", **FAST_CANARY)
    with MetricsFeeder(client, "fraud", "2", errors=5):
        final = client.wait_for_deployment(deployment.id, timeout=30)
    assert final.state == ROLLED_BACK
    assert "error-rate" in final.reason
    assert client.get_traffic_split("fraud").weights["1"] == 100
    failed = [e for e in client.get_deployment(deployment.id).evaluations
              if e.verdict == modelctl.types.GateVerdict.Value("GATE_VERDICT_FAIL")]
    assert failed and failed[0].gate == "error_rate" and failed[0].value > failed[0].threshold


def test_a_second_deployment_of_the_same_model_names_the_active_one(fraud_v1_live: modelctl.Client) -> None:
    client = fraud_v1_live
    active = client.deploy("fraud", "2", "canary", **FAST_CANARY)
    with pytest.raises(errors.FailedPreconditionError) as caught:
        client.deploy("fraud", "3", "canary")
    assert active.id in caught.value.message


def test_bad_parameters_come_back_as_field_violations(fraud_v1_live: modelctl.Client) -> None:
    with pytest.raises(errors.InvalidArgumentError) as caught:
        fraud_v1_live.deploy("fraud", "2", "canary", interval="10ms")
    assert "params.step_interval" in [v.field for v in caught.value.violations]


def test_pause_resume_promote_and_abort(fraud_v1_live: modelctl.Client) -> None:
    client = fraud_v1_live
    first = client.deploy("fraud", "2", "canary", **FAST_CANARY)
    first_step(client, first.id)  # a PENDING deployment cannot pause yet
    assert client.pause(first.id, "look at the dashboards").state == PAUSED
    assert client.resume(first.id).state == PROGRESSING
    promoted = client.promote(first.id)
    assert client.wait_for_deployment(promoted.id, timeout=30).state == SUCCEEDED
    assert client.get_traffic_split("fraud").weights["2"] == 100

    second = client.deploy("fraud", "3", "canary", **FAST_CANARY)
    first_step(client, second.id)
    aborted = client.abort(second.id, "wrong build")
    assert aborted.state == ABORTED
    assert client.get_traffic_split("fraud").weights["2"] == 100
    assert [d.id for d in client.iter_deployments(model="fraud", states=["aborted"])] == [second.id]
    listed = [d.id for d in client.iter_deployments(model="fraud", page_size=1)]
    assert listed[:2] == [second.id, first.id]  # newest first, across pages


def test_rollback_returns_to_the_previous_version(fraud_v1_live: modelctl.Client) -> None:
    client = fraud_v1_live
    canary = client.deploy("fraud", "2", "canary", **FAST_CANARY)
    with MetricsFeeder(client, "fraud", "2"):
        client.wait_for_deployment(canary.id, timeout=30)
    back = client.rollback("fraud", reason="bad business numbers")
    assert (back.version, back.previous_version) == ("1", "2")
    assert back.strategy == strategy_value("immediate")
    eventually(lambda: client.get_traffic_split("fraud").weights["1"] == 100, what="traffic back on 1")


def test_a_wait_that_runs_out_of_time_carries_the_last_known_state(fraud_v1_live: modelctl.Client) -> None:
    client = fraud_v1_live
    deployment = client.deploy("fraud", "2", "canary", **FAST_CANARY)  # no traffic: it stays at step 1
    with pytest.raises(errors.WaitTimeoutError) as caught:
        client.wait_for_deployment(deployment.id, timeout=0.3)
    assert caught.value.deployment is not None and caught.value.deployment.state == PROGRESSING
    assert isinstance(caught.value, errors.DeadlineExceededError)
    assert deployment.id in str(caught.value)


def test_wait_resumes_after_a_controller_restart_without_missing_or_repeating_events(
        server_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from conftest import ThreadedServer, make_settings

    env = {"MODELCTL_DEPLOYMENT_RECONCILE_INTERVAL": RECONCILE_INTERVAL}
    # Stopped mid-rollout by this test, so not one of the fixture's servers.
    first = ThreadedServer(make_settings(tmp_path / "data", **env))
    try:
        client = modelctl.Client(first.address, token=first.admin_token)
        register(client, "fraud", "1", "2")
        make_live(client, "fraud", "1")
        deployment = client.deploy("fraud", "2", "canary", steps=[50, 100], interval="100ms", min_samples=5,
                                   progress_deadline="60s")
        seen: list[modelctl.types.DeploymentEvent] = []
        outcome: dict[str, object] = {}
        step_started = threading.Event()

        def on_event(event: modelctl.types.DeploymentEvent) -> None:
            seen.append(event)
            if event.kind == DeploymentEventKind.Value("DEPLOYMENT_EVENT_KIND_STEP_STARTED"):
                step_started.set()

        def wait() -> None:
            try:
                outcome["final"] = client.wait_for_deployment(deployment.id, timeout=60, on_event=on_event)
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                outcome["error"] = exc

        waiter = threading.Thread(target=wait)
        waiter.start()
        assert step_started.wait(15)
    finally:
        first.stop()
    assert waiter.is_alive()  # no traffic yet: the canary is still at its first step, the wait must reconnect
    # Same address and database: the same token, the same deployment, resumed at its step.
    server_factory(make_settings(tmp_path / "data", MODELCTL_SERVER_GRPC_ADDRESS=first.address, **env))
    with client, MetricsFeeder(client, "fraud", "2"):
        waiter.join(60)
    assert "error" not in outcome, outcome
    assert outcome["final"].state == SUCCEEDED  # type: ignore[attr-defined]
    assert [e.seq for e in seen] == list(range(1, len(seen) + 1))
    assert DeploymentState.Name(seen[-1].state) == "DEPLOYMENT_STATE_SUCCEEDED"


def test_waiting_for_an_unknown_deployment_is_not_found(client: modelctl.Client) -> None:
    with pytest.raises(errors.NotFoundError):
        client.wait_for_deployment("d0000000", timeout=10)


def test_report_metrics_for_an_unregistered_version_is_not_found(client: modelctl.Client) -> None:
    register(client, "fraud", "1")
    accepted = client.report_metrics(model="fraud", version="1", requests=3, latency_ms=[1, 2, 3])
    assert accepted.accepted_samples == 1
    with pytest.raises(errors.NotFoundError, match="not registered"):
        client.report_metrics(model="fraud", version="9", requests=3)


def test_instances_register_heartbeat_and_learn_their_assignment(fraud_v1_live: modelctl.Client) -> None:
    client = fraud_v1_live
    instance = client.register_instance("fraud", "pod-a", "10.0.0.7:8080")
    assert (instance.model, instance.instance_id, instance.address) == ("fraud", "pod-a", "10.0.0.7:8080")
    beat = client.heartbeat("fraud", "pod-a", loaded_version="1", healthy=True)
    assert beat.assigned_version == "1" and beat.heartbeat_interval.ToTimedelta() > dt.timedelta(0)
    with client.watch_assignment("fraud", "pod-a") as assignments:
        first = next(assignments)
    assert (first.instance_id, first.version) == ("pod-a", "1")


def test_watch_traffic_split_starts_with_the_current_split_and_cancel_ends_it_quietly(
        fraud_v1_live: modelctl.Client) -> None:
    stream = fraud_v1_live.watch_traffic_split("fraud")
    assert next(stream).weights["1"] == 100
    stream.cancel()
    assert list(stream) == []


# --- asyncio ----------------------------------------------------------------------------------------------


async def test_the_async_client_deploys_watches_and_waits(rollout_server) -> None:  # type: ignore[no-untyped-def]
    server = rollout_server
    with modelctl.Client(server.address, token=server.admin_token) as sync_client:
        register(sync_client, "fraud", "1", "2")
        make_live(sync_client, "fraud", "1")
        async with modelctl.AsyncClient(server.address, token=server.admin_token) as client:
            deployment = await client.deploy("fraud", "2", "canary", steps=[50, 100], **FAST_CANARY)
            kinds: list[int] = []

            async def on_event(event: modelctl.types.DeploymentEvent) -> None:
                kinds.append(event.kind)

            with MetricsFeeder(sync_client, "fraud", "2"):
                waiting = client.wait_for_deployment(deployment.id, on_event=on_event)
                final = await asyncio.wait_for(waiting, 30)
            assert final.state == SUCCEEDED
            replayed = [e.seq async for e in client.watch_deployment(deployment.id)]
            assert replayed == list(range(1, len(kinds) + 1))
            assert (await client.get_traffic_split("fraud")).weights["2"] == 100
            assert [d.id async for d in client.iter_deployments(model="fraud", states=["succeeded"])][0] == \
                deployment.id
            async with client.watch_traffic_split("fraud") as splits:
                async for split in splits:
                    assert split.weights["2"] == 100
                    splits.cancel()
            with pytest.raises(errors.FailedPreconditionError):
                await client.deploy("fraud", "2", "canary")  # already the live version
