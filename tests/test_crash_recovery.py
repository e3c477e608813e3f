"""SIGKILL the real `modelctl-server` in the middle of a rollout, restart it, and the rollout finishes.

The acceptance of the deployment engine: after a crash the restarted server continues every
deployment at the step it had reached; no step is repeated (traffic never moves twice for one
step), none is skipped, and the stored event history stays 1..n without gaps.

How each test runs:

- The server is a subprocess on a temporary data directory (SQLite, or PostgreSQL for the `postgres`
  variant), on port 0 the first time. The restart reuses the port the OS gave the first process, as a
  controller behind a fixed address would, so clients reconnect by themselves (short reconnect
  back-off on every channel).
- Acknowledged metric reports are journaled and replayed on start, so the step in progress at the
  kill may still pass on them after the restart (once). A feeder thread reports healthy traffic for
  both versions every 50 ms, like a serving fleet would, and keeps doing so across the restart. It
  is paused around the kill, so that the state right after the restart can be compared with the
  stored one before any new metric arrives.
- The state "at the moment of the kill" is read from the database itself once the process is dead,
  through the server's own repository (no SQL here): it is exactly what the restarted server finds.
- Nothing sleeps to wait: every wait polls with a deadline.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from test_server_process import ServerProcess

from modelctl.v1 import controller_pb2_grpc, deployment_pb2, registry_pb2
from modelctl_server.deployments.model import Deployment, DeploymentEvent, Instance
from modelctl_server.deployments.queries import DeploymentQueries
from modelctl_server.store.db import Database
from modelctl_server.store.deployments import SqlDeploymentRepository

pytestmark = pytest.mark.slow

T = TypeVar("T")

TOKEN = "crash-recovery-admin-" + "k" * 40
AUTH = [("authorization", f"Bearer {TOKEN}")]
MODEL = "churn"
V1, V2 = "v1", "v2"
CANARY_STEPS = [10, 25, 50, 100]
INSTANCES = ["i1", "i2", "i3", "i4"]
WAIT = 20.0  # seconds any single condition may take before the test fails

SERVER_ENV = {
    "MODELCTL_ADMIN_TOKEN": TOKEN,
    "MODELCTL_DEPLOYMENT_STEP_INTERVAL": "300ms",
    "MODELCTL_DEPLOYMENT_MIN_SAMPLES": "5",
    "MODELCTL_DEPLOYMENT_RECONCILE_INTERVAL": "50ms",
    "MODELCTL_DEPLOYMENT_HEARTBEAT_INTERVAL": "200ms",
    "MODELCTL_DEPLOYMENT_PROGRESS_DEADLINE": "60s",
    "MODELCTL_DEPLOYMENT_BAKE_TIME": "0s",
}
# A restarted server must be found again quickly by channels that saw it die.
RECONNECT = [("grpc.initial_reconnect_backoff_ms", 50), ("grpc.min_reconnect_backoff_ms", 50),
             ("grpc.max_reconnect_backoff_ms", 250)]

STATE = deployment_pb2.DeploymentState
KIND = deployment_pb2.DeploymentEventKind


# --- the server under test ----------------------------------------------------------------------------------


class Controller:
    """`modelctl-server` on one data directory: started, SIGKILLed, started again on the same port."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.data_dir = tmp_path / "data"
        self.env = env
        self.address = ""
        self.processes: list[ServerProcess] = []
        self.channel: grpc.Channel | None = None
        self.stub: controller_pb2_grpc.ModelControllerStub | None = None

    @property
    def database_url(self) -> str:
        return self.env.get("MODELCTL_DATABASE_URL") or f"sqlite:///{self.data_dir / 'modelctl.db'}"

    def start(self) -> None:
        env = dict(self.env)
        if self.address:
            env["MODELCTL_SERVER_GRPC_ADDRESS"] = self.address  # the port the first start was given
        process = ServerProcess(self.data_dir, self.tmp_path / f"stderr-{len(self.processes)}.log", env, [])
        self.processes.append(process)
        process.wait_ready()
        assert not self.address or process.address == self.address
        self.address = process.address
        if self.channel is None:
            self.channel = grpc.insecure_channel(self.address, options=RECONNECT)
            self.stub = controller_pb2_grpc.ModelControllerStub(self.channel)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, whatever was not committed is lost."""
        process = self.processes[-1].proc
        process.send_signal(signal.SIGKILL)
        assert process.wait(10) == -signal.SIGKILL

    def stored(self, deployment_id: str) -> StoredState:
        """What the database holds now (the server must be dead, or this is only a snapshot)."""
        db = Database(self.database_url)
        try:
            repo = SqlDeploymentRepository(db)
            queries = DeploymentQueries(repo)
            with repo.transaction() as tx:
                instances = tx.list_instances(MODEL)
            return StoredState(deployment=queries.get(deployment_id), split=queries.traffic_split(MODEL),
                               events=queries.events(deployment_id), instances=instances)
        finally:
            db.dispose()

    def stderr(self) -> str:
        return "\n".join(f"--- server process {n} ---\n{p.stderr()}" for n, p in enumerate(self.processes))

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
        for process in self.processes:
            process.close()


@dataclass
class StoredState:
    deployment: Deployment
    split: dict[str, float]
    events: list[DeploymentEvent]
    instances: list[Instance]


@pytest.fixture
def make_controller(tmp_path: Path) -> Iterator[Callable[..., Controller]]:
    made: list[Controller] = []

    def make(**env: str) -> Controller:
        controller = Controller(tmp_path, {**SERVER_ENV, **env})
        made.append(controller)
        controller.start()
        return controller

    yield make
    for controller in made:
        controller.close()


# --- simulated clients ------------------------------------------------------------------------------------------


class MetricsFeeder(threading.Thread):
    """Reports healthy traffic for each version every 50 ms; errors while the server is down are counted."""

    def __init__(self, address: str, versions: list[str]) -> None:
        super().__init__(name="metrics-feeder", daemon=True)
        self._address = address
        self._request = deployment_pb2.ReportMetricsRequest(samples=[
            deployment_pb2.MetricsSample(model=MODEL, version=v, requests=10, errors=0, latency_ms=[20.0] * 10)
            for v in versions])
        self._done = threading.Event()
        self._paused = False
        self._lock = threading.Lock()  # held while a report is in flight
        self.sent = 0
        self.failed = 0

    def pause(self) -> None:
        """Returns once no report is in flight, and none is sent until `resume`."""
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False

    def stop(self) -> None:
        self._done.set()
        self.join(10)

    def run(self) -> None:
        with grpc.insecure_channel(self._address, options=RECONNECT) as channel:
            stub = controller_pb2_grpc.ModelControllerStub(channel)
            while not self._done.wait(0.05):
                with self._lock:
                    if self._paused:
                        continue
                    try:
                        stub.ReportMetrics(self._request, metadata=AUTH, timeout=2, wait_for_ready=True)
                        self.sent += 1
                    except grpc.RpcError:
                        self.failed += 1


class ServingInstance(threading.Thread):
    """A serving instance: registers, heartbeats every 100 ms, loads whatever version it is assigned.

    It reconnects by itself when the controller goes away, and keeps a log of every version it
    loaded, so a test can tell whether it was moved more than once.
    """

    def __init__(self, address: str, instance_id: str) -> None:
        super().__init__(name=f"instance-{instance_id}", daemon=True)
        self._address = address
        self.instance_id = instance_id
        self._done = threading.Event()
        self.loaded = ""
        #: Versions loaded, in order.
        self.loads: list[str] = []
        #: Versions this instance has reported loaded and healthy in a heartbeat the controller answered.
        self.confirmed: set[str] = set()
        self.heartbeats = 0
        self.failed = 0
        #: While set, the instance sends nothing (as if its reconnect were slower than the others').
        self.held = False

    def stop(self) -> None:
        self._done.set()
        self.join(10)

    def run(self) -> None:
        with grpc.insecure_channel(self._address, options=RECONNECT) as channel:
            stub = controller_pb2_grpc.ModelControllerStub(channel)
            registered = False
            while not self._done.wait(0.1):
                if self.held:
                    continue
                try:
                    if not registered:
                        stub.RegisterInstance(deployment_pb2.RegisterInstanceRequest(
                            model=MODEL, instance_id=self.instance_id, address=f"10.0.0.{self.instance_id[1:]}:8080"),
                            metadata=AUTH, timeout=2)
                        registered = True
                    reported = self.loaded
                    response = stub.Heartbeat(deployment_pb2.HeartbeatRequest(
                        model=MODEL, instance_id=self.instance_id, loaded_version=reported, healthy=True),
                        metadata=AUTH, timeout=2)
                except grpc.RpcError as exc:
                    self.failed += 1
                    if exc.code() == grpc.StatusCode.NOT_FOUND:
                        registered = False
                    continue
                self.heartbeats += 1
                if reported:
                    self.confirmed.add(reported)
                if response.assigned_version and response.assigned_version != self.loaded:
                    self.loaded = response.assigned_version  # "loads" it; the next heartbeat reports it
                    self.loads.append(self.loaded)


# --- helpers ------------------------------------------------------------------------------------------------------


def wait_for(read: Callable[[], T], done: Callable[[T], bool], what: str, timeout: float = WAIT) -> T:
    """Poll `read` until `done(value)`; fails with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}; last seen: {value}")
        time.sleep(0.02)


