#!/usr/bin/env python3
"""Breach-to-rollback time over real gRPC: how fast a bad canary loses its traffic.

Starts `modelctl-server` as a subprocess (SQLite in a temporary directory, 127.0.0.1, port 0,
default config), then for each trial, on a fresh model:

1. registers v1 and v2, deploys v1 (immediate) and waits until it is live;
2. opens a `WatchTrafficSplit` stream on the model (a router's view of the split);
3. deploys v2 as a canary and waits until the stream shows the first step (5 %);
4. baseline: sends a few *healthy* `ReportMetrics` batches for v2 and times each round trip;
5. sends one *breaching* batch (50 % errors, above min_samples) and measures the time from just
   before that call until the watch stream shows 100 % on v1.

Two detection modes are measured in the same run, against the same server:

- fast-fail: error rate is a critical gate (the default), step interval 60 s. Nothing but
  fast-fail can explain a rollback within the minute.
- interval-based: `critical_gates = ["drift_score"]` (the API's way to make the error-rate gate
  non-critical; no drift source is configured, so nothing fast-fails), step interval 1 s,
  failure_limit 1, min_samples 20. The breach is sent right after the step began, so the rollback
  waits for the end of the interval and the next reconcile tick (server default 1 s).

Prints p50 / p95 / max per mode, the ratios, and for comparison Flagger's *documented* default
detection time (interval 60 s x threshold 5 = 300 s) divided by our fast-fail p95. That Flagger
number is arithmetic on its documented defaults, not a measurement.

Run: `.venv/bin/python bench/rollback_latency.py [--trials 20] [--interval-trials 5]`.
Stops by itself in well under 2 minutes (a hard budget aborts the remaining trials).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf.duration_pb2 import Duration

from modelctl.v1 import controller_pb2_grpc, deployment_pb2, registry_pb2

from _harness import BenchError, ModelctlServer, percentile

BUDGET_SECONDS = 100.0  # the whole bench, trials included; the rest is start-up and shutdown
WAIT = 20.0  # any single condition

FLAGGER_INTERVAL_S = 60.0  # Flagger's documented default analysis interval ...
FLAGGER_THRESHOLD = 5  # ... and failed checks before rollback

STATE = deployment_pb2.DeploymentState
FINAL = {STATE.DEPLOYMENT_STATE_SUCCEEDED, STATE.DEPLOYMENT_STATE_ROLLED_BACK, STATE.DEPLOYMENT_STATE_ABORTED,
         STATE.DEPLOYMENT_STATE_FAILED}


# --- the server ---------------------------------------------------------------------------------------------


class SplitWatcher:
    """A `WatchTrafficSplit` subscriber that timestamps every split the moment it arrives."""

    def __init__(self, stub: controller_pb2_grpc.ModelControllerStub, auth: list[tuple[str, str]],
                 model: str) -> None:
        self._stream = stub.WatchTrafficSplit(deployment_pb2.WatchTrafficSplitRequest(model=model), metadata=auth,
                                              timeout=WAIT * 3)
        self._seen: list[tuple[float, dict[str, float]]] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        try:
            for split in self._stream:
                now = time.perf_counter()
                with self._cond:
                    self._seen.append((now, dict(split.weights)))
                    self._cond.notify_all()
        except grpc.RpcError:
            pass  # cancelled by close(), or the deadline

    def wait_for(self, done: Callable[[dict[str, float]], bool], after: float = 0.0,
                 timeout: float = WAIT) -> float:
        """The receive time of the first split received after `after` that satisfies `done`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for at, weights in self._seen:
                    if at >= after and done(weights):
                        return at
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"split never satisfied the condition; seen: {[w for _, w in self._seen]}")
                self._cond.wait(left)

    def close(self) -> None:
        self._stream.cancel()
        self._thread.join(5)


# --- one trial ----------------------------------------------------------------------------------------------


@dataclass
class Results:
    healthy_rtt: list[float] = field(default_factory=list)
    fast_fail: list[float] = field(default_factory=list)
    fast_fail_rpc: list[float] = field(default_factory=list)
    interval: list[float] = field(default_factory=list)


