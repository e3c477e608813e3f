"""The `modelctl` CLI against a real controller: through CliRunner, and as the installed console script."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trustme
from click.shell_completion import ShellComplete
from click.testing import CliRunner, Result

from modelctl.cli import models as models_command
from modelctl.cli.main import cli

VERSION_FIELDS = {"name", "version", "artifact_uri", "sha256", "state", "created_at"}


def invoke(server, *args: str, token: str | None = None) -> Result:  # type: ignore[no-untyped-def]
    """Run the CLI with the server's address and a token in the environment, as an operator would."""
    env = {"MODELCTL_ADDR": server.address, "MODELCTL_TOKEN": token or server.admin_token}
    return CliRunner(env=env).invoke(cli, list(args), catch_exceptions=False)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return result


def _artifact(tmp_path: Path, size: int = 200_000) -> tuple[Path, str]:
    data = os.urandom(size)
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


# --- models -----------------------------------------------------------------------------------------------


def test_register_a_local_file_then_show_json_has_its_sha256(live_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, digest = _artifact(tmp_path)
    registered = ok(invoke(live_server, "models", "register", "fraud", "--version", "1.0.0", "--artifact", str(path),
                           "--framework", "sklearn", "--metric", "auc=0.91", "--tag", "team=risk"))
    assert digest in registered.stdout  # the table shows the full digest

    shown = json.loads(ok(invoke(live_server, "models", "show", "fraud", "-o", "json")).stdout)
    assert {"name", "versions", "live_version", "traffic"} <= set(shown)
    (version,) = shown["versions"]
    assert VERSION_FIELDS <= set(version)
    assert (version["sha256"], version["state"]) == (digest, "MODEL_VERSION_STATE_READY")
    assert (version["metrics"], version["tags"]) == ({"auc": 0.91}, {"team": "risk"})


def test_register_json_is_the_model_version(live_server) -> None:  # type: ignore[no-untyped-def]
    result = ok(invoke(live_server, "-o", "json", "models", "register", "churn", "--version", "2",
                       "--artifact", "gs://ml/churn.onnx", "--description", "weekly retrain"))
    version = json.loads(result.stdout)
    assert VERSION_FIELDS <= set(version)
    assert (version["artifact_uri"], version["sha256"], version["description"]) == (
        "gs://ml/churn.onnx", "", "weekly retrain")


def test_upload_draws_a_progress_bar_on_a_terminal(live_server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models_command, "PROGRESS_MIN_BYTES", 1)
    monkeypatch.setattr(models_command, "_stderr_is_terminal", lambda: True)
    path, digest = _artifact(tmp_path, 3_000_000)
    result = invoke(live_server, "models", "register", "fraud", "--version", "1", "--artifact", str(path))
    assert result.exit_code == 0
    assert "Uploading model.pkl" in result.stderr
    assert digest in result.stdout


def test_list_quiet_and_json(live_server) -> None:  # type: ignore[no-untyped-def]
    for name, team in (("fraud", "risk"), ("churn", "growth"), ("fraud-v2", "risk")):
        ok(invoke(live_server, "models", "register", name, "--version", "1", "--artifact", f"s3://b/{name}",
                  "--tag", f"team={team}"))
    assert ok(invoke(live_server, "models", "list", "-q")).stdout == "churn\nfraud\nfraud-v2\n"
    assert ok(invoke(live_server, "-q", "models", "list", "--tag", "team=risk")).stdout == "fraud\nfraud-v2\n"
    assert ok(invoke(live_server, "models", "list", "--prefix", "fraud-", "-q")).stdout == "fraud-v2\n"
    listed = json.loads(ok(invoke(live_server, "models", "list", "-o", "json")).stdout)
    assert [model["name"] for model in listed] == ["churn", "fraud", "fraud-v2"]
    table = ok(invoke(live_server, "models", "list")).stdout.splitlines()
    assert table[0].split() == ["NAME", "VERSIONS", "LATEST", "LIVE", "TRAFFIC", "CREATED"]
    assert len(table) == 4


def test_archive_then_list_all(live_server) -> None:  # type: ignore[no-untyped-def]
    for version in ("1", "2"):
        ok(invoke(live_server, "models", "register", "fraud", "--version", version, "--artifact", "s3://b/x"))
    archived = json.loads(ok(invoke(live_server, "models", "archive", "fraud", "1", "-o", "json")).stdout)
    assert archived["state"] == "MODEL_VERSION_STATE_ARCHIVED"
    assert ok(invoke(live_server, "models", "show", "fraud", "-q")).stdout == "2\n"
    assert ok(invoke(live_server, "models", "show", "fraud", "--all", "-q")).stdout == "2\n1\n"


# --- errors -----------------------------------------------------------------------------------------------


def test_a_validation_error_names_the_fields_on_one_line(live_server) -> None:  # type: ignore[no-untyped-def]
    result = invoke(live_server, "models", "register", "Not Valid", "--version", "1", "--artifact", "ftp://h/x")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("modelctl: invalid request: name: ")
    assert "artifact_uri: " in result.stderr
    assert result.stderr.count("\n") == 1


def test_failures_from_the_server_are_one_line_each(live_server) -> None:  # type: ignore[no-untyped-def]
    missing = invoke(live_server, "models", "show", "ghost")
    assert (missing.exit_code, missing.stderr) == (1, "modelctl: model 'ghost' is not registered\n")

    viewer = invoke(live_server, "models", "register", "m", "--version", "1", "--artifact", "s3://b/m",
                    token=live_server.make_token("viewer"))
    assert viewer.exit_code == 1
    assert viewer.stderr.startswith("modelctl: permission denied: ")

    anonymous = CliRunner(env={"MODELCTL_TOKEN": None}).invoke(cli, ["--server", live_server.address, "status"],
                                                               catch_exceptions=False)
    assert anonymous.exit_code == 1
    assert anonymous.stderr.startswith("modelctl: not authenticated: ")
    assert "MODELCTL_TOKEN" in anonymous.stderr


# --- system, audit, tokens --------------------------------------------------------------------------------


def test_status_and_restart(live_server) -> None:  # type: ignore[no-untyped-def]
    status = ok(invoke(live_server, "status")).stdout
    assert "Database:" in status and "sqlite, reachable" in status
    version = ok(invoke(live_server, "status", "-q")).stdout.strip()
    assert version and "\n" not in version
    assert json.loads(ok(invoke(live_server, "-o", "json", "status")).stdout)["database"]["reachable"] is True
    restarted = ok(invoke(live_server, "restart", "--reason", "new thresholds")).stdout
    assert restarted.startswith("Restarted background components.")


def test_audit_list_filters_and_limits(live_server) -> None:  # type: ignore[no-untyped-def]
    for version in ("1", "2", "3"):
        ok(invoke(live_server, "models", "register", "fraud", "--version", version, "--artifact", "s3://b/x"))
    events = json.loads(ok(invoke(live_server, "audit", "list", "--rpc", "RegisterModel", "--limit", "2",
                                  "-o", "json")).stdout)
    assert [event["target"] for event in events] == ["fraud:3", "fraud:2"]
    ids = ok(invoke(live_server, "-q", "audit", "list", "--rpc", "RegisterModel")).stdout.split()
    assert len(ids) == 3 and all(i.isdigit() for i in ids)


def test_tokens_create_json_then_revoke(live_server) -> None:  # type: ignore[no-untyped-def]
    issued = json.loads(ok(invoke(live_server, "tokens", "create", "--role", "viewer", "--name", "grafana",
                                  "--ttl", "30d", "-o", "json")).stdout)
    assert {"id", "token", "role", "name", "expires_at"} == set(issued)
    assert (issued["role"], issued["name"]) == ("ROLE_VIEWER", "grafana")
    ok(invoke(live_server, "status", token=issued["token"]))

    assert ok(invoke(live_server, "tokens", "revoke", issued["id"], "-q")).stdout == f"{issued['id']}\n"
    refused = invoke(live_server, "status", token=issued["token"])
    assert refused.exit_code == 1 and refused.stderr.startswith("modelctl: not authenticated")


def test_tokens_create_quiet_prints_only_the_secret(live_server) -> None:  # type: ignore[no-untyped-def]
    secret = ok(invoke(live_server, "-q", "tokens", "create", "--role", "operator")).stdout.strip()
    ok(invoke(live_server, "models", "register", "m", "--version", "1", "--artifact", "s3://b/m", token=secret))
    table = ok(invoke(live_server, "tokens", "create", "--role", "admin")).stdout
    assert "Store the token now" in table and "cli-admin" in table


# --- completion -------------------------------------------------------------------------------------------


def _complete(args: list[str], incomplete: str) -> list[str]:
    completion = ShellComplete(cli, {}, "modelctl", "_MODELCTL_COMPLETE")
    return [item.value for item in completion.get_completions(args, incomplete)]


def test_model_names_complete_from_the_server(live_server) -> None:  # type: ignore[no-untyped-def]
    for name in ("fraud", "fraud-v2", "churn"):
        ok(invoke(live_server, "models", "register", name, "--version", "1", "--artifact", "s3://b/x"))
    connection = ["--server", live_server.address, "--token", live_server.admin_token]
    assert _complete([*connection, "models", "show"], "fr") == ["fraud", "fraud-v2"]
    assert _complete([*connection, "models", "archive"], "") == ["churn", "fraud", "fraud-v2"]


def test_completion_is_silently_empty_when_the_server_is_away() -> None:
    assert _complete(["--server", f"127.0.0.1:{_free_port()}", "models", "show"], "fr") == []


# --- TLS --------------------------------------------------------------------------------------------------


def test_ca_cert_option_talks_tls(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key, ca_file = tmp_path / "server.pem", tmp_path / "server.key", tmp_path / "ca.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    server = server_factory(MODELCTL_SERVER_TLS_CERT=str(cert), MODELCTL_SERVER_TLS_KEY=str(key))
    status = json.loads(ok(invoke(server, "--ca-cert", str(ca_file), "-o", "json", "status")).stdout)
    assert status["tls_enabled"] is True


# --- the installed console script -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _console_script() -> str:
    beside_python = Path(sys.executable).parent / "modelctl"
    found = str(beside_python) if beside_python.exists() else shutil.which("modelctl")
    assert found, "the modelctl console script is not installed (pip install -e .)"
    return found


def run_modelctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith("MODELCTL_")}
    return subprocess.run([_console_script(), *args], env={**base, **(env or {})}, capture_output=True,
                          text=True, timeout=60, check=False)


def test_console_script_end_to_end(live_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = {"MODELCTL_ADDR": live_server.address, "MODELCTL_TOKEN": live_server.admin_token}
    path, digest = _artifact(tmp_path, 1_500_000)

    registered = run_modelctl("models", "register", "fraud", "--version", "1.0.0", "--artifact", str(path),
                              "-q", env=env)
    assert (registered.returncode, registered.stdout, registered.stderr) == (0, "1.0.0\n", "")

    shown = run_modelctl("-o", "json", "models", "show", "fraud", env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["versions"][0]["sha256"] == digest

    assert run_modelctl("models", "list", "-q", env=env).stdout == "fraud\n"

    issued = run_modelctl("tokens", "create", "--role", "viewer", "-o", "json", env=env)
    assert issued.returncode == 0, issued.stderr
    assert {"id", "token", "role"} <= set(json.loads(issued.stdout))

    invalid = run_modelctl("models", "register", "Bad Name", "--version", "1", "--artifact", "s3://b/x", env=env)
    assert invalid.returncode == 1
    assert invalid.stderr.startswith("modelctl: invalid request: name: ")
    assert invalid.stderr.count("\n") == 1 and "Traceback" not in invalid.stderr


def test_console_script_connection_refused_and_usage_errors() -> None:
    address = f"127.0.0.1:{_free_port()}"
    refused = run_modelctl("--server", address, "models", "list")
    assert refused.returncode == 1
    assert refused.stderr == (f"modelctl: cannot reach the modelctl server at {address} "
                              "(is it running? set --server or MODELCTL_ADDR)\n")
    assert refused.stdout == ""

    usage = run_modelctl("--server", address, "models", "register", "m", "--version", "1", "--artifact",
                         "s3://b/x", "--tag", "no-equals-sign")
    assert usage.returncode == 2
    assert "KEY=VALUE" in usage.stderr and "Traceback" not in usage.stderr

    missing = run_modelctl("--server", address, "models", "register", "m", "--version", "1",
                           "--artifact", "/no/such/model.pkl")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_tokens_list_shows_active_tokens_and_all_with_all(live_server) -> None:  # type: ignore[no-untyped-def]
    import json as _json

    from click.testing import CliRunner

    from modelctl.cli.main import cli as _cli

    env = {"MODELCTL_ADDR": live_server.address, "MODELCTL_TOKEN": live_server.admin_token}
    run = lambda *args: CliRunner(env=env).invoke(_cli, list(args), catch_exceptions=False)  # noqa: E731
    created = _json.loads(run("-o", "json", "tokens", "create", "--role", "viewer", "--name", "ci").stdout)
    listed = run("tokens", "list")
    assert listed.exit_code == 0 and "ci" in listed.stdout and "bootstrap-admin" in listed.stdout
    assert created["id"] in run("-q", "tokens", "list").stdout.split()
    assert run("tokens", "revoke", created["id"]).exit_code == 0
    assert created["id"] not in run("-q", "tokens", "list").stdout.split()
    everything = _json.loads(run("-o", "json", "tokens", "list", "--all").stdout)
    revoked = [t for t in everything if t["id"] == created["id"]]
    assert revoked and revoked[0]["revoked"] is True and "token" not in revoked[0]
