#!/usr/bin/env python3
"""Registry speed: modelctl's registry against MLflow's model registry, over real local network calls.

Starts, in the same run and on the same two cores:

- `modelctl-server` as a subprocess (SQLite in a temporary directory, gRPC on 127.0.0.1 port 0, an
  admin token), driven with the SDK, `modelctl.Client`;
- `mlflow server` as a subprocess (`--backend-store-uri sqlite:///<tmp>/mlflow.db`, 127.0.0.1, a free
  port), driven with `mlflow.MlflowClient`. Two departures from MLflow's defaults, both in MLflow's
  favour here: one uvicorn worker, not 4 (with more than one, uvicorn leaves Nagle's algorithm on and
  every call on a kept-alive connection waits ~40 ms for a delayed ACK: uvicorn issue 3149; try
  `--mlflow-workers 4`), and no job runner (MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: seven huey
  processes for MLflow's GenAI jobs, idle for a registry, that would otherwise import MLflow on the same
  two cores for the first half minute). The bench also waits until MLflow's processes are idle.

Both registries get the same data the same way: N models (default 500) with V versions each
(default 2, artifact URIs `s3://...`), then every operation is timed call by call, after a warm-up,
one client call at a time; registering adds 2 versions to each of the first 110 models, and the gets
read those models (4 versions each):

| operation                  | modelctl                        | MLflow                                         |
|----------------------------|---------------------------------|------------------------------------------------|
| floor (the cheapest call)  | grpc.health.v1 Check            | GET /health                                    |
| register a new version     | register_model(name, v, uri)    | create_model_version(name, source=uri)         |
| get a model + its versions | get_model(name)                 | get_registered_model + search_model_versions   |
| get a model (one call)     | get_model(name)                 | get_registered_model (latest version only)     |
| one page of 100 models     | list_models(page_size=100, ...) | search_registered_models(max_results=100, ...) |

It prints p50 / p95 / max per operation, each one as a multiple of its own server's floor (how much
the registry work costs over that server's cheapest round trip), sequential register throughput,
and the direct ratio MLflow time / modelctl time per operation (> 1: modelctl is faster).

MLflow is not a dependency of modelctl. When the `mlflow` distribution is missing from this
interpreter's environment, the bench installs it once with `pip install mlflow` (up to
--install-timeout seconds, not counted in the bench's own time; `mlflow-skinny` has the `mlflow
server` command but not Flask and the other server dependencies, so it cannot run a server). If that
fails, it prints "MLflow not available: <reason>" and still measures modelctl. MLflow's usage
telemetry is switched off for both its server and its client (MLFLOW_DISABLE_TELEMETRY, DO_NOT_TRACK).

Run: `.venv/bin/python bench/registry_speed.py [--models 500] [--calls 200]`. Stops by itself in
under 2 minutes (install excluded; a hard budget cuts the remaining calls), and stops both servers,
with every process they started, on success, error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

import modelctl

from _harness import BenchError, ModelctlServer, percentile, stop_tree

BUDGET_SECONDS = 105.0  # from the start of the servers to the last timed call; install excluded
START_TIMEOUT = 60.0  # either server, until it answers its health check
CALL_TIMEOUT = 10.0  # any single call
PAGE = 100

# MLflow must not phone home from this machine, neither its server nor its client; and a failed
# call should fail now instead of being retried with backoff for minutes.
MLFLOW_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(CALL_TIMEOUT)),
}
os.environ.update(MLFLOW_ENV)


class MlflowUnavailable(RuntimeError):
    pass


INTERRUPTED = threading.Event()


def _interrupt(signum: int, _frame: object) -> None:
    INTERRUPTED.set()
    raise KeyboardInterrupt(f"signal {signum}")


# --- MLflow, installed on demand ----------------------------------------------------------------------------


def mlflow_version() -> str | None:
    """The installed `mlflow` distribution (not `mlflow-skinny`, which cannot run a server)."""
    importlib.invalidate_caches()
    try:
        return importlib.metadata.version("mlflow")
    except importlib.metadata.PackageNotFoundError:
        return None


def ensure_mlflow(install: bool, timeout: float) -> tuple[str, float]:
    """(MLflow's version, seconds spent installing it); raises MlflowUnavailable with the reason."""
    version = mlflow_version()
    if version is not None:
        return version, 0.0
    if not install:
        raise MlflowUnavailable("the mlflow package is not installed and --no-install was given")
    print(f"mlflow is not installed in {sys.prefix}: installing it once (pip install mlflow, "
          f"at most {timeout:g} s; not counted in the bench's time) ...", flush=True)
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                               "mlflow"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise MlflowUnavailable(f"pip install mlflow took more than {timeout:g} s") from None
    took = time.monotonic() - started
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr or done.stdout).splitlines() if ln.strip() and "is ignored" not in ln]
        raise MlflowUnavailable(f"pip install mlflow failed (exit {done.returncode}): "
                                f"{lines[-1] if lines else 'no output'}")
    version = mlflow_version()
    if version is None:
        raise MlflowUnavailable("pip install mlflow succeeded but the package cannot be found")
    print(f"installed mlflow {version} in {took:.0f} s", flush=True)
    return version, took