def register_versions(stub: controller_pb2_grpc.ModelControllerStub) -> None:
    for version in (V1, V2):
        stub.RegisterModel(registry_pb2.RegisterModelRequest(
            name=MODEL, version=version, artifact_uri=f"s3://models/{MODEL}/{version}", framework="onnx"),
            metadata=AUTH, timeout=10)


def deploy(stub: controller_pb2_grpc.ModelControllerStub, version: str, strategy: int,
           params: deployment_pb2.DeploymentParams | None = None) -> str:
    response = stub.DeployModel(deployment_pb2.DeployModelRequest(
        model=MODEL, version=version, strategy=strategy, params=params), metadata=AUTH, timeout=10)
    return response.id


def get(stub: controller_pb2_grpc.ModelControllerStub, deployment_id: str) -> deployment_pb2.Deployment:
    return stub.GetDeployment(deployment_pb2.GetDeploymentRequest(id=deployment_id), metadata=AUTH, timeout=10,
                              wait_for_ready=True)


def split(stub: controller_pb2_grpc.ModelControllerStub) -> dict[str, float]:
    response = stub.GetTrafficSplit(deployment_pb2.GetTrafficSplitRequest(model=MODEL), metadata=AUTH,
                                    timeout=10, wait_for_ready=True)
    return dict(response.weights)


