"""ReportMetrics' ingest thread: reports that queue up while it is busy are applied as one batch.

`BatchWorker` on its own (batches, each caller's own outcome, stop), then a real server whose ingest
thread is held while reports queue, so that they land in one batch for certain: a refused report in a
batch refuses only itself, judged as if it had come alone, and a fast-fail breach inside a batch rolls
back once, announced once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from modelctl.v1 import deployment_pb2 as dpb
from modelctl.v1 import registry_pb2 as rpb
from modelctl_server.api.batch_worker import BatchWorker
from modelctl_server.clock import FakeClock

from grpc_helpers import bad_fields, stub
from rollout_support import eventually

# --- BatchWorker ------------------------------------------------------------------------------------------


class Gate:
    """An `apply` that records its batches and can be held closed while items queue up."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []
        self.entered = threading.Event()
        self.open = threading.Event()
        self.open.set()

    def __call__(self, items: list[Any]) -> list[Any]:
        self.entered.set()
        self.open.wait(10)
        self.batches.append(list(items))
        if "explode" in items:
            raise RuntimeError("the whole batch failed")
        return [ValueError(f"bad {x}") if str(x).startswith("bad") else f"done {x}" for x in items]


async def _queued_behind(gate: Gate, worker: BatchWorker, first: str, rest: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """Submit `first`, hold the worker inside its batch until `rest` have queued, then let it go on."""
    gate.open.clear()
    head = asyncio.ensure_future(worker.submit(first))
    await asyncio.get_running_loop().run_in_executor(None, gate.entered.wait, 10)
    tail = [asyncio.ensure_future(worker.submit(x)) for x in rest]
    while worker.queued() < len(rest):
        await asyncio.sleep(0.001)
    gate.open.set()
    return head, tail


def test_items_queued_while_busy_are_applied_together_each_caller_getting_its_own_outcome() -> None:
    async def scenario() -> None:
        gate = Gate()
        worker: BatchWorker[str, str] = BatchWorker(gate, name="test-batches")
        first, rest = await _queued_behind(gate, worker, "a", ("b", "bad c", "d"))
        assert await first == "done a"
        assert await rest[0] == "done b" and await rest[2] == "done d"
        with pytest.raises(ValueError, match="bad c"):
            await rest[1]
        assert gate.batches == [["a"], ["b", "bad c", "d"]]
        worker.stop()
    asyncio.run(scenario())


def test_a_failing_batch_fails_every_caller_in_it_and_the_worker_goes_on() -> None:
    async def scenario() -> None:
        gate = Gate()
        worker: BatchWorker[str, str] = BatchWorker(gate, name="test-batches")
        first, doomed = await _queued_behind(gate, worker, "a", ("b", "explode"))
        assert await first == "done a"
        for call in doomed:
            with pytest.raises(RuntimeError, match="the whole batch failed"):
                await call
        assert await worker.submit("e") == "done e"
        worker.stop()
    asyncio.run(scenario())


def test_stop_applies_what_was_submitted_and_a_cancelled_caller_s_item_is_still_applied() -> None:
    async def scenario() -> None:
        gate = Gate()
        worker: BatchWorker[str, str] = BatchWorker(gate, name="test-batches", max_batch=2)
        gate.open.clear()
        calls = [asyncio.ensure_future(worker.submit(x)) for x in "abcde"]
        await asyncio.get_running_loop().run_in_executor(None, gate.entered.wait, 10)
        calls[2].cancel()
        gate.open.set()
        await asyncio.get_running_loop().run_in_executor(None, worker.stop)
        assert [x for batch in gate.batches for x in batch] == list("abcde")
        assert max(len(batch) for batch in gate.batches) <= 2
        assert [await c for c in calls if not c.cancelled()] == ["done a", "done b", "done d", "done e"]
        assert await worker.submit("f") == "done f"  # a later submit starts the thread again
        worker.stop()
    asyncio.run(scenario())


# --- a real server, its ingest thread held ----------------------------------------------------------------


class HeldIngest:
    """Holds the server's ingest thread inside a report for version 3 (drift's lock), so others queue."""

    def __init__(self, srv: Any) -> None:
        self.srv = srv
        self.api = stub(srv.address, srv.admin_token)
        self.pool = ThreadPoolExecutor(8)

    def send(self, *samples: dpb.MetricsSample):  # type: ignore[no-untyped-def]
        return self.pool.submit(self.api.ReportMetrics, dpb.ReportMetricsRequest(samples=list(samples)), timeout=30)

    def batch(self, reports: list[list[dpb.MetricsSample]]) -> list[Any]:
        """Send `reports` so that they are ingested as one batch; their futures."""
        drift = self.srv.app.services.drift
        worker = self.srv.app.services.ingest
        checking = threading.Event()
        check = drift.check

        def noting_check(samples):  # type: ignore[no-untyped-def]
            if any(x.version == "3" for x in samples):
                checking.set()
            return check(samples)

        drift.check = noting_check
        try:
            with drift._lock:  # the ingest thread stops in the blocker's drift check, which takes this lock
                blocker = self.send(dpb.MetricsSample(model="fraud", version="3", features={
                    "x": dpb.FeatureValues(numeric=[1.0])}))
                assert checking.wait(10)
                futures = []
                for samples in reports:  # one at a time, so that they queue in this order
                    futures.append(self.send(*samples))
                    eventually(lambda: worker.queued() == len(futures), timeout=10, what="the report to queue")
        finally:
            drift.check = check
        blocker.result()
        return futures


@pytest.fixture
def held(server_factory) -> HeldIngest:  # type: ignore[no-untyped-def]
    clock = FakeClock(dt.datetime.now(dt.timezone.utc))
    srv = server_factory(clock=clock, MODELCTL_DEPLOYMENT_MIN_SAMPLES="10")
    h = HeldIngest(srv)
    h.clock = clock  # type: ignore[attr-defined]
    for v in ("1", "2", "3"):
        h.api.RegisterModel(rpb.RegisterModelRequest(name="fraud", version=v, artifact_uri=f"s3://m/{v}"))
    return h


def test_a_report_refused_inside_a_batch_refuses_only_itself_judged_as_if_it_came_alone(held: HeldIngest) -> None:
    numeric = dpb.MetricsSample(model="fraud", version="1", requests=5,
                                features={"age": dpb.FeatureValues(numeric=[30.0, 40.0])})
    categorical = dpb.MetricsSample(model="fraud", version="1", requests=5,
                                    features={"age": dpb.FeatureValues(categorical=["old"])})
    plain = dpb.MetricsSample(model="fraud", version="2", requests=7, latency_ms=[10.0] * 7)
    first, second, third = held.batch([[numeric], [categorical], [plain]])
    assert first.result().accepted_samples == 1 and third.result().accepted_samples == 1
    with pytest.raises(grpc.RpcError) as refused:
        second.result()
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(refused.value) == ["samples[0].features[age]"]
    assert "numeric" in refused.value.details()
    metrics = held.srv.app.services.metrics
    now = held.clock.now()  # type: ignore[attr-defined]
    window = metrics.window("fraud", "1", now - dt.timedelta(minutes=1), now)
    assert window.requests == 5  # the refused report's 5 requests were not counted
    assert metrics.window("fraud", "2", now - dt.timedelta(minutes=1), now).requests == 7


def test_a_breach_inside_a_batch_rolls_back_once_before_any_report_of_it_is_answered(held: HeldIngest) -> None:
    api, srv = held.api, held.srv
    live = api.DeployModel(dpb.DeployModelRequest(model="fraud", version="1",
                                                  strategy=dpb.DEPLOYMENT_STRATEGY_IMMEDIATE,
                                                  params=dpb.DeploymentParams(bake_time=Duration(seconds=0))))
    srv.call(srv.app.reconciler.tick())
    srv.call(srv.app.reconciler.tick())
    assert api.GetDeployment(dpb.GetDeploymentRequest(id=live.id)).state == dpb.DEPLOYMENT_STATE_SUCCEEDED
    dep = api.DeployModel(dpb.DeployModelRequest(
        model="fraud", version="2", strategy=dpb.DEPLOYMENT_STRATEGY_CANARY,
        params=dpb.DeploymentParams(steps=[50, 100], step_interval=Duration(seconds=30))))
    srv.call(srv.app.reconciler.tick())
    held.clock.advance(1)  # type: ignore[attr-defined]
    bad = [dpb.MetricsSample(model="fraud", version="2", requests=20, errors=10, latency_ms=[40.0] * 20)]
    good = [dpb.MetricsSample(model="fraud", version="1", requests=20, latency_ms=[40.0] * 20)]
    futures = held.batch([bad, good, bad, bad])
    assert [f.result().accepted_samples for f in futures] == [1, 1, 1, 1]
    # Every report of the batch was answered after the rollback: no tick, no time passing.
    final = api.GetDeployment(dpb.GetDeploymentRequest(id=dep.id))
    assert final.state == dpb.DEPLOYMENT_STATE_ROLLED_BACK
    kinds = [dpb.DeploymentEventKind.Name(e.kind).removeprefix("DEPLOYMENT_EVENT_KIND_")
             for e in api.WatchDeployment(dpb.WatchDeploymentRequest(id=dep.id), timeout=10)]
    assert kinds == ["CREATED", "STEP_STARTED", "ROLLBACK_STARTED", "ROLLED_BACK"]
    registry = srv.app.recorder.registry
    announced = registry.get_sample_value("modelctl_deployment_events_total",
                                          {"model": "fraud", "kind": "ROLLBACK_STARTED"})
    assert announced == 1  # announced once, by one caller of the batch


def test_a_report_that_cannot_be_prepared_fails_alone_and_the_rest_of_its_batch_is_stored(held: HeldIngest) -> None:
    """The API refuses such a report before it is queued; the batch must not rely on that."""
    from modelctl_server.api.report_ingest import ingest_batch
    from modelctl_server.errors import ValidationError
    from modelctl_server.telemetry.sample import TelemetrySample

    now = held.clock.now()  # type: ignore[attr-defined]
    services = held.srv.app.services
    broken = TelemetrySample(model="fraud", version="1", at=now, requests=-1)
    fine = TelemetrySample(model="fraud", version="2", at=now, requests=4, errors=1)
    outcomes = ingest_batch(services, [[fine], [broken], [fine]])
    assert outcomes[0] == [] and outcomes[2] == [] and isinstance(outcomes[1], ValidationError)
    window = services.metrics.window("fraud", "2", now - dt.timedelta(minutes=1), now)
    assert (window.requests, window.errors) == (8, 2)
    assert services.metrics.window("fraud", "1", now - dt.timedelta(minutes=1), now).requests == 0
    replayed = list(services.journal.since(now - dt.timedelta(minutes=1)))
    assert [(r.version, r.requests) for r in replayed] == [("2", 4), ("2", 4)]


def test_a_report_the_windows_fail_to_fold_is_still_answered_and_stored_once(held: HeldIngest, caplog) -> None:  # type: ignore[no-untyped-def]
    """Windows, series and drift are derived from the journal: a failure there must not make the callers send
    their stored reports again (they would be counted twice)."""
    from modelctl_server.api.report_ingest import ingest_batch
    from modelctl_server.telemetry.sample import TelemetrySample

    now = held.clock.now()  # type: ignore[attr-defined]
    services = held.srv.app.services
    add = services.metrics.add

    def failing_add(report):  # type: ignore[no-untyped-def]
        if report.version == "1":
            raise RuntimeError("a bug in the windows")
        return add(report)

    services.metrics.add = failing_add
    try:
        outcomes = ingest_batch(services, [[TelemetrySample(model="fraud", version="2", at=now, requests=4)],
                                           [TelemetrySample(model="fraud", version="1", at=now, requests=5)],
                                           [TelemetrySample(model="fraud", version="2", at=now, requests=4)]])
    finally:
        services.metrics.add = add
    assert outcomes == [[], [], []]
    assert services.metrics.window("fraud", "2", now - dt.timedelta(minutes=1), now).requests == 8
    replayed = list(services.journal.since(now - dt.timedelta(minutes=1)))
    assert sorted((r.version, r.requests) for r in replayed) == [("1", 5), ("2", 4), ("2", 4)]
    assert "folding a report of fraud version 1 into the metrics windows failed" in caplog.text
