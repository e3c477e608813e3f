"""Every panel of the six Grafana dashboards returns data from a real Prometheus scraping a real controller.

A `modelctl-server` process gets the traffic the dashboards are about: registrations, a canary
that succeeds and one that rolls back, metrics with latencies, features, predictions, labels and
outcomes, drift against a reference, an A/B experiment, alerts and their notifications (one
receiver answers, one is down), open streams and failing calls. A Debian `prometheus` scrapes it
every second with the repository's own config and rules. Then each panel's query, each template
variable and each annotation is run the way Grafana runs it (variables substituted, `$__interval`,
`$__rate_interval` and `$__range` computed from the dashboard's time range and the scrape interval)
against Prometheus' HTTP API: each must be valid and return at least one finite value.
Without Prometheus the test skips (it fails in CI); `make system-deps` installs it.
"""

from __future__ import annotations

import http.server
import json
import math
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import grpc
import pytest
import yaml
from google.protobuf.duration_pb2 import Duration
from observability_support import PROMETHEUS_DIR, annotations, dashboards, panels, require_tool, variables

from modelctl.v1 import alert_pb2, controller_pb2_grpc, deployment_pb2, drift_pb2, experiment_pb2, registry_pb2

pytestmark = pytest.mark.slow

SCRAPE_SECONDS = 1
TOKEN = "observability-test-admin-token-0123456789"
#: The longest we wait for a query to show data once the traffic has been sent. The drift and
#: experiment gauges are refreshed every 15 s by their engines; the rest is there within seconds.
SETTLE_SECONDS = 40.0


