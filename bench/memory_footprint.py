#!/usr/bin/env python3
"""Server memory with a large fleet: RSS with 10,000 versions, 1,000 instances and 1,000 open streams.

Issue 9's memory goal: a `modelctl-server` holding 10,000 model versions, 1,000 serving instances and
1,000 open streams stays at or under 200 MB resident.

Each round starts a fresh `modelctl-server` subprocess (SQLite in a temporary directory, port 0, an
admin token) and measures its RSS (psutil, the server process only; the load runs in this process):

- **baseline** (same run, alternating with the loaded server): a server on an empty database after one
  `RegisterModel` and one `GetModel`, i.e. what the interpreter, its imports and the idle background
  loops cost before any fleet;
- **loaded**: `--models` models x `--versions` versions written straight into the database before the
  server starts (Core inserts: the registry's write path is not what is measured), then through the API:
  `GetModel` of every model (fills the read cache), every page of `ListModels`, `--deployed` models
  deployed, `--instances` instances registered with one heartbeat each (each loads its model's live
  version), and one `WatchAssignment` stream per instance, held open (100 streams per channel) until
  every stream has received its first assignment. RSS is read at each stage and once more after
  `--settle` seconds with everything open.

Prints the RSS per stage (median over rounds, with the spread), and whether the goal is met. Writes
bench/results/memory_footprint.json. Takes about a minute with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc
import psutil
from sqlalchemy import insert

from modelctl.v1 import controller_pb2_grpc, deployment_pb2, registry_pb2
from modelctl_server.store.db import Database
from modelctl_server.store.tables import ModelRow, VersionRow

from _harness import ModelctlServer

RESULTS = Path(__file__).resolve().parent / "results"
STREAMS_PER_CHANNEL = 100
GOAL_MB = 200.0


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def fill_registry(data: Path, models: int, versions: int) -> None:
    """`models` x `versions` READY versions, straight into a migrated database."""
    db = Database(f"sqlite:///{data / 'modelctl.db'}")
    db.migrate()
    now = dt.datetime.now(dt.timezone.utc)
    with db.session() as s:
        s.execute(insert(ModelRow), [{"id": m + 1, "name": f"m{m:04d}", "created_at": now} for m in range(models)])
        rows = [{"model_id": m + 1, "version": str(v + 1), "artifact_uri": f"s3://bench/m{m:04d}/{v + 1}",
                 "sha256": "", "size_bytes": 0, "state": "READY", "framework": "sklearn", "metrics": {"auc": 0.9},
                 "tags": {}, "description": "", "created_by": "bench", "created_at": now, "archived_at": None}
                for m in range(models) for v in range(versions)]
        for start in range(0, len(rows), 5000):
            s.execute(insert(VersionRow), rows[start:start + 5000])
    db.dispose()


async def gather_limited(coros: list, limit: int = 32) -> list:
    sem = asyncio.Semaphore(limit)

    async def one(c):  # noqa: ANN001, ANN202
        async with sem:
            return await c
    return await asyncio.gather(*(one(c) for c in coros))


async def load_fleet(server: ModelctlServer, token: str, args: argparse.Namespace, settle: float) -> dict[str, float]:
    """Drive the loaded server through its stages; RSS (MB) after each."""
    auth = (("authorization", f"Bearer {token}"),)
    pid = server.proc.pid
    stages = {"started": rss_mb(pid)}
    channels = [grpc.aio.insecure_channel(server.address)
                for _ in range(1 + -(-args.instances // STREAMS_PER_CHANNEL))]
    stub = controller_pb2_grpc.ModelControllerStub(channels[0])
    try:
        names = [f"m{m:04d}" for m in range(args.models)]
        models = await gather_limited([stub.GetModel(registry_pb2.GetModelRequest(name=n), metadata=auth)
                                       for n in names])
        assert all(len(m.versions) == args.versions for m in models), "a model is missing versions"
        token_ = ""
        while True:
            page = await stub.ListModels(registry_pb2.ListModelsRequest(page_size=100, page_token=token_),
                                         metadata=auth)
            token_ = page.next_page_token
            if not token_:
                break
        stages["registry read"] = rss_mb(pid)
        deployed = names[:args.deployed]
        await gather_limited([stub.DeployModel(deployment_pb2.DeployModelRequest(
            model=n, version=str(args.versions), strategy=deployment_pb2.DEPLOYMENT_STRATEGY_IMMEDIATE),
            metadata=auth) for n in deployed], limit=8)
        fleet = [(deployed[i % len(deployed)], f"i{i:04d}") for i in range(args.instances)]
        await gather_limited([stub.RegisterInstance(deployment_pb2.RegisterInstanceRequest(
            model=m, instance_id=i, address=f"10.{n // 250}.{n % 250}.1:8080"), metadata=auth)
            for n, (m, i) in enumerate(fleet)])
        await gather_limited([stub.Heartbeat(deployment_pb2.HeartbeatRequest(
            model=m, instance_id=i, loaded_version=str(args.versions), healthy=True), metadata=auth)
            for m, i in fleet])
        stages["instances"] = rss_mb(pid)
        stubs = [controller_pb2_grpc.ModelControllerStub(c) for c in channels[1:]]
        calls = [stubs[n // STREAMS_PER_CHANNEL].WatchAssignment(
            deployment_pb2.WatchAssignmentRequest(model=m, instance_id=i), metadata=auth)
            for n, (m, i) in enumerate(fleet)]
        first = await asyncio.wait_for(asyncio.gather(*(c.read() for c in calls)), 120)
        assert all(a != grpc.aio.EOF for a in first), "a stream ended before its first assignment"
        stages["streams open"] = rss_mb(pid)
        await asyncio.sleep(settle)
        stages["settled"] = rss_mb(pid)
        for c in calls:
            c.cancel()
    finally:
        for c in channels:
            await c.close()
    return stages


async def idle(server: ModelctlServer, token: str) -> dict[str, float]:
    auth = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = controller_pb2_grpc.ModelControllerStub(channel)
        await stub.RegisterModel(registry_pb2.RegisterModelRequest(name="m", version="1", artifact_uri="s3://b/1"),
                                 metadata=auth)
        await stub.GetModel(registry_pb2.GetModelRequest(name="m"), metadata=auth)
    return {"idle": rss_mb(server.proc.pid)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10, help="per model (default 10: 10,000 in all)")
    parser.add_argument("--deployed", type=int, default=100, help="models with a live version and instances")
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--settle", type=float, default=3.0)
    args = parser.parse_args(argv)
    token = "mctl_bench_" + secrets.token_hex(16)
    idle_rounds: list[dict[str, float]] = []
    loaded_rounds: list[dict[str, float]] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="modelctl-bench-") as tmp:
        for r in range(args.rounds):
            for kind in (("idle", "loaded") if r % 2 == 0 else ("loaded", "idle")):
                data = Path(tmp) / f"{kind}{r}"
                data.mkdir()
                if kind == "loaded":
                    fill_registry(data, args.models, args.versions)
                server = ModelctlServer(data, token, Path(tmp) / f"{kind}{r}.log", start_timeout=60)
                try:
                    if kind == "idle":
                        idle_rounds.append(asyncio.run(idle(server, token)))
                    else:
                        loaded_rounds.append(asyncio.run(load_fleet(server, token, args, args.settle)))
                finally:
                    server.stop()
    base = statistics.median(r["idle"] for r in idle_rounds)
    print(f"{args.models * args.versions:,} versions ({args.models:,} models), {args.instances:,} instances on "
          f"{args.deployed} deployed models, {args.instances:,} WatchAssignment streams; {args.rounds} rounds, "
          f"{time.monotonic() - started:.0f} s")
    print(f"{'server RSS':<36} {'MB':>8} {'spread':>15} {'x idle':>7}")
    print(f"{'baseline: idle, empty database':<36} {base:>8.1f} "
          f"{min(r['idle'] for r in idle_rounds):>7.1f}-{max(r['idle'] for r in idle_rounds):<7.1f} {1.0:>7.2f}")
    summary = {}
    for stage in loaded_rounds[0]:
        values = [r[stage] for r in loaded_rounds]
        summary[stage] = statistics.median(values)
        print(f"{'loaded: ' + stage:<36} {summary[stage]:>8.1f} {min(values):>7.1f}-{max(values):<7.1f} "
              f"{summary[stage] / base:>7.2f}")
    peak = max(max(r.values()) for r in loaded_rounds)
    ok = peak <= GOAL_MB
    print(f"goal: RSS <= {GOAL_MB:g} MB with everything open (highest reading {peak:.1f} MB): "
          f"{'met' if ok else 'MISSED'}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "memory_footprint.json").write_text(json.dumps({
        "models": args.models, "versions": args.versions, "deployed": args.deployed, "instances": args.instances,
        "streams": args.instances, "rounds": args.rounds, "idle_mb": idle_rounds, "loaded_mb": loaded_rounds,
        "idle_median_mb": base, "loaded_median_mb": summary, "peak_mb": peak, "goal_met": ok}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