# --- the servers --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """`mlflow server` on SQLite in a temporary directory.

    Two departures from MLflow's defaults, both printed with the results: one uvicorn worker instead
    of 4 (see --mlflow-workers), and no job-execution runner (MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false:
    seven huey consumer processes for MLflow's GenAI jobs, nothing to do with the model registry, that
    otherwise spend the first half minute importing MLflow on the same two cores).
    """

    def __init__(self, workdir: Path, workers: int) -> None:
        import requests  # an MLflow dependency, there once MLflow is

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.workers = workers
        self.log_path = workdir / "mlflow-server.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
               "--artifacts-destination", str(workdir / "mlartifacts"), "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers)]
        started = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=workdir, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **MLFLOW_ENV, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                                          # MLflow leaves lock files in the temp dir: make it ours, removed after.
                                          "TMPDIR": str(workdir), "PYTHONUNBUFFERED": "1"})
        try:
            self._wait_ready(requests, started + START_TIMEOUT)
            self.startup = time.monotonic() - started
            self._settle(started + START_TIMEOUT)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, requests: Any, deadline: float) -> None:
        with requests.Session() as probe:
            while True:
                if self.proc.poll() is not None:
                    raise BenchError(f"mlflow server exited ({self.proc.returncode}):\n{self.log()}")
                try:
                    if probe.get(f"{self.url}/health", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise BenchError(f"mlflow server not ready in {START_TIMEOUT:g} s:\n{self.log()}")
                time.sleep(0.2)

    def _settle(self, deadline: float) -> None:
        """Wait until MLflow's processes stop using CPU: workers may still be importing after /health answers."""
        while time.monotonic() < deadline:
            try:
                family = [psutil.Process(self.proc.pid)]
                family += family[0].children(recursive=True)
                before = sum(sum(p.cpu_times()[:2]) for p in family)
                time.sleep(0.5)
                used = sum(sum(p.cpu_times()[:2]) for p in family) - before
            except psutil.NoSuchProcess:
                continue  # one was starting or exiting; sample again
            if used < 0.05:  # under 10 % of one core
                return

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        stop_tree(self.proc)
        self._log.close()


# --- the two registries behind one interface ----------------------------------------------------------------


def uri(model: str, version: int) -> str:
    return f"s3://bench-artifacts/{model}/{version}/model.pkl"


class ModelctlSide:
    name = "modelctl"

    def __init__(self, address: str, token: str) -> None:
        self.client = modelctl.Client(address, token=token, timeout=CALL_TIMEOUT)
        # The SDK's own channel (token interceptor and all), so the floor goes the same way as the calls.
        self._health = health_pb2_grpc.HealthStub(self.client._channel)

    def floor(self) -> None:
        reply = self._health.Check(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT)
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            raise BenchError(f"modelctl health: {reply}")

    def create(self, model: str, versions: int) -> None:
        for v in range(1, versions + 1):
            self.client.register_model(model, str(v), uri(model, v))

    def register(self, model: str, version: int) -> None:
        got = self.client.register_model(model, str(version), uri(model, version)).model_version
        if got.version != str(version):
            raise BenchError(f"modelctl registered {got.version}, expected {version}")

    def get_with_versions(self, model: str) -> int:
        return len(self.client.get_model(model).versions)

    get_one_call = get_with_versions

    def list_page(self, token: str) -> tuple[list[str], str]:
        page = self.client.list_models(page_size=PAGE, page_token=token)
        return [m.name for m in page.models], page.next_page_token

    def close(self) -> None:
        self.client.close()


