"""Database outages, made real: PostgreSQL refusing and killing connections under load, and a
SQLite file locked by another process past the busy timeout.

While the database is gone, calls answer UNAVAILABLE with a message that says so,
health is NOT_SERVING and the background loops back off (GetSystemStatus says so);
within 5 s of the database returning everything works again by itself. Nothing
acknowledged is lost (every acknowledged report is in the journal), and the rollout
running through it neither skips nor repeats a step.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelctl.v1 import deployment_pb2 as dpb
from modelctl.v1 import registry_pb2 as rpb
from modelctl.v1 import system_pb2

from conftest import PG_ADMIN_URL
from grpc_helpers import stub

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
RECOVERY_BOUND = 5.0
FAST = {"MODELCTL_DEPLOYMENT_RECONCILE_INTERVAL": "0.2s", "MODELCTL_DEPLOYMENT_MIN_SAMPLES": "5"}


def _health(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        try:
            return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3).status
        except grpc.RpcError:
            return -1


def _wait_for(what: str, predicate: Callable[[], bool], timeout: float) -> float:
    """Seconds it took `predicate` to hold; fails the test after `timeout`."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what} not within {timeout:g}s")
        time.sleep(0.05)
    return time.monotonic() - start


class Reporter(threading.Thread):
    """Load: ReportMetrics for one version as fast as answers come; counts what was acknowledged."""

    def __init__(self, api: Any, version: str) -> None:
        super().__init__(daemon=True)
        self.api, self.version = api, version
        self.acked_requests = 0
        self.codes: dict[str, int] = {}
        self.messages: set[str] = set()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            request = dpb.ReportMetricsRequest(samples=[dpb.MetricsSample(
                model="fraud", version=self.version, requests=10, errors=0, latency_ms=[20.0] * 10)])
            try:
                self.api.ReportMetrics(request, timeout=10)
            except grpc.RpcError as exc:
                self.codes[exc.code().name] = self.codes.get(exc.code().name, 0) + 1
                self.messages.add(exc.details() or "")
                time.sleep(0.05)
            else:
                self.codes["OK"] = self.codes.get("OK", 0) + 1
                self.acked_requests += 10

    def stop(self) -> None:
        self.stopping.set()
        self.join(15)