# --- processes ------------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Process:
    """A child process whose output goes to a file, killed at the end whatever happens."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE if env is not None else self._out,
                                     stderr=self._out, env=env, text=env is not None)

    def tail(self) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._out.close()


def _start_controller(tmp: Path, hook_port: int, dead_port: int) -> tuple[_Process, str, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELCTL_")}
    env.update({
        "MODELCTL_SERVER_GRPC_ADDRESS": "127.0.0.1:0",
        "MODELCTL_SERVER_METRICS_ADDRESS": "127.0.0.1:0",
        "MODELCTL_SERVER_DATA_DIR": str(tmp / "data"),
        "MODELCTL_SERVER_SHUTDOWN_GRACE": "1s",
        "MODELCTL_ADMIN_TOKEN": TOKEN,
        "MODELCTL_DEPLOYMENT_STEP_INTERVAL": "300ms",
        "MODELCTL_DEPLOYMENT_BAKE_TIME": "300ms",
        "MODELCTL_DEPLOYMENT_RECONCILE_INTERVAL": "100ms",
        "MODELCTL_DEPLOYMENT_MIN_SAMPLES": "10",
        "MODELCTL_ALERTS_EVALUATE_INTERVAL": "500ms",
        "MODELCTL_ALERTS_MIN_SAMPLES": "10",
        # One receiver that answers and one that is down: sent, pending and given-up deliveries.
        "MODELCTL_NOTIFICATIONS_URLS": f"json://127.0.0.1:{hook_port}/hook,json://127.0.0.1:{dead_port}/down",
        "MODELCTL_NOTIFICATIONS_MAX_ATTEMPTS": "3",
        "MODELCTL_NOTIFICATIONS_BACKOFF": "200ms",
        "PYTHONUNBUFFERED": "1",
    })
    server = _Process([sys.executable, "-m", "modelctl_server", "--log-level", "WARNING"], tmp / "modelctl.log", env)
    ready = re.compile(r"^modelctl-server listening on (?P<address>\S+) \(metrics on port (?P<metrics>\d+)\)$")
    assert server.proc.stdout is not None
    line = server.proc.stdout.readline()  # the ready line, or EOF if it died
    m = ready.match(line.strip())
    if not m:
        server.stop()
        pytest.fail(f"modelctl-server did not start ({line!r}):\n{server.tail()}")
    threading.Thread(target=server.proc.stdout.read, daemon=True).start()  # drain anything later
    return server, m["address"], int(m["metrics"])


def _start_prometheus(tmp: Path, metrics_port: int) -> tuple[_Process, str]:
    """The repository's prometheus.yml and rules, scraping the test's controller every second."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval=f"{SCRAPE_SECONDS}s", scrape_timeout=f"{SCRAPE_SECONDS}s",
                            evaluation_interval=f"{SCRAPE_SECONDS}s")
    config["rule_files"] = [str(PROMETHEUS_DIR / f) for f in config["rule_files"]]
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "modelctl")
    job["static_configs"] = [{"targets": [f"127.0.0.1:{metrics_port}"]}]
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    subprocess.run([require_tool("promtool"), "check", "config", str(path)], check=True, capture_output=True)
    port = _free_port()
    prometheus = _Process([require_tool("prometheus"), f"--config.file={path}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                           f"--web.listen-address=127.0.0.1:{port}"], tmp / "prometheus.log")
    url = f"http://127.0.0.1:{port}"
    # Wait for the first scrape (Prometheus applies its targets a few seconds after start), so the
    # traffic that follows is seen from its beginning: counters at 0 first, then rising.
    query = f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": 'up{job="modelctl"} == 1'})
    deadline = time.monotonic() + 30
    while True:
        try:
            if json.loads(urllib.request.urlopen(query, timeout=1).read())["data"]["result"]:
                return prometheus, url
        except (urllib.error.URLError, OSError):
            pass
        if prometheus.proc.poll() is not None or time.monotonic() > deadline:
            prometheus.stop()
            pytest.fail(f"prometheus did not scrape the controller:\n{prometheus.tail()}")
        time.sleep(0.1)


class _Hook(http.server.BaseHTTPRequestHandler):
    """The notification receiver that answers: counts what Apprise's json:// posts."""

    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - the base class's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Hook.received.append(json.loads(body or b"{}"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


# --- traffic --------------------------------------------------------------------------------------------------

class Traffic:
    """Drives the controller through everything the dashboards show, through real gRPC."""

    def __init__(self, address: str, metrics_port: int) -> None:
        self.metrics_port = metrics_port
        self.channel = grpc.insecure_channel(address)
        self.api = controller_pb2_grpc.ModelControllerStub(self.channel)
        self.md = [("authorization", f"Bearer {TOKEN}")]
        self.rng = random.Random(8)
        self.streams: list[Any] = []
        self._stop = threading.Event()
        self._load: threading.Thread | None = None
        self.load_errors: list[BaseException] = []

    def scrape(self, sample: str) -> float:
        """One unlabelled sample straight from the controller's /metrics."""
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        m = re.search(rf"^{re.escape(sample)} (\S+)$", body, re.M)
        assert m, f"{sample} is not exported"
        return float(m[1])

    def call(self, method: str, request: Any) -> Any:
        return getattr(self.api, method)(request, metadata=self.md, timeout=15)

    # samples
    def sample(self, model: str, version: str, *, requests: int = 40, error_rate: float = 0.0,
               latency_ms: float = 20.0, **extra: Any) -> deployment_pb2.MetricsSample:
        latencies = [max(0.1, self.rng.gauss(latency_ms, latency_ms / 4)) for _ in range(requests)]
        return deployment_pb2.MetricsSample(model=model, version=version, requests=requests,
                                            errors=round(requests * error_rate), latency_ms=latencies, **extra)

    def report(self, *samples: deployment_pb2.MetricsSample) -> None:
        self.call("ReportMetrics", deployment_pb2.ReportMetricsRequest(samples=list(samples)))

    # lifecycle
    def register(self, model: str, *versions: str) -> None:
        for v in versions:
            self.call("RegisterModel", registry_pb2.RegisterModelRequest(
                name=model, version=v, artifact_uri=f"s3://models/{model}/{v}.onnx", framework="onnx"))

    def deploy(self, model: str, version: str, strategy: int, steps: tuple[int, ...] = (),
               bake_time: Duration | None = None) -> str:
        params = deployment_pb2.DeploymentParams(steps=list(steps), step_interval=Duration(nanos=300_000_000),
                                                 min_samples=10, bake_time=bake_time or Duration(nanos=300_000_000))
        return self.call("DeployModel", deployment_pb2.DeployModelRequest(
            model=model, version=version, strategy=strategy, params=params)).id

    def until_final(self, deployment_id: str, feed: Callable[[], None], timeout: float = 20.0) -> str:
        """Feed metrics until the deployment ends; its final state's name."""
        final = {"SUCCEEDED", "ROLLED_BACK", "ABORTED", "FAILED"}
        deadline = time.monotonic() + timeout
        while True:
            state = deployment_pb2.DeploymentState.Name(
                self.call("GetDeployment", deployment_pb2.GetDeploymentRequest(id=deployment_id)).state)
            if state.removeprefix("DEPLOYMENT_STATE_") in final:
                return state.removeprefix("DEPLOYMENT_STATE_")
            assert time.monotonic() < deadline, f"deployment {deployment_id} still {state} after {timeout}s"
            feed()
            time.sleep(0.05)

    # streams: open for the whole test, so the open-streams gauges have something to count
    def open_streams(self) -> None:
        for stream in (self.api.WatchTrafficSplit(deployment_pb2.WatchTrafficSplitRequest(model="fraud"),
                                                  metadata=self.md),
                       self.api.StreamAlerts(alert_pb2.StreamAlertsRequest(), metadata=self.md)):
            self.streams.append(stream)
            threading.Thread(target=self._drain, args=(stream,), daemon=True).start()

    @staticmethod
    def _drain(stream: Any) -> None:
        try:
            for _ in stream:
                pass
        except grpc.RpcError:
            pass  # cancelled at the end

    # background load: serving traffic and API calls keep flowing while the panels are queried
    def start_load(self, samples: Callable[[], list[deployment_pb2.MetricsSample]]) -> None:
        def run() -> None:
            while not self._stop.is_set():
                try:
                    self.report(*samples())
                    self.call("ListModels", registry_pb2.ListModelsRequest())
                    try:
                        self.call("GetModel", registry_pb2.GetModelRequest(name="no-such-model"))
                    except grpc.RpcError as exc:
                        assert exc.code() == grpc.StatusCode.NOT_FOUND
                except BaseException as exc:  # noqa: BLE001 - reported by the test
                    self.load_errors.append(exc)
                    return
                self._stop.wait(0.25)
        self._load = threading.Thread(target=run, daemon=True)
        self._load.start()

    def close(self) -> None:
        self._stop.set()
        if self._load is not None:
            self._load.join(10)
        for stream in self.streams:
            stream.cancel()
        self.channel.close()


def _drive(t: Traffic) -> dict[str, Any]:
    """The story the dashboards tell; returns what the assertions need."""
    immediate = deployment_pb2.DEPLOYMENT_STRATEGY_IMMEDIATE
    canary = deployment_pb2.DEPLOYMENT_STRATEGY_CANARY
    t.register("fraud", "1.0", "2.0", "3.0")
    t.register("churn", "1.0", "2.0")
    t.open_streams()

    # First versions go live at once (watched for the bake time on good metrics).
    # A model's event counters start at 0 with its first event (CREATED); the bake lasts a few scrapes so
    # Prometheus sees that 0 before SUCCEEDED makes it 1, or `increase()` (the annotation) has nothing to see.
    for model in ("fraud", "churn"):
        dep = t.deploy(model, "1.0", immediate, bake_time=Duration(seconds=3 * SCRAPE_SECONDS))
        assert t.until_final(dep, lambda m=model: t.report(t.sample(m, "1.0"))) == "SUCCEEDED"

    # A canary that succeeds: both versions healthy at every step.
    dep = t.deploy("fraud", "2.0", canary, steps=(25, 50, 100))
    assert t.until_final(dep, lambda: t.report(t.sample("fraud", "1.0"), t.sample("fraud", "2.0"))) == "SUCCEEDED"

    # A canary that breaks: half of its requests fail, and the report itself rolls it back (the
    # breach-to-rollback histogram times that path). The reconcile loop may catch the breach first
    # (it ticks every 100 ms, the report checks a few ms after ingesting): then the canary runs again.
    for _attempt in range(3):
        dep = t.deploy("churn", "2.0", canary, steps=(25, 100))
        rolled_back = t.until_final(dep, lambda: t.report(t.sample("churn", "1.0"),
                                                          t.sample("churn", "2.0", error_rate=0.5, latency_ms=1500)))
        assert rolled_back == "ROLLED_BACK"
        if t.scrape("modelctl_breach_to_rollback_seconds_count") >= 1:
            break
    else:
        pytest.fail("no rollback came from the breaching report itself in 3 canaries")

    # Drift: a reference profile for fraud 2.0, then live inputs that moved.
    rng = t.rng
    reference = deployment_pb2.MetricsSample(
        model="fraud", version="2.0", reference=True,
        features={"amount": deployment_pb2.FeatureValues(numeric=[rng.gauss(100, 20) for _ in range(800)]),
                  "country": deployment_pb2.FeatureValues(categorical=rng.choices(["de", "fr", "us"], k=800))},
        predictions=[rng.random() * 0.5 for _ in range(800)],
        quality=deployment_pb2.Quality(correct=760, labelled=800))
    t.report(reference)

    def drifted() -> deployment_pb2.MetricsSample:
        return t.sample("fraud", "2.0", requests=200, features={
            "amount": deployment_pb2.FeatureValues(numeric=[rng.gauss(160, 30) for _ in range(200)]),
            "country": deployment_pb2.FeatureValues(categorical=rng.choices(["de", "fr", "us", "br"],
                                                                            weights=[1, 1, 1, 5], k=200))},
            predictions=[0.3 + rng.random() * 0.7 for _ in range(200)],
            quality=deployment_pb2.Quality(correct=120, labelled=200))
    for _ in range(5):
        t.report(drifted())
    drift = t.call("GetDriftReport", drift_pb2.GetDriftReportRequest(model="fraud", version="2.0"))
    assert drift.drifted and drift.data_score > 0.1, drift

    # An A/B experiment on fraud: 2.0 (control) against 3.0, which converts better.
    experiment = t.call("StartExperiment", experiment_pb2.StartExperimentRequest(
        model="fraud", control_version="2.0", treatment_version="3.0", treatment_percent=50,
        metric=experiment_pb2.EXPERIMENT_METRIC_CONVERSION))

    def arms() -> list[deployment_pb2.MetricsSample]:
        return [t.sample("fraud", "2.0", outcome=deployment_pb2.Outcome(successes=rng.randint(8, 12), trials=100)),
                t.sample("fraud", "3.0", outcome=deployment_pb2.Outcome(successes=rng.randint(14, 18), trials=100)),
                t.sample("churn", "1.0")]
    for _ in range(5):
        t.report(*arms())
    t.start_load(arms)

    # Alerts: the rollback and churn 2.0's error rate at least.
    deadline = time.monotonic() + 15
    while not t.call("ListAlerts", alert_pb2.ListAlertsRequest()).alerts:
        assert time.monotonic() < deadline, "no alert was raised"
        time.sleep(0.1)
    return {"experiment": experiment.id}


# --- Grafana's side -------------------------------------------------------------------------------------------

def _round_interval(ms: float) -> int:
    """Grafana's kbn.roundInterval (the steps up to an hour), milliseconds."""
    for limit, value in ((15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000),
                         (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000),
                         (45000, 30000), (90000, 60000), (210000, 120000), (450000, 300000), (750000, 600000),
                         (1050000, 900000), (1500000, 1200000), (2700000, 1800000)):
        if ms < limit:
            return value
    return 3600000


def _regex_escape(value: str) -> str:
    """How Grafana's Prometheus datasource escapes a single variable value used in a regex matcher."""
    return re.sub(r"([$^*{}\[\]'+?.()|\\])", r"\\\\\1", value)


class Grafana:
    """Substitutes variables and runs queries the way Grafana's Prometheus datasource does."""

    MAX_DATA_POINTS = 1000  # about a panel's width in pixels

    def __init__(self, prometheus: str, dashboard: dict[str, Any], values: dict[str, str]) -> None:
        self.url = prometheus
        frm = dashboard["time"]["from"]
        m = re.fullmatch(r"now-(\d+)h", frm)
        assert m and dashboard["time"]["to"] == "now", f"unexpected time range {frm}"
        self.range_s = int(m[1]) * 3600
        interval_ms = max(SCRAPE_SECONDS * 1000, _round_interval(self.range_s * 1000 / self.MAX_DATA_POINTS))
        self.interval_s = interval_ms // 1000
        # $__rate_interval = max($__interval + scrape interval, 4 x scrape interval)
        self.rate_interval_s = max(self.interval_s + SCRAPE_SECONDS, 4 * SCRAPE_SECONDS)
        self.values = values  # variable name -> already formatted value

    def substitute(self, expr: str) -> str:
        builtins = {"__rate_interval": f"{self.rate_interval_s}s", "__interval_ms": str(self.interval_s * 1000),
                    "__interval": f"{self.interval_s}s", "__range_s": str(self.range_s),
                    "__range_ms": str(self.range_s * 1000), "__range": f"{self.range_s}s", **self.values}
        # Longest names first, so $__interval_ms is not read as $__interval followed by "_ms".
        for name in sorted(builtins, key=len, reverse=True):
            expr = expr.replace(f"${{{name}}}", builtins[name]).replace(f"${name}", builtins[name])
        assert "$" not in expr, f"unsubstituted variable in {expr}"
        return expr

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params, doseq=True)}"
        try:
            return json.loads(urllib.request.urlopen(url, timeout=10).read())
        except urllib.error.HTTPError as exc:  # 400/422: the query is invalid
            return json.loads(exc.read() or b"{}") or {"status": "error", "error": str(exc)}

    def query(self, expr: str, *, instant: bool) -> dict[str, Any]:
        now = time.time()
        if instant:
            return self._get("/api/v1/query", {"query": self.substitute(expr), "time": now})
        return self._get("/api/v1/query_range", {"query": self.substitute(expr), "start": now - self.range_s,
                                                 "end": now, "step": self.interval_s})

    def variable_values(self, query: str) -> list[str]:
        """`label_values(selector, label)` as Grafana runs it: the series API over the time range."""
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", self.substitute(query))
        assert m, f"unsupported variable query {query}"
        now = time.time()
        answer = self._get(f"/api/v1/label/{m[2]}/values", {"match[]": m[1], "start": now - self.range_s,
                                                           "end": now})
        assert answer["status"] == "success", answer
        return list(answer["data"])