class Bench:
    def __init__(self, address: str, token: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.stub = controller_pb2_grpc.ModelControllerStub(self.channel)
        self.auth = [("authorization", f"Bearer {token}")]

    def setup_live_v1(self, model: str) -> None:
        for version in ("v1", "v2"):
            self.stub.RegisterModel(registry_pb2.RegisterModelRequest(
                name=model, version=version, artifact_uri=f"s3://bench/{model}/{version}"),
                metadata=self.auth, timeout=10)
        d1 = self.deploy(model, "v1", deployment_pb2.DEPLOYMENT_STRATEGY_IMMEDIATE,
                         deployment_pb2.DeploymentParams(bake_time=Duration(seconds=0)))
        done = self.wait_final(d1)
        if done.state != STATE.DEPLOYMENT_STATE_SUCCEEDED:
            raise BenchError(f"v1 of {model} did not go live: {done}")

    def deploy(self, model: str, version: str, strategy: int, params: deployment_pb2.DeploymentParams) -> str:
        return self.stub.DeployModel(deployment_pb2.DeployModelRequest(
            model=model, version=version, strategy=strategy, params=params), metadata=self.auth, timeout=10).id

    def get(self, deployment_id: str) -> deployment_pb2.Deployment:
        return self.stub.GetDeployment(deployment_pb2.GetDeploymentRequest(id=deployment_id), metadata=self.auth,
                                       timeout=10)

    def wait_final(self, deployment_id: str) -> deployment_pb2.Deployment:
        deadline = time.monotonic() + WAIT
        while True:
            dep = self.get(deployment_id)
            if dep.state in FINAL:
                return dep
            if time.monotonic() > deadline:
                raise BenchError(f"deployment {deployment_id} did not finish: {dep}")
            time.sleep(0.01)

    def report(self, model: str, version: str, requests: int, errors: int) -> float:
        """One ReportMetrics call; returns its round trip in seconds."""
        request = deployment_pb2.ReportMetricsRequest(samples=[deployment_pb2.MetricsSample(
            model=model, version=version, requests=requests, errors=errors, latency_ms=[20.0] * requests)])
        started = time.perf_counter()
        self.stub.ReportMetrics(request, metadata=self.auth, timeout=10)
        return time.perf_counter() - started

    def trial(self, model: str, params: deployment_pb2.DeploymentParams, *, healthy_reports: int,
              breach_requests: int, results_rtt: list[float] | None) -> tuple[float, float]:
        """Returns (breach -> split back on v1 as the watcher saw it, breach ReportMetrics round trip)."""
        self.setup_live_v1(model)
        watcher = SplitWatcher(self.stub, self.auth, model)
        try:
            watcher.wait_for(lambda w: w.get("v1") == 100.0)
            d2 = self.deploy(model, "v2", deployment_pb2.DEPLOYMENT_STRATEGY_CANARY, params)
            watcher.wait_for(lambda w: 0 < w.get("v2", 0.0) < 100)  # the first canary step is live
            for _ in range(healthy_reports):
                rtt = self.report(model, "v2", 20, 0)
                if results_rtt is not None:
                    results_rtt.append(rtt)
            breach_at = time.perf_counter()
            rpc = self.report(model, "v2", breach_requests, breach_requests // 2)
            seen = watcher.wait_for(lambda w: w.get("v1") == 100.0 and not w.get("v2"), after=breach_at)
        finally:
            watcher.close()
        dep = self.get(d2)
        if dep.state != STATE.DEPLOYMENT_STATE_ROLLED_BACK or "error-rate" not in dep.reason:
            raise BenchError(f"expected a rollback on the error-rate gate: {dep}")
        return seen - breach_at, rpc

    def close(self) -> None:
        self.channel.close()


# --- output -------------------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms" if seconds < 10 else f"{seconds:9.1f} s "


def row(name: str, values: list[float]) -> str:
    if not values:
        return f"  {name:<50} {'n/a':>5}"
    return (f"  {name:<50} {len(values):>5} {ms(percentile(values, 50))} {ms(percentile(values, 95))} "
            f"{ms(max(values))}")


def report(r: Results, interval_s: float) -> None:
    print()
    print("breach-to-rollback over real gRPC (modelctl-server subprocess, SQLite, 127.0.0.1, "
          f"{os.cpu_count()} cores)")
    print(f"  {'measurement':<50} {'n':>5} {'p50':>12} {'p95':>12} {'max':>12}")
    print(row("ReportMetrics round trip, healthy batch (baseline)", r.healthy_rtt))
    print(row("fast-fail: breach sent -> watcher sees 100% v1", r.fast_fail))
    print(row("fast-fail: breaching ReportMetrics round trip", r.fast_fail_rpc))
    print(row(f"interval-based ({interval_s:g} s step, limit 1): -> 100% v1", r.interval))
    print()
    if r.fast_fail and r.healthy_rtt:
        ff50, ff95 = percentile(r.fast_fail, 50), percentile(r.fast_fail, 95)
        base50, base95 = percentile(r.healthy_rtt, 50), percentile(r.healthy_rtt, 95)
        print(f"  fast-fail vs a plain ReportMetrics round trip: p50 {ff50 / base50:.1f}x, p95 {ff95 / base95:.1f}x")
        if r.interval:
            iv50 = percentile(r.interval, 50)
            print(f"  interval-based vs fast-fail (same server):     p50 {iv50 / ff50:.0f}x slower")
        flagger = FLAGGER_INTERVAL_S * FLAGGER_THRESHOLD
        print(f"  Flagger documented default (NOT measured): interval {FLAGGER_INTERVAL_S:g} s x threshold "
              f"{FLAGGER_THRESHOLD} = {flagger:g} s to roll back")
        print(f"  -> {flagger:g} s / our fast-fail p95 {ff95 * 1000:.1f} ms = {flagger / ff95:,.0f}x")
        print(f"  goal (issue 3): rollback within 1 s of the breaching report: "
              f"{'met' if max(r.fast_fail) < 1.0 else 'NOT met'} (max {max(r.fast_fail) * 1000:.1f} ms)")


# --- main ---------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="fast-fail trials (default 20)")
    parser.add_argument("--interval-trials", type=int, default=5, help="interval-based trials (default 5)")
    parser.add_argument("--healthy-reports", type=int, default=5,
                        help="healthy ReportMetrics calls per fast-fail trial, for the baseline (default 5)")
    args = parser.parse_args(argv)

    started = time.monotonic()
    token = "bench-" + secrets.token_hex(24)
    results = Results()
    interval_s = 1.0
    fast_params = deployment_pb2.DeploymentParams(step_interval=Duration(seconds=60), min_samples=50)
    interval_params = deployment_pb2.DeploymentParams(
        step_interval=Duration(seconds=int(interval_s)), min_samples=20, failure_limit=1,
        critical_gates=["drift_score"])

    with tempfile.TemporaryDirectory(prefix="modelctl-bench-") as tmp:
        server = ModelctlServer(Path(tmp) / "data", token, Path(tmp) / "server.log")
        bench = Bench(server.address, token)
        try:
            print(f"server on {server.address}; {args.trials} fast-fail trials, "
                  f"{args.interval_trials} interval-based trials", flush=True)
            for n in range(args.trials):
                if time.monotonic() - started > BUDGET_SECONDS:
                    print(f"budget of {BUDGET_SECONDS:g} s used up after {n} fast-fail trials", flush=True)
                    break
                seen, rpc = bench.trial(f"ff-{n}", fast_params, healthy_reports=args.healthy_reports,
                                        breach_requests=200, results_rtt=results.healthy_rtt)
                results.fast_fail.append(seen)
                results.fast_fail_rpc.append(rpc)
            for n in range(args.interval_trials):
                if time.monotonic() - started > BUDGET_SECONDS:
                    print(f"budget of {BUDGET_SECONDS:g} s used up after {n} interval-based trials", flush=True)
                    break
                seen, _ = bench.trial(f"iv-{n}", interval_params, healthy_reports=0, breach_requests=40,
                                      results_rtt=None)
                results.interval.append(seen)
        except (BenchError, grpc.RpcError) as exc:
            print(f"bench failed: {exc}\n--- server log ---\n{server.log()}", file=sys.stderr)
            return 1
        finally:
            bench.close()
            server.stop()
    report(results, interval_s)
    print(f"\n(total {time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
