"""`modelctl experiments ...` and the SDK's experiment calls (sync and asyncio) against a real controller."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Iterator

import pytest
from click.testing import CliRunner, Result

import modelctl
from modelctl.cli.main import cli
from modelctl.types import ExperimentMetric, ExperimentState

from rollout_support import fast_server, make_live, register

CONTRACT = {"id", "model", "control_version", "treatment_version", "treatment_percent", "metric", "state", "result"}
RESULT_CONTRACT = {"winner", "significant", "p_value", "lift", "lift_ci_low", "lift_ci_high", "samples_needed",
                   "srm_p_value"}


@pytest.fixture
def shop(server_factory: Any) -> Iterator[tuple[Any, modelctl.Client]]:
    server = fast_server(server_factory)
    with modelctl.Client(server.address, token=server.admin_token) as client:
        register(client, "shop", "1", "2", "3")
        make_live(client, "shop", "1")
        yield server, client


def invoke(server: Any, *args: str) -> Result:
    env = {"MODELCTL_ADDR": server.address, "MODELCTL_TOKEN": server.admin_token}
    return CliRunner(env=env).invoke(cli, list(args), catch_exceptions=False)


def ok(result: Result, code: int = 0) -> Result:
    assert result.exit_code == code, result.output
    return result


def convert(client: modelctl.Client, version: str, successes: int, trials: int) -> None:
    client.report_metrics(model="shop", version=version, requests=trials,
                          outcome={"successes": successes, "trials": trials})


def test_the_cli_runs_an_experiment_from_start_to_promotion(shop: tuple[Any, modelctl.Client]) -> None:
    server, client = shop
    eid = ok(invoke(server, "experiments", "start", "shop", "--control", "1", "--treatment", "2",
                    "--treatment-percent", "20", "--min-effect", "0.1", "-q")).stdout.strip()
    assert client.get_traffic_split("shop").weights == {"1": 80.0, "2": 20.0}
    convert(client, "1", 800, 8000)
    convert(client, "2", 300, 2000)

    shown = ok(invoke(server, "experiments", "show", eid)).stdout
    for line in ("Treatment:   2 (20% of traffic)",
                 "Metric:      conversion (two-proportion z-test), min effect 10.0%, alpha 0.05, power 0.8",
                 "State:       RUNNING",
                 "control    1        8,000    10.00%",
                 "treatment  2        2,000    15.00%",
                 "Significant:     yes", "Winner:          2", "Sample ratio:    ok (p = 1)",
                 "Samples needed:  29,801 more per arm to detect a 10.0% lift with power 0.8",
                 "Summary:         treatment 2 wins: conversion 15.00% (2) vs 10.00% (1), lift +50.0%"):
        assert line in shown, (line, shown)

    document = json.loads(ok(invoke(server, "experiments", "show", eid, "-o", "json")).stdout)
    assert CONTRACT <= set(document) and RESULT_CONTRACT <= set(document["result"])
    assert (document["state"], document["metric"], document["treatment_percent"]) == (
        "EXPERIMENT_STATE_RUNNING", "EXPERIMENT_METRIC_CONVERSION", 20.0)
    assert document["result"]["winner"] == "2" and document["result"]["significant"] is True
    assert document["result"]["control"] == {"version": "1", "samples": "8000", "value": 0.1,
                                             "std_dev": pytest.approx(0.3)}

    listed = ok(invoke(server, "experiments", "list", "--model", "shop")).stdout.splitlines()
    assert listed[0].split() == ["ID", "MODEL", "CONTROL", "TREATMENT", "SPLIT", "METRIC", "STATE", "P-VALUE",
                                 "WINNER", "CREATED"]
    assert listed[1].split()[:7] == [eid, "shop", "1", "2", "80/20", "conversion", "RUNNING"]
    assert ok(invoke(server, "experiments", "list", "--state", "stopped", "-q")).stdout == ""

    stopped = ok(invoke(server, "experiments", "stop", eid, "--promote-winner", "--reason", "clear win")).stdout
    experiment = client.get_experiment(eid)
    assert experiment.state == ExperimentState.Value("EXPERIMENT_STATE_PROMOTED") and experiment.deployment_id
    assert stopped.startswith(f"Stopped experiment {eid}. Canary deployment {experiment.deployment_id} of 2 "
                              f"started (modelctl deployments watch {experiment.deployment_id}).")
    assert "Reason:      treatment 2 won; promoted by bootstrap-admin with a canary deployment: clear win" in stopped
    deployment = client.get_deployment(experiment.deployment_id)
    assert (deployment.version, deployment.previous_version) == ("2", "1")


def test_cli_errors_are_one_line_and_usage_errors_exit_2(shop: tuple[Any, modelctl.Client]) -> None:
    server, _ = shop
    refused = ok(invoke(server, "experiments", "start", "shop", "--control", "2", "--treatment", "3"), 1)
    assert refused.output.strip() == "modelctl: the control must be shop's live version 1, not 2"
    unknown = ok(invoke(server, "experiments", "show", "abc123"), 1)
    assert unknown.output.strip() == "modelctl: experiment 'abc123' not found"
    ok(invoke(server, "experiments", "start", "shop", "--control", "1", "--treatment", "2",
              "--treatment-percent", "100"), 2)
    ok(invoke(server, "experiments", "start", "shop", "--control", "1", "--treatment", "2", "--metric", "clicks"), 2)
    ok(invoke(server, "experiments", "start", "shop", "--control", "1", "--treatment", "2", "--min-effect", "0"), 2)


def test_the_sdk_sync_and_async_calls(shop: tuple[Any, modelctl.Client]) -> None:
    server, client = shop
    started = client.start_experiment("shop", "1", "2", metric="error-rate", min_effect=0.5)
    assert started.metric == ExperimentMetric.Value("EXPERIMENT_METRIC_ERROR_RATE") and started.min_effect == 0.5
    with pytest.raises(ValueError, match="unknown metric 'clicks'"):
        client.start_experiment("shop", "1", "2", metric="clicks")
    assert [e.id for e in client.iter_experiments("shop", ["running"], page_size=1)] == [started.id]
    assert client.list_experiments(states=["stopped"]).experiments == []

    async def use_async() -> tuple[str, list[str], int]:
        async with modelctl.AsyncClient(server.address, token=server.admin_token) as aio:
            got = await aio.get_experiment(started.id)
            ids = [e.id async for e in aio.iter_experiments(model="shop")]
            stopped = await aio.stop_experiment(started.id, reason="sdk")
            return got.id, ids, stopped.state

    got, ids, state = asyncio.run(use_async())
    assert (got, ids, state) == (started.id, [started.id], ExperimentState.Value("EXPERIMENT_STATE_STOPPED"))
    with pytest.raises(modelctl.errors.ModelctlError, match="is STOPPED and cannot become STOPPED"):
        client.stop_experiment(started.id)
    assert client.get_traffic_split("shop").weights == {"1": 100.0}
