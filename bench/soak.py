#!/usr/bin/env python3
"""Soak: minutes of mixed load on one `modelctl-server` process; memory and open files must stay flat.

The load, all at once, on a SQLite server in a temporary directory:

- readers: GetTrafficSplit, GetModel, ListModels, ListDeployments in a loop;
- reporters: ReportMetrics batches for the live and the candidate version;
- a fleet of 20 serving instances heartbeating every 0.5 s;
- a deploy/rollback cycle: a canary of the other version, then RollbackModel, again and again;
- watchers: WatchTrafficSplit and WatchDeployment streams that end after 1-3 s and reconnect.

Prints calls by status code, p50/p99 per RPC, RSS and open files every 10 s, and the RSS and
open-files slope over the second half of the run (least squares; the first half includes warm-up).
Fails (exit 1) if any call got UNKNOWN/INTERNAL or the RSS slope exceeds --max-slope MB/min.

Run: `.venv/bin/python bench/soak.py [--minutes 2] [--max-slope 2.0]`. The default fits
run_all.py's 150 s budget; use --minutes 5 (or more) for the figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import collections
import random
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import grpc
import psutil
from google.protobuf.duration_pb2 import Duration

from modelctl.v1 import controller_pb2_grpc
from modelctl.v1 import deployment_pb2 as dpb
from modelctl.v1 import registry_pb2 as rpb

from _harness import ModelctlServer, percentile

MB = 1024 * 1024
FLEET = 20


class Soak:
    def __init__(self, address: str, token: str, until: float) -> None:
        self.channel = grpc.insecure_channel(address)
        self.api = controller_pb2_grpc.ModelControllerStub(self.channel)
        self.md = [("authorization", f"Bearer {token}")]
        self.until = until
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = collections.defaultdict(list)
        self.codes: collections.Counter[tuple[str, str]] = collections.Counter()

    def running(self) -> bool:
        return time.monotonic() < self.until

    def call(self, name: str, fn: Callable[..., Any], request: Any, **kw: Any) -> Any:
        start = time.perf_counter()
        try:
            result = fn(request, metadata=self.md, timeout=kw.pop("timeout", 10), **kw)
            code = "OK"
        except grpc.RpcError as exc:
            result, code = None, exc.code().name
        with self.lock:
            self.latency[name].append(time.perf_counter() - start)
            self.codes[(name, code)] += 1
        return result

    def setup(self) -> None:
        for v in ("1", "2"):
            self.call("RegisterModel", self.api.RegisterModel,
                      rpb.RegisterModelRequest(name="soak", version=v, artifact_uri=f"s3://soak/{v}"))
        self.call("DeployModel", self.api.DeployModel, dpb.DeployModelRequest(
            model="soak", version="1", strategy=dpb.DEPLOYMENT_STRATEGY_IMMEDIATE,
            params=dpb.DeploymentParams(bake_time=Duration(seconds=0))))
        for n in range(FLEET):
            self.call("RegisterInstance", self.api.RegisterInstance,
                      dpb.RegisterInstanceRequest(model="soak", instance_id=f"pod-{n}", address=f"10.0.0.{n}:80"))

    def reader(self) -> None:
        while self.running():
            self.call("GetTrafficSplit", self.api.GetTrafficSplit, dpb.GetTrafficSplitRequest(model="soak"))
            self.call("GetModel", self.api.GetModel, rpb.GetModelRequest(name="soak"))
            self.call("ListModels", self.api.ListModels, rpb.ListModelsRequest(page_size=50))
            self.call("ListDeployments", self.api.ListDeployments, dpb.ListDeploymentsRequest(page_size=20))

    def reporter(self) -> None:
        rng = random.Random(1)
        while self.running():
            samples = [dpb.MetricsSample(model="soak", version=v, requests=50, errors=rng.randint(0, 1),
                                         latency_ms=[rng.uniform(5, 80) for _ in range(50)]) for v in ("1", "2")]
            self.call("ReportMetrics", self.api.ReportMetrics, dpb.ReportMetricsRequest(samples=samples))
            time.sleep(0.02)

    def fleet(self) -> None:
        assigned = {n: "1" for n in range(FLEET)}
        while self.running():
            for n in range(FLEET):
                answer = self.call("Heartbeat", self.api.Heartbeat, dpb.HeartbeatRequest(
                    model="soak", instance_id=f"pod-{n}", loaded_version=assigned[n], healthy=True))
                if answer is not None and answer.assigned_version:
                    assigned[n] = answer.assigned_version
            time.sleep(0.5)

    def cycle(self) -> None:
        """Canary to the other version, watched a few seconds, then rolled back; repeat."""
        while self.running():
            model = self.call("GetModel", self.api.GetModel, rpb.GetModelRequest(name="soak"))
            live = model.live_version if model is not None else "1"
            other = "2" if live == "1" else "1"
            dep = self.call("DeployModel", self.api.DeployModel, dpb.DeployModelRequest(
                model="soak", version=other, strategy=dpb.DEPLOYMENT_STRATEGY_CANARY,
                params=dpb.DeploymentParams(steps=[20, 50, 100], step_interval=Duration(seconds=1), min_samples=5)))
            time.sleep(4)
            if dep is not None:
                self.call("AbortDeployment", self.api.AbortDeployment, dpb.DeploymentActionRequest(id=dep.id))
            self.call("RollbackModel", self.api.RollbackModel, dpb.RollbackModelRequest(model="soak"))
            time.sleep(1)

    def watcher(self, seed: int) -> None:
        rng = random.Random(seed)
        while self.running():
            timeout = rng.uniform(1, 3)
            if rng.random() < 0.5:
                stream = self.api.WatchTrafficSplit(dpb.WatchTrafficSplitRequest(model="soak"), metadata=self.md,
                                                    timeout=timeout)
                name = "WatchTrafficSplit"
            else:
                found = self.call("ListDeployments", self.api.ListDeployments,
                                  dpb.ListDeploymentsRequest(model="soak", page_size=1))
                if not found or not found.deployments:
                    time.sleep(0.5)
                    continue
                stream = self.api.WatchDeployment(dpb.WatchDeploymentRequest(id=found.deployments[0].id),
                                                  metadata=self.md, timeout=timeout)
                name = "WatchDeployment"
            code = "OK"
            try:
                for _ in stream:
                    pass
            except grpc.RpcError as exc:
                code = exc.code().name
            with self.lock:  # a stream that ran out its deadline is a reconnect, not a failure
                self.codes[(name, "RECONNECT" if code == "DEADLINE_EXCEEDED" else code)] += 1


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    den = sum((t - mx) ** 2 for t, _ in points)
    return 60 * sum((t - mx) * (v - my) for t, v in points) / den if den else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--max-slope", type=float, default=2.0, help="MB/min of RSS over the second half")
    args = parser.parse_args()
    token = secrets.token_urlsafe(32)
    work = Path(tempfile.mkdtemp(prefix="modelctl-soak-"))
    server = ModelctlServer(work / "data", token, work / "server.log")
    proc = psutil.Process(server.proc.pid)
    started = time.monotonic()
    soak = Soak(server.address, token, started + args.minutes * 60)
    samples: list[tuple[float, float, int]] = []
    try:
        soak.setup()
        workers = [soak.reader, soak.reader, soak.reporter, soak.reporter, soak.fleet, soak.cycle]
        threads = [threading.Thread(target=w, daemon=True) for w in workers]
        threads += [threading.Thread(target=soak.watcher, args=(n,), daemon=True) for n in range(6)]
        for t in threads:
            t.start()
        print(f"soak: {args.minutes:g} min, {len(threads)} load threads, {FLEET} instances")
        while soak.running():
            t = time.monotonic() - started
            samples.append((t, proc.memory_info().rss / MB, proc.num_fds()))
            if len(samples) % 2 == 1:
                print(f"  {t:5.0f} s  RSS {samples[-1][1]:6.1f} MB  open files {samples[-1][2]}", flush=True)
            time.sleep(5)
        for t in threads:
            t.join(15)
        samples.append((time.monotonic() - started, proc.memory_info().rss / MB, proc.num_fds()))
    finally:
        server.stop()
        soak.channel.close()

    half = [s for s in samples if s[0] >= samples[-1][0] / 2]
    rss_slope = slope([(t, mb) for t, mb, _ in half])
    fd_slope = slope([(t, fds) for t, _, fds in half])
    by_code: collections.Counter[str] = collections.Counter()
    for (_, code), count in soak.codes.items():
        by_code[code] += count
    print("\ncalls by status code: " + ", ".join(f"{c} {n}" for c, n in by_code.most_common()))
    print(f"{'RPC':<20} {'calls':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, values in sorted(soak.latency.items()):
        p50, p99 = percentile(values, 50) * 1000, percentile(values, 99) * 1000
        print(f"{name:<20} {len(values):>8} {p50:>8.1f} {p99:>8.1f}")
    print(f"RSS: start {samples[0][1]:.1f} MB, end {samples[-1][1]:.1f} MB, max {max(s[1] for s in samples):.1f} MB; "
          f"slope over the second half {rss_slope:+.2f} MB/min")
    print(f"open files: start {samples[0][2]}, end {samples[-1][2]}, slope over the second half {fd_slope:+.2f}/min")
    bad = by_code.get("UNKNOWN", 0) + by_code.get("INTERNAL", 0)
    if bad or rss_slope > args.max_slope:
        print(f"FAIL: {bad} UNKNOWN/INTERNAL, RSS slope {rss_slope:+.2f} MB/min (limit {args.max_slope:g})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