FINAL = {STATE.DEPLOYMENT_STATE_SUCCEEDED, STATE.DEPLOYMENT_STATE_ROLLED_BACK, STATE.DEPLOYMENT_STATE_ABORTED,
         STATE.DEPLOYMENT_STATE_FAILED}


def wait_final(stub: controller_pb2_grpc.ModelControllerStub, deployment_id: str,
               timeout: float = WAIT) -> deployment_pb2.Deployment:
    return wait_for(lambda: get(stub, deployment_id), lambda d: d.state in FINAL,
                    f"deployment {deployment_id} to finish", timeout)


def deploy_v1_live(stub: controller_pb2_grpc.ModelControllerStub) -> None:
    d1 = deploy(stub, V1, deployment_pb2.DEPLOYMENT_STRATEGY_IMMEDIATE,
                deployment_pb2.DeploymentParams(bake_time=Duration(seconds=0)))
    done = wait_final(stub, d1)
    assert done.state == STATE.DEPLOYMENT_STATE_SUCCEEDED, done
    assert split(stub) == {V1: 100.0}


def watched_history(stub: controller_pb2_grpc.ModelControllerStub,
                    deployment_id: str) -> list[deployment_pb2.DeploymentEvent]:
    """The whole stored history through WatchDeployment from the start (it ends at the final event)."""
    stream = stub.WatchDeployment(deployment_pb2.WatchDeploymentRequest(id=deployment_id, after_seq=0),
                                  metadata=AUTH, timeout=10)
    return list(stream)


def short(event: deployment_pb2.DeploymentEvent) -> tuple[str, str, int, float]:
    return (KIND.Name(event.kind).removeprefix("DEPLOYMENT_EVENT_KIND_"),
            STATE.Name(event.state).removeprefix("DEPLOYMENT_STATE_"), event.step, event.traffic_percent)


def assert_continuous(events: list[deployment_pb2.DeploymentEvent], before_kill: list[DeploymentEvent],
                      total_steps: int) -> None:
    """seq 1..n without gaps; the history from before the kill unchanged; each step started once, in order."""
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), [short(e) for e in events]
    # What was stored before the kill is still there, unchanged: the restart rewrote nothing.
    assert [(e.seq, e.kind.value, e.step, e.traffic_percent, e.message) for e in before_kill] == \
        [(e.seq, short(e)[0], e.step, e.traffic_percent, e.message) for e in events[:len(before_kill)]]
    started = [e.step for e in events if e.kind == KIND.DEPLOYMENT_EVENT_KIND_STEP_STARTED]
    assert started == list(range(1, total_steps + 1)), [short(e) for e in events]
    steps = [e.step for e in events]
    assert steps == sorted(steps), f"a step went backwards: {[short(e) for e in events]}"
    # The first step after the restart is the one after the last step taken before it: none repeated or skipped.
    last_before = max((e.step for e in before_kill if e.kind.value == "STEP_STARTED"), default=0)
    after = [e.step for e in events[len(before_kill):] if e.kind == KIND.DEPLOYMENT_EVENT_KIND_STEP_STARTED]
    assert after == list(range(last_before + 1, total_steps + 1))