class MlflowSide:
    name = "MLflow"

    def __init__(self, url: str) -> None:
        import logging

        import requests
        from mlflow import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # "Waiting up to 300 seconds ..." per version
        self.url = url
        self.client = MlflowClient(tracking_uri=url, registry_uri=url)
        self._session = requests.Session()  # keep-alive, like MlflowClient's own session

    def floor(self) -> None:
        self._session.get(f"{self.url}/health", timeout=CALL_TIMEOUT).raise_for_status()

    def create(self, model: str, versions: int) -> None:
        self.client.create_registered_model(model)
        for v in range(1, versions + 1):
            self.client.create_model_version(model, source=uri(model, v))

    def register(self, model: str, version: int) -> None:
        got = self.client.create_model_version(model, source=uri(model, version))
        if str(got.version) != str(version):
            raise BenchError(f"MLflow registered {got.version}, expected {version}")

    def get_with_versions(self, model: str) -> int:
        self.client.get_registered_model(model)
        return len(self.client.search_model_versions(f"name = '{model}'"))

    def get_one_call(self, model: str) -> int:
        return len(self.client.get_registered_model(model).latest_versions)

    def list_page(self, token: str) -> tuple[list[str], str]:
        page = self.client.search_registered_models(max_results=PAGE, page_token=token or None)
        return [m.name for m in page], page.token or ""

    def close(self) -> None:
        self._session.close()


# --- measuring ----------------------------------------------------------------------------------------------


