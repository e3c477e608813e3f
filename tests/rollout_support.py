"""Helpers for SDK and CLI rollout tests against a real controller: models, a live version, metric traffic.

`MetricsFeeder` plays the serving side: it reports a steady window of traffic for
one version every few milliseconds from a background thread, as a pipeline
would, so a canary's gates have samples to judge. Tests never sleep to wait for
a state: they block on the SDK's watch (`wait_for_deployment`) or poll with a
deadline (`eventually`).
"""

from __future__ import annotations

import threading
import time
from typing import Callable, TypeVar

import modelctl
from modelctl import errors

T = TypeVar("T")

#: Parameters that take a canary through its steps in well under a second of healthy traffic.
FAST_CANARY = {"interval": "100ms", "min_samples": 5, "progress_deadline": "30s"}
#: The reconcile loop's tick in these tests (1 s by default): 100 ms steps then advance on time.
RECONCILE_INTERVAL = "50ms"


def fast_server(server_factory):  # type: ignore[no-untyped-def]
    """Like `live_server` (SQLite, auth on), with a reconcile loop ticking every 50 ms."""
    return server_factory(MODELCTL_DEPLOYMENT_RECONCILE_INTERVAL=RECONCILE_INTERVAL)


class MetricsFeeder:
    """Reports `requests`/`errors` for `model` `version` every `every` seconds until stopped."""

    def __init__(self, client: modelctl.Client, model: str, version: str, *, requests: int = 10,
                 errors: int = 0, latency_ms: float = 5.0, every: float = 0.02) -> None:
        self._client = client
        self._sample = {"model": model, "version": version, "requests": requests, "errors": errors,
                        "latency_ms": [latency_ms] * min(requests, 50)}
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"feeder-{model}-{version}", daemon=True)
        self.reports = 0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._client.report_metrics([self._sample])
                self.reports += 1
            except errors.ModelctlError:
                pass  # the server is restarting in some tests: keep going
            self._stop.wait(self._every)  # the pace of the traffic, not a wait for a result

    def __enter__(self) -> MetricsFeeder:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)


def eventually(probe: Callable[[], T | None], timeout: float = 15.0, what: str = "condition") -> T:
    """Call `probe` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)  # polling pace


def register(client: modelctl.Client, model: str, *versions: str) -> None:
    for version in versions:
        client.register_model(model, version, f"s3://models/{model}/{version}.onnx")


def make_live(client: modelctl.Client, model: str, version: str) -> modelctl.types.Deployment:
    """Put `version` live with an immediate deployment and healthy traffic for its short bake."""
    deployment = client.deploy(model, version, "immediate", bake_time="100ms", min_samples=5)
    with MetricsFeeder(client, model, version):
        final = client.wait_for_deployment(deployment.id, timeout=30)
    assert final.state == modelctl.types.DeploymentState.Value("DEPLOYMENT_STATE_SUCCEEDED"), final
    return final


def first_step(client: modelctl.Client, deployment_id: str) -> modelctl.types.DeploymentEvent:
    """Block (on the watch, not a sleep) until the deployment has started its first step."""
    step_started = modelctl.types.DeploymentEventKind.Value("DEPLOYMENT_EVENT_KIND_STEP_STARTED")
    with client.watch_deployment(deployment_id, timeout=30) as events:
        for event in events:
            if event.kind == step_started:
                return event
    raise AssertionError(f"deployment {deployment_id} ended without starting a step")
