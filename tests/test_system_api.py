"""System RPCs: status, restart with config reload, the audit log, and /metrics."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import urllib.request
from pathlib import Path

import grpc
import pytest

from modelctl.v1 import registry_pb2, system_pb2

from conftest import make_settings
from grpc_helpers import bad_fields, stub


def test_status_reports_process_database_counts_and_components(live_server) -> None:  # type: ignore[no-untyped-def]
    api = stub(live_server.address, live_server.admin_token)
    api.RegisterModel(registry_pb2.RegisterModelRequest(name="m", version="1", artifact_uri="s3://b/k"))
    api.RegisterModel(registry_pb2.RegisterModelRequest(name="m", version="2", artifact_uri="s3://b/k"))
    st = api.GetSystemStatus(system_pb2.GetSystemStatusRequest())
    assert st.version == "0.1.0"
    assert st.uptime.ToNanoseconds() >= 0 and st.started_at.seconds > 0
    assert st.memory.process_rss_bytes > 0 and st.memory.system_total_bytes > st.memory.system_available_bytes > 0
    assert st.process_cpu_percent >= 0 and st.open_files > 0
    assert st.database.reachable and st.database.backend == "sqlite" and st.database.latency.ToNanoseconds() > 0
    assert (st.model_count, st.version_count) == (1, 2)
    states = {c.name: c.state for c in st.components}
    assert states == {"metrics-exporter": system_pb2.COMPONENT_STATE_RUNNING,
                      "reconciler": system_pb2.COMPONENT_STATE_RUNNING,
                      "metrics-journal-pruner": system_pb2.COMPONENT_STATE_RUNNING,
                      "artifact-sweeper": system_pb2.COMPONENT_STATE_RUNNING,
                      "experiment-refresher": system_pb2.COMPONENT_STATE_RUNNING,
                      "drift-gauges": system_pb2.COMPONENT_STATE_RUNNING,
                      "alert-evaluator": system_pb2.COMPONENT_STATE_RUNNING,
                      "deployment-alerts": system_pb2.COMPONENT_STATE_RUNNING,
                      "history-rotator": system_pb2.COMPONENT_STATE_RUNNING,
                      "notification-outbox": system_pb2.COMPONENT_STATE_RUNNING,
                      "pipeline-sweeper": system_pb2.COMPONENT_STATE_RUNNING,
                      "liveness-flusher": system_pb2.COMPONENT_STATE_RUNNING,
                      "system-sampler": system_pb2.COMPONENT_STATE_RUNNING,
                      "database-watchdog": system_pb2.COMPONENT_STATE_RUNNING}
    assert st.auth_enabled and not st.tls_enabled


def test_restart_reloads_the_config_file_and_keeps_the_listener(tmp_path: Path, server_factory) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "modelctl.toml"
    config.write_text("[registry]\nmax_versions = 5\n")
    from modelctl_server.config import load_settings

    env = {"MODELCTL_SERVER_GRPC_ADDRESS": "127.0.0.1:0", "MODELCTL_SERVER_METRICS_ADDRESS": "127.0.0.1:0",
           "MODELCTL_SERVER_DATA_DIR": str(tmp_path / "data")}
    srv = server_factory(load_settings(config, env), environ=env)
    api = stub(srv.address, srv.admin_token)
    components = api.GetSystemStatus(system_pb2.GetSystemStatusRequest()).components
    before = {c.name: c.since.ToNanoseconds() for c in components}

    # An upload stream open across the restart must finish normally.
    data = b"w" * 300_000
    release = threading.Event()

    def chunks():  # type: ignore[no-untyped-def]
        yield registry_pb2.UploadArtifactRequest(header=registry_pb2.ArtifactHeader(
            sha256=hashlib.sha256(data).hexdigest()))
        yield registry_pb2.UploadArtifactRequest(chunk=data[:1000])
        release.wait(10)
        yield registry_pb2.UploadArtifactRequest(chunk=data[1000:])
    upload = api.UploadArtifact.future(chunks())

    config.write_text("[registry]\nmax_versions = 2\n[server]\nworker_threads = 3\n")
    resp = api.RestartSystem(system_pb2.RestartSystemRequest(reason="reload"))
    assert resp.changed_keys == ["registry.max_versions", "server.worker_threads"]
    assert resp.ignored_keys == ["server.worker_threads"]
    after = {c.name: c.since.ToNanoseconds() for c in resp.status.components}
    assert all(after[name] > before[name] for name in before), "components were not restarted"
    assert all(c.state == system_pb2.COMPONENT_STATE_RUNNING for c in resp.status.components)
    release.set()
    assert upload.result(timeout=10).size_bytes == len(data)

    # The reloaded retention limit applies at once.
    for v in ("1", "2", "3"):
        r = api.RegisterModel(registry_pb2.RegisterModelRequest(name="m", version=v, artifact_uri="s3://b/k"))
    assert [a.version for a in r.archived] == ["1"]
    events = api.ListAuditEvents(system_pb2.ListAuditEventsRequest(rpc="RestartSystem")).events
    assert [(e.rpc, e.outcome, e.target) for e in events] == [("RestartSystem", "OK", "reload")]


def test_restart_with_a_broken_config_keeps_running(tmp_path: Path, server_factory) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "modelctl.toml"
    config.write_text("[registry]\nmax_versions = 5\n")
    from modelctl_server.config import load_settings

    env = {"MODELCTL_SERVER_GRPC_ADDRESS": "127.0.0.1:0", "MODELCTL_SERVER_METRICS_ADDRESS": "127.0.0.1:0",
           "MODELCTL_SERVER_DATA_DIR": str(tmp_path / "data")}
    srv = server_factory(load_settings(config, env), environ=env)
    api = stub(srv.address, srv.admin_token)
    config.write_text("[registry]\nmax_versions = -3\n")
    with pytest.raises(grpc.RpcError) as err:
        api.RestartSystem(system_pb2.RestartSystemRequest())
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "registry.max_versions" in err.value.details()
    assert api.GetSystemStatus(system_pb2.GetSystemStatusRequest()).database.reachable


def test_audit_log_records_mutations_and_pages(live_server) -> None:  # type: ignore[no-untyped-def]
    api = stub(live_server.address, live_server.admin_token)
    for v in range(5):
        api.RegisterModel(registry_pb2.RegisterModelRequest(name="m", version=str(v), artifact_uri="s3://b/k"))
    with pytest.raises(grpc.RpcError):
        api.RegisterModel(registry_pb2.RegisterModelRequest(name="m", version="0", artifact_uri="s3://b/k"))
    api.ListModels(registry_pb2.ListModelsRequest())  # reads are not audited
    seen, token = [], ""
    while True:
        page = api.ListAuditEvents(system_pb2.ListAuditEventsRequest(page_size=2, page_token=token))
        seen += page.events
        token = page.next_page_token
        if not token:
            break
    assert [(e.rpc, e.target, e.outcome) for e in seen] == (
        [("RegisterModel", "m:0", "ALREADY_EXISTS")] + [("RegisterModel", f"m:{v}", "OK") for v in (4, 3, 2, 1, 0)])
    assert all(e.token_name == "bootstrap-admin" and e.role == system_pb2.ROLE_ADMIN for e in seen)
    assert all(e.time.seconds > 0 and e.peer for e in seen)
    assert [e.rpc for e in api.ListAuditEvents(system_pb2.ListAuditEventsRequest(outcome="ALREADY_EXISTS")).events] \
        == ["RegisterModel"]
    with pytest.raises(grpc.RpcError) as err:
        api.ListAuditEvents(system_pb2.ListAuditEventsRequest(page_token="bm9wZQ"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_fields(err.value) == ["page_token"]


def test_metrics_endpoint_counts_rpcs(live_server) -> None:  # type: ignore[no-untyped-def]
    api = stub(live_server.address, live_server.admin_token)
    api.ListModels(registry_pb2.ListModelsRequest())
    with pytest.raises(grpc.RpcError):
        api.GetModel(registry_pb2.GetModelRequest(name="missing"))
    port = live_server.app.metrics.port
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'modelctl_rpc_requests_total{code="OK",rpc="ListModels"} 1.0' in body
    assert 'modelctl_rpc_requests_total{code="NOT_FOUND",rpc="GetModel"} 1.0' in body
    assert "modelctl_rpc_duration_seconds_bucket" in body
    assert "modelctl_event_loop_lag_seconds" in body and "\nprocess_resident_memory_bytes " in body


def test_auth_disabled_is_explicit_and_open(server_factory, caplog) -> None:  # type: ignore[no-untyped-def]
    srv = server_factory(MODELCTL_AUTH_ENABLED="false")
    api = stub(srv.address, None)
    api.RegisterModel(registry_pb2.RegisterModelRequest(name="m", version="1", artifact_uri="s3://b/k"))
    assert not api.GetSystemStatus(system_pb2.GetSystemStatusRequest()).auth_enabled
    assert any("AUTH IS DISABLED" in r.getMessage() for r in caplog.records)


def test_settings_helper_is_port_zero(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    assert s.server.grpc_address.endswith(":0") and s.server.metrics_address.endswith(":0")


def test_drain_delay_keeps_serving_while_health_says_not_serving(server_factory) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import Future

    from grpc_health.v1 import health_pb2, health_pb2_grpc

    srv = server_factory(MODELCTL_SERVER_DRAIN_DELAY="1s")
    api = stub(srv.address, srv.admin_token)
    stopping: Future[None] = asyncio.run_coroutine_threadsafe(srv.app.stop(grace=1), srv.loop)
    health = health_pb2_grpc.HealthStub(grpc.insecure_channel(srv.address))
    statuses = health.Watch(health_pb2.HealthCheckRequest(), timeout=10)
    for status in statuses:
        if status.status == health_pb2.HealthCheckResponse.NOT_SERVING:
            break
    statuses.cancel()
    # Told NOT_SERVING, yet calls routed here in the meantime are still answered.
    assert api.GetSystemStatus(system_pb2.GetSystemStatusRequest(), timeout=5).database.reachable
    stopping.result(timeout=10)
