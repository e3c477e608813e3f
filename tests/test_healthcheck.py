"""`python -m modelctl_server.healthcheck`, the container healthcheck, against a real controller."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from modelctl_server.healthcheck import probe_address


def _probe(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MODELCTL_")}
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "modelctl_server.healthcheck", *args], env=environ,
                          capture_output=True, text=True, timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_wildcard_addresses_are_probed_on_loopback() -> None:
    assert probe_address("0.0.0.0:50051") == "127.0.0.1:50051"
    assert probe_address("[::]:7000") == "127.0.0.1:7000"
    assert probe_address("10.1.2.3:50051") == "10.1.2.3:50051"


def test_serving_controller_is_healthy(live_server) -> None:  # type: ignore[no-untyped-def]
    done = _probe("--address", live_server.address)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{live_server.address}: SERVING"


def test_address_comes_from_the_server_settings(live_server) -> None:  # type: ignore[no-untyped-def]
    # As in the container: the server listens on 0.0.0.0, the probe reads the same variable.
    done = _probe(MODELCTL_SERVER_GRPC_ADDRESS=f"0.0.0.0:{live_server.port}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"127.0.0.1:{live_server.port}: SERVING"


def test_named_service_is_checked(live_server) -> None:  # type: ignore[no-untyped-def]
    assert _probe("--address", live_server.address, "--service", "modelctl.v1.ModelController").returncode == 0
    unknown = _probe("--address", live_server.address, "--service", "no.such.Service")
    assert unknown.returncode == 1 and "NOT_FOUND" in unknown.stderr


def test_draining_controller_is_unhealthy(live_server) -> None:  # type: ignore[no-untyped-def]
    live_server.call(live_server.app.health.enter_graceful_shutdown())
    done = _probe("--address", live_server.address)
    assert done.returncode == 1
    assert done.stdout.strip() == f"{live_server.address}: NOT_SERVING"


def test_nothing_listening_is_unhealthy() -> None:
    address = f"127.0.0.1:{_free_port()}"
    done = _probe("--address", address, "--timeout", "1")
    assert done.returncode == 1
    assert done.stderr.startswith(f"healthcheck: {address}: UNAVAILABLE") or "DEADLINE_EXCEEDED" in done.stderr


def test_config_error_exits_2(tmp_path: Path) -> None:
    done = _probe("--config", str(tmp_path / "missing.toml"))
    assert done.returncode == 2 and "does not exist" in done.stderr
