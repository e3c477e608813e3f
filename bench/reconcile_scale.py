#!/usr/bin/env python3
"""1,000 active deployments: one reconcile pass when nothing is due, and start-up with an hour of journal.

Issue 9's scale goals: with 1,000 active deployments, one pass of the reconcile loop takes at most
100 ms when no step is due, and a server starts in at most 2 s with a full hour of metrics journal.

- **reconcile pass**: in this process, on SQLite in a temporary directory, the real engine
  (`DeploymentController` over `SqlDeploymentRepository`) with 1,000 models, each with a canary at its
  first step (an hour-long interval, so nothing is due) and a little traffic in the metrics store. Timed:
  `advance_all()` (a whole tick), against the baseline of the same run: one empty read transaction
  per deployment, what the old tick's locked transaction per deployment cost at the least.
- **start-up**: the same database gets an hour of `metric_reports` (`--reports-per-second`, spread
  over the 1,000 models and some retired ones), then a `modelctl-server` subprocess starts on it;
  timed from spawn to its ready line, against the same server started on an empty database.
Writes bench/results/reconcile_scale.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from modelctl_server.clock import SystemClock
from modelctl_server.deployments.engine import DeploymentController
from modelctl_server.deployments.params import ParamOverrides
from modelctl_server.deployments.phases import Strategy
from modelctl_server.registry.artifacts import ArtifactStore
from modelctl_server.registry.service import NewVersion, RegistryService
from modelctl_server.store.db import Database
from modelctl_server.store.deployments import SqlDeploymentRepository
from modelctl_server.store.metric_journal import MetricReportRow
from modelctl_server.telemetry.store import MetricsStore

from _harness import ModelctlServer

RESULTS = Path(__file__).resolve().parent / "results"


def build(db: Database, models: int, data: Path) -> tuple[DeploymentController, MetricsStore]:
    clock = SystemClock()
    registry = RegistryService(db, clock, ArtifactStore(data / "models"))
    store = MetricsStore(clock)
    engine = DeploymentController(SqlDeploymentRepository(db), clock, store)
    for i in range(models):
        name = f"m{i:04d}"
        for version in ("1", "2"):
            registry.register(NewVersion(name, version, f"s3://bench/{name}/{version}"))
        first = engine.create(name, "1", Strategy.IMMEDIATE, ParamOverrides(bake_time=0.0))
        engine.advance(first.deployment.id)
        engine.advance(first.deployment.id)
        hour = ParamOverrides(step_interval=3600.0, progress_deadline=7200.0)
        canary = engine.create(name, "2", Strategy.CANARY, hour)
        engine.advance(canary.deployment.id)  # step 1: 5 %, watched for an hour
        for version in ("1", "2"):
            store.ingest(name, version, requests=100, errors=1, latency_ms=[20.0] * 50)
    return engine, store


def fill_journal(db: Database, models: int, per_second: float, seconds: float) -> int:
    now = dt.datetime.now(dt.timezone.utc)
    total = int(per_second * seconds)
    step = seconds / total
    rows = [{"model": f"m{i % (models + 200):04d}", "version": "1" if i % 3 else "2",
             "time": now - dt.timedelta(seconds=seconds - i * step), "requests": 100, "errors": 1,
             "latency": {"80": 40.0, "95": 10.0}} for i in range(total)]
    with db.session() as s:
        for start in range(0, total, 20_000):
            s.execute(insert(MetricReportRow), rows[start:start + 20_000])
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--passes", type=int, default=7)
    parser.add_argument("--reports-per-second", type=float, default=100.0,
                        help="journal density over the hour (default 100/s: 360,000 rows)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modelctl-bench-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        db = Database(f"sqlite:///{data / 'modelctl.db'}")
        db.migrate()
        started = time.perf_counter()
        engine, _store = build(db, args.deployments, data)
        print(f"set up {args.deployments} active canaries in {time.perf_counter() - started:.1f} s")
        passes, baseline = [], []
        for _ in range(args.passes):
            t = time.perf_counter()
            events = engine.advance_all()
            passes.append(time.perf_counter() - t)
            assert not events, f"nothing should be due, yet {len(events)} events"
            t = time.perf_counter()
            for _ in range(args.deployments):
                with db.read():
                    pass
            baseline.append(time.perf_counter() - t)
        tick, base = statistics.median(passes) * 1e3, statistics.median(baseline) * 1e3
        print(f"reconcile pass, {args.deployments} active deployments, nothing due: {tick:.1f} ms median "
              f"({min(passes) * 1e3:.1f}-{max(passes) * 1e3:.1f}) over {args.passes} passes; baseline, "
              f"{args.deployments} empty read transactions: {base:.1f} ms ({tick / base:.2f}x)", flush=True)
        rows = fill_journal(db, args.deployments, args.reports_per_second, 3600.0)
        db.dispose()
        token = "mctl_bench_" + secrets.token_hex(16)
        full, empty = [], []
        for i in range(3):
            server = ModelctlServer(data, token, Path(tmp) / f"full{i}.log")
            full.append(server.startup)
            server.stop()
            server = ModelctlServer(Path(tmp) / f"empty{i}", token, Path(tmp) / f"empty{i}.log")
            empty.append(server.startup)
            server.stop()
    start_full, start_empty = statistics.median(full), statistics.median(empty)
    print(f"start-up with an hour of journal ({rows:,} reports): {start_full:.2f} s median "
          f"({min(full):.2f}-{max(full):.2f}); empty database: {start_empty:.2f} s ({start_full / start_empty:.2f}x)")
    print(f"goal pass <= 100 ms: {'met' if tick <= 100 else 'MISSED'}; "
          f"goal start-up <= 2 s: {'met' if start_full <= 2 else 'MISSED'}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "reconcile_scale.json").write_text(json.dumps({
        "deployments": args.deployments, "pass_ms": [p * 1e3 for p in passes],
        "baseline_empty_reads_ms": [b * 1e3 for b in baseline], "journal_rows": rows,
        "startup_full_s": full, "startup_empty_s": empty}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
