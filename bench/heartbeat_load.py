#!/usr/bin/env python3
"""Heartbeats that change nothing, under load, against a bare grpc.aio echo server in the same run.

Issue 9's heartbeat goal: at 32 calls in flight on one channel, a `Heartbeat` that changes nothing
reaches at least 0.4x the echo server's calls/s, with a p99 of at most 50 ms.

One `modelctl-server` subprocess (SQLite, port 0, an admin token), one echo server subprocess, and
each round of load from its own client process (`_load.load`). 32 registered instances of one model
send their unchanged heartbeats in turn (the request names one instance per client process round,
rotated over rounds). Alternating rounds, median and spread. Writes bench/results/heartbeat_load.json.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
from pathlib import Path

import grpc

from modelctl.v1 import controller_pb2_grpc, deployment_pb2

from _harness import ModelctlServer
from _load import ECHO_METHOD, EchoServer, alternate, load, seed

RESULTS = Path(__file__).resolve().parent / "results"
SERVICE = "/modelctl.v1.ModelController/"
INSTANCES = 32


def beat(instance: int) -> deployment_pb2.HeartbeatRequest:
    return deployment_pb2.HeartbeatRequest(model="bench", instance_id=f"i{instance:03d}", loaded_version="v1",
                                           healthy=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--in-flight", type=int, default=32)
    args = parser.parse_args(argv)
    token = "mctl_bench_" + secrets.token_hex(16)
    auth = [("authorization", f"Bearer {token}")]
    with tempfile.TemporaryDirectory(prefix="modelctl-bench-") as tmp:
        server = ModelctlServer(Path(tmp) / "data", token, Path(tmp) / "server.log")
        echo = EchoServer()
        try:
            seed(server.address, token)
            with grpc.insecure_channel(server.address) as channel:
                stub = controller_pb2_grpc.ModelControllerStub(channel)
                for i in range(INSTANCES):
                    stub.RegisterInstance(deployment_pb2.RegisterInstanceRequest(
                        model="bench", instance_id=f"i{i:03d}", address=f"10.0.0.{i}:8080"), metadata=auth)
                    stub.Heartbeat(beat(i), metadata=auth)  # loads v1: the one heartbeat that changes something
            kw = {"seconds": args.seconds, "in_flight": args.in_flight}
            turn = iter(range(1 << 30))
            results = alternate({
                "echo": lambda: load(echo.address, ECHO_METHOD, b"x" * 16, **kw),
                "Heartbeat (unchanged)": lambda: load(server.address, SERVICE + "Heartbeat",
                                                      beat(next(turn) % INSTANCES).SerializeToString(),
                                                      token=token, **kw),
            }, args.rounds)
        finally:
            echo.stop()
            server.stop()
    base, hb = results["echo"], results["Heartbeat (unchanged)"]
    print(f"{args.in_flight} calls in flight on one channel, {args.rounds} alternating rounds of "
          f"{args.seconds:g} s, each load from its own process")
    print(f"{'call':<24} {'calls/s':>9} {'spread':>13} {'p50 ms':>8} {'p99 ms':>8} {'x echo/s':>9}")
    for name, s in results.items():
        print(f"{name:<24} {s.rate:>9,.0f} {s.spread():>13} {s.p50:>8.2f} {s.p99:>8.2f} {s.rate / base.rate:>9.2f}")
    ok = hb.rate >= 0.4 * base.rate and hb.p99 <= 50
    print(f"goal: >= 0.4x echo calls/s and p99 <= 50 ms: {'met' if ok else 'MISSED'}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "heartbeat_load.json").write_text(json.dumps({
        "in_flight": args.in_flight, "rounds": args.rounds, "seconds": args.seconds,
        "echo": base.to_json(), "heartbeat_unchanged": hb.to_json(), "rate_vs_echo": hb.rate / base.rate},
        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
