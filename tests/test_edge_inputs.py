"""Inputs at the edges of what the wire allows get a clear status, never INTERNAL."""

from __future__ import annotations

import base64
import json
import sqlite3

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from modelctl.v1 import deployment_pb2 as dpb
from modelctl.v1 import registry_pb2 as rpb
from modelctl.v1 import system_pb2 as spb

from grpc_helpers import bad_fields, stub


def refused(call) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


@pytest.fixture
def api(live_server):  # type: ignore[no-untyped-def]
    admin = stub(live_server.address, live_server.admin_token)
    admin.RegisterModel(rpb.RegisterModelRequest(name="m", version="1", artifact_uri="s3://b/k"))
    return admin


def test_a_trailing_newline_is_not_a_valid_name(api) -> None:  # type: ignore[no-untyped-def]
    err = refused(lambda: api.RegisterModel(rpb.RegisterModelRequest(name="m\n", version="2\n",
                                                                     artifact_uri="s3://b/k", sha256="a" * 64 + "\n")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"name", "version", "sha256"} <= set(bad_fields(err))


def test_metric_samples_beyond_the_database_or_the_calendar(api) -> None:  # type: ignore[no-untyped-def]
    def report(**sample) -> grpc.RpcError:  # type: ignore[no-untyped-def]
        return refused(lambda: api.ReportMetrics(dpb.ReportMetricsRequest(
            samples=[dpb.MetricsSample(model="m", version="1", **sample)])))
    err = report(requests=2 ** 64 - 1)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_fields(err) == ["samples[0].requests"]
    err = report(requests=1, time=Timestamp(seconds=2 ** 40))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_fields(err) == ["samples[0].time"]


def test_a_token_lifetime_past_any_calendar(api) -> None:  # type: ignore[no-untyped-def]
    err = refused(lambda: api.CreateToken(spb.CreateTokenRequest(
        name="forever", role=spb.ROLE_VIEWER, ttl=Duration(seconds=315_576_000_000))))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_fields(err) == ["ttl"]


@pytest.mark.parametrize("after", ["x", "99999999999999999999999"])
def test_a_forged_audit_page_token(api, after: str) -> None:  # type: ignore[no-untyped-def]
    forged = base64.urlsafe_b64encode(json.dumps({"k": "audit", "a": after}).encode()).decode().rstrip("=")
    err = refused(lambda: api.ListAuditEvents(spb.ListAuditEventsRequest(page_token=forged)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_fields(err) == ["page_token"]


def test_a_locked_database_is_unavailable_and_retriable(server_factory) -> None:  # type: ignore[no-untyped-def]
    srv = server_factory(MODELCTL_DATABASE_BUSY_TIMEOUT="200ms", MODELCTL_AUTH_ENABLED="false")
    api = stub(srv.address)
    holder = sqlite3.connect(srv.data_dir / "modelctl.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock past the busy timeout
    try:
        err = refused(lambda: api.RegisterModel(rpb.RegisterModelRequest(name="m", version="1",
                                                                         artifact_uri="s3://b/k")))
        assert err.code() == grpc.StatusCode.UNAVAILABLE and "database" in err.details()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert api.RegisterModel(rpb.RegisterModelRequest(name="m", version="1", artifact_uri="s3://b/k"))


def test_latency_samples_and_a_p95_together_name_the_field(api) -> None:  # type: ignore[no-untyped-def]
    err = refused(lambda: api.ReportMetrics(dpb.ReportMetricsRequest(samples=[
        dpb.MetricsSample(model="m", version="1", requests=5),
        dpb.MetricsSample(model="m", version="1", requests=5, latency_ms=[10.0], latency_p95_ms=12.0)])))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_fields(err) == ["samples[1].latency_p95_ms"]


def test_text_with_a_nul_character_is_refused_on_every_backend(server_factory, database_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL text cannot hold NUL: without the check these were INTERNAL there (and fine on SQLite)."""
    from conftest import make_settings

    srv = server_factory(make_settings(tmp_path / "nul", MODELCTL_DATABASE_URL=database_url))
    admin = stub(srv.address, srv.admin_token)
    admin.RegisterModel(rpb.RegisterModelRequest(name="m", version="1", artifact_uri="s3://b/k"))
    cases = [
        (lambda: admin.RegisterModel(rpb.RegisterModelRequest(
            name="m", version="2", artifact_uri="s3://b/k", description="a\x00b")), "description"),
        (lambda: admin.RegisterModel(rpb.RegisterModelRequest(
            name="m", version="3", artifact_uri="s3://b/k", tags={"team": "a\x00b"})), "tags[team]"),
        (lambda: admin.RegisterModel(rpb.RegisterModelRequest(
            name="m", version="4", artifact_uri="s3://b/k\x00")), "artifact_uri"),
        (lambda: admin.ReportMetrics(dpb.ReportMetricsRequest(samples=[dpb.MetricsSample(
            model="m", version="1", requests=1, latency_ms=[0.0],
            features={"city": dpb.FeatureValues(categorical=["paris", "a\x00b"])})])),
         "samples[0].features[city].categorical[1]"),
        # ReportMetrics checks its own text (limits.OWN_TEXT_CHECKS): every other string of it is refused too.
        (lambda: admin.ReportMetrics(dpb.ReportMetricsRequest(samples=[dpb.MetricsSample(
            model="m\x00", version="1", requests=1)])), "samples[0].model"),
        (lambda: admin.ReportMetrics(dpb.ReportMetricsRequest(samples=[dpb.MetricsSample(
            model="m", version="1\x00", requests=1)])), "samples[0].version"),
        (lambda: admin.ReportMetrics(dpb.ReportMetricsRequest(samples=[dpb.MetricsSample(
            model="m", version="1", requests=1, features={"ci\x00ty": dpb.FeatureValues(numeric=[1.0])})])),
         "samples[0].features"),
        (lambda: admin.RollbackModel(dpb.RollbackModelRequest(model="m", reason="a\x00b")), "reason"),
    ]
    for call, field in cases:
        err = refused(call)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_fields(err) == [field], (field, err.details())
    # Nothing was written: the model still has its one version.
    assert [v.version for v in admin.GetModel(rpb.GetModelRequest(name="m")).versions] == ["1"]
