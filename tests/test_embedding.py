"""The embedding API: settings built in code, the controller inside a plain asyncio program next to
other tasks (here an `AsyncPipelineAgent` and a ticker), bound addresses read back."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

import pytest

import modelctl
import modelctl_server
from modelctl_server import ConfigError, ControllerApp, Settings


def _settings(tmp_path: Path) -> Settings:
    return Settings.build(server={"grpc_address": "127.0.0.1:0", "metrics_address": "127.0.0.1:0",
                                  "data_dir": str(tmp_path), "shutdown_grace": "1s"},
                          auth={"enabled": False}, pipelines={"check_interval": "50ms", "stale_after": "30s"})


def test_settings_from_code_are_validated_like_the_file() -> None:
    built = Settings.build(deployment={"step_interval": "2s", "steps": [10, 100]})
    assert (built.deployment.step_interval, built.deployment.steps) == (2.0, (10, 100))
    for sections, key in [({"server": {"grpc_address": "nowhere"}}, "server.grpc_address"),
                          ({"pipelines": {"stale_after": "soon"}}, "pipelines.stale_after"),
                          ({"deployment": {"nope": 1}}, "deployment.nope"),
                          ({"nosection": {}}, "nosection")]:
        with pytest.raises(ConfigError) as err:
            Settings.build(**sections)
        assert str(err.value).startswith(key)
    # The environment is layered under code in load_settings, and Settings.build ignores it
    env = {"MODELCTL_PIPELINES_STALE_AFTER": "5m", "MODELCTL_DEPLOYMENT_MIN_SAMPLES": "7"}
    layered = modelctl_server.load_settings(None, env, overrides={"pipelines": {"stale_after": "90s"}})
    assert (layered.pipelines.stale_after, layered.deployment.min_samples) == (90.0, 7)
    assert set(modelctl_server.__all__) >= {"ControllerApp", "Settings", "ConfigError", "load_settings"}


async def test_the_controller_runs_inside_an_asyncio_program_next_to_other_tasks(tmp_path: Path) -> None:
    ticks = 0

    async def ticker() -> None:  # the host program's own work, on the same loop
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    async with ControllerApp(_settings(tmp_path)) as app:
        host, port = app.grpc_address.rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        with urllib.request.urlopen(f"http://{app.metrics_address}/metrics", timeout=5) as page:
            assert b"modelctl_pipelines" in page.read()
        handled: list[str] = []
        async with modelctl.AsyncClient(app.grpc_address) as client:
            agent = modelctl.AsyncPipelineAgent("embedded", client=client, models=["fraud"])

            @agent.handler("reload-config")
            async def reload(ctx: modelctl.CommandContext) -> str:
                handled.append(ctx.config["mode"])
                await ctx.progress(100, "reloaded")
                return "applied"

            agent.start()
            while not [p async for p in client.iter_pipelines()]:
                await asyncio.sleep(0.01)
            sent = await client.send_pipeline_command("embedded", "reload-config", config={"mode": "fast"})
            while not modelctl._pipelines.is_final((done := await client.get_pipeline_command(sent.id)).state):
                await asyncio.sleep(0.01)
            await agent.stop()
        assert (modelctl._pipelines.command_state_name(done.state), done.result, handled) == (
            "SUCCEEDED", "applied", ["fast"])
    assert app.server is not None and ticks > 0 and not ticking.done()
    ticking.cancel()
    # A second app may start once the first stopped: nothing was left bound or running.
    second = ControllerApp(_settings(tmp_path))
    assert await second.start() > 0
    await second.stop()