# --- canary ----------------------------------------------------------------------------------------------------


def run_canary_kill_and_restart(controller: Controller) -> None:
    stub = controller.stub
    assert stub is not None
    register_versions(stub)
    deploy_v1_live(stub)

    feeder = MetricsFeeder(controller.address, [V1, V2])
    feeder.start()
    try:
        d2 = deploy(stub, V2, deployment_pb2.DEPLOYMENT_STRATEGY_CANARY,
                    deployment_pb2.DeploymentParams(steps=CANARY_STEPS))
        wait_for(lambda: get(stub, d2), lambda d: d.step >= 2 or d.state in FINAL, "the canary to reach step 2")
        feeder.pause()
        controller.kill()

        stored = controller.stored(d2)
        dep = stored.deployment
        assert dep.phase.value == "PROGRESSING", (dep, controller.stderr())
        assert 2 <= dep.step < len(CANARY_STEPS), dep
        percent = float(CANARY_STEPS[dep.step - 1])
        assert dep.traffic_percent == percent
        assert stored.split == {V1: 100.0 - percent, V2: percent}

        controller.start()
        # The restarted server continues where the killed one stopped. Reports acknowledged before the
        # kill were journaled and replayed, so the stored step may still pass on them, at most once:
        # the next step's window starts after the restart and has no reports while the feeder waits.
        resumed = get(stub, d2)
        allowed = {dep.step: percent}
        if dep.step < len(CANARY_STEPS):
            allowed[dep.step + 1] = float(CANARY_STEPS[dep.step])
        assert resumed.state == STATE.DEPLOYMENT_STATE_PROGRESSING and resumed.step in allowed, resumed
        assert resumed.traffic_percent == allowed[resumed.step]
        assert split(stub) in [{V1: 100.0 - p, V2: p} for p in allowed.values()]

        feeder.resume()
        final = wait_final(stub, d2)
    finally:
        feeder.stop()
    assert final.state == STATE.DEPLOYMENT_STATE_SUCCEEDED, (final, controller.stderr())
    assert (final.step, final.traffic_percent, final.reason) == (len(CANARY_STEPS), 100.0, "")
    assert split(stub) == {V2: 100.0}
    assert feeder.failed == 0, "reports were sent only while a server was up"

    events = watched_history(stub, d2)
    assert [short(e) for e in events] == (
        [("CREATED", "PENDING", 0, 0.0)]
        + [("STEP_STARTED", "PROGRESSING", n, float(p)) for n, p in enumerate(CANARY_STEPS, 1)]
        + [("SUCCEEDED", "SUCCEEDED", len(CANARY_STEPS), 100.0)])
    assert_continuous(events, stored.events, len(CANARY_STEPS))


def test_canary_killed_mid_rollout_resumes_at_its_step_and_finishes(make_controller) -> None:
    run_canary_kill_and_restart(make_controller())


@pytest.mark.postgres
def test_canary_killed_mid_rollout_resumes_on_postgresql(make_controller, pg_url: str) -> None:
    controller = make_controller(MODELCTL_DATABASE_URL=pg_url)
    run_canary_kill_and_restart(controller)
    assert not (controller.data_dir / "modelctl.db").exists()


# --- rolling ---------------------------------------------------------------------------------------------------


@dataclass
class RollingRun:
    final: deployment_pb2.Deployment
    events: list[deployment_pb2.DeploymentEvent]
    stored: StoredState
    instances: list[ServingInstance]


