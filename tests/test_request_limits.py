"""What one request may cost (finding 4 of issue 12): byte limits per RPC, repeated-field limits,
and a server process whose memory comes back after a hostile burst.

The outside fuzz run saw RSS go from 149 MB to 455 MB on requests of up to 12 MB that
were accepted by the transport and parsed before being refused. Now the transport takes
no more than the largest per-RPC limit (ReportMetrics, an UploadArtifact chunk), every
other RPC refuses more than 256 KiB before parsing, and a repeated field or map over
10,000 entries is refused before the servicer runs.
"""

from __future__ import annotations

import secrets
import sys
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import psutil
import pytest

from modelctl.v1 import deployment_pb2 as dpb
from modelctl.v1 import registry_pb2 as rpb
from modelctl_server.api import limits

from grpc_helpers import bad_fields, stub

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from _harness import ModelctlServer  # noqa: E402

MB = 1024 * 1024


def _code(call: Any, request: Any) -> tuple[grpc.StatusCode, str, list[str]]:
    with pytest.raises(grpc.RpcError) as err:
        call(request, timeout=30)
    return err.value.code(), err.value.details() or "", bad_fields(err.value)


def test_an_ordinary_rpc_refuses_a_big_request_before_parsing_it(live_server: Any) -> None:
    api = stub(live_server.address, live_server.admin_token)
    big = rpb.RegisterModelRequest(name="m", version="1", artifact_uri="s3://m/1", description="x" * (300 * 1024))
    code, details, _ = _code(api.RegisterModel, big)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "over the 262144-byte limit of RegisterModel" in details


def test_the_transport_refuses_what_no_rpc_accepts(live_server: Any) -> None:
    api = stub(live_server.address, live_server.admin_token)
    huge = dpb.ReportMetricsRequest(samples=[dpb.MetricsSample(model="m", version="1", requests=1,
                                                               latency_ms=[1.0] * (1_200_000))])
    assert huge.ByteSize() > limits.transport_limit(16 * MB)
    code, _, _ = _code(api.ReportMetrics, huge)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_huge_repeated_field_is_refused_naming_it(live_server: Any) -> None:
    api = stub(live_server.address, live_server.admin_token)
    request = dpb.DeployModelRequest(model="m", version="1", params=dpb.DeploymentParams(steps=[5] * 10_001))
    code, _, fields = _code(api.DeployModel, request)
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["params.steps"])
    tags = rpb.ListModelsRequest(tags={f"k{n}": "v" for n in range(10_001)})
    code, _, fields = _code(api.ListModels, tags)
    assert (code, fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["tags"])


@pytest.mark.slow
def test_rss_returns_near_its_baseline_after_a_hostile_burst(tmp_path: Path) -> None:
    """A server process of its own, so the RSS measured is the server's alone."""
    token = secrets.token_urlsafe(32)
    server = ModelctlServer(tmp_path / "data", token, tmp_path / "server.log")
    try:
        api = stub(server.address, token)
        api.RegisterModel(rpb.RegisterModelRequest(name="m", version="1", artifact_uri="s3://m/1"))
        proc = psutil.Process(server.proc.pid)
        # Warm: the first calls load code and fill caches; the baseline is what it costs to be running.
        for _ in range(20):
            api.ReportMetrics(dpb.ReportMetricsRequest(samples=[dpb.MetricsSample(
                model="m", version="1", requests=10, latency_ms=[5.0] * 10)]))
        baseline = proc.memory_info().rss / MB
        hostile = [
            # Just under the ReportMetrics limit, refused by validation (too many values per sample).
            dpb.ReportMetricsRequest(samples=[dpb.MetricsSample(model="m", version="1", requests=1,
                                                                latency_ms=[1.0] * 480_000)]),
            # Over an ordinary RPC's limit: refused before parsing.
            rpb.RegisterModelRequest(name="m", version="2", artifact_uri="s3://m/2", description="x" * 3 * MB),
            # Over every limit: refused by the transport.
            dpb.ReportMetricsRequest(samples=[dpb.MetricsSample(model="m", version="1", requests=1,
                                                                latency_ms=[1.0] * 1_500_000)]),
        ]
        codes: dict[str, int] = {}
        lock = threading.Lock()

        def burst(n: int) -> None:
            for i in range(n):
                request = hostile[i % len(hostile)]
                call = api.ReportMetrics if isinstance(request, dpb.ReportMetricsRequest) else api.RegisterModel
                try:
                    call(request, timeout=60)
                    code = "OK"
                except grpc.RpcError as exc:
                    code = exc.code().name
                with lock:
                    codes[code] = codes.get(code, 0) + 1
        threads = [threading.Thread(target=burst, args=(60,)) for _ in range(6)]
        for t in threads:
            t.start()
        peak = baseline
        while any(t.is_alive() for t in threads):
            peak = max(peak, proc.memory_info().rss / MB)
            threads[0].join(0.05)
        for t in threads:
            t.join()
        # The server goes on serving; memory is what matters now.
        for _ in range(20):
            api.ReportMetrics(dpb.ReportMetricsRequest(samples=[dpb.MetricsSample(
                model="m", version="1", requests=10, latency_ms=[5.0] * 10)]))
        # The system sampler hands freed memory back every 5 s: give it two rounds.
        deadline = time.monotonic() + 12
        after = proc.memory_info().rss / MB
        while after - baseline >= 40 and time.monotonic() < deadline:
            time.sleep(0.5)
            after = proc.memory_info().rss / MB
    finally:
        server.stop()
    assert codes.get("OK", 0) == 0 and set(codes) <= {"INVALID_ARGUMENT", "RESOURCE_EXHAUSTED"}, codes
    print(f"RSS baseline {baseline:.0f} MB, peak {peak:.0f} MB, after {after:.0f} MB, codes {codes}")
    assert after - baseline < 80, f"RSS {baseline:.0f} -> {after:.0f} MB (peak {peak:.0f}) after 360 hostile requests"
