"""The ten steps `scripts/demo.py` tells: each runs the real CLI, then checks the outcome through the SDK.

A step either returns the line the summary table shows or raises `StepFailed`
saying what it expected and what it saw. Waits are on streams the SDK offers
(`wait_for_deployment`, the router's split, the alert stream, the instances'
assignments, the webhook's posts) with timeouts; `wait_for` polls only what has
no stream (a drift verdict, an experiment's significance).
"""

from __future__ import annotations

import hashlib
import pickle
import random
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from demo_fleet import MODEL, Fleet, World, reference_sample
from demo_harness import Cli, ServerProcess, Style, WebhookReceiver, Workspace, check, wait_for

import modelctl
from modelctl.types import DeploymentState
from modelctl.v1 import alert_pb2

STEPS = 10


def state_of(deployment: Any) -> str:
    return DeploymentState.Name(deployment.state).removeprefix("DEPLOYMENT_STATE_")


def fetch_metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:  # noqa: S310
        return response.read().decode()


@dataclass
class Story:
    style: Style
    pace: Any
    workspace: Workspace
    server: ServerProcess
    cli: Cli
    client: modelctl.Client
    fleet: Fleet
    world: World
    receiver: WebhookReceiver
    current: str = "setup"
    optimized: list[str] = field(default_factory=list)
    summary: list[tuple[str, str, str]] = field(default_factory=list)

    # --- narration ----------------------------------------------------------------------------------------

    def tell(self) -> None:
        steps: list[tuple[str, Callable[[], str]]] = [
            ("register fraud-detector v1, v2, v3 (uploaded artifacts)", self.register),
            ("v1 goes live at once (immediate)", self.immediate),
            ("v2: a canary 5 -> 10 -> 25 -> 50 -> 100 on healthy traffic", self.healthy_canary),
            ("v3: a canary that fails requests is rolled back on the breaching report", self.bad_canary),
            ("the alert: shown and acknowledged from the CLI; the webhook got it", self.alert),
            ("drift: the `amount` feature shifts", self.drift),
            ("an A/B experiment: v2 against v4 on conversion", self.experiment),
            ("a rolling update of v4.1 across the serving instances", self.rolling),
            ("a pipeline optimises the model and its v5 goes live by canary", self.pipeline),
            ("summary, metrics and dashboards", self.finish),
        ]
        for n, (title, run) in enumerate(steps, 1):
            self.current = f"step {n} ({title})"
            print(self.style.bold(f"\n== {n}/{STEPS}  {title}"), flush=True)
            started = time.monotonic()
            outcome = run()
            took = time.monotonic() - started
            if n < STEPS:
                self.summary.append((f"{n}. {title}", outcome, f"{took:.1f}s"))
            print(self.style.green(f"✔ step {n}: {outcome}  ({took:.1f}s)"), flush=True)

    def say(self, text: str) -> None:
        print(self.style.dim("# " + text), flush=True)

    # --- 1 --------------------------------------------------------------------------------------------------

    def artifact(self, version: str) -> Path:
        """A small real model file: a pickled logistic regression's weights."""
        rng = random.Random(version)
        model = {"model": MODEL, "version": version, "kind": "logistic-regression",
                 "features": ["amount", "country"], "weights": [rng.gauss(0, 1) for _ in range(4096)],
                 "intercept": rng.gauss(0, 1)}
        path = self.workspace.path / f"fraud-detector-{version}.pkl"
        path.write_bytes(pickle.dumps(model))
        return path

    def register_version(self, version: str, auc: str, drifted_training_data: bool = False) -> str:
        path = self.artifact(version)
        self.cli.run("models", "register", MODEL, "--version", version, "--artifact", str(path),
                     "--framework", "sklearn", "--metric", f"auc={auc}", "--tag", "team=risk")
        # The training pipeline also sends the version's training data: the reference drift is judged against.
        self.client.report_metrics([reference_sample(self.world, version, drifted_training_data,
                                                     seed=sum(map(ord, version)))])
        return hashlib.sha256(path.read_bytes()).hexdigest()

    def register(self) -> str:
        digests = {v: self.register_version(v, auc) for v, auc in (("1", "0.91"), ("2", "0.93"), ("3", "0.94"))}
        self.cli.run("models", "show", MODEL)
        stored = {v.version: v.sha256 for v in self.client.get_model(MODEL).versions}
        for version, digest in digests.items():
            check(stored.get(version) == digest,
                  f"v{version}: the server stored sha256 {stored.get(version)!r}, the file has {digest}")
        self.say(f"the fleet starts: {len(self.fleet.instances)} serving instances register and follow "
                 "WatchAssignment; traffic is routed by TrafficRouter and reported with ReportMetrics; "
                 "a training pipeline runs modelctl.PipelineAgent")
        self.fleet.start()
        self.start_pipeline()
        return f"3 versions uploaded, sha256 verified ({', '.join(d[:12] for d in digests.values())})"

    # --- 2 --------------------------------------------------------------------------------------------------

    def immediate(self) -> str:
        self.cli.run("deploy", MODEL, "1", "--strategy", "immediate", "--bake-time", "0s", "--watch")
        check(self.client.get_model(MODEL).live_version == "1", "v1 is not the live version")
        check(self.fleet.traffic.wait_split(lambda w: w == {"1": 100.0}, 15), "the router never saw v1 at 100%")
        check(self.fleet.wait_loaded("1", 15), "not every instance loaded v1")
        self.cli.run("traffic", "show", MODEL)
        wait_for(lambda: self.fleet.traffic.totals["1"].requests > 0, 10, "traffic on v1")
        return f"v1 live, 100% of traffic, {len(self.fleet.instances)} instances loaded it"

    # --- 3 --------------------------------------------------------------------------------------------------

    def latest_deployment(self) -> Any:
        newest = max(self.client.list_deployments(model=MODEL).deployments,
                     key=lambda d: d.created_at.ToNanoseconds())
        return self.client.get_deployment(newest.id)  # with its gate evaluations

    def healthy_canary(self) -> str:
        seen_from = len(self.fleet.traffic.splits)
        self.cli.run("deploy", MODEL, "2", "--strategy", "canary", "--steps", "5,10,25,50,100",
                     "--interval", self.pace.canary_interval, "--min-samples", str(self.pace.min_samples),
                     "--watch", live=True)
        dep = self.latest_deployment()
        check(dep.version == "2" and state_of(dep) == "SUCCEEDED", f"v2 ended {state_of(dep)}: {dep.reason}")
        check(self.fleet.traffic.wait_split(lambda w: w == {"2": 100.0}, 10), "the router never saw v2 at 100%")
        steps = [w.get("2") for _, w in self.fleet.traffic.splits[seen_from:] if "2" in w]
        check([s for s in (5.0, 10.0, 25.0, 50.0, 100.0) if s in steps] == [5.0, 10.0, 25.0, 50.0, 100.0],
              f"the router saw v2 at {steps}, not 5, 10, 25, 50, 100")
        served = self.fleet.traffic.totals["2"]
        return (f"SUCCEEDED; the router followed v2 through 5/10/25/50/100%; v2 served {served.requests} "
                f"requests, {served.errors} errors")

    # --- 4 --------------------------------------------------------------------------------------------------

    def bad_canary(self) -> str:
        self.say("v3 fails about 35% of its requests; the error-rate gate is 5% and critical")
        self.cli.run("deploy", MODEL, "3", "--strategy", "canary", "--steps", "5,10,25,50,100",
                     "--interval", self.pace.canary_interval, "--min-samples", str(self.pace.min_samples),
                     "--watch", expect=1, live=True)
        dep = self.latest_deployment()
        self.v3_deployment = dep.id
        check(dep.version == "3" and state_of(dep) == "ROLLED_BACK", f"v3 ended {state_of(dep)}, not ROLLED_BACK")
        check("error-rate" in dep.reason, f"the reason does not name the error-rate gate: {dep.reason!r}")
        check(self.client.get_model(MODEL).live_version == "2", "v2 is not live again")
        check(self.fleet.traffic.wait_split(lambda w: w == {"2": 100.0}, 10), "the router never saw v2 back at 100%")
        self.cli.run("deployments", "show", dep.id)
        failed = [e for e in dep.evaluations if e.gate == "error_rate" and e.critical and e.value > e.threshold]
        check(failed, "no failed critical error-rate evaluation is stored")
        # The rollback happened inside one ReportMetrics call: find it among the generator's reports.
        events = list(self.client.watch_deployment(dep.id, timeout=10))
        rollback = next((e for e in events if e.kind == modelctl.types.DeploymentEventKind.Value(
            "DEPLOYMENT_EVENT_KIND_ROLLBACK_STARTED")), None)
        check(rollback is not None, "no ROLLBACK_STARTED event")
        at = rollback.time.ToNanoseconds() / 1e9
        breach = next((r for r in self.fleet.traffic.reports if "3" in r.versions and r.sent <= at <= r.answered),
                      None)
        check(breach is not None, "the rollback did not happen inside one of the fleet's ReportMetrics calls")
        saw = next((t for t, w in self.fleet.traffic.splits if t >= breach.sent and "3" not in w), None)
        print(f"breaching report sent at +0 ms; traffic back on v2 at +{(at - breach.sent) * 1000:.0f} ms, "
              f"before that report was answered (+{(breach.answered - breach.sent) * 1000:.0f} ms); "
              f"the router routed on the new split at +{((saw or at) - breach.sent) * 1000:.0f} ms")
        first = failed[0]
        return (f"ROLLED_BACK to v2: error rate {first.value:.2f} > {first.threshold:.2f} over "
                f"{first.samples:.0f} requests; {(at - breach.sent) * 1000:.0f} ms from breaching report to rollback")

    # --- 5 --------------------------------------------------------------------------------------------------

    def alert(self) -> str:
        dep_id = self.v3_deployment
        event = self.fleet.alerts.wait(lambda e: e.alert.deployment_id == dep_id, 15)
        check(event is not None, f"no alert for deployment {dep_id} on the alert stream")
        alert_id = event.alert.id
        self.say("the on-call tool subscribed with Client.stream_alerts received it; from the CLI:")
        self.cli.run("alerts", "list", "--model", MODEL, "--limit", "5")
        self.cli.run("alerts", "show", alert_id)
        self.cli.run("alerts", "ack", alert_id)
        acked = self.client.get_alert(alert_id)
        check(acked.acknowledged and acked.acknowledged_by, "the alert is not acknowledged")
        post = self.receiver.wait_post(lambda p: dep_id in str(p.get("body", "")) + str(p.get("title", "")), 20)
        check(post is not None, f"the webhook received nothing about {dep_id} ({len(self.receiver.posts)} posts)")
        print(f"the webhook received POST {post['path']}: {post.get('title') or post.get('body')!r}")
        return f"alert {alert_id} ({event.alert.message[:60]}...) acked by {acked.acknowledged_by}; webhook notified"

    # --- 6 --------------------------------------------------------------------------------------------------

    def drift(self) -> str:
        self.say("new customers arrive: transaction amounts triple (country mix unchanged)")
        self.world.drift = True

        def drifted() -> Any:
            report = self.client.get_drift_report(MODEL, version="2")
            names = [f.name for f in report.features if f.drifted]
            return report if "amount" in names else None

        report = wait_for(drifted, 40, "the drift report of v2 to flag `amount`")
        names = [f.name for f in report.features if f.drifted]
        check("country" not in names, f"country drifted too: {names}")
        self.cli.run("drift", "show", MODEL, "--version", "2")
        event = self.fleet.alerts.wait(lambda e: e.alert.model == MODEL and e.alert.version == "2"
                                       and e.alert.kind == alert_pb2.ALERT_KIND_DRIFT, 30)
        check(event is not None, "no drift alert on the alert stream")
        self.cli.run("alerts", "list", "--model", MODEL, "--kind", "drift")
        psi = next(f.psi for f in report.features if f.name == "amount")
        return f"`amount` drifted (PSI {psi:.2f}), `country` did not; drift alert {event.alert.id} raised"

    # --- 7 --------------------------------------------------------------------------------------------------

    def experiment(self) -> str:
        self.say("v4 was trained on recent data; does it convert better than v2?")
        self.register_version("4", "0.95", drifted_training_data=True)
        _, out = self.cli.run("experiments", "start", MODEL, "--control", "2", "--treatment", "4",
                              "--treatment-percent", "50", "--metric", "conversion", "--min-effect", "0.1", "-q")
        exp_id = out.strip()
        check(exp_id, "experiments start printed no id")
        experiment = wait_for(lambda: (e := self.client.get_experiment(exp_id)).result.significant and e, 60,
                              "the experiment to reach significance")
        self.cli.run("experiments", "show", exp_id)
        check(experiment.result.winner == "4", f"the winner is {experiment.result.winner!r}, not v4")
        self.cli.run("experiments", "stop", exp_id, "--promote-winner")
        stopped = self.client.get_experiment(exp_id)
        result = stopped.result
        check(stopped.deployment_id, "stopping with --promote-winner started no deployment")
        self.cli.run("deployments", "watch", stopped.deployment_id, live=True)
        final = self.client.wait_for_deployment(stopped.deployment_id, timeout="60s")
        check(state_of(final) == "SUCCEEDED", f"the promoted canary of v4 ended {state_of(final)}: {final.reason}")
        check(self.client.get_model(MODEL).live_version == "4", "v4 is not live")
        return (f"v4 won: lift {result.lift:+.1%} [{result.lift_ci_low:+.1%}, {result.lift_ci_high:+.1%}], "
                f"always-valid p {result.p_value:.1g}; promoted by canary, live")

    # --- 8 --------------------------------------------------------------------------------------------------

    def rolling(self) -> str:
        self.say("v4.1 is v4 on a faster runtime; instances move two at a time and confirm by heartbeat")
        self.register_version("4.1", "0.95", drifted_training_data=True)
        self.cli.run("deploy", MODEL, "4.1", "--strategy", "rolling", "--max-unavailable", "1", "--max-surge", "1",
                     "--interval", self.pace.default_interval, "--min-samples", str(self.pace.min_samples),
                     "--watch", live=True)
        dep = self.latest_deployment()
        check(state_of(dep) == "SUCCEEDED", f"the rolling update ended {state_of(dep)}: {dep.reason}")
        check(self.fleet.wait_loaded("4.1", 15), "not every instance serves v4.1")
        moves = ", ".join(f"{i.id}: {' -> '.join(i.loads)}" for i in self.fleet.instances)
        print(f"instances (as they loaded): {moves}")
        return f"SUCCEEDED in {dep.total_steps} batches; all {len(self.fleet.instances)} instances serve v4.1"

    # --- 9 --------------------------------------------------------------------------------------------------

    def start_pipeline(self) -> None:
        """The training pipeline service: a `modelctl.PipelineAgent` that handles OPTIMIZE commands."""
        agent = modelctl.PipelineAgent("trainer", client=self.client, models=[MODEL], version="trainer-1.0",
                                       report_interval=1.0)

        @agent.handler("optimize")
        def optimize(ctx: modelctl.CommandContext) -> modelctl.CommandResult:
            self.optimized.append(ctx.id)
            ctx.progress(20, f"searching hyper-parameters for {ctx.model} ({ctx.parameters})", "optimizing")
            path = self.artifact("5")
            ctx.progress(70, "training the best candidate", "optimizing")
            agent.client.register_model(ctx.model, "5", str(path), framework="sklearn", metrics={"auc": 0.96})
            agent.client.report_metrics([reference_sample(self.world, "5", True, seed=5)])
            agent.set_status("idle", "", 100)
            return modelctl.CommandResult("auc 0.96 (+0.01) with max_depth=6", version="5")

        agent.start()
        self.workspace.on_close("pipeline agent", agent.stop)

    def pipeline(self) -> str:
        wait_for(lambda: any(p.name == "trainer" for p in self.client.iter_pipelines()), 15,
                 "the pipeline to register")
        self.cli.run("pipelines", "list")
        self.cli.run("pipelines", "optimize", "trainer", "--model", MODEL, "--param", "trials=20",
                     "--then-deploy", "canary", "--interval", self.pace.default_interval, "--watch", live=True)
        check(len(self.optimized) == 1, f"the optimize handler ran {len(self.optimized)} times, not once")
        command = next(iter(self.client.iter_pipeline_commands("trainer")))
        check(command.result_version == "5" and command.deployment_id, "the command registered no v5 deployment")
        dep = self.client.get_deployment(command.deployment_id)
        check(state_of(dep) == "SUCCEEDED", f"the canary of v5 ended {state_of(dep)}: {dep.reason}")
        check(self.client.get_model(MODEL).live_version == "5", "v5 is not live")
        self.cli.run("pipelines", "commands", "trainer")
        return f"command {command.id}: v5 registered by the pipeline, canary {dep.id} SUCCEEDED, v5 live"

    # --- 10 -------------------------------------------------------------------------------------------------

    def finish(self) -> str:
        self.cli.run("models", "list")
        self.cli.run("deployments", "list", "--model", MODEL)
        width = max(len(s[0]) for s in self.summary)
        print(self.style.bold(f"\n{'step':<{width}}  {'took':>6}  outcome"))
        for name, outcome, took in self.summary:
            print(f"{name:<{width}}  {took:>6}  {outcome}")
        print(self.style.bold("\ntraffic the fleet served, per version"))
        print(f"{'version':<8} {'requests':>9} {'errors':>7} {'error rate':>10} {'conversion':>10}")
        for version, t in sorted(self.fleet.traffic.totals.items()):
            print(f"{version:<8} {t.requests:>9} {t.errors:>7} {t.errors / max(t.requests, 1):>10.2%} "
                  f"{t.conversions / max(t.requests, 1):>10.2%}")
        metrics = fetch_metrics(self.server.metrics_port)
        wanted = [line for line in metrics.splitlines()
                  if line.startswith(("modelctl_traffic_weight", "modelctl_model_requests_total"))
                  and MODEL in line][:6]
        check(wanted, "/metrics has no fraud-detector series")
        print(self.style.bold(f"\nPrometheus metrics: http://127.0.0.1:{self.server.metrics_port}/metrics"))
        print("\n".join(wanted))
        print("Grafana dashboards (Overview, Model performance, A/B testing, Drift, System health, Rollouts): "
              "`docker compose up --build`, then http://localhost:3000 — see docs/observability.md. "
              "`make demo ARGS=--keep-running` leaves this server and its fleet up to explore.")
        return f"{len(metrics.splitlines())} metric lines served"

    # --- keep running ----------------------------------------------------------------------------------------

    def keep_running(self) -> None:
        token_file = self.server.data_dir / "admin.token"
        print(self.style.bold("\nThe server and the simulated fleet keep running. In another shell:"))
        print(f"  export MODELCTL_ADDR={self.server.address}")
        print(f"  export MODELCTL_TOKEN=$(cat {token_file})")
        print(f"  modelctl models show {MODEL}; modelctl alerts watch; modelctl drift show {MODEL}")
        print(f"  curl -s http://127.0.0.1:{self.server.metrics_port}/metrics | grep ^modelctl_traffic")
        print("Ctrl-C stops everything and removes the temporary directory.", flush=True)
        threading.Event().wait()  # until Ctrl-C (KeyboardInterrupt) or SIGTERM

