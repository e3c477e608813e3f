"""RestartSystem under concurrency: serialised, failures reported, /metrics never down.

An outside fuzz run sent RestartSystem calls at once: one call's stop met the
other's start, the metrics exporter bound its port while the old socket was still
open ("Address already in use", 70 times), the system sampler's loop-lag callback
raised InvalidStateError, and every call answered OK with components down.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest

from modelctl.v1 import system_pb2
from modelctl_server.metrics.exporter import _loop_lag

from conftest import make_settings
from grpc_helpers import stub

RUNNING = system_pb2.COMPONENT_STATE_RUNNING


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()


def test_concurrent_restarts_are_serialised_and_leave_everything_running(
        tmp_path: Path, server_factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    # A fixed metrics port, as in production: port 0 would hide a rebind race behind a fresh port.
    port = _free_port()
    srv = server_factory(make_settings(tmp_path / "data", MODELCTL_SERVER_METRICS_ADDRESS=f"127.0.0.1:{port}"))
    api = stub(srv.address, srv.admin_token)
    caplog.set_level(logging.INFO)
    calls = [api.RestartSystem.future(system_pb2.RestartSystemRequest(reason=f"r{n}")) for n in range(12)]
    answers = [c.result(timeout=60) for c in calls]
    # (An answer's status may show the next queued restart under way; the final status must be all RUNNING.)
    assert all(not a.failed_components for a in answers)
    status = api.GetSystemStatus(system_pb2.GetSystemStatusRequest())
    assert {c.name: c.state for c in status.components} == {c.name: RUNNING for c in status.components}
    assert "modelctl_" in _scrape(port)
    problems = [r.getMessage() for r in caplog.records
                if "failed to start" in r.getMessage() or "InvalidStateError" in r.getMessage()
                or (r.exc_info and r.exc_info[0] is not None)]
    assert problems == []
    # Serialised: each restart's "restarted background components" line, one after another, twelve of them.
    assert sum("restarted background components" in r.getMessage() for r in caplog.records) == 12


def test_the_metrics_endpoint_answers_throughout_a_burst_of_restarts(tmp_path: Path, server_factory: Any) -> None:
    port = _free_port()
    srv = server_factory(make_settings(tmp_path / "data", MODELCTL_SERVER_METRICS_ADDRESS=f"127.0.0.1:{port}"))
    api = stub(srv.address, srv.admin_token)
    calls = [api.RestartSystem.future(system_pb2.RestartSystemRequest()) for _ in range(6)]
    scrapes = 0
    while not all(c.done() for c in calls):
        assert "modelctl_" in _scrape(port)  # a refused connection raises here
        scrapes += 1
    assert scrapes > 0 and all(c.code() == grpc.StatusCode.OK for c in calls)


class _Flaky:
    """A component whose second start fails, as one whose port was taken would."""

    name = "flaky"

    def __init__(self) -> None:
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        if self.starts > 1:
            raise OSError(98, "Address already in use")

    async def stop(self) -> None:
        pass


def test_a_component_that_does_not_start_again_is_reported_by_the_call_and_the_status(
        live_server: Any) -> None:
    flaky = _Flaky()
    live_server.app.supervisor.add(flaky)
    live_server.call(flaky.start())
    api = stub(live_server.address, live_server.admin_token)
    answer = api.RestartSystem(system_pb2.RestartSystemRequest())
    assert [(c.name, c.state) for c in answer.failed_components] == [("flaky", system_pb2.COMPONENT_STATE_FAILED)]
    assert "Address already in use" in answer.failed_components[0].detail
    shown = {c.name: c for c in api.GetSystemStatus(system_pb2.GetSystemStatusRequest()).components}
    assert shown["flaky"].state == system_pb2.COMPONENT_STATE_FAILED
    assert shown["flaky"].detail.startswith("failed to start: ")
    assert shown["metrics-exporter"].state == RUNNING


def test_loop_lag_probe_cancelled_before_its_callback_raises_nothing() -> None:
    """The sampler stopped mid-probe: the scheduled callback must not set a cancelled future."""
    errors: list[dict[str, Any]] = []

    async def scenario() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
        probe = asyncio.ensure_future(_loop_lag())
        await asyncio.sleep(0)  # the probe has scheduled its callback and awaits it
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        await asyncio.sleep(0.01)  # the callback runs now

    asyncio.run(scenario())
    assert errors == []