def _start_rollout(api: Any) -> str:
    for v in ("1", "2"):
        api.RegisterModel(rpb.RegisterModelRequest(name="fraud", version=v, artifact_uri=f"s3://m/{v}"))
    api.DeployModel(dpb.DeployModelRequest(model="fraud", version="1", strategy=dpb.DEPLOYMENT_STRATEGY_IMMEDIATE,
                                           params=dpb.DeploymentParams(bake_time=Duration(seconds=0))))
    _wait_for("v1 live", lambda: api.GetModel(rpb.GetModelRequest(name="fraud")).live_version == "1", 10)
    dep = api.DeployModel(dpb.DeployModelRequest(
        model="fraud", version="2", strategy=dpb.DEPLOYMENT_STRATEGY_CANARY,
        params=dpb.DeploymentParams(steps=[10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
                                    step_interval=Duration(nanos=700_000_000), min_samples=5,
                                    progress_deadline=Duration(seconds=120))))
    return dep.id


def _check_steps_and_journal(api: Any, deployment_id: str, reporter: Reporter, journal_sum: Callable[[], int]) -> None:
    """With the reports still flowing: the rollout finishes; then what was acknowledged is all there."""
    _wait_for("the rollout to finish", lambda: api.GetDeployment(dpb.GetDeploymentRequest(
        id=deployment_id)).state == dpb.DEPLOYMENT_STATE_SUCCEEDED, 60)
    reporter.stop()
    events = list(api.WatchDeployment(dpb.WatchDeploymentRequest(id=deployment_id), timeout=10))
    steps = [e.step for e in events if e.kind == dpb.DEPLOYMENT_EVENT_KIND_STEP_STARTED]
    assert steps == list(range(1, 11)), steps  # none skipped, none repeated
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    # Every acknowledged report is journaled (failed ones are not: they were never acknowledged).
    assert journal_sum() == reporter.acked_requests


def _during_outage(srv: Any, api: Any, reporter: Reporter) -> None:
    """What must hold while the database is gone."""
    _wait_for("health NOT_SERVING", lambda: _health(srv.address) == NOT_SERVING, 10)
    with pytest.raises(grpc.RpcError) as err:
        api.RegisterModel(rpb.RegisterModelRequest(name="other", version="1", artifact_uri="s3://m/o"), timeout=15)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "the database is unavailable, try again" in (err.value.details() or "")
    # The loops back off and say so.
    def backing_off() -> bool:
        try:
            shown = api.GetSystemStatus(system_pb2.GetSystemStatusRequest(), timeout=15).components
        except grpc.RpcError:
            return False
        details = {c.name: c.detail for c in shown if c.state == system_pb2.COMPONENT_STATE_FAILED}
        return ("database unreachable" in details.get("database-watchdog", "")
                and any("backing off" in d for d in details.values()))
    _wait_for("GetSystemStatus to show the outage and the back-off", backing_off, 20)


def _after_recovery(srv: Any, api: Any, returned_at: float) -> None:
    _wait_for("health SERVING", lambda: _health(srv.address) == SERVING, RECOVERY_BOUND + 5)
    assert time.monotonic() - returned_at <= RECOVERY_BOUND, "health came back too late"
    api.RegisterModel(rpb.RegisterModelRequest(name="other", version="1", artifact_uri="s3://m/o"), timeout=5)
    assert time.monotonic() - returned_at <= RECOVERY_BOUND, "writes came back too late"
    shown = api.GetSystemStatus(system_pb2.GetSystemStatusRequest()).components
    _wait_for("every component RUNNING again", lambda: all(
        c.state == system_pb2.COMPONENT_STATE_RUNNING
        for c in api.GetSystemStatus(system_pb2.GetSystemStatusRequest()).components), RECOVERY_BOUND)
    assert shown


@pytest.mark.postgres
def test_postgresql_connections_refused_and_terminated_under_load(server_factory: Any, pg_url: str) -> None:
    name = pg_url.rsplit("/", 1)[1]
    srv = server_factory(MODELCTL_DATABASE_URL=pg_url, **FAST)
    api = stub(srv.address, srv.admin_token)
    deployment_id = _start_rollout(api)
    reporter = Reporter(api, "2")
    reporter.start()
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        time.sleep(1.0)  # the rollout is under way, reports flowing
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            killed = conn.execute(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                          "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
            assert killed.scalar() > 0
        _during_outage(srv, api, reporter)
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        returned_at = time.monotonic()
        _after_recovery(srv, api, returned_at)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))

    def journal_sum() -> int:
        engine = sa.create_engine(pg_url)
        with engine.connect() as conn:
            total = conn.execute(sa.text("SELECT coalesce(sum(requests), 0) FROM metric_reports "
                                         "WHERE model = 'fraud' AND version = '2'")).scalar()
        engine.dispose()
        return int(total)
    _check_steps_and_journal(api, deployment_id, reporter, journal_sum)
    assert reporter.codes.get("UNAVAILABLE", 0) > 0 and reporter.codes.get("OK", 0) > 0, reporter.codes
    assert set(reporter.codes) <= {"OK", "UNAVAILABLE"}, reporter.codes
    assert all("database" in m for m in reporter.messages), reporter.messages
    admin.dispose()


_LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


def test_sqlite_file_locked_by_another_process_past_the_busy_timeout(server_factory: Any, tmp_path: Path) -> None:
    srv = server_factory(MODELCTL_DATABASE_BUSY_TIMEOUT="1s", **FAST)
    api = stub(srv.address, srv.admin_token)
    deployment_id = _start_rollout(api)
    reporter = Reporter(api, "2")
    reporter.start()
    db_file = srv.settings.database_url.removeprefix("sqlite:///")
    time.sleep(1.0)
    locker = subprocess.Popen([sys.executable, "-c", _LOCKER, db_file], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        _during_outage(srv, api, reporter)
        assert locker.stdin is not None
        locker.stdin.close()  # the other process lets go
        locker.wait(10)
        returned_at = time.monotonic()
        _after_recovery(srv, api, returned_at)
    finally:
        if locker.poll() is None:
            locker.kill()

    def journal_sum() -> int:
        engine = sa.create_engine(srv.settings.database_url)
        with engine.connect() as conn:
            total = conn.execute(sa.text("SELECT coalesce(sum(requests), 0) FROM metric_reports "
                                         "WHERE model = 'fraud' AND version = '2'")).scalar()
        engine.dispose()
        return int(total)
    _check_steps_and_journal(api, deployment_id, reporter, journal_sum)
    assert reporter.codes.get("UNAVAILABLE", 0) > 0 and reporter.codes.get("OK", 0) > 0, reporter.codes
    assert set(reporter.codes) <= {"OK", "UNAVAILABLE"}, reporter.codes
    assert all("database is locked" in m for m in reporter.messages), reporter.messages
