"""The real `modelctl-server` script as a process: first start, config errors, SIGTERM, restart."""

from __future__ import annotations

import hashlib
import os
import queue
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelctl.v1 import controller_pb2_grpc, registry_pb2, system_pb2

pytestmark = pytest.mark.slow

SERVER_BIN = Path(sys.executable).parent / "modelctl-server"
READY = re.compile(r"^modelctl-server listening on (?P<address>\S+) \(metrics on port (?P<metrics>\d+)\)$")
START_TIMEOUT = 30.0


def _environ(data_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    """The test's environment without any MODELCTL_* of the caller's, plus port 0 and `data_dir`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELCTL_")}
    env.update({
        "MODELCTL_SERVER_GRPC_ADDRESS": "127.0.0.1:0",
        "MODELCTL_SERVER_METRICS_ADDRESS": "127.0.0.1:0",
        "MODELCTL_SERVER_DATA_DIR": str(data_dir),
        "MODELCTL_SERVER_SHUTDOWN_GRACE": "10s",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


class ServerProcess:
    """One `modelctl-server` process; stdout lines are collected by a thread, stderr goes to a file."""

    def __init__(self, data_dir: Path, log_path: Path, env: dict[str, str], args: list[str]) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self._stderr = open(log_path, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen([str(SERVER_BIN), *args], stdout=subprocess.PIPE, stderr=self._stderr,
                                     env=_environ(data_dir, env), text=True)
        self.stdout_lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.address = ""
        self.metrics_port = 0

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"modelctl-server printed no ready line in {timeout}s; stderr:\n{self.stderr()}")
            if line is None:
                pytest.fail(f"modelctl-server exited ({self.proc.wait()}) before it was ready; "
                            f"stderr:\n{self.stderr()}")
            m = READY.match(line.strip())
            if m:
                self.address = m["address"]
                self.metrics_port = int(m["metrics"])
                return self

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stderr(self) -> str:
        self._stderr.flush()
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._stderr.close()


StartProcess = Callable[..., ServerProcess]


@pytest.fixture
def start_process(tmp_path: Path) -> Iterator[StartProcess]:
    """Start `modelctl-server` processes (killed at teardown if still running)."""
    started: list[ServerProcess] = []

    def start(data_dir: Path | None = None, *, args: list[str] | None = None, ready: bool = True,
              **env: str) -> ServerProcess:
        proc = ServerProcess(data_dir or tmp_path / "data", tmp_path / f"stderr-{len(started)}.log", env,
                             args or [])
        started.append(proc)
        return proc.wait_ready() if ready else proc

    yield start
    for proc in started:
        proc.close()


def run_to_exit(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SERVER_BIN), *args], env=_environ(tmp_path / "data", env), capture_output=True,
                          text=True, timeout=START_TIMEOUT)


def controller(channel: grpc.Channel) -> controller_pb2_grpc.ModelControllerStub:
    return controller_pb2_grpc.ModelControllerStub(channel)


def bearer(token: str) -> list[tuple[str, str]]:
    """Call metadata carrying `token`; none at all for an empty token."""
    return [("authorization", f"Bearer {token}")] if token else []


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def upload_and_register(stub: controller_pb2_grpc.ModelControllerStub, token: str, name: str,
                        data: bytes) -> registry_pb2.ModelVersion:
    sha = hashlib.sha256(data).hexdigest()
    uploaded = stub.UploadArtifact(iter([
        registry_pb2.UploadArtifactRequest(header=registry_pb2.ArtifactHeader(
            filename="model.bin", sha256=sha, size_bytes=len(data))),
        registry_pb2.UploadArtifactRequest(chunk=data),
    ]), metadata=bearer(token), timeout=10)
    response = stub.RegisterModel(registry_pb2.RegisterModelRequest(
        name=name, version="1.0.0", artifact_uri=uploaded.artifact_uri, sha256=sha, framework="onnx"),
        metadata=bearer(token), timeout=10)
    return response.model_version


# --- first start and the admin token ------------------------------------------------------------------


def test_ready_line_prints_the_bound_ports(start_process: StartProcess) -> None:
    server = start_process()
    host, _, port = server.address.rpartition(":")
    assert host == "127.0.0.1" and int(port) > 0 and server.metrics_port > 0
    with socket.create_connection(("127.0.0.1", server.metrics_port), timeout=5):
        pass
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert server.terminate() == 0


def test_first_start_writes_a_private_admin_token_and_logs_only_its_path(start_process: StartProcess) -> None:
    server = start_process()
    token_file = server.data_dir / "admin.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 32
    with grpc.insecure_channel(server.address) as channel:
        status = controller(channel).GetSystemStatus(system_pb2.GetSystemStatusRequest(),
                                                     metadata=bearer(token), timeout=10)
    assert status.auth_enabled
    assert server.terminate() == 0
    log = server.stderr()
    assert str(token_file) in log
    assert token not in log and token not in "".join(server.stdout_lines)


def test_admin_token_from_the_environment_is_used_and_no_file_written(start_process: StartProcess) -> None:
    token = "env-admin-" + "x" * 40
    server = start_process(MODELCTL_ADMIN_TOKEN=token)
    assert not (server.data_dir / "admin.token").exists()
    with grpc.insecure_channel(server.address) as channel:
        stub = controller(channel)
        request = system_pb2.GetSystemStatusRequest()
        stub.GetSystemStatus(request, metadata=bearer(token), timeout=10)
        with pytest.raises(grpc.RpcError) as err:
            stub.GetSystemStatus(request, metadata=bearer("x" + token), timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert server.terminate() == 0
    assert token not in server.stderr()


def test_auth_disabled_warns_loudly_and_needs_no_token(start_process: StartProcess) -> None:
    server = start_process(MODELCTL_AUTH_ENABLED="false")
    log = server.stderr().splitlines()
    assert [line for line in log if "WARNING" in line and "AUTH IS DISABLED" in line], log
    assert not (server.data_dir / "admin.token").exists()
    with grpc.insecure_channel(server.address) as channel:
        stub = controller(channel)
        version = upload_and_register(stub, "", "open-model", b"weights")
        assert version.sha256 == hashlib.sha256(b"weights").hexdigest()
        status = stub.GetSystemStatus(system_pb2.GetSystemStatusRequest(), timeout=10)
    assert not status.auth_enabled
    assert server.terminate() == 0


# --- bad configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize("env,key", [
    ({"MODELCTL_DEPLOYMENT_STEP_INTERVAL": "10ms"}, "deployment.step_interval"),
    ({"MODELCTL_SERVER_GRPC_ADDRESS": "nonsense"}, "server.grpc_address"),
    ({"MODELCTL_SERVER_METRICS_ADDRESS": "127.0.0.1:99999"}, "server.metrics_address"),
    ({"MODELCTL_AUTH_ENABLED": "perhaps"}, "auth.enabled"),
    ({"MODELCTL_DATABASE_URL": "mysql://db/modelctl"}, "database.url"),
    ({"MODELCTL_SERVER_TLS_CERT": "/nonexistent/cert.pem", "MODELCTL_SERVER_TLS_KEY": "/nonexistent/key.pem"},
     "server.tls_cert"),
])
def test_bad_environment_value_stops_with_one_line_naming_the_key(tmp_path: Path, env: dict[str, str],
                                                                 key: str) -> None:
    result = run_to_exit(tmp_path, **env)
    _assert_one_line_error(result, key)
    assert not (tmp_path / "data").exists(), "nothing may be created before the config is valid"


@pytest.mark.parametrize("text,key", [
    ("[server]\ngrpc_adress = '127.0.0.1:0'\n", "server.grpc_adress"),
    ("[deployments]\nsteps = [5, 100]\n", "deployments"),
    ("[deployment]\nsteps = [50, 10, 100]\n", "deployment.steps"),
    ("[server\n", "is not valid TOML"),
])
def test_bad_config_file_stops_with_one_line_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    config = tmp_path / "modelctl.toml"
    config.write_text(text)
    _assert_one_line_error(run_to_exit(tmp_path, "--config", str(config)), key)


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    _assert_one_line_error(run_to_exit(tmp_path, "--config", str(missing)), str(missing))


@pytest.mark.parametrize("which", ["grpc", "metrics"])
def test_port_in_use_stops_the_start_naming_the_key(tmp_path: Path, which: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = run_to_exit(tmp_path, **{f"MODELCTL_SERVER_{which.upper()}_ADDRESS": address})
    assert result.returncode != 0
    assert "listening on" not in result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if "could not start" in line]
    assert len(errors) == 1 and f"server.{which}_address" in errors[0] and address in errors[0], result.stderr


def _assert_one_line_error(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode != 0, result
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert needle in lines[0] and "Traceback" not in result.stderr, result.stderr


# --- SIGTERM ----------------------------------------------------------------------------------------------


def test_sigterm_turns_health_not_serving_then_drains_an_upload(start_process: StartProcess) -> None:
    server = start_process()
    token = (server.data_dir / "admin.token").read_text().strip()
    data = os.urandom(300_000)
    sha = hashlib.sha256(data).hexdigest()
    release = threading.Event()

    def upload_requests() -> Iterator[registry_pb2.UploadArtifactRequest]:
        yield registry_pb2.UploadArtifactRequest(header=registry_pb2.ArtifactHeader(
            filename="model.bin", sha256=sha, size_bytes=len(data)))
        yield registry_pb2.UploadArtifactRequest(chunk=data[:100_000])
        if release.wait(30):
            yield registry_pb2.UploadArtifactRequest(chunk=data[100_000:])

    channel = grpc.insecure_channel(server.address)
    try:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=30)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        upload = controller(channel).UploadArtifact.future(upload_requests(), metadata=bearer(token),
                                                           timeout=30)
        # in flight = the server holds a partly written temporary file
        tmp_dir = server.data_dir / "models" / "tmp"
        wait_until(lambda: any(p.stat().st_size > 0 for p in tmp_dir.glob("upload-*")), 10,
                   "the upload to reach the server")

        server.proc.send_signal(signal.SIGTERM)
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()
        assert server.proc.poll() is None, "the process must still be draining"

        release.set()
        response = upload.result(timeout=20)
        assert response.sha256 == sha and response.size_bytes == len(data)
        assert server.proc.wait(20) == 0
    finally:
        release.set()
        channel.close()
    stored = server.data_dir / "models" / "sha256" / sha[:2] / sha
    assert stored.read_bytes() == data
    assert list(tmp_dir.iterdir()) == [], "nothing half-written may stay behind"
    assert "health NOT_SERVING" in server.stderr()


def test_sigterm_with_nothing_in_flight_exits_promptly(start_process: StartProcess) -> None:
    server = start_process(MODELCTL_SERVER_SHUTDOWN_GRACE="30s")
    with grpc.insecure_channel(server.address) as channel:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    started = time.monotonic()
    assert server.terminate(timeout=20) == 0
    assert time.monotonic() - started < 15, "an idle server must not wait out its whole grace period"


# --- restart keeps the data ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_registered_model_survives_a_restart(start_process, request: pytest.FixtureRequest, tmp_path: Path,
                                            backend: str) -> None:
    env = {} if backend == "sqlite" else {"MODELCTL_DATABASE_URL": request.getfixturevalue("pg_url")}
    data_dir = tmp_path / "data"
    data = os.urandom(50_000)

    first = start_process(data_dir, **env)
    token = (data_dir / "admin.token").read_text().strip()
    with grpc.insecure_channel(first.address) as channel:
        registered = upload_and_register(controller(channel), token, "churn", data)
    assert first.terminate() == 0

    second = start_process(data_dir, **env)
    assert (data_dir / "admin.token").read_text().strip() == token, "a restart mints no new admin token"
    with grpc.insecure_channel(second.address) as channel:
        request = registry_pb2.GetModelRequest(name="churn")
        model = controller(channel).GetModel(request, metadata=bearer(token), timeout=10)
    assert second.terminate() == 0
    [version] = model.versions
    assert version.sha256 == registered.sha256 == hashlib.sha256(data).hexdigest()
    assert version.artifact_uri == registered.artifact_uri
    assert version.created_at == registered.created_at
    assert (data_dir / "models" / "sha256" / version.sha256[:2] / version.sha256).read_bytes() == data
    if backend == "sqlite":
        assert (data_dir / "modelctl.db").is_file()
    else:
        assert not (data_dir / "modelctl.db").exists()