def _problem(answer: dict[str, Any]) -> str | None:
    """None when a query answer holds at least one finite value, else what is wrong with it."""
    if answer.get("status") != "success":
        return f"invalid: {answer.get('errorType')}: {answer.get('error')}"
    result = answer["data"]["result"]
    if not result:
        return "no data"
    values = [float(v) for series in result
              for _, v in (series.get("values") or ([series["value"]] if "value" in series else []))]
    if not any(math.isfinite(v) for v in values):
        return f"no finite value ({len(values)} NaN/Inf)"
    return None


def _queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """(where, expr, instant) of every panel target and annotation."""
    for panel in panels(dashboard):
        for t in panel["targets"]:
            yield f"panel {panel['title']!r} target {t['refId']}", t["expr"], bool(t.get("instant"))
    for a in annotations(dashboard):
        yield f"annotation {a['name']!r}", a["expr"], False


def _settle(check: Callable[[], list[str]], timeout: float) -> list[str]:
    """Run `check` until it reports no problem or `timeout` passes; the last problems."""
    deadline = time.monotonic() + timeout
    while True:
        problems = check()
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(0.5)


# --- the test -------------------------------------------------------------------------------------------------

@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    require_tool("prometheus")
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    server, address, metrics_port = _start_controller(tmp_path, hook.server_address[1], _free_port())
    prometheus = None
    try:
        prometheus, url = _start_prometheus(tmp_path, metrics_port)
        yield {"address": address, "metrics_port": metrics_port, "prometheus": url}
    except BaseException:
        print("modelctl-server log:\n" + server.tail())
        if prometheus is not None:
            print("prometheus log:\n" + prometheus.tail())
        raise
    finally:
        if prometheus is not None:
            prometheus.stop()
        server.stop()
        hook.shutdown()


