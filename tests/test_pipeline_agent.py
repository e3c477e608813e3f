"""The acceptance of "optimise -> safely live": a real pipeline process running `modelctl.PipelineAgent`,
an operator's `modelctl pipelines optimize --then-deploy canary --watch`, the canary judged on the metrics
this test reports; and a pipeline process killed and restarted receives each command once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner, Result

import modelctl
from modelctl.cli.main import cli

from rollout_support import MetricsFeeder, eventually, make_live, register

pytestmark = pytest.mark.slow

WORKER = Path(__file__).resolve().parent / "pipeline_worker.py"
CANARY = ("--steps", "50,100", "--interval", "200ms", "--min-samples", "5")


class Worker:
    """`pipeline_worker.py` as a process; `log` counts the commands its handlers ran."""

    def __init__(self, server, name: str, log: Path) -> None:  # type: ignore[no-untyped-def]
        env = {**os.environ, "MODELCTL_ADDR": server.address, "MODELCTL_TOKEN": server.admin_token,
               "PYTHONUNBUFFERED": "1"}
        self.log = log
        self.proc = subprocess.Popen([sys.executable, str(WORKER), name, str(log)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def ran(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def server(server_factory):  # type: ignore[no-untyped-def]
    return server_factory(
        MODELCTL_DEPLOYMENT_RECONCILE_INTERVAL="50ms", MODELCTL_PIPELINES_CHECK_INTERVAL="50ms",
        MODELCTL_DEPLOYMENT_PROGRESS_DEADLINE="30s")


@pytest.fixture
def client(server) -> Iterator[modelctl.Client]:  # type: ignore[no-untyped-def]
    with modelctl.Client(server.address, token=server.admin_token) as c:
        yield c


@pytest.fixture
def workers(server, tmp_path: Path) -> Iterator[list[Worker]]:  # type: ignore[no-untyped-def]
    started: list[Worker] = []
    yield started
    for w in started:
        if w.proc.poll() is None:
            w.kill()


def start_worker(server, workers: list[Worker], client: modelctl.Client, log: Path) -> Worker:  # type: ignore[no-untyped-def]
    worker = Worker(server, "trainer", log)
    workers.append(worker)
    eventually(lambda: any(p.name == "trainer" for p in client.iter_pipelines()), timeout=30,
               what="the pipeline process to register")
    return worker


def invoke(server, *args: str) -> Result:  # type: ignore[no-untyped-def]
    env = {"MODELCTL_ADDR": server.address, "MODELCTL_TOKEN": server.admin_token}
    return CliRunner(env=env).invoke(cli, list(args), catch_exceptions=False)


def _commands(server) -> list[dict]:  # type: ignore[no-untyped-def]
    result = invoke(server, "pipelines", "commands", "trainer", "-o", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_optimize_then_canary_goes_live_then_bad_metrics_roll_back(server, client, workers,  # type: ignore[no-untyped-def]
                                                                   tmp_path: Path) -> None:
    register(client, "fraud", "1")
    make_live(client, "fraud", "1")
    start_worker(server, workers, client, tmp_path / "ran.log")

    with MetricsFeeder(client, "fraud", "2"):  # healthy traffic on 2 once it exists
        result = invoke(server, "pipelines", "optimize", "trainer", "--model", "fraud", "--param", "version=2",
                        "--then-deploy", "canary", *CANARY, "--watch")
    assert result.exit_code == 0, result.output
    assert "SUCCEEDED" in result.stdout and "step 2/2" in result.stdout
    [command] = [c for c in _commands(server) if c["kind"] == "PIPELINE_COMMAND_KIND_OPTIMIZE"]
    assert command["state"] == "PIPELINE_COMMAND_STATE_SUCCEEDED" and command["result_version"] == "2"
    deployment = client.get_deployment(command["deployment_id"])
    assert (deployment.version, deployment.state) == ("2", modelctl.types.DeploymentState.Value(
        "DEPLOYMENT_STATE_SUCCEEDED"))
    assert f"deployment {deployment.id} SUCCEEDED" in command["result"]
    assert client.get_model("fraud").live_version == "2"

    with MetricsFeeder(client, "fraud", "3", errors=5):  # half the requests fail on 3
        result = invoke(server, "pipelines", "optimize", "trainer", "--model", "fraud", "--param", "version=3",
                        "--then-deploy", "canary", *CANARY, "--watch")
    assert result.exit_code == 1, result.output
    assert "ROLLED_BACK" in result.stdout
    latest = _commands(server)[0]
    assert latest["state"] == "PIPELINE_COMMAND_STATE_FAILED" and latest["error"].startswith("rolled back: ")
    assert "ROLLED_BACK" in latest["result"] and latest["deployment_id"]
    rolled = client.get_deployment(latest["deployment_id"])
    assert rolled.state == modelctl.types.DeploymentState.Value("DEPLOYMENT_STATE_ROLLED_BACK")
    assert client.get_model("fraud").live_version == "2"
    table = invoke(server, "pipelines", "commands", "trainer").stdout
    assert latest["deployment_id"] in table and command["deployment_id"] in table
    assert [line.split()[0] for line in (tmp_path / "ran.log").read_text().splitlines()] == ["optimize", "optimize"]


def test_a_killed_pipeline_gets_each_command_once_after_restart(server, client, workers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "ran.log"
    first = start_worker(server, workers, client, log)
    retrain = client.send_pipeline_command("trainer", "retrain", "fraud")
    eventually(lambda: f"retrain {retrain.id}" in first.ran(), timeout=30, what="the retrain to start")
    first.kill()  # while it runs: acknowledged, never finished
    paused = client.send_pipeline_command("trainer", "pause")  # pending while no pipeline listens
    assert client.get_pipeline_command(paused.id).state == modelctl.types.PipelineCommandState.Value(
        "PIPELINE_COMMAND_STATE_PENDING")

    start_worker(server, workers, client, log)
    done = eventually(lambda: (c := client.get_pipeline_command(paused.id)).state == modelctl.types.
                      PipelineCommandState.Value("PIPELINE_COMMAND_STATE_SUCCEEDED") and c, timeout=30,
                      what="the pending command to be handled after the restart")
    assert done.acknowledged_at.seconds > 0
    # The stream sends oldest first: had the acknowledged retrain been redelivered, it would have run before.
    assert first.ran() == [f"retrain {retrain.id}", f"pause {paused.id}"]
    assert client.get_pipeline_command(retrain.id).state == modelctl.types.PipelineCommandState.Value(
        "PIPELINE_COMMAND_STATE_ACKNOWLEDGED")
    cancelled = invoke(server, "pipelines", "cancel", retrain.id, "-o", "json")
    assert json.loads(cancelled.stdout)["state"] == "PIPELINE_COMMAND_STATE_CANCELLED"


def test_cli_bad_inputs_are_one_clear_line(server, client, workers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client.register_pipeline("trainer", ["fraud"])
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    result = CliRunner(env={"MODELCTL_ADDR": server.address, "MODELCTL_TOKEN": server.admin_token}).invoke(
        cli, ["pipelines", "reload-config", "trainer", "--file", str(bad)])
    assert result.exit_code == 1 and "not valid JSON" in result.stderr and "Traceback" not in result.output
    result = CliRunner(env={"MODELCTL_ADDR": server.address, "MODELCTL_TOKEN": server.admin_token}).invoke(
        cli, ["pipelines", "pause", "ghost"])
    assert result.exit_code == 1 and "ghost" in result.stderr
    good = tmp_path / "good.json"
    good.write_text('{"lr": 0.1}')
    sent = invoke(server, "pipelines", "reload-config", "trainer", "--file", str(good), "-q")
    assert sent.exit_code == 0 and len(sent.stdout.strip()) == 16
    listed = json.loads(invoke(server, "pipelines", "list", "-o", "json").stdout)
    assert {"name", "models", "version", "state", "job", "progress", "last_seen", "stale"} <= set(listed[0])
