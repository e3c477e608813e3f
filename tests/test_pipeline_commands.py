"""Pipeline commands through the real RPCs: lifecycle rules, every bad input with its status code, expiry,
stale alerts, metrics — on SQLite and PostgreSQL."""

from __future__ import annotations

import grpc
import pytest

from modelctl.v1 import alert_pb2, deployment_pb2, registry_pb2
from modelctl.v1 import pipeline_pb2 as pb
from modelctl_server.clock import FakeClock

from grpc_helpers import bad_fields, stub
from rollout_support import eventually

OPTIMIZE, PAUSE, RELOAD = pb.PIPELINE_COMMAND_KIND_OPTIMIZE, pb.PIPELINE_COMMAND_KIND_PAUSE, \
    pb.PIPELINE_COMMAND_KIND_RELOAD_CONFIG
ACK, SUCCEEDED, FAILED = pb.PIPELINE_COMMAND_STATE_ACKNOWLEDGED, pb.PIPELINE_COMMAND_STATE_SUCCEEDED, \
    pb.PIPELINE_COMMAND_STATE_FAILED


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(server_factory, database_url: str, clock: FakeClock):  # type: ignore[no-untyped-def]
    return server_factory(clock=clock, MODELCTL_DATABASE_URL=database_url, MODELCTL_PIPELINES_STALE_AFTER="60s",
                          MODELCTL_PIPELINES_COMMAND_TIMEOUT="30s", MODELCTL_PIPELINES_CHECK_INTERVAL="1s")


@pytest.fixture
def api(server):  # type: ignore[no-untyped-def]
    api = stub(server.address, server.admin_token)
    api.RegisterPipeline(pb.RegisterPipelineRequest(name="trainer", models=["fraud", "churn"], version="1.0"))
    return api


def _code(call) -> tuple[grpc.StatusCode, str, list[str]]:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code(), err.value.details(), bad_fields(err.value)


def _send(api, kind=PAUSE, model="", **fields):  # type: ignore[no-untyped-def]
    return api.SendPipelineCommand(pb.SendPipelineCommandRequest(pipeline="trainer", kind=kind, model=model, **fields))


def _update(api, command_id: str, state: int, **fields):  # type: ignore[no-untyped-def]
    return api.UpdatePipelineCommand(pb.UpdatePipelineCommandRequest(id=command_id, state=state, **fields))


async def _advance(clock: FakeClock, seconds: float) -> None:
    clock.advance(seconds)  # on the server's loop: FakeClock wakes sleepers there


def test_register_is_idempotent_and_reports_show_up(api) -> None:  # type: ignore[no-untyped-def]
    again = api.RegisterPipeline(pb.RegisterPipelineRequest(name="trainer", models=["fraud"], version="1.1",
                                                            labels={"team": "risk"}))
    assert (list(again.pipeline.models), again.pipeline.version) == (["fraud"], "1.1")
    assert again.report_interval.seconds == 20  # a third of stale_after
    reported = api.ReportPipelineStatus(pb.ReportPipelineStatusRequest(
        name="trainer", state=pb.PIPELINE_STATE_OPTIMIZING, job="search", progress=42.5,
        last_result=pb.PipelineResult(model="fraud", version="7", metrics={"auc": 0.9})))
    assert (reported.state, reported.job, reported.progress, reported.stale) == (
        pb.PIPELINE_STATE_OPTIMIZING, "search", 42.5, False)
    listed = api.ListPipelines(pb.ListPipelinesRequest(model="fraud")).pipelines
    assert [p.name for p in listed] == ["trainer"] and listed[0].last_result.metrics["auc"] == 0.9
    assert api.ListPipelines(pb.ListPipelinesRequest(model="nothing")).pipelines == []


