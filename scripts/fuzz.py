#!/usr/bin/env python3
"""The long fuzz run: N generated requests (default 100,000) against a `modelctl-server` process.

Requests come from the same descriptor-driven strategies as the short run in `make test`
(tests/fuzz_requests.py): every RPC, edge values, huge repeated fields and maps, raw and
mutated bytes, every identity. Hypothesis generates them on this thread; a pool of senders
sends them, so the server sees concurrent hostile traffic. The server is a subprocess on
SQLite, so its RSS is its own.

Prints, and with --json writes: requests tried, status codes (overall and per RPC for the
ones a contract forbids), RSS over time, health at the end. Exits 1 if any request got
UNKNOWN or INTERNAL or the server stopped serving.

Run: `.venv/bin/python scripts/fuzz.py [--requests 100000] [--senders 8] [--json out.json]`.
"""

from __future__ import annotations

import argparse
import collections
import json
import secrets
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import psutil
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

from modelctl.v1 import controller_pb2_grpc, registry_pb2, system_pb2  # noqa: E402
from modelctl.v1 import deployment_pb2 as dpb  # noqa: E402

from _harness import ModelctlServer  # noqa: E402
from fuzz_requests import IDENTITIES, METHODS, Target, acceptable, requests  # noqa: E402

MB = 1024 * 1024


def seed(address: str, admin_token: str) -> dict[str, str]:
    """The state the fuzzer's known names refer to; returns a token per role."""
    channel = grpc.insecure_channel(address)
    api = controller_pb2_grpc.ModelControllerStub(channel)
    md = [("authorization", f"Bearer {admin_token}")]
    for v in ("1", "2"):
        api.RegisterModel(registry_pb2.RegisterModelRequest(name="fraud", version=v, artifact_uri=f"s3://m/{v}"),
                          metadata=md)
    api.DeployModel(dpb.DeployModelRequest(model="fraud", version="1", strategy=dpb.DEPLOYMENT_STRATEGY_IMMEDIATE,
                                           params=dpb.DeploymentParams(bake_time=Duration(seconds=0))), metadata=md)
    api.RegisterInstance(dpb.RegisterInstanceRequest(model="fraud", instance_id="pod-a"), metadata=md)
    roles = {"viewer": system_pb2.ROLE_VIEWER, "operator": system_pb2.ROLE_OPERATOR}
    tokens = {name: api.CreateToken(system_pb2.CreateTokenRequest(name=f"fuzz-{name}", role=role), metadata=md).token
              for name, role in roles.items()}
    channel.close()
    return {**tokens, "admin": admin_token}


def serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.RpcError:
            return False
    return answer.status == health_pb2.HealthCheckResponse.SERVING


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--stream-timeout", type=float, default=0.1, help="seconds a server stream is read")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    token = secrets.token_urlsafe(32)
    work = Path(tempfile.mkdtemp(prefix="modelctl-fuzz-"))
    server = ModelctlServer(work / "data", token, work / "server.log")
    proc = psutil.Process(server.proc.pid)
    codes: collections.Counter[str] = collections.Counter()
    forbidden: list[str] = []
    rss: list[tuple[int, float, float]] = []  # (requests sent, seconds, MB)
    lock = threading.Lock()
    sent = 0
    started = time.monotonic()
    try:
        target = Target(server.address, seed(server.address, token), stream_timeout=args.stream_timeout)
        rss.append((0, 0.0, proc.memory_info().rss / MB))
        baseline = rss[0][2]
        pool = ThreadPoolExecutor(args.senders)
        slots = threading.Semaphore(args.senders * 4)

        def send(method, payload: bytes, identity: str) -> None:  # type: ignore[no-untyped-def]
            try:
                outcome = target.call(method, payload, identity)
                with lock:
                    codes[outcome.code.name] += 1
                    if not acceptable(method, outcome):
                        forbidden.append(f"{method.name} as {identity}: {outcome.code.name} {outcome.details[:200]} "
                                         f"payload={payload[:120].hex()}")
            finally:
                slots.release()

        strategies = {m.name: requests(m) for m in METHODS}

        @settings(max_examples=args.requests, phases=[Phase.generate], deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(st.data())
        def generate(data: st.DataObject) -> None:
            nonlocal sent
            method = data.draw(st.sampled_from(METHODS))
            payload = data.draw(strategies[method.name])
            identity = data.draw(st.sampled_from(IDENTITIES))
            slots.acquire()
            pool.submit(send, method, payload, identity)
            sent += 1
            if sent % 2000 == 0:
                rss.append((sent, time.monotonic() - started, proc.memory_info().rss / MB))
                print(f"{sent:>7} requests  {rss[-1][1]:6.0f} s  RSS {rss[-1][2]:6.1f} MB  "
                      f"codes {dict(codes.most_common(6))}", flush=True)

        generate()
        pool.shutdown(wait=True)
        elapsed = time.monotonic() - started
        rss.append((sent, elapsed, proc.memory_info().rss / MB))
        still_serving = serving(server.address)
        target.close()
    finally:
        server.stop()

    peak = max(mb for _, _, mb in rss)
    print(f"\n{sent} requests over {len(METHODS)} RPCs in {elapsed:.0f} s ({sent / elapsed:.0f}/s), "
          f"{args.senders} senders")
    print("status codes: " + ", ".join(f"{name} {count}" for name, count in codes.most_common()))
    print(f"RSS: start {baseline:.1f} MB, peak {peak:.1f} MB, end {rss[-1][2]:.1f} MB")
    print(f"UNKNOWN/INTERNAL: {len(forbidden)}; health at the end: {'SERVING' if still_serving else 'NOT SERVING'}")
    for line in forbidden[:20]:
        print("  " + line)
    if args.json:
        args.json.write_text(json.dumps({
            "requests": sent, "seconds": round(elapsed, 1), "senders": args.senders, "codes": dict(codes),
            "rss_mb": [(n, round(t, 1), round(mb, 1)) for n, t, mb in rss], "forbidden": forbidden[:100],
            "serving_at_end": still_serving}, indent=1))
    return 0 if not forbidden and still_serving else 1


if __name__ == "__main__":
    sys.exit(main())
