#!/usr/bin/env python3
"""GetModel and GetTrafficSplit under load, against a bare grpc.aio echo server in the same run.

Issue 9's read goals: at 32 calls in flight on one channel, `GetModel` and `GetTrafficSplit` each
reach at least 0.5x the echo server's calls/s (stretch 0.7x) with a p99 at most 2x the echo's.

One `modelctl-server` subprocess (SQLite, port 0, an admin token, so every call is authenticated),
one echo server subprocess (`_load.EchoServer`: echo and `grpc.health.v1.Health/Check`), and each
round of load from its own client process (`_load.load`: raw request bytes, 32 in flight, one
channel). The four loads run in alternating rounds; each row is the median over rounds, with the
spread of calls/s. Writes bench/results/hot_path_reads.json.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
from pathlib import Path

from modelctl.v1 import deployment_pb2, registry_pb2

from _harness import ModelctlServer
from _load import ECHO_METHOD, HEALTH_METHOD, EchoServer, alternate, load, seed

RESULTS = Path(__file__).resolve().parent / "results"
SERVICE = "/modelctl.v1.ModelController/"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--in-flight", type=int, default=32)
    args = parser.parse_args(argv)
    token = "mctl_bench_" + secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="modelctl-bench-") as tmp:
        server = ModelctlServer(Path(tmp) / "data", token, Path(tmp) / "server.log")
        echo = EchoServer()
        try:
            seed(server.address, token)
            get_model = registry_pb2.GetModelRequest(name="bench").SerializeToString()
            split = deployment_pb2.GetTrafficSplitRequest(model="bench").SerializeToString()
            kw = {"seconds": args.seconds, "in_flight": args.in_flight}
            results = alternate({
                "echo": lambda: load(echo.address, ECHO_METHOD, b"x" * 16, **kw),
                "health": lambda: load(echo.address, HEALTH_METHOD, b"", **kw),
                "GetModel": lambda: load(server.address, SERVICE + "GetModel", get_model, token=token, **kw),
                "GetTrafficSplit": lambda: load(server.address, SERVICE + "GetTrafficSplit", split, token=token,
                                                **kw),
            }, args.rounds)
        finally:
            echo.stop()
            server.stop()
    base = results["echo"]
    print(f"{args.in_flight} calls in flight on one channel, {args.rounds} alternating rounds of "
          f"{args.seconds:g} s, each load from its own process")
    print(f"{'call':<18} {'calls/s':>9} {'spread':>13} {'p50 ms':>8} {'p99 ms':>8} {'x echo/s':>9} {'p99/echo':>9}")
    for name, s in results.items():
        print(f"{name:<18} {s.rate:>9,.0f} {s.spread():>13} {s.p50:>8.2f} {s.p99:>8.2f} "
              f"{s.rate / base.rate:>9.2f} {s.p99 / base.p99:>9.2f}")
    for name in ("GetModel", "GetTrafficSplit"):
        s = results[name]
        ok = s.rate >= 0.5 * base.rate and s.p99 <= 2 * base.p99
        print(f"goal {name}: >= 0.5x echo calls/s and p99 <= 2x echo p99: {'met' if ok else 'MISSED'}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hot_path_reads.json").write_text(json.dumps({
        "in_flight": args.in_flight, "rounds": args.rounds, "seconds": args.seconds,
        **{name: s.to_json() for name, s in results.items()},
        "ratios": {name: {"rate_vs_echo": results[name].rate / base.rate, "p99_vs_echo": results[name].p99 / base.p99}
                   for name in ("health", "GetModel", "GetTrafficSplit")}}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
