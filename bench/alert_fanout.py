#!/usr/bin/env python3
"""Alert fan-out over real gRPC: raise-to-receipt latency and missed events for 10, 100 and 1,000
concurrent `StreamAlerts` subscribers on one controller.

Starts `modelctl-server` as a subprocess (SQLite in a temporary directory, 127.0.0.1, port 0) with the
alert evaluator ticking every 250 ms (`MODELCTL_ALERTS_EVALUATE_INTERVAL`) and the system rules off
(a saturated benchmark machine must not add CPU alerts). Then, per subscriber count:

1. subscriber processes (`--subscribe` mode of this script, grpc.aio, at most 100 streams per channel)
   open their live-only `StreamAlerts` calls and report ready once every stream has its
   `modelctl-alert-cursor` header, i.e. follows the live feed;
2. one `ReportMetrics` call per alert breaches the error-rate threshold of a fresh model version; the
   evaluator raises an ERROR alert at its next tick. ALERTS alerts, RAISE_GAP apart;
3. each subscriber stamps every RAISED event on receipt. Latency = receipt time minus the alert's
   `created_at` (the engine's clock when it opened the alert, inside the transaction that commits it),
   so the evaluator's tick interval is not counted: it measures commit + announce + fan-out + delivery.
   Missed = alerts x subscribers minus the (alert, subscriber) pairs received.

Prints p50 / p99 / max latency and missed per subscriber count; the goal is p99 <= 100 ms and 0 missed.
Server and clients share the machine, so client-side decoding is in the figure.

Each level is also run, in the same run and with the same subscriber processes, against the floor: a bare
grpc.aio server (`--floor-server` mode) whose `ReportMetrics` stamps an alert event at once and puts it in
an asyncio queue per stream, with nothing of modelctl behind it. Its p99 is what grpc.aio and asyncio alone
cost to fan an event out to that many streams on this machine: machines differ by 2x on this figure.

Run: `.venv/bin/python bench/alert_fanout.py [--alerts 20] [--levels 10,100,1000]`. Stops by itself
well within bench/run_all.py's 150 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

from modelctl.v1 import alert_pb2, controller_pb2_grpc, deployment_pb2, registry_pb2

from _harness import BareServer, BenchError, ModelctlServer, percentile

RESULTS = Path(__file__).resolve().parent / "results"

BUDGET_SECONDS = 120.0
STREAMS_PER_CHANNEL = 100
STREAMS_PER_PROCESS = 250
RAISE_GAP = 0.5  # seconds between two alerts: each is its own evaluator tick and its own fan-out
DRAIN = 5.0  # how long after the last raise a subscriber may still be receiving
SERVER_SETTINGS = {
    "MODELCTL_ALERTS_EVALUATE_INTERVAL": "250ms",
    "MODELCTL_ALERTS_MIN_SAMPLES": "10",
    "MODELCTL_ALERTS_CPU_PERCENT": "100",
    "MODELCTL_ALERTS_MEMORY_PERCENT": "100",
    "MODELCTL_ALERTS_LOOP_LAG": "60s",
}


# --- subscriber process -----------------------------------------------------------------------------------

async def subscribe(address: str, token: str, streams: int, prefix: str, expected: int) -> None:
    """Open `streams` live-only streams; print READY, then one JSON line of results after STOP (stdin)."""
    auth = (("authorization", f"Bearer {token}"),)
    channels = [grpc.aio.insecure_channel(address) for _ in range(-(-streams // STREAMS_PER_CHANNEL))]
    stubs = [controller_pb2_grpc.ModelControllerStub(c) for c in channels]
    latencies: list[float] = []
    received = [0] * streams
    complete = asyncio.Event()
    done_streams = 0
    calls = [stubs[i // STREAMS_PER_CHANNEL].StreamAlerts(alert_pb2.StreamAlertsRequest(), metadata=auth)
             for i in range(streams)]

    async def follow(i: int, call: grpc.aio.UnaryStreamCall) -> None:
        nonlocal done_streams
        seen: set[str] = set()
        try:
            async for event in call:
                now = time.time()
                alert = event.alert
                if event.kind != alert_pb2.ALERT_EVENT_KIND_RAISED or not alert.model.startswith(prefix):
                    continue
                if alert.id in seen:
                    continue  # a duplicate would be a bug; it is not counted twice
                seen.add(alert.id)
                latencies.append(now - alert.created_at.ToNanoseconds() / 1e9)
                received[i] += 1
                if received[i] == expected:
                    done_streams += 1
                    if done_streams == streams:
                        complete.set()
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                print(f"stream {i}: {exc.code().name} {exc.details()}", file=sys.stderr)

    headers = await asyncio.gather(*(c.initial_metadata() for c in calls))
    if not all(dict(h or ()).get("modelctl-alert-cursor") for h in headers):
        raise BenchError("a stream did not report its starting cursor")
    tasks = [asyncio.create_task(follow(i, c)) for i, c in enumerate(calls)]
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    stop = loop.run_in_executor(None, sys.stdin.readline)
    await asyncio.wait([asyncio.ensure_future(complete.wait()), stop], return_when=asyncio.FIRST_COMPLETED)
    if complete.is_set():
        print("DONE", flush=True)
        await stop
    for call in calls:
        call.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await channel.close()
    print(json.dumps({"latencies": latencies, "received": sum(received)}), flush=True)


# --- the floor: a bare grpc.aio fan-out --------------------------------------------------------------------

async def floor_server() -> None:
    """Serve the three calls the benchmark makes, on 127.0.0.1:0, with nothing of modelctl behind them.

    `StreamAlerts` follows an `asyncio.Queue` of its own; `ReportMetrics` makes one RAISED event per sample
    (alert id and model = the sample's model, created_at = now), serialises it once and puts the bytes in
    every queue; `RegisterModel` answers an empty response. Metadata (the token) is ignored."""
    # In subscription order, as modelctl's hub keeps them: streams opened together share a connection, and
    # waking them together lets grpc write their messages in one pass (hash order costs about 1.5x the p99).
    queues: dict[asyncio.Queue[bytes], None] = {}

    async def stream_alerts(_request: bytes, context: grpc.aio.ServicerContext):  # type: ignore[no-untyped-def]
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        queues[queue] = None
        try:
            await context.send_initial_metadata((("modelctl-alert-cursor", "0"),))
            while True:
                yield await queue.get()
        finally:
            queues.pop(queue, None)

    async def report_metrics(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        samples = deployment_pb2.ReportMetricsRequest.FromString(request).samples
        for sample in samples:
            event = alert_pb2.AlertEvent(kind=alert_pb2.ALERT_EVENT_KIND_RAISED,
                                         alert=alert_pb2.Alert(id=sample.model, model=sample.model))
            event.alert.created_at.FromNanoseconds(time.time_ns())
            data = event.SerializeToString()
            for queue in queues:
                queue.put_nowait(data)
        return deployment_pb2.ReportMetricsResponse(accepted_samples=len(samples)).SerializeToString()

    async def register_model(_request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        return b""

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("modelctl.v1.ModelController", {
        "StreamAlerts": grpc.unary_stream_rpc_method_handler(stream_alerts),
        "ReportMetrics": grpc.unary_unary_rpc_method_handler(report_metrics),
        "RegisterModel": grpc.unary_unary_rpc_method_handler(register_model),
    }),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


class FloorServer(BareServer):
    """`floor_server` in a subprocess."""

    def __init__(self) -> None:
        super().__init__([sys.executable, __file__, "--floor-server"], "the floor server")


# --- the benchmark ----------------------------------------------------------------------------------------

class Subscribers:
    """Subscriber processes for one level; `results()` after `stop()`."""

    def __init__(self, address: str, token: str, total: int, prefix: str, expected: int) -> None:
        sizes = [min(STREAMS_PER_PROCESS, total - start) for start in range(0, total, STREAMS_PER_PROCESS)]
        self.procs = [subprocess.Popen(
            [sys.executable, __file__, "--subscribe", address, token, str(n), prefix, str(expected)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ.copy()) for n in sizes]
        self._lines = [self._reader(p) for p in self.procs]

    @staticmethod
    def _reader(proc: subprocess.Popen[str]) -> list[str]:
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True).start()
        return lines

    def wait_for(self, word: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(any(line.strip() == word for line in lines) for lines in self._lines):
                return True
            if any(p.poll() not in (None, 0) for p in self.procs):
                raise BenchError("a subscriber process failed")
            time.sleep(0.02)
        return False

    def stop(self) -> list[dict]:
        for p in self.procs:
            if p.stdin is not None:
                p.stdin.write("STOP\n")
                p.stdin.flush()
        for p in self.procs:
            p.wait(30)
        time.sleep(0.05)  # the reader threads take the last line
        return [json.loads(lines[-1]) for lines in self._lines]

    def kill(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)


class Bench:
    def __init__(self, address: str, token: str) -> None:
        self.address, self.token = address, token
        self.channel = grpc.insecure_channel(address)
        self.stub = controller_pb2_grpc.ModelControllerStub(self.channel)
        self.auth = [("authorization", f"Bearer {token}")]

    def register(self, model: str) -> None:
        self.stub.RegisterModel(registry_pb2.RegisterModelRequest(
            name=model, version="1", artifact_uri=f"s3://bench/{model}/1"), metadata=self.auth, timeout=10)

    def breach(self, model: str) -> None:
        """Half the requests fail: the error-rate rule fires at the evaluator's next tick."""
        self.stub.ReportMetrics(deployment_pb2.ReportMetricsRequest(samples=[deployment_pb2.MetricsSample(
            model=model, version="1", requests=50, errors=25)]), metadata=self.auth, timeout=10)

    def level(self, subscribers: int, alerts: int, *, tag: str = "") -> dict:
        prefix = f"fan{tag}{subscribers}-"
        models = [f"{prefix}{i}" for i in range(alerts)]
        for model in models:
            self.register(model)
        started = time.monotonic()
        subs = Subscribers(self.address, self.token, subscribers, prefix, alerts)
        try:
            if not subs.wait_for("READY", 60):
                raise BenchError(f"{subscribers} subscribers not ready in 60 s")
            ready = time.monotonic() - started
            for model in models:
                self.breach(model)
                time.sleep(RAISE_GAP)
            subs.wait_for("DONE", DRAIN)
            results = subs.stop()
        finally:
            subs.kill()
        latencies = [x * 1000 for r in results for x in r["latencies"]]
        received = sum(r["received"] for r in results)
        return {"subscribers": subscribers, "alerts": alerts, "ready_s": ready, "latencies": latencies,
                "missed": subscribers * alerts - received}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=20, help="alerts raised per subscriber count")
    parser.add_argument("--levels", default="10,100,1000", help="subscriber counts, comma-separated")
    parser.add_argument("--subscribe", nargs=5, metavar=("ADDR", "TOKEN", "N", "PREFIX", "EXPECTED"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--floor-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.subscribe:
        address, token, n, prefix, expected = args.subscribe
        asyncio.run(subscribe(address, token, int(n), prefix, int(expected)))
        return 0
    if args.floor_server:
        asyncio.run(floor_server())
        return 0

    levels = [int(x) for x in args.levels.split(",")]
    token = "mctl_" + secrets.token_hex(24)
    began = time.monotonic()
    rows, floors = [], []
    with tempfile.TemporaryDirectory(prefix="modelctl-bench-") as tmp:
        server = ModelctlServer(Path(tmp) / "data", token, Path(tmp) / "server.log", settings=SERVER_SETTINGS)
        baseline = None
        try:
            baseline = FloorServer()
            bench, floor = Bench(server.address, token), Bench(baseline.address, token)
            for n in levels:
                if time.monotonic() - began > BUDGET_SECONDS:
                    print(f"budget spent: skipping {n} subscribers", file=sys.stderr)
                    continue
                rows.append(bench.level(n, args.alerts))
                floors.append(floor.level(n, args.alerts, tag="floor"))
        except BenchError as exc:
            print(f"benchmark failed: {exc}\n{server.log()}", file=sys.stderr)
            return 1
        finally:
            server.stop()
            if baseline is not None:
                baseline.stop()
    print(f"\nStreamAlerts fan-out: {args.alerts} alerts per row, raise (alert created_at) -> receipt, "
          f"{os.cpu_count()} CPUs, server and subscribers on this machine\n")
    print(f"{'subscribers':>11}  {'ready':>7}  {'p50 ms':>7}  {'p99 ms':>7}  {'max ms':>7}  {'missed':>6}  goal    "
          f"{'floor p50':>9}  {'floor p99':>9}  {'p99 / floor':>11}")
    summary = []
    for r, f in zip(rows, floors):
        p50, p99, worst = _figures(r["latencies"])
        floor_p50, floor_p99, _ = _figures(f["latencies"])
        met = bool(r["latencies"]) and p99 <= 100 and r["missed"] == 0
        ratio = p99 / floor_p99 if floor_p99 else float("inf")
        print(f"{r['subscribers']:>11}  {r['ready_s']:>6.1f}s  {p50:>7.1f}  {p99:>7.1f}  {worst:>7.1f}  "
              f"{r['missed']:>6}  {'met   ' if met else 'MISSED'}  "
              f"{floor_p50:>9.1f}  {floor_p99:>9.1f}  {ratio:>10.2f}x")
        summary.append({"subscribers": r["subscribers"], "alerts": r["alerts"], "ready_s": r["ready_s"],
                        "p50_ms": p50, "p99_ms": p99, "max_ms": worst, "missed": r["missed"], "met": met,
                        "floor_p50_ms": floor_p50, "floor_p99_ms": floor_p99, "floor_missed": f["missed"]})
    print(f"\n(goal: p99 <= 100 ms and 0 missed. floor: a bare grpc.aio server fanning each event out to the same "
          f"subscribers, in the same run; took {time.monotonic() - began:.0f} s)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "alert_fanout.json").write_text(json.dumps({"levels": summary}, indent=2) + "\n")
    return 0


def _figures(latencies: list[float]) -> tuple[float, float, float]:
    """p50, p99 and max; zeros when nothing arrived."""
    if not latencies:
        return 0.0, 0.0, 0.0
    return percentile(latencies, 50), percentile(latencies, 99), max(latencies)


if __name__ == "__main__":
    sys.exit(main())