@dataclass
class Plan:
    models: int
    versions: int
    calls: int
    list_calls: int
    warmup: int
    seed: int = 7

    def names(self) -> list[str]:
        return [f"bench-model-{i:04d}" for i in range(self.models)]

    def register_targets(self) -> list[str]:
        """The models that get new versions, 2 each by default (under modelctl's default retention of 10,
        which would otherwise archive the oldest version on each registration)."""
        total = self.warmup + self.calls
        return self.names()[:max(1, min(self.models, (total + 1) // 2))]


@dataclass
class Side:
    name: str
    label: str
    startup: float = 0.0
    seeded_in: float = 0.0
    samples: dict[str, list[float]] = field(default_factory=dict)
    register_ops_s: float | None = None


class Clock:
    """The bench's hard budget: loops stop early, keeping what they measured, once it is used up."""

    def __init__(self, budget: float) -> None:
        self.deadline = time.monotonic() + budget
        self.cut: list[str] = []

    def over(self, what: str) -> bool:
        if time.monotonic() < self.deadline:
            return False
        if what not in self.cut:
            self.cut.append(what)
        return True


def timed(calls: list[Callable[[], object]], warmup: int, clock: Clock, what: str) -> tuple[list[float], float]:
    """Per-call seconds for `calls[warmup:]` (the first `warmup` run untimed), and their wall time."""
    for call in calls[:warmup]:
        call()
    out: list[float] = []
    started = time.perf_counter()
    for call in calls[warmup:]:
        if clock.over(what):
            break
        t0 = time.perf_counter()
        call()
        out.append(time.perf_counter() - t0)
    return out, time.perf_counter() - started


def seed(driver: Any, plan: Plan, clock: Clock) -> float:
    started = time.perf_counter()
    for name in plan.names():
        if clock.over(f"{driver.name} seeding"):
            raise BenchError(f"{driver.name}: seeding {plan.models} models did not finish within the budget")
        driver.create(name, plan.versions)
    return time.perf_counter() - started


def run_floor(driver: Any, side: Side, n: int, warmup: int, clock: Clock) -> None:
    got, _ = timed([driver.floor] * (warmup + n), warmup, clock, f"{driver.name} floor")
    side.samples.setdefault("floor", []).extend(got)


def run_register(driver: Any, side: Side, plan: Plan, clock: Clock) -> None:
    # New versions of existing models, round-robin: every target gets the same versions in both registries.
    total = plan.warmup + plan.calls
    targets = plan.register_targets()
    next_version = dict.fromkeys(targets, plan.versions + 1)
    calls: list[Callable[[], object]] = []
    for i in range(total):
        model = targets[i % len(targets)]
        version = next_version[model]
        next_version[model] += 1
        calls.append(lambda m=model, v=version: driver.register(m, v))
    got, wall = timed(calls, plan.warmup, clock, f"{driver.name} register")
    side.samples["register"] = got
    side.register_ops_s = len(got) / wall if got and wall > 0 else None


def run_get(driver: Any, side: Side, plan: Plan, clock: Clock) -> None:
    rng = random.Random(plan.seed)
    picks = [rng.choice(plan.register_targets()) for _ in range(plan.warmup + plan.calls)]
    expected = plan.versions

    def check(n: int) -> None:
        if n < expected:
            raise BenchError(f"{driver.name}: a model came back with {n} versions, expected at least {expected}")

    got, _ = timed([lambda m=m: check(driver.get_with_versions(m)) for m in picks], plan.warmup, clock,
                   f"{driver.name} get")
    side.samples["get"] = got
    if type(driver).get_one_call is not type(driver).get_with_versions:  # MLflow: a cheaper, partial get
        got, _ = timed([lambda m=m: driver.get_one_call(m) for m in picks], plan.warmup, clock,
                       f"{driver.name} get (one call)")
        side.samples["get1"] = got


def run_list(driver: Any, side: Side, plan: Plan, clock: Clock) -> None:
    """Walks the pages in order, over and over; checks that a full walk sees every model once."""
    state = {"token": "", "seen": []}
    names = plan.names()

    def page() -> None:
        got, token = driver.list_page(state["token"])
        if token and len(got) != PAGE:
            raise BenchError(f"{driver.name}: a page of {len(got)} models, expected {PAGE}")
        state["seen"] += got
        state["token"] = token
        if not token:
            if state["seen"] != names:
                raise BenchError(f"{driver.name}: a walk over the pages saw {len(state['seen'])} models, "
                                 f"expected the {len(names)} in name order")
            state["seen"] = []

    got, _ = timed([page] * (plan.warmup // 4 + plan.list_calls), plan.warmup // 4, clock, f"{driver.name} list")
    side.samples["list"] = got


# --- output -------------------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


ROWS = {
    "modelctl": [("floor", "floor: grpc.health.v1 Check"),
                 ("register", "register a version (RegisterModel)"),
                 ("get", "get model + versions (GetModel)"),
                 ("list", f"list: a page of {PAGE} models (ListModels)")],
    "MLflow": [("floor", "floor: GET /health"),
               ("register", "register a version (create_model_version)"),
               ("get", "get model + versions (get_registered_model + search_model_versions)"),
               ("get1", "get model, 1 call (get_registered_model)"),
               ("list", f"list: a page of {PAGE} models (search_registered_models)")],
}
COMPARE = [("floor", "floor", "floor (health check)"),
           ("register", "register", "register a version"),
           ("get", "get", "get model + all its versions"),
           ("get", "get1", "get model (MLflow: 1 call, latest version only)"),
           ("list", "list", f"list a page of {PAGE}")]


def report(sides: list[Side], plan: Plan, clock: Clock) -> None:
    print()
    print(f"registry speed over real network calls on 127.0.0.1 ({os.cpu_count()} cores; client and servers "
          f"on the same machine; {plan.models} models x {plan.versions} versions seeded the same way in each)")
    for s in sides:
        print(f"  {s.name:<9} {s.label}; ready in {s.startup:.1f} s, seeded in {s.seeded_in:.1f} s")
    if any(s.name == "MLflow" and "1 worker," in s.label for s in sides):
        print("  (MLflow's default of 4 uvicorn workers adds ~40 ms to every call on a kept-alive connection "
              "on Linux, uvicorn issue 3149: see it with --mlflow-workers 4)")
    print()
    print(f"  {'side':<9} {'operation':<67} {'n':>4} {'p50':>11} {'p95':>11} {'max':>11} {'p50/floor':>10}")
    for s in sides:
        floor50 = percentile(s.samples["floor"], 50) if s.samples.get("floor") else None
        for key, label in ROWS[s.name]:
            values = s.samples.get(key) or []
            if not values:
                print(f"  {s.name:<9} {label:<67} {'n/a':>4}")
                continue
            p50 = percentile(values, 50)
            ratio = f"{p50 / floor50:9.1f}x" if floor50 else ""
            print(f"  {s.name:<9} {label:<67} {len(values):>4} {ms(p50)} {ms(percentile(values, 95))} "
                  f"{ms(max(values))} {ratio:>10}")
    print()
    for s in sides:
        if s.register_ops_s:
            print(f"  {s.name:<9} sequential register throughput: {s.register_ops_s:7.1f} ops/s "
                  f"(one client, one call at a time)")
    by_name = {s.name: s for s in sides}
    ours, theirs = by_name.get("modelctl"), by_name.get("MLflow")
    if ours is None or theirs is None:
        return
    print()
    print("  modelctl vs MLflow, same operation: MLflow's time / modelctl's time (> 1: modelctl is faster)")
    print(f"  {'operation':<50} {'p50':>8} {'p95':>8}  verdict (p50)")
    for key_ours, key_theirs, label in COMPARE:
        a, b = ours.samples.get(key_ours), theirs.samples.get(key_theirs)
        if not a or not b:
            print(f"  {label:<50} {'n/a':>8}")
            continue
        r50 = percentile(b, 50) / percentile(a, 50)
        r95 = percentile(b, 95) / percentile(a, 95)
        verdict = f"modelctl {r50:.1f}x faster" if r50 >= 1 else f"MLflow {1 / r50:.1f}x faster"
        print(f"  {label:<50} {r50:7.2f}x {r95:7.2f}x  {verdict}")
    if ours.register_ops_s and theirs.register_ops_s:
        r = ours.register_ops_s / theirs.register_ops_s
        verdict = f"modelctl {r:.1f}x faster" if r >= 1 else f"MLflow {1 / r:.1f}x faster"
        print(f"  {'register throughput (modelctl ops/s / MLflow ops/s)':<50} {r:7.2f}x {'':>8}  {verdict}")
    if clock.cut:
        print(f"\n  budget of {BUDGET_SECONDS:g} s used up: cut short in {', '.join(clock.cut)}")


# --- main ---------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=500, help="models in each registry (default 500)")
    parser.add_argument("--versions", type=int, default=2, help="versions of each model when seeded (default 2)")
    parser.add_argument("--calls", type=int, default=200,
                        help="timed calls per operation: floor, register, get (default 200)")
    parser.add_argument("--list-calls", type=int, default=100, help=f"timed pages of {PAGE} (default 100)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls before each operation (default 20)")
    parser.add_argument("--skip-mlflow", action="store_true", help="measure modelctl only")
    parser.add_argument("--no-install", action="store_true", help="do not pip install mlflow when it is missing")
    parser.add_argument("--install-timeout", type=float, default=180.0,
                        help="seconds the one-time pip install mlflow may take (default 180)")
    parser.add_argument("--mlflow-workers", type=int, default=1,
                        help="uvicorn workers for mlflow server (default 1; MLflow's own default is 4, which "
                             "on Linux adds about 40 ms to every call on a kept-alive connection: uvicorn "
                             "issue 3149)")
    args = parser.parse_args(argv)
    if args.models < 2 * PAGE:
        parser.error(f"--models must be at least {2 * PAGE}, so that listing walks several pages")
    plan = Plan(models=args.models, versions=args.versions, calls=args.calls, list_calls=args.list_calls,
                warmup=args.warmup)
    # Ctrl-C (SIGINT, which also reaches the servers from a terminal) and SIGTERM (run_all's stop, `kill`)
    # end the run the same way: stop both servers and everything they started, then exit 130.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run(args, plan)
    except KeyboardInterrupt:
        print("interrupted: everything the bench started is stopped", file=sys.stderr)
        return 130


def run(args: argparse.Namespace, plan: Plan) -> int:
    mlflow_reason = "skipped (--skip-mlflow)" if args.skip_mlflow else ""
    mlflow_ver = ""
    if not args.skip_mlflow:
        try:
            mlflow_ver, _ = ensure_mlflow(not args.no_install, args.install_timeout)
        except MlflowUnavailable as exc:
            mlflow_reason = str(exc)
            print(f"MLflow not available: {mlflow_reason}", flush=True)

    started = time.monotonic()
    clock = Clock(BUDGET_SECONDS)
    token = "bench-" + secrets.token_hex(24)
    sides: list[Side] = []
    servers: list[ModelctlServer | MlflowServer] = []
    drivers: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="modelctl-bench-registry-") as tmp:
        try:
            server = ModelctlServer(Path(tmp) / "data", token, Path(tmp) / "modelctl-server.log",
                                    start_timeout=START_TIMEOUT)
            servers.append(server)
            drivers.append(ModelctlSide(server.address, token))
            sides.append(Side("modelctl", f"{modelctl_version()}: modelctl-server subprocess, SQLite, gRPC "
                                          f"on {server.address}, modelctl.Client", startup=server.startup))
            if mlflow_ver:
                try:
                    mserver = MlflowServer(Path(tmp), args.mlflow_workers)
                except BenchError as exc:
                    mlflow_reason = f"mlflow server did not start: {str(exc).splitlines()[0]}"
                    print(f"MLflow not available: {mlflow_reason}\n{exc}", flush=True)
                else:
                    servers.append(mserver)
                    drivers.append(MlflowSide(mserver.url))
                    workers = f"{mserver.workers} worker{'s' if mserver.workers > 1 else ''}"
                    sides.append(Side("MLflow", f"{mlflow_ver}: mlflow server subprocess (uvicorn, {workers}, no "
                                                f"job runner), SQLite, REST on {mserver.url}, mlflow.MlflowClient",
                                      startup=mserver.startup))
            print(f"servers up in {time.monotonic() - started:.1f} s; seeding {plan.models} models x "
                  f"{plan.versions} versions in each registry", flush=True)
            for driver, side in zip(drivers, sides):
                side.seeded_in = seed(driver, plan, clock)
            # Operation by operation, modelctl then MLflow, so a change in background load hits both.
            half = plan.calls // 2
            for driver, side in zip(drivers, sides):
                run_floor(driver, side, half, plan.warmup, clock)
            for step in (run_register, run_get, run_list):
                for driver, side in zip(drivers, sides):
                    step(driver, side, plan, clock)
            for driver, side in zip(drivers, sides):  # the floor again, at the end: same count as the others
                run_floor(driver, side, plan.calls - half, plan.warmup, clock)
        except Exception as exc:  # noqa: BLE001 - BenchError, grpc.RpcError, MLflow's and requests' own errors
            if INTERRUPTED.is_set():  # a server hit by the same Ctrl-C went away first
                raise KeyboardInterrupt from None
            print(f"bench failed: {exc if isinstance(exc, BenchError) else repr(exc)}", file=sys.stderr)
            for s in servers:
                print(f"--- {type(s).__name__} log (last lines) ---\n{s.log()}", file=sys.stderr)
            return 1
        finally:
            # Nothing may cut the clean-up short: a second Ctrl-C waits until the servers are down.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            for driver in drivers:
                driver.close()
            for s in reversed(servers):
                s.stop()
    if INTERRUPTED.is_set():
        raise KeyboardInterrupt
    report(sides, plan, clock)
    if mlflow_reason:
        print(f"\n  MLflow not available: {mlflow_reason}")
    print(f"\n(total {time.monotonic() - started:.1f} s, servers' start and stop included, install excluded)")
    return 0


def modelctl_version() -> str:
    try:
        return f"modelctl {importlib.metadata.version('modelctl')}"
    except importlib.metadata.PackageNotFoundError:
        return "modelctl"


if __name__ == "__main__":
    sys.exit(main())
