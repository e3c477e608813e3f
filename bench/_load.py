"""Load generation for the hot-path benchmarks: a bare echo server, and a load process per round.

Not a benchmark itself (the leading underscore keeps run_all.py from running it).

- `EchoServer`: a bare `grpc.aio` server in its own process, with one unary method that returns its
  request bytes (`/bench.Echo/Echo`) and the standard `grpc.health.v1.Health` service. It is what
  gRPC itself costs on this machine: every hot-path figure is a ratio against it, measured in the
  same run.
- `load(...)`: one round of load from a *separate* process (so the client's CPU is not the server's
  interpreter), `in_flight` calls at a time on one channel, raw request bytes in, raw bytes out (no
  protobuf work in the client, so the client costs the same against every server). Returns calls/s
  and nearest-rank latency percentiles.
- `alternate(...)`: rounds of several loads, taken in turn, so background noise falls on all alike;
  then the median and spread of each.

Run as `python bench/_load.py echo` or `python bench/_load.py client ...` (used by the functions here).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from _harness import BareServer

ECHO_METHOD = "/bench.Echo/Echo"
HEALTH_METHOD = "/grpc.health.v1.Health/Check"
HERE = Path(__file__).resolve()


@dataclass(frozen=True)
class Round:
    calls_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


class EchoServer(BareServer):
    """The baseline: a bare grpc.aio server (echo + Health/Check) in a subprocess on 127.0.0.1."""

    def __init__(self) -> None:
        super().__init__([sys.executable, str(HERE), "echo"], "the echo server")


def load(address: str, method: str, request: bytes = b"", *, token: str = "", seconds: float = 3.0,
         in_flight: int = 32, rate: float = 0.0) -> Round:
    """One round from a fresh client process; `rate` > 0 paces the calls (a latency probe)."""
    cmd = [sys.executable, str(HERE), "client", address, method, base64.b64encode(request).decode(),
           "--seconds", str(seconds), "--in-flight", str(in_flight), "--rate", str(rate)]
    if token:
        cmd += ["--token", token]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(f"load process failed ({out.returncode}): {out.stderr[-2000:]}")
    data = json.loads(out.stdout)
    return Round(data["calls_per_s"], data["p50_ms"], data["p99_ms"], data["errors"])


def start_load(address: str, method: str, request: bytes = b"", *, token: str = "", seconds: float = 3.0,
               in_flight: int = 32, rate: float = 0.0) -> Callable[[], Round]:
    """Like `load`, but returns at once; call the result to wait for the round (loads side by side)."""
    cmd = [sys.executable, str(HERE), "client", address, method, base64.b64encode(request).decode(),
           "--seconds", str(seconds), "--in-flight", str(in_flight), "--rate", str(rate)]
    if token:
        cmd += ["--token", token]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait() -> Round:
        stdout, stderr = proc.communicate(timeout=seconds + 60)
        if proc.returncode != 0:
            raise RuntimeError(f"load process failed ({proc.returncode}): {stderr[-2000:]}")
        data = json.loads(stdout)
        return Round(data["calls_per_s"], data["p50_ms"], data["p99_ms"], data["errors"])
    return wait


@dataclass(frozen=True)
class Summary:
    """Median and spread over the rounds of one load."""

    rounds: list[Round]

    @property
    def rate(self) -> float:
        return statistics.median(r.calls_per_s for r in self.rounds)

    @property
    def p50(self) -> float:
        return statistics.median(r.p50_ms for r in self.rounds)

    @property
    def p99(self) -> float:
        return statistics.median(r.p99_ms for r in self.rounds)

    def spread(self) -> str:
        rates = [r.calls_per_s for r in self.rounds]
        return f"{min(rates):,.0f}-{max(rates):,.0f}"

    def to_json(self) -> dict:
        return {"calls_per_s": self.rate, "p50_ms": self.p50, "p99_ms": self.p99,
                "rounds": [r.__dict__ for r in self.rounds]}


def alternate(loads: dict[str, Callable[[], Round]], rounds: int) -> dict[str, Summary]:
    """Run each load once per round, in turn (the order rotates every round)."""
    results: dict[str, list[Round]] = {name: [] for name in loads}
    names = list(loads)
    for i in range(rounds):
        order = names[i % len(names):] + names[:i % len(names)]
        for name in order:
            results[name].append(loads[name]())
    return {name: Summary(r) for name, r in results.items()}


def seed(address: str, token: str) -> None:
    """One model with one live version, deployed, so the split is {v1: 100}."""
    auth = [("authorization", f"Bearer {token}")]
    import grpc

    from modelctl.v1 import controller_pb2_grpc, deployment_pb2, registry_pb2

    with grpc.insecure_channel(address) as channel:
        stub = controller_pb2_grpc.ModelControllerStub(channel)
        stub.RegisterModel(registry_pb2.RegisterModelRequest(name="bench", version="v1",
                                                             artifact_uri="s3://bench/v1"), metadata=auth)
        stub.DeployModel(deployment_pb2.DeployModelRequest(
            model="bench", version="v1", strategy=deployment_pb2.DEPLOYMENT_STRATEGY_IMMEDIATE), metadata=auth)


# --- the subprocesses -------------------------------------------------------------------------------------

async def _echo_main() -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_health.v1._async import HealthServicer

    async def echo(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        return request

    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler("bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)})
    server.add_generic_rpc_handlers((handler,))
    health = HealthServicer()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


async def _client_main(args: argparse.Namespace) -> dict:
    import grpc

    request = base64.b64decode(args.request)
    metadata = (("authorization", f"Bearer {args.token}"),) if args.token else None
    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(args.address, options=[("grpc.max_send_message_length", 64 << 20)]) as ch:
        call = ch.unary_unary(args.method)  # raw bytes both ways
        interval = args.in_flight / args.rate if args.rate > 0 else 0.0

        async def worker(index: int, until: float, record: bool) -> None:
            nonlocal errors
            # Paced workers start spread over one interval and keep a fixed schedule (a slow call is not
            # followed by a full interval's pause): calls arrive evenly, at the rate asked for.
            due = time.perf_counter() + interval * index / args.in_flight
            while True:
                if interval:
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                    due += interval
                start = time.perf_counter()
                if start >= until:
                    return
                try:
                    await call(request, metadata=metadata, timeout=30)
                except grpc.aio.AioRpcError:
                    errors += 1
                done = time.perf_counter()
                if record:
                    latencies.append(done - start)

        warm = time.perf_counter() + min(1.0, args.seconds / 4)
        await asyncio.gather(*(worker(i, warm, False) for i in range(args.in_flight)))
        started = time.perf_counter()
        await asyncio.gather(*(worker(i, started + args.seconds, True) for i in range(args.in_flight)))
        elapsed = time.perf_counter() - started
    if not latencies:
        raise SystemExit("no call finished")
    return {"calls_per_s": len(latencies) / elapsed, "p50_ms": percentile(latencies, 50) * 1e3,
            "p99_ms": percentile(latencies, 99) * 1e3, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("echo")
    client = sub.add_parser("client")
    client.add_argument("address")
    client.add_argument("method")
    client.add_argument("request")
    client.add_argument("--seconds", type=float, default=3.0)
    client.add_argument("--in-flight", type=int, default=32)
    client.add_argument("--rate", type=float, default=0.0)
    client.add_argument("--token", default="")
    args = parser.parse_args()
    if args.cmd == "echo":
        asyncio.run(_echo_main())
    else:
        print(json.dumps(asyncio.run(_client_main(args))))


if __name__ == "__main__":
    main()
