#!/usr/bin/env python3
"""Ingestion with features: values per second through batched ReportMetrics, against the same run without.

Both loads go to one `modelctl-server` subprocess (SQLite, port 0) from this process over real
gRPC, `--in-flight` calls at a time on one channel, in alternating rounds so the machine's noise
falls on both alike:

- **traffic only**: each call carries one sample: 1,000 requests and their 1,000 latencies;
- **with features**: the same, plus 20 numeric input features with 1,000 values each, and 1,000
  predictions (so 22,000 values per call), folded into the drift windows on ingest.

The version has a reference profile (sent once as `reference` samples) so the drift bins are sealed,
as in production. Prints calls/s and values/s per mode (median and spread over rounds) and the ratio;
writes bench/results/ingest_features.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np

from modelctl.v1 import controller_pb2_grpc, deployment_pb2, registry_pb2

from _harness import ModelctlServer

FEATURES = 20
VALUES = 1000
RESULTS = Path(__file__).resolve().parent / "results"


def _sample(rng: np.random.Generator, *, features: bool, reference: bool = False) -> deployment_pb2.MetricsSample:
    sample = deployment_pb2.MetricsSample(model="bench", version="v1", reference=reference)
    if not reference:
        sample.requests = VALUES
        sample.latency_ms.extend(rng.gamma(4.0, 10.0, VALUES).tolist())
    if features:
        for f in range(FEATURES):
            sample.features[f"f{f:02d}"].numeric.extend(rng.normal(f, 1.0, VALUES).tolist())
        sample.predictions.extend(rng.random(VALUES).tolist())
    return sample


async def _round(stub, auth, requests, seconds: float, in_flight: int) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """Send pre-built requests for `seconds`, `in_flight` at a time; returns (elapsed, calls)."""
    calls = 0
    deadline = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal calls
        i = offset
        while time.perf_counter() < deadline:
            await stub.ReportMetrics(requests[i % len(requests)], metadata=auth, timeout=30)
            calls += 1
            i += in_flight

    started = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(in_flight)))
    return time.perf_counter() - started, calls


async def run(args: argparse.Namespace, address: str, token: str) -> dict:
    auth = [("authorization", f"Bearer {token}")]
    rng = np.random.default_rng(7)
    async with grpc.aio.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        stub = controller_pb2_grpc.ModelControllerStub(channel)
        await stub.RegisterModel(registry_pb2.RegisterModelRequest(name="bench", version="v1",
                                                                   artifact_uri="s3://bench/v1"), metadata=auth)
        for _ in range(5):
            await stub.ReportMetrics(deployment_pb2.ReportMetricsRequest(
                samples=[_sample(rng, features=True, reference=True)]), metadata=auth)
        plain = [deployment_pb2.ReportMetricsRequest(samples=[_sample(rng, features=False)]) for _ in range(8)]
        rich = [deployment_pb2.ReportMetricsRequest(samples=[_sample(rng, features=True)]) for _ in range(8)]
        await _round(stub, auth, plain + rich, 1.0, args.in_flight)  # warm-up: connections, caches, bins
        rates: dict[str, list[float]] = {"plain": [], "features": []}
        for _ in range(args.rounds):
            for mode, requests in (("plain", plain), ("features", rich)):
                elapsed, calls = await _round(stub, auth, requests, args.seconds, args.in_flight)
                rates[mode].append(calls / elapsed)
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each round")
    parser.add_argument("--in-flight", type=int, default=8)
    args = parser.parse_args(argv)
    token = "mctl_bench_" + secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="modelctl-bench-") as tmp:
        server = ModelctlServer(Path(tmp) / "data", token, Path(tmp) / "server.log")
        try:
            rates = asyncio.run(run(args, server.address, token))
        finally:
            server.stop()
    plain, rich = statistics.median(rates["plain"]), statistics.median(rates["features"])
    feature_values = FEATURES * VALUES + VALUES  # features + predictions per call
    rows = [
        ("traffic only", plain, plain * VALUES, "latency values/s", rates["plain"]),
        ("with 20 features", rich, rich * feature_values, "feature+prediction values/s", rates["features"]),
    ]
    print(f"ReportMetrics, one sample of {VALUES} requests per call, {args.in_flight} in flight, "
          f"{args.rounds} alternating rounds of {args.seconds:g} s")
    print(f"{'mode':<18} {'calls/s':>9} {'spread':>15} {'values/s':>12}  unit")
    for name, rate, values, unit, all_rates in rows:
        spread = f"{min(all_rates):.0f}-{max(all_rates):.0f}"
        print(f"{name:<18} {rate:>9.1f} {spread:>15} {values:>12,.0f}  {unit}")
    ratio = plain / rich if rich else float("inf")
    print(f"calls/s without features / with features: {ratio:.2f}x "
          f"(latency samples/s with features: {rich * VALUES:,.0f})")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest_features.json").write_text(json.dumps({
        "in_flight": args.in_flight, "rounds": args.rounds, "seconds": args.seconds,
        "plain_calls_per_s": rates["plain"], "features_calls_per_s": rates["features"],
        "plain_latency_values_per_s": plain * VALUES, "feature_values_per_s": rich * feature_values,
        "ratio_plain_over_features": ratio}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