def test_every_panel_of_every_dashboard_returns_data(stack: dict[str, Any]) -> None:
    started = time.monotonic()
    traffic = Traffic(stack["address"], stack["metrics_port"])
    try:
        _drive(traffic)
        boards = dashboards()
        assert len(boards) == 6

        # "All" for every variable (the dashboards' default), then each variable's first value.
        def run_all(values_for: Callable[[dict[str, Any], Grafana], dict[str, str]]) -> list[str]:
            problems = []
            for name, board in boards.items():
                grafana = Grafana(stack["prometheus"], board, {})
                grafana.values = values_for(board, grafana)
                for where, expr, instant in _queries(board):
                    problem = _problem(grafana.query(expr, instant=instant))
                    if problem:
                        problems.append(f"{board['title']} ({grafana.values or 'All'}) {where}: {problem}\n"
                                        f"    {grafana.substitute(expr)}")
                for var in variables(board):
                    if not grafana.variable_values(var["query"]["query"]):
                        problems.append(f"{board['title']} variable ${var['name']}: no values")
            return problems

        def all_values(board: dict[str, Any], grafana: Grafana) -> dict[str, str]:
            return {v["name"]: v["allValue"] for v in variables(board)}

        def first_values(board: dict[str, Any], grafana: Grafana) -> dict[str, str]:
            chosen: dict[str, str] = {}
            for v in variables(board):  # in order: $version's query depends on the $model chosen
                grafana.values = chosen
                options = sorted(grafana.variable_values(v["query"]["query"]))
                chosen[v["name"]] = _regex_escape(options[0]) if options else "<none>"
            return chosen

        problems = _settle(lambda: run_all(all_values), SETTLE_SECONDS)
        assert not problems, "panels without data:\n" + "\n".join(problems)
        problems = _settle(lambda: run_all(first_values), 10)
        assert not problems, "panels without data for one chosen model/version:\n" + "\n".join(problems)
        assert not traffic.load_errors, traffic.load_errors
        assert _Hook.received, "the answering notification receiver got nothing"
    finally:
        traffic.close()
    # The real exporter, after all of that traffic: promtool's linter has nothing to say.
    body = urllib.request.urlopen(f"http://127.0.0.1:{stack['metrics_port']}/metrics", timeout=5).read().decode()
    lint = subprocess.run([require_tool("promtool"), "check", "metrics"], input=body, capture_output=True,
                          text=True, timeout=30)
    assert lint.returncode == 0 and lint.stdout + lint.stderr == "", lint.stdout + lint.stderr
    assert time.monotonic() - started < 90