def run_rolling_kill_and_restart(controller: Controller, *, moved_first: bool) -> RollingRun:
    """Rolling v1 -> v2 over 4 instances, one at a time; SIGKILL once the first batch has confirmed.

    The instances keep heartbeating through the outage (failing) and find the server again on the same
    address. With `moved_first`, the worst order of reconnection is made deterministic: the instances
    already moved come back first, the others only once those have been answered.
    """
    stub = controller.stub
    assert stub is not None
    register_versions(stub)
    instances = [ServingInstance(controller.address, i) for i in INSTANCES]
    for instance in instances:
        instance.start()
    try:
        wait_for(lambda: [i.heartbeats for i in instances], all, "every instance to register")
        deploy_v1_live(stub)
        wait_for(lambda: [i.confirmed for i in instances], lambda c: all(V1 in s for s in c),
                 "every instance to serve v1")

        d2 = deploy(stub, V2, deployment_pb2.DEPLOYMENT_STRATEGY_ROLLING,
                    deployment_pb2.DeploymentParams(max_unavailable="1", max_surge="0"))
        wait_for(lambda: [i.instance_id for i in instances if V2 in i.confirmed], bool,
                 "the first batch to confirm v2")
        controller.kill()

        stored = controller.stored(d2)
        dep = stored.deployment
        assert dep.phase.value == "PROGRESSING", (dep, controller.stderr())
        assert 1 <= dep.step < len(INSTANCES), dep
        moved = [i.instance_id for i in stored.instances if i.assigned_version == V2]
        assert moved == INSTANCES[:dep.step], stored.instances  # batches go in instance-id order
        assert stored.split == {V1: 100.0 - dep.traffic_percent, V2: dep.traffic_percent}

        wait_for(lambda: [i.failed for i in instances], all, "every instance to notice the controller is gone")
        behind = [i for i in instances if i.instance_id not in moved] if moved_first else []
        for instance in behind:
            instance.held = True
        beats = {i.instance_id: i.heartbeats for i in instances}
        controller.start()
        wait_for(lambda: [i.heartbeats > beats[i.instance_id] for i in instances if i not in behind], all,
                 "the instances to reach the restarted server")
        for instance in behind:
            instance.held = False
        final = wait_final(stub, d2)
        assert final.state == STATE.DEPLOYMENT_STATE_SUCCEEDED, (final, controller.stderr())
        wait_for(lambda: [i.confirmed for i in instances], lambda c: all(V2 in s for s in c),
                 "every instance to serve v2")
    finally:
        for instance in instances:
            instance.stop()
    return RollingRun(final, watched_history(stub, d2), stored, instances)


def assert_rolled_once(run: RollingRun, stub: controller_pb2_grpc.ModelControllerStub) -> None:
    """Finished on v2; nothing stored before the kill lost or redone; every instance moved exactly once."""
    assert run.final.traffic_percent == 100.0
    assert split(stub) == {V2: 100.0}
    events = run.events
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), [short(e) for e in events]
    assert [(e.seq, e.kind.value, e.step, e.traffic_percent, e.message) for e in run.stored.events] == \
        [(e.seq, short(e)[0], e.step, e.traffic_percent, e.message) for e in events[:len(run.stored.events)]]
    started = [e.step for e in events if e.kind == KIND.DEPLOYMENT_EVENT_KIND_STEP_STARTED]
    assert started == list(range(1, len(started) + 1)), [short(e) for e in events]  # no batch repeated
    assert {short(e)[0] for e in events} <= {"CREATED", "STEP_STARTED", "INSTANCE_LOST", "SUCCEEDED"}, \
        [short(e) for e in events]
    # It loaded v1, then v2, and never anything else: no instance moved twice or sent back.
    assert {i.instance_id: i.loads for i in run.instances} == {i: [V1, V2] for i in INSTANCES}


def test_rolling_killed_after_the_first_batch_finishes_moving_each_instance_once(make_controller) -> None:
    controller = make_controller()
    run = run_rolling_kill_and_restart(controller, moved_first=False)
    assert controller.stub is not None
    assert_rolled_once(run, controller.stub)


def test_rolling_killed_after_the_first_batch_resumes_batch_by_batch(make_controller) -> None:
    controller = make_controller()
    run = run_rolling_kill_and_restart(controller, moved_first=True)
    # One instance per batch, in order, none skipped, and the split follows the batches: never a jump ahead.
    assert [(e.step, e.traffic_percent, e.message.split(" -> ")[0])
            for e in run.events if e.kind == KIND.DEPLOYMENT_EVENT_KIND_STEP_STARTED] == \
        [(n, 25.0 * n, f"batch {n}: {i}") for n, i in enumerate(INSTANCES, 1)], [short(e) for e in run.events]
    assert_continuous(run.events, run.stored.events, len(INSTANCES))
    assert controller.stub is not None
    assert_rolled_once(run, controller.stub)