def test_bad_inputs_get_their_status_codes(api) -> None:  # type: ignore[no-untyped-def]
    nf = grpc.StatusCode.NOT_FOUND
    ia = grpc.StatusCode.INVALID_ARGUMENT
    assert _code(lambda: api.GetPipeline(pb.GetPipelineRequest(name="ghost")))[0] is nf
    assert _code(lambda: api.SendPipelineCommand(pb.SendPipelineCommandRequest(pipeline="ghost", kind=PAUSE)))[0] is nf
    assert _code(lambda: api.ReportPipelineStatus(pb.ReportPipelineStatusRequest(
        name="ghost", state=pb.PIPELINE_STATE_IDLE)))[0] is nf
    assert _code(lambda: list(api.WatchPipelineCommands(pb.WatchPipelineCommandsRequest(pipeline="ghost"),
                                                        timeout=10)))[0] is nf
    assert _code(lambda: api.ListPipelineCommands(pb.ListPipelineCommandsRequest(pipeline="ghost")))[0] is nf
    assert _code(lambda: _update(api, "nosuchcommand", ACK))[0] is nf
    for progress in (-1, 100.5, float("nan")):
        code, _, fields = _code(lambda: api.ReportPipelineStatus(pb.ReportPipelineStatusRequest(
            name="trainer", state=pb.PIPELINE_STATE_RUNNING, progress=progress)))
        assert (code, fields) == (ia, ["progress"])
    code, message, fields = _code(lambda: _send(api, RELOAD, config="{not json"))
    assert (code, fields) == (ia, ["config"]) and "not valid JSON" in message
    assert _code(lambda: _send(api, RELOAD))[2] == ["config"]
    assert _code(lambda: _send(api, PAUSE, config="{}"))[2] == ["config"]
    assert _code(lambda: _send(api, pb.PIPELINE_COMMAND_KIND_UNSPECIFIED))[2] == ["kind"]
    then = pb.ThenDeploy(strategy=deployment_pb2.DEPLOYMENT_STRATEGY_CANARY)
    assert _code(lambda: _send(api, OPTIMIZE, then_deploy=then))[2] == ["model"]
    assert _code(lambda: _send(api, PAUSE, model="fraud", then_deploy=then))[2] == ["then_deploy"]
    assert _code(lambda: _send(api, OPTIMIZE, model="other"))[0] is grpc.StatusCode.FAILED_PRECONDITION
    code, _, fields = _code(lambda: api.RegisterPipeline(pb.RegisterPipelineRequest(name="Bad Name")))
    assert (code, fields) == (ia, ["name"])
    command = _send(api)
    assert _code(lambda: _update(api, command.id, pb.PIPELINE_COMMAND_STATE_EXPIRED))[2] == ["state"]
    # A result finished past the calendar is the caller's mistake, not an INTERNAL error.
    code, _, fields = _code(lambda: api.ReportPipelineStatus(pb.ReportPipelineStatusRequest(
        name="trainer", state=pb.PIPELINE_STATE_IDLE,
        last_result=pb.PipelineResult(finished_at={"seconds": 253_402_300_800}))))
    assert (code, fields) == (ia, ["last_result.finished_at"])


def test_lifecycle_and_illegal_transitions(api) -> None:  # type: ignore[no-untyped-def]
    fp = grpc.StatusCode.FAILED_PRECONDITION
    first = _send(api, OPTIMIZE, model="fraud", parameters={"trials": "20"})
    assert first.state == pb.PIPELINE_COMMAND_STATE_PENDING and first.deadline.seconds > first.created_at.seconds
    code, message, _ = _code(lambda: _send(api, OPTIMIZE, model="fraud"))
    assert code is fp and first.id in message and "fraud" in message  # names the open one
    _send(api, OPTIMIZE, model="churn")  # another model may be optimised meanwhile
    # Finishing before acknowledging is not a move the table allows
    code, message, _ = _code(lambda: _update(api, first.id, SUCCEEDED))
    assert code is fp and "PENDING" in message
    stream = api.WatchPipelineCommands(pb.WatchPipelineCommandsRequest(pipeline="trainer"))
    delivered = next(stream)
    assert (delivered.id, delivered.state) == (first.id, pb.PIPELINE_COMMAND_STATE_DELIVERED)
    stream.cancel()
    assert _update(api, first.id, ACK).state == ACK
    code, message, _ = _code(lambda: _update(api, first.id, ACK))  # a second acknowledgement is refused
    assert code is fp and "ACKNOWLEDGED" in message
    done = _update(api, first.id, SUCCEEDED, result="auc 0.93", version="9")
    assert (done.state, done.result, done.result_version) == (SUCCEEDED, "auc 0.93", "9")
    assert _code(lambda: _update(api, first.id, FAILED))[0] is fp
    assert _code(lambda: api.CancelPipelineCommand(pb.CancelPipelineCommandRequest(id=first.id)))[0] is fp
    _send(api, OPTIMIZE, model="fraud")  # the first one ended: a new OPTIMIZE of fraud is fine

    cancelled = api.CancelPipelineCommand(pb.CancelPipelineCommandRequest(id=_send(api).id, reason="not now"))
    assert cancelled.state == pb.PIPELINE_COMMAND_STATE_CANCELLED and "not now" in cancelled.error
    code, message, _ = _code(lambda: _update(api, cancelled.id, ACK))
    assert code is fp and "cancelled by" in message

    failed = _send(api, RELOAD, config='{"lr": 0.1}')
    _update(api, failed.id, ACK)
    ended = _update(api, failed.id, FAILED, error="bad key lr")
    assert (ended.state, ended.error, ended.config) == (FAILED, "bad key lr", '{"lr": 0.1}')
    listed = api.ListPipelineCommands(pb.ListPipelineCommandsRequest(pipeline="trainer", states=[FAILED])).commands
    assert [c.id for c in listed] == [failed.id]


