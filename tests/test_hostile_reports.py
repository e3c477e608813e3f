"""What an outside fuzz run found in ReportMetrics, byte for byte, and the histogram made total.

Findings 1 and 2 of issue 12: a timestamp with nanos out of range and a finite but
huge latency answered INTERNAL. The API now refuses both (INVALID_ARGUMENT), and the
latency histogram no longer raises on any float, so neither the ingest path nor the
journal replay at start can be crashed by a value that got past the API.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import grpc
import pytest

from modelctl.v1 import registry_pb2 as rpb
from modelctl_server.clock import FakeClock
from modelctl_server.store.db import Database
from modelctl_server.store.metric_journal import MetricJournal, MetricReportRow
from modelctl_server.telemetry.histogram import TOP_BUCKET, LatencyHistogram, bucket_of
from modelctl_server.telemetry.store import MetricsStore

from grpc_helpers import bad_fields, stub

#: As the issue gives them: hex of ReportMetricsRequest.
NANOS_OUT_OF_RANGE = "0a0e0a016d1201313a06108094ebdc03"  # samples {model "m" version "1" time {nanos 1e9}}
HUGE_LATENCY = "0a120a016d120131180a2a08a0c8eb85f3cce17f"  # ... requests 10 latency_ms [1e308]


def _raw_report(address: str, token: str, payload: bytes) -> grpc.RpcError:
    """Send bytes as they are, the way the fuzzer did: no client-side message to normalise them."""
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary("/modelctl.v1.ModelController/ReportMetrics")
        with pytest.raises(grpc.RpcError) as err:
            call(payload, metadata=[("authorization", f"Bearer {token}")], timeout=10)
    return err.value


@pytest.mark.parametrize(("hex_request", "field"), [
    (NANOS_OUT_OF_RANGE, "samples[0].time"), (HUGE_LATENCY, "samples[0].latency_ms")])
def test_the_issues_requests_are_invalid_argument(live_server: Any, hex_request: str, field: str) -> None:
    api = stub(live_server.address, live_server.admin_token)
    api.RegisterModel(rpb.RegisterModelRequest(name="m", version="1", artifact_uri="s3://m/1"))
    error = _raw_report(live_server.address, live_server.admin_token, bytes.fromhex(hex_request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert bad_fields(error) == [field]


@pytest.mark.parametrize("value", [1e308, -1e308, math.inf, -math.inf, math.nan, 5e-324, 0.0, -0.0, 1e7, 9.99e6,
                                   2 ** 1023 * (2 - 2 ** -52)])
def test_every_float_has_a_bucket(value: float) -> None:
    assert 0 <= bucket_of(value) <= TOP_BUCKET


def test_a_huge_latency_lands_in_the_top_bucket_and_nan_is_not_a_measurement() -> None:
    h = LatencyHistogram()
    h.add(1e308)
    h.add(math.nan)
    h.add(5.0, weight=math.inf)
    h.add_quantiles({0.5: 10.0, 0.95: 1e308}, 100)
    assert h.total == 101
    assert h.quantile(1.0) == pytest.approx(1e7, rel=0.05)


def test_the_domain_ingest_takes_huge_finite_latencies_without_raising() -> None:
    """Past the API's bound (a caller inside the process, a future RPC): still no OverflowError."""
    store = MetricsStore(FakeClock(dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)))
    store.ingest("m", "1", requests=10, latency_ms=[1e308, 1.7976931348623157e308])
    store.ingest("m", "1", requests=10, latency_quantiles={0.95: 1e308})
    assert store.window("m", "1", dt.datetime(2024, 4, 30, tzinfo=dt.timezone.utc),
                        dt.datetime(2024, 5, 2, tzinfo=dt.timezone.utc)).requests == 20


def test_a_journal_row_with_junk_latency_is_replayed_without_raising(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'j.db'}")
    db.migrate()
    at = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)
    with db.session() as s:
        s.add(MetricReportRow(model="m", version="1", time=at, requests=3, errors=0,
                              latency={"5": 1.0, "-1": 1.0, str(TOP_BUCKET + 9): 1.0, "x": 1.0, "7": "nan",
                                       "8": 1e308 * 10, "9": -2.0}))
        s.add(MetricReportRow(model="m", version="1", time=at, requests=1, errors=0, latency=[1, 2]))
    reports = list(MetricJournal(db).since(at - dt.timedelta(hours=1)))
    db.dispose()
    assert [r.latency.total for r in reports] == [1.0, 0.0]  # only bucket 5 was sane
    store = MetricsStore(FakeClock(at))
    for report in reports:
        store.add(report)