# --- the Grafana emulation itself -----------------------------------------------------------------------------

def test_grafana_interval_and_variable_substitution() -> None:
    board = {"time": {"from": "now-1h", "to": "now"}}
    grafana = Grafana("http://unused", board, {"model": _regex_escape("fraud.v2"), "version": ".*"})
    # 1 h over ~1000 points rounds to 5 s; $__rate_interval = max(5 s + scrape, 4 x scrape).
    assert (grafana.interval_s, grafana.rate_interval_s, grafana.range_s) == (5, 6, 3600)
    expr = 'rate(x{model=~"$model", version=~"${version}"}[$__rate_interval]) * $__interval_ms + $__range_s'
    assert grafana.substitute(expr) == r'rate(x{model=~"fraud\\.v2", version=~".*"}[6s]) * 5000 + 3600'


def test_a_query_answer_counts_as_data_only_with_a_finite_value() -> None:
    def matrix(*values: str) -> dict[str, Any]:
        return {"status": "success", "data": {"resultType": "matrix",
                                              "result": [{"metric": {}, "values": [[1, v] for v in values]}]}}
    assert _problem(matrix("NaN", "0.5")) is None
    assert _problem({"status": "success", "data": {"result": [{"metric": {}, "value": [1, "0"]}]}}) is None
    assert _problem(matrix("NaN", "NaN")) == "no finite value (2 NaN/Inf)"
    assert _problem({"status": "success", "data": {"resultType": "vector", "result": []}}) == "no data"
    assert _problem({"status": "error", "errorType": "bad_data", "error": "parse error"}) == \
        "invalid: bad_data: parse error"