def test_the_stream_sends_every_unacknowledged_command_first_then_new_ones(api) -> None:  # type: ignore[no-untyped-def]
    old = [_send(api).id, _send(api, RELOAD, config="{}").id]
    stream = api.WatchPipelineCommands(pb.WatchPipelineCommandsRequest(pipeline="trainer"))
    assert [next(stream).id, next(stream).id] == old
    _update(api, old[0], ACK)
    new = _send(api, pb.PIPELINE_COMMAND_KIND_RESUME).id
    assert next(stream).id == new  # live, and the acknowledged one is not sent again
    stream.cancel()
    again = api.WatchPipelineCommands(pb.WatchPipelineCommandsRequest(pipeline="trainer"))
    assert [next(again).id, next(again).id] == [old[1], new]  # a reconnect: what is not acknowledged, once each
    again.cancel()


def test_an_unacknowledged_command_expires_and_is_counted(api, server, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    command = _send(api, ack_timeout={"seconds": 5})
    kept = _send(api, RELOAD, config="{}")  # the default deadline, 30s
    server.call(_advance(clock, 6))

    async def sweep_now() -> None:
        # A sweep that was running when the clock moved sleeps its whole interval in fake time after it:
        # wake it, as the RPCs that change commands do.
        server.app.pipeline_sweeper.wake()
    server.call(sweep_now())
    expired = eventually(lambda: (c := api.GetPipelineCommand(pb.GetPipelineCommandRequest(id=command.id)))
                         .state == pb.PIPELINE_COMMAND_STATE_EXPIRED and c, what="the command to expire")
    assert "not acknowledged within 5s" in expired.error
    assert api.GetPipelineCommand(pb.GetPipelineCommandRequest(id=kept.id)).state == pb.PIPELINE_COMMAND_STATE_PENDING
    assert _code(lambda: _update(api, command.id, ACK))[0] is grpc.StatusCode.FAILED_PRECONDITION
    value = server.app.recorder.registry.get_sample_value
    assert value("modelctl_pipeline_commands_total", {"kind": "PAUSE", "outcome": "EXPIRED"}) == 1


def test_a_silent_pipeline_is_stale_and_raises_an_alert_until_it_reports(api, server, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    server.call(_advance(clock, 61))

    def open_alert():  # type: ignore[no-untyped-def]
        alerts = api.ListAlerts(alert_pb2.ListAlertsRequest()).alerts
        return next((a for a in alerts if "pipeline trainer" in a.message and a.state == alert_pb2.ALERT_STATE_OPEN),
                    None)
    alert = eventually(open_alert, what="the stale-pipeline alert")
    assert alert.kind == alert_pb2.ALERT_KIND_SYSTEM
    assert api.GetPipeline(pb.GetPipelineRequest(name="trainer")).stale
    # The gauge is set by the same sweep that raised the alert, possibly an instant after the alert is visible.
    eventually(lambda: server.app.recorder.registry.get_sample_value("modelctl_pipelines_stale") == 1 or None,
               what="the stale-pipelines gauge")
    api.ReportPipelineStatus(pb.ReportPipelineStatusRequest(name="trainer", state=pb.PIPELINE_STATE_IDLE))
    eventually(lambda: api.GetAlert(alert_pb2.GetAlertRequest(id=alert.id)).state == alert_pb2.ALERT_STATE_RESOLVED,
               what="the alert to resolve once the pipeline reported")
    assert not api.GetPipeline(pb.GetPipelineRequest(name="trainer")).stale


def test_acknowledgement_time_is_observed(api, server) -> None:  # type: ignore[no-untyped-def]
    command = _send(api)
    _update(api, command.id, ACK)
    assert server.app.recorder.registry.get_sample_value("modelctl_pipeline_command_ack_seconds_count") == 1


def test_a_reported_version_cannot_be_reported_over_while_its_deployment_decides(api) -> None:  # type: ignore[no-untyped-def]
    # The version exists, so the sweep (woken by the report) can start its canary: it must not end the command.
    api.RegisterModel(registry_pb2.RegisterModelRequest(name="fraud", version="9", artifact_uri="s3://m/9"))
    then = pb.ThenDeploy(strategy=deployment_pb2.DEPLOYMENT_STRATEGY_CANARY)
    command = _send(api, OPTIMIZE, model="fraud", then_deploy=then)
    _update(api, command.id, ACK)
    waiting = _update(api, command.id, SUCCEEDED, version="9")
    assert (waiting.state, waiting.result_version) == (ACK, "9")  # the deployment of 9 decides the end
    for state, fields in ((SUCCEEDED, {"version": "10"}), (FAILED, {"error": "changed my mind"})):
        code, message, _ = _code(lambda: _update(api, command.id, state, **fields))
        assert code is grpc.StatusCode.FAILED_PRECONDITION and "already reported fraud 9" in message
    assert api.GetPipelineCommand(pb.GetPipelineCommandRequest(id=command.id)).result_version == "9"
