"""The demo's simulated fleet: serving instances and the traffic that reaches them, all through the SDK.

- `Instance`: a serving process of the model. It registers (`RegisterInstance`),
  follows `WatchAssignment` to know which version to load, "loads" it, and says
  so with `Heartbeat` (the answer also names the version to serve, so a missed
  stream message cannot strand it).
- `TrafficGenerator`: the requests. Each tick it routes a batch of requests by
  user id through `modelctl.TrafficRouter` (sticky, weighted by the live split),
  plays each version's `Behaviour` (errors, latency, conversions, accuracy) on the
  inputs of the simulated `World` (whose `amount` feature can drift), and reports
  one sample per version with `ReportMetrics`: counts, latencies, features,
  predictions, outcome and quality — what a real serving path would see.
- `AlertWatcher`: an on-call tool subscribed with `Client.stream_alerts`.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

import modelctl
from modelctl import errors

MODEL = "fraud-detector"
COUNTRIES = ("fr", "de", "es", "it", "nl", "pl")


@dataclass
class Behaviour:
    """How a version behaves on live traffic (the simulation's ground truth)."""

    error_rate: float = 0.002
    latency_ms: float = 40.0
    conversion: float = 0.10
    accuracy: float = 0.92


@dataclass
class World:
    """The inputs requests carry; `drift` shifts the `amount` feature (a new kind of customer appears)."""

    drift: bool = False
    behaviours: dict[str, Behaviour] = field(default_factory=dict)

    def amounts(self, rng: random.Random, n: int, drifted: bool | None = None) -> list[float]:
        shifted = self.drift if drifted is None else drifted
        mu = 4.6 if shifted else 3.5  # lognormal: a median of ~100 instead of ~33
        return [round(rng.lognormvariate(mu, 0.6), 2) for _ in range(n)]

    @staticmethod
    def countries(rng: random.Random, n: int) -> list[str]:
        return [rng.choice(COUNTRIES) for _ in range(n)]

    def behaviour(self, version: str) -> Behaviour:
        return self.behaviours.setdefault(version, Behaviour())


def reference_sample(world: World, version: str, drifted: bool, seed: int) -> dict[str, Any]:
    """The version's training data, as a `reference` sample for drift."""
    rng = random.Random(seed)
    n = 2000
    return {"model": MODEL, "version": version, "reference": True,
            "features": {"amount": world.amounts(rng, n, drifted), "country": World.countries(rng, n)},
            "predictions": [rng.betavariate(2, 8) for _ in range(n)],
            "quality": {"correct": 920, "labelled": 1000}}



class Instance:
    """One serving instance: register, follow the assignment, load, heartbeat."""

    def __init__(self, client: modelctl.Client, instance_id: str, load_seconds: float,
                 on_change: Callable[[], None]) -> None:
        self.id = instance_id
        self.loaded = ""
        self.loads: list[str] = []
        self._client = client
        self._load_seconds = load_seconds
        self._on_change = on_change
        self._want = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stream: Any = None
        self._interval = 1.0
        self._threads = [threading.Thread(target=self._follow, name=f"{instance_id}-assignment", daemon=True),
                         threading.Thread(target=self._beat, name=f"{instance_id}-heartbeat", daemon=True)]

    def start(self) -> None:
        self._client.register_instance(MODEL, self.id, f"10.0.0.{len(self.id)}:8080")
        for t in self._threads:
            t.start()

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                with self._client.watch_assignment(MODEL, self.id) as stream:
                    self._stream = stream
                    for assignment in stream:
                        self._assign(assignment.version)
            except (errors.ModelctlError, ValueError):
                pass  # the controller restarted or the demo is ending: follow again (or stop)
            self._stop.wait(0.2)  # reconnect pace

    def _beat(self) -> None:
        while not self._stop.is_set():
            try:
                answer = self._client.heartbeat(MODEL, self.id, self.loaded, healthy=True)
                self._interval = max(0.2, answer.heartbeat_interval.ToTimedelta().total_seconds() or 1.0)
                self._assign(answer.assigned_version)
            except (errors.ModelctlError, ValueError):
                pass
            self._stop.wait(self._interval)  # the controller's heartbeat interval

    def _assign(self, version: str) -> None:
        with self._lock:
            if not version or version == self._want:
                return
            self._want = version
        # Loading a model takes a moment; then the instance serves it and says so at once.
        self._stop.wait(self._load_seconds)
        with self._lock:
            if self._want != version or self._stop.is_set():
                return
            self.loaded = version
            self.loads.append(version)
        try:
            self._client.heartbeat(MODEL, self.id, version, healthy=True)
        except (errors.ModelctlError, ValueError):
            pass
        self._on_change()

    def stop(self) -> None:
        self._stop.set()
        if self._stream is not None:
            self._stream.cancel()
        for t in self._threads:
            if t.is_alive():
                t.join(5)


@dataclass
class Report:
    """One ReportMetrics call of the generator: when it was sent and answered, and for which versions."""

    sent: float
    answered: float
    versions: tuple[str, ...]


@dataclass
class VersionTotals:
    requests: int = 0
    errors: int = 0
    conversions: int = 0


class TrafficGenerator:
    """Requests routed by `TrafficRouter` and reported per version with `ReportMetrics`, every `tick`."""

    def __init__(self, client: modelctl.Client, world: World, *, tick: float, per_tick: int, seed: int = 1) -> None:
        self.world = world
        self.totals: dict[str, VersionTotals] = defaultdict(VersionTotals)
        self.reports: list[Report] = []
        self.splits: list[tuple[float, dict[str, float]]] = []
        self.failures = 0
        self._client = client
        self._tick = tick
        self._per_tick = per_tick
        self._rng = random.Random(seed)
        self._splits_changed = threading.Condition()
        self._stop = threading.Event()
        self.router: modelctl.TrafficRouter | None = None
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def start(self) -> None:
        """Once the model exists: the router follows its split from here on."""
        self.router = modelctl.TrafficRouter(MODEL, self._client, on_change=self._saw_split)
        self._thread.start()

    def _saw_split(self, split: Any) -> None:
        with self._splits_changed:
            self.splits.append((time.time(), dict(split.weights)))
            self._splits_changed.notify_all()

    def wait_split(self, predicate: Callable[[dict[str, float]], bool], timeout: float) -> bool:
        """Until the router has seen a split satisfying `predicate` (it follows WatchTrafficSplit)."""
        assert self.router is not None, "start() first"
        return self.router.wait_until(lambda split: predicate(dict(split.weights)), timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._one_tick()
            except modelctl.NoTrafficSplitError:
                pass  # no live version yet: no traffic to serve
            except (errors.ModelctlError, ValueError):
                self.failures += 1
            self._stop.wait(max(0.0, self._tick - (time.monotonic() - started)))  # the traffic's pace

    def _one_tick(self) -> None:
        rng, router = self._rng, self.router
        assert router is not None
        by_version: dict[str, list[str]] = defaultdict(list)
        for _ in range(self._per_tick):
            user = f"user-{rng.randrange(100_000)}"
            by_version[router.choose(user)].append(user)
        samples = []
        for version, users in by_version.items():
            b = self.world.behaviour(version)
            n = len(users)
            errs = sum(rng.random() < b.error_rate for _ in range(n))
            conversions = sum(rng.random() < b.conversion for _ in range(n))
            labelled = n // 4
            samples.append({
                "model": MODEL, "version": version, "requests": n, "errors": errs,
                "latency_ms": [rng.gammavariate(4.0, b.latency_ms / 4.0) for _ in range(n)],
                "features": {"amount": self.world.amounts(rng, n), "country": World.countries(rng, n)},
                "predictions": [rng.betavariate(2, 8) for _ in range(n)],
                "outcome": {"successes": conversions, "trials": n},
                "quality": {"correct": sum(rng.random() < b.accuracy for _ in range(labelled)), "labelled": labelled},
            })
            t = self.totals[version]
            t.requests += n
            t.errors += errs
            t.conversions += conversions
        sent = time.time()
        self._client.report_metrics(samples)
        self.reports.append(Report(sent, time.time(), tuple(by_version)))
        del self.reports[:-2000]

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        if self.router is not None:
            self.router.close()


class AlertWatcher:
    """An on-call tool: `stream_alerts` in a thread, every event kept (it resumes by itself after breaks)."""

    def __init__(self, client: modelctl.Client) -> None:
        self.events: list[Any] = []
        self._client = client
        self._changed = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            for event in self._client.stream_alerts(from_start=True):
                with self._changed:
                    self.events.append(event)
                    self._changed.notify_all()
                if self._stopped:
                    return
        except Exception:  # noqa: BLE001 - the client was closed: the demo is ending
            return

    def wait(self, predicate: Callable[[Any], bool], timeout: float) -> Any | None:
        """The first alert event matching `predicate`, waiting for it up to `timeout` seconds."""
        found: list[Any] = []

        def match() -> bool:
            found[:] = [e for e in self.events if predicate(e)]
            return bool(found)

        with self._changed:
            return found[0] if self._changed.wait_for(match, timeout) else None

    def stop(self) -> None:
        self._stopped = True


class Fleet:
    """Instances, traffic and the alert watcher, started together and stopped together."""

    def __init__(self, address: str, token: str, world: World, *, instances: int, tick: float, per_tick: int,
                 load_seconds: float) -> None:
        # One connection per role, as separate services would have.
        self.clients = [modelctl.Client(address, token=token) for _ in range(3)]
        serving, traffic, oncall = self.clients
        self._changed = threading.Condition()
        self.instances = [Instance(serving, f"fraud-{i + 1}", load_seconds, self._instance_changed)
                          for i in range(instances)]
        self.traffic = TrafficGenerator(traffic, world, tick=tick, per_tick=per_tick)
        self.alerts = AlertWatcher(oncall)

    def _instance_changed(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def start(self) -> None:
        self.alerts.start()
        for instance in self.instances:
            instance.start()
        self.traffic.start()

    def wait_loaded(self, version: str, timeout: float) -> bool:
        """Until every instance serves `version` (they follow WatchAssignment)."""
        with self._changed:
            return self._changed.wait_for(lambda: all(i.loaded == version for i in self.instances), timeout)

    def stop(self) -> None:
        self.alerts.stop()
        self.traffic.stop()
        for instance in self.instances:
            instance.stop()
        for client in self.clients:
            client.close()
