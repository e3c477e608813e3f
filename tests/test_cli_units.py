"""The CLI's plumbing, no server needed: parsing, output, error lines, usage errors, exit codes."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import click
import grpc
import pytest
from click.testing import CliRunner

from modelctl import errors
from modelctl.cli._errors import CliError, describe
from modelctl.cli._output import render_fields, render_table, size, timestamp, to_json
from modelctl.cli._parsing import format_duration, parse_duration, parse_key_value, parse_metric
from modelctl.cli.main import cli
from modelctl.v1 import registry_pb2, system_pb2

# --- parsing ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, seconds", [
    ("30s", 30), ("5m", 300), ("1h", 3600), ("30d", 30 * 86400), ("2w", 14 * 86400), ("1h30m", 5400),
    ("500ms", 0.5), ("45", 45), (" 2 m ", 120), ("1.5h", 5400),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "5x", "1h30", "-5s", "0s", "s", "inf"])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match="30s"):
        parse_duration(text)


def test_formatted_durations_read_back() -> None:
    assert [format_duration(s) for s in (0.00034, 0.25, 1, 90, 93784)] == ["0.34ms", "250ms", "1s", "1m30s",
                                                                          "1d2h3m4s"]
    assert parse_duration(format_duration(93784)) == 93784


def test_key_value_pairs() -> None:
    assert parse_key_value("team=risk") == ("team", "risk")
    assert parse_key_value("query=a=b") == ("query", "a=b")
    assert parse_key_value("empty=") == ("empty", "")
    for bad in ("novalue", "=x", ""):
        with pytest.raises(ValueError, match="KEY=VALUE"):
            parse_key_value(bad)


def test_metrics_must_be_finite_numbers() -> None:
    assert parse_metric("auc=0.91") == ("auc", 0.91)
    with pytest.raises(ValueError, match="not a number"):
        parse_metric("auc=high")
    with pytest.raises(ValueError, match="finite"):
        parse_metric("auc=nan")


# --- output -----------------------------------------------------------------------------------------------


def test_tables_align_columns_and_show_missing_values_as_dashes() -> None:
    text = render_table(("NAME", "LIVE"), [("fraud-detector", ""), ("churn", "2")])
    assert text.splitlines() == ["NAME            LIVE", "fraud-detector  -", "churn           2"]
    assert render_table(("NAME",), [], empty="No models.") == "No models."


def test_a_newline_in_a_value_cannot_break_a_table() -> None:
    assert render_fields([("Description", "two\nlines")]) == "Description:  two lines"


def test_json_uses_proto_field_names_enum_names_and_keeps_empty_fields() -> None:
    model = registry_pb2.Model(name="m", versions=[registry_pb2.ModelVersion(
        name="m", version="1", state=registry_pb2.MODEL_VERSION_STATE_READY)])
    document = to_json(model)
    assert document["live_version"] == "" and document["traffic"] == {}
    assert document["versions"][0]["state"] == "MODEL_VERSION_STATE_READY"
    assert to_json([model, model]) == [document, document]


def test_human_values() -> None:
    assert [size(n) for n in (0, 1023, 1536, 5 * 1024 ** 3)] == ["0 B", "1023 B", "1.5 KiB", "5.0 GiB"]
    from google.protobuf import timestamp_pb2
    assert timestamp(timestamp_pb2.Timestamp()) == "-"
    assert timestamp(timestamp_pb2.Timestamp(seconds=86400)) == "1970-01-02 00:00:00Z"


# --- error lines ------------------------------------------------------------------------------------------


def test_connection_refused_line_names_the_address_and_the_fix() -> None:
    error = errors.ServerUnreachableError("x", address="127.0.0.1:50051", reason="Connection refused")
    assert describe(error) == ("cannot reach the modelctl server at 127.0.0.1:50051 "
                               "(is it running? set --server or MODELCTL_ADDR)")


def test_validation_line_names_every_field() -> None:
    error = errors.InvalidArgumentError("bad", violations=(errors.FieldViolation("name", "is required"),
                                                           errors.FieldViolation("version", "too long")))
    assert describe(error) == "invalid request: name: is required; version: too long"


def test_auth_lines_point_at_the_token() -> None:
    assert "--token" in describe(errors.UnauthenticatedError("missing bearer token"))
    assert describe(errors.PermissionDeniedError("needs admin")) == "permission denied: needs admin"
    assert "--timeout" in describe(errors.DeadlineExceededError("late"), timeout=5)


def test_a_cli_error_is_one_line_prefixed_with_the_program_name(capsys: pytest.CaptureFixture[str]) -> None:
    CliError("first\nsecond").show()
    assert capsys.readouterr().err == "modelctl: first second\n"


# --- the command line without a server --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"MODELCTL_ADDR": None, "MODELCTL_TOKEN": None})


def test_help_never_connects(runner: CliRunner) -> None:
    for args in (["--help"], ["models", "--help"], ["models", "register", "--help"], ["tokens", "create", "-h"]):
        result = runner.invoke(cli, ["--server", "nowhere.invalid:1", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.stdout


def test_connection_refused_is_one_line_and_exit_code_1(runner: CliRunner) -> None:
    address = f"127.0.0.1:{_free_port()}"
    result = runner.invoke(cli, ["--server", address, "models", "list"], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr == (f"modelctl: cannot reach the modelctl server at {address} "
                             "(is it running? set --server or MODELCTL_ADDR)\n")
    assert result.stdout == ""


def test_the_address_comes_from_modelctl_addr() -> None:
    address = f"127.0.0.1:{_free_port()}"
    result = CliRunner(env={"MODELCTL_ADDR": address}).invoke(cli, ["status"], catch_exceptions=False)
    assert result.exit_code == 1
    assert address in result.stderr


@pytest.mark.parametrize("args, complaint", [
    (["models", "register", "m", "--version", "1", "--artifact", "s3://b/k", "--tag", "oops"], "KEY=VALUE"),
    (["models", "register", "m", "--version", "1", "--artifact", "s3://b/k", "--metric", "auc=x"], "not a number"),
    (["models", "register", "m", "--version", "1", "--artifact", "/no/such/file.pkl"], "neither a file nor a URI"),
    (["tokens", "create", "--role", "viewer", "--ttl", "forever"], "not a duration"),
    (["tokens", "create", "--role", "root"], "root"),
    (["--timeout", "soon", "status"], "not a duration"),
    (["models", "register", "m", "--artifact", "s3://b/k"], "--version"),
    (["models", "frobnicate"], "No such command"),
    (["-o", "yaml", "status"], "yaml"),
    (["--client-cert", __file__, "status"], "key"),
])
def test_usage_errors_exit_2_without_a_traceback(runner: CliRunner, args: list[str], complaint: str) -> None:
    result = runner.invoke(cli, ["--server", f"127.0.0.1:{_free_port()}", *args], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert complaint in result.stderr
    assert "Traceback" not in result.output


def test_an_unreadable_artifact_is_a_one_line_failure(runner: CliRunner, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    artifact = tmp_path / "model.pkl"
    artifact.write_bytes(b"weights")

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(artifact))

    monkeypatch.setattr("modelctl._artifacts.PreparedArtifact.__init__", refuse)
    result = runner.invoke(cli, ["--server", f"127.0.0.1:{_free_port()}", "models", "register", "m",
                                 "--version", "1", "--artifact", str(artifact)], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr == f"modelctl: {artifact}: Permission denied\n"


def test_any_raw_grpc_error_from_a_command_is_converted_too(runner: CliRunner) -> None:
    # Later command groups may call stubs directly; the root group still converts what they raise.
    class Refused(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.PERMISSION_DENIED

        def details(self) -> str:
            return "needs admin"

    @click.command("raw-probe")
    def probe() -> None:
        raise Refused()

    cli.add_command(probe)
    try:
        result = runner.invoke(cli, ["raw-probe"], catch_exceptions=False)
    finally:
        cli.commands.pop("raw-probe")
    assert (result.exit_code, result.stderr) == (1, "modelctl: permission denied: needs admin\n")


def test_json_output_is_one_document_for_role_names() -> None:
    # Enum values print by name, e.g. "ROLE_VIEWER", as the CreateTokenResponse JSON shows them.
    document = to_json(system_pb2.CreateTokenResponse(id="abc", token="s", role=system_pb2.ROLE_VIEWER, name="n"))
    assert json.loads(json.dumps(document))["role"] == "ROLE_VIEWER"
    assert set(document) >= {"id", "token", "role", "name"}


def test_zero_is_a_duration_only_where_it_means_something() -> None:
    assert parse_duration("0s", allow_zero=True) == 0
    with pytest.raises(ValueError):
        parse_duration("0s")


def test_a_request_the_sdk_refuses_is_one_line_exit_1(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelctl.client import Client

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise ValueError("steps must increase from step to step")
    monkeypatch.setattr(Client, "deploy", refuse)
    result = runner.invoke(cli, ["deploy", "fraud", "2", "--strategy", "canary"])
    assert result.exit_code == 1
    assert result.output.strip() == "modelctl: steps must increase from step to step"
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args", [
    ["deploy", "fraud", "2", "--strategy", "canary", "--interval", "1e300"],
    ["tokens", "create", "--role", "viewer", "--ttl", "1e300"],
    ["--timeout", "1e300", "status"],
])
def test_durations_beyond_what_the_wire_carries_are_usage_errors(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "longer than 10,000 years" in result.output and "Traceback" not in result.output


def test_the_sdk_refuses_unsendable_durations() -> None:
    from modelctl._system import create_token_request

    with pytest.raises(ValueError, match="ttl"):
        create_token_request("x", "viewer", ttl=1e300)
    assert create_token_request("x", "viewer", ttl="30d").ttl.seconds == 30 * 86400
