#!/usr/bin/env python3
"""ReportMetrics ingestion rate (latency samples/s), and what it does to GetModel's p99 meanwhile.

Issue 9's ingestion goal: at least 300,000 latency samples/s through `ReportMetrics` in batches of
1,000 (one sample of 1,000 requests and their 1,000 latencies per call), while `GetModel`'s p99
stays within 2x its idle value, measured in the same run.

One `modelctl-server` subprocess (SQLite, port 0, an admin token); every load from its own client
process (`_load`). Alternating rounds of:
- **idle probe**: `GetModel` alone, 4 calls in flight paced to 200 calls/s (a latency probe, not a load);
- **goal rate + probe**: the same probe, side by side with `ReportMetrics` paced to the goal (300 calls/s
  = 300,000 samples/s) with up to `--in-flight` (8) calls in flight on one channel, each call journaled
  before it is answered;
- **saturation + probe**: the same, with `ReportMetrics` unpaced: as many calls as the server answers.
The goal is met when the paced load keeps up with 300,000 samples/s and the probe's p99 meanwhile is
within 2x idle. Saturation gives the most the server ingests, and what a GetModel waits then: every
call queues behind the ingest for the one interpreter lock, so its p99 is reported, not judged.
Median and spread over rounds. Writes bench/results/ingest_load.json.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from modelctl.v1 import deployment_pb2, registry_pb2

from _harness import ModelctlServer
from _load import Round, seed, start_load

RESULTS = Path(__file__).resolve().parent / "results"
SERVICE = "/modelctl.v1.ModelController/"
VALUES = 1000
#: Latency samples per second the issue asks for.
GOAL = 300_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--in-flight", type=int, default=8)
    args = parser.parse_args(argv)
    token = "mctl_bench_" + secrets.token_hex(16)
    rng = np.random.default_rng(9)
    sample = deployment_pb2.MetricsSample(model="bench", version="v1", requests=VALUES, errors=3)
    sample.latency_ms.extend(rng.gamma(4.0, 10.0, VALUES).tolist())
    report = deployment_pb2.ReportMetricsRequest(samples=[sample]).SerializeToString()
    probe_request = registry_pb2.GetModelRequest(name="bench").SerializeToString()
    idle: list[Round] = []
    paced_busy: list[Round] = []
    paced: list[Round] = []
    busy: list[Round] = []
    ingest: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="modelctl-bench-") as tmp:
        server = ModelctlServer(Path(tmp) / "data", token, Path(tmp) / "server.log")
        try:
            seed(server.address, token)

            def probe(seconds: float):  # type: ignore[no-untyped-def]
                return start_load(server.address, SERVICE + "GetModel", probe_request, token=token,
                                  seconds=seconds, in_flight=4, rate=200)
            for _ in range(args.rounds):
                idle.append(probe(args.seconds)())
                feeding = start_load(server.address, SERVICE + "ReportMetrics", report, token=token,
                                     seconds=args.seconds + 1, in_flight=args.in_flight, rate=GOAL / VALUES)
                paced_busy.append(probe(args.seconds)())
                paced.append(feeding())
                feeding = start_load(server.address, SERVICE + "ReportMetrics", report, token=token,
                                     seconds=args.seconds + 1, in_flight=args.in_flight)
                busy.append(probe(args.seconds)())
                ingest.append(feeding())
        finally:
            server.stop()
    rate = statistics.median(r.calls_per_s for r in ingest) * VALUES
    paced_rate = statistics.median(r.calls_per_s for r in paced) * VALUES
    idle_p99 = statistics.median(r.p99_ms for r in idle)
    paced_p99 = statistics.median(r.p99_ms for r in paced_busy)
    busy_p99 = statistics.median(r.p99_ms for r in busy)
    spread = f"{min(r.calls_per_s for r in ingest) * VALUES:,.0f}-{max(r.calls_per_s for r in ingest) * VALUES:,.0f}"
    print(f"ReportMetrics, one sample of {VALUES} latencies per call, up to {args.in_flight} in flight; GetModel "
          f"probe 4 in flight at 200/s; {args.rounds} alternating rounds of {args.seconds:g} s")
    print(f"at the goal rate: {paced_rate:,.0f} latency samples/s, "
          f"{statistics.median(r.p50_ms for r in paced):.1f} ms p50 per call, "
          f"{statistics.median(r.p99_ms for r in paced):.1f} ms p99; GetModel p99 {paced_p99:.2f} ms "
          f"({paced_p99 / idle_p99:.2f}x idle {idle_p99:.2f} ms)")
    print(f"saturated: {rate:,.0f} latency samples/s (spread {spread}), "
          f"{statistics.median(r.p50_ms for r in ingest):.1f} ms p50 per call, "
          f"{statistics.median(r.p99_ms for r in ingest):.1f} ms p99; GetModel p99 {busy_p99:.2f} ms "
          f"({busy_p99 / idle_p99:.2f}x idle)")
    # The paced client may fall a little short of its rate from its own scheduling: within 2 % counts as kept up.
    ok = paced_rate >= 0.98 * GOAL and rate >= GOAL and paced_p99 <= 2 * idle_p99
    print(f"goal: >= {GOAL:,} samples/s with GetModel p99 <= 2x idle: {'met' if ok else 'MISSED'}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest_load.json").write_text(json.dumps({
        "in_flight": args.in_flight, "rounds": args.rounds, "seconds": args.seconds,
        "latency_samples_per_s": rate, "ingest_rounds": [r.__dict__ for r in ingest],
        "goal_rate_samples_per_s": paced_rate, "goal_rate_rounds": [r.__dict__ for r in paced],
        "getmodel_p99_idle_ms": idle_p99, "getmodel_p99_at_goal_rate_ms": paced_p99,
        "getmodel_p99_during_ingest_ms": busy_p99, "goal_rate_probe_rounds": [r.__dict__ for r in paced_busy],
        "idle_rounds": [r.__dict__ for r in idle], "busy_rounds": [r.__dict__ for r in busy]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
