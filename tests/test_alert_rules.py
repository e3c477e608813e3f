"""The experiment alert rule: a broken split (sample-ratio mismatch) is a WARNING per experiment, resolved
when the split heals or the experiment stops; significance is an INFO alert while it runs. Pure rule checks
on plain values, then the real `ExperimentService` behind a real server, fed through ReportMetrics."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest

from modelctl.v1 import deployment_pb2 as dpb
from modelctl.v1 import experiment_pb2 as epb
from modelctl.v1 import registry_pb2 as rpb
from modelctl_server.alerts.model import AlertKind, AlertState, Change, Severity, fingerprint
from modelctl_server.alerts.rules import evaluate_experiments
from modelctl_server.clock import FakeClock

from grpc_helpers import stub

#: System rules off, and the evaluator's own ticks far apart: the tests evaluate, one round at a time.
QUIET = {"MODELCTL_ALERTS_CPU_PERCENT": "100", "MODELCTL_ALERTS_MEMORY_PERCENT": "100",
         "MODELCTL_ALERTS_LOOP_LAG": "60s", "MODELCTL_ALERTS_EVALUATE_INTERVAL": "1h"}


def _view(*, mismatch: bool, significant: bool = False, eid: str = "e1") -> Any:
    experiment = SimpleNamespace(id=eid, model="shop", control_version="1", treatment_version="2",
                                 treatment_percent=20.0)
    result = SimpleNamespace(sample_ratio_mismatch=mismatch, srm_p_value=1e-9 if mismatch else 0.4,
                             significant=significant, winner="2" if significant else None, p_value=0.001,
                             summary="conversion 12.00% (2) vs 10.00% (1)", control=SimpleNamespace(samples=900),
                             treatment=SimpleNamespace(samples=100))
    return SimpleNamespace(experiment=experiment, result=result)


def test_the_rule_on_plain_values() -> None:
    srm_fp = fingerprint(AlertKind.EXPERIMENT, "shop", "2", "sample_ratio_mismatch")
    broken = evaluate_experiments([_view(mismatch=True)], Severity.WARNING, Severity.INFO)
    (signal,) = broken.signals
    assert (signal.kind, signal.rule, signal.severity, signal.model, signal.version, signal.fingerprint) == (
        AlertKind.EXPERIMENT, "sample_ratio_mismatch", Severity.WARNING, "shop", "2", srm_fp)
    assert signal.periodic and signal.labels["experiment_id"] == "e1"
    assert "control 900 vs treatment 100 samples for a 80/20 split" in signal.message
    assert broken.exhaustive == {AlertKind.EXPERIMENT} and broken.cleared == set()
    healed = evaluate_experiments([_view(mismatch=False, significant=True)], Severity.WARNING, Severity.INFO)
    assert healed.cleared == {srm_fp}
    (info,) = healed.signals
    assert (info.rule, info.severity) == ("significant", Severity.INFO) and "2 wins" in info.message
    assert "modelctl experiments stop e1 --promote-winner" in info.message
    quiet = evaluate_experiments([_view(mismatch=False, significant=True)], Severity.WARNING, None)
    assert quiet.signals == []  # alerts.experiment_significance = false
    assert evaluate_experiments([], Severity.WARNING, Severity.INFO).exhaustive == {AlertKind.EXPERIMENT}


class Shop:
    """A real controller (fake clock) with model `shop` 1 (live) and 2, and an experiment between them."""

    def __init__(self, server_factory: Any, **env: str) -> None:
        self.clock = FakeClock(dt.datetime.now(dt.timezone.utc).replace(microsecond=0))
        self.srv = server_factory(clock=self.clock, **QUIET, **env)
        self.api = stub(self.srv.address, self.srv.admin_token)
        for version in ("1", "2"):
            self.api.RegisterModel(rpb.RegisterModelRequest(name="shop", version=version,
                                                            artifact_uri=f"s3://m/{version}"))
        self.experiment = self.api.StartExperiment(epb.StartExperimentRequest(
            model="shop", control_version="1", treatment_version="2", treatment_percent=50))

    def convert(self, version: str, successes: int, trials: int) -> None:
        self.api.ReportMetrics(dpb.ReportMetricsRequest(samples=[dpb.MetricsSample(
            model="shop", version=version, requests=trials, outcome=dpb.Outcome(successes=successes, trials=trials))]))

    def evaluate(self) -> list[Any]:
        self.clock.advance(10)
        return self.srv.app.alert_evaluator.evaluate()

    def experiment_alerts(self) -> list[Any]:
        return [e for e in self.srv.app.alerts.store.events_after(0, 1000) if e.alert.kind is AlertKind.EXPERIMENT]


def test_a_broken_split_alerts_until_it_heals_then_significance_until_the_experiment_stops(server_factory) -> None:  # type: ignore[no-untyped-def]
    shop = Shop(server_factory)
    assert shop.evaluate() == []  # no samples: no mismatch, nothing significant
    shop.convert("1", 100, 1000)
    shop.convert("2", 10, 100)  # a 50/50 split that delivered 1000 vs 100: the router is broken
    (raised,) = shop.evaluate()
    alert = raised.alert
    assert (raised.change, alert.kind, alert.severity, alert.model, alert.version, alert.rule) == (
        Change.RAISED, AlertKind.EXPERIMENT, Severity.WARNING, "shop", "2", "sample_ratio_mismatch")
    assert alert.labels["experiment_id"] == shop.experiment.id and "sample ratio mismatch" in alert.message
    assert shop.evaluate() == []  # still broken: counted, not streamed again
    assert shop.srv.app.alerts.get(alert.id).count == 2
    shop.convert("2", 290, 900)  # the split heals (1000 vs 1000) and the treatment converts far better
    changes = {(e.change, e.alert.rule, e.alert.severity) for e in shop.evaluate()}
    assert changes == {(Change.RESOLVED, "sample_ratio_mismatch", Severity.WARNING),
                       (Change.RAISED, "significant", Severity.INFO)}
    shop.api.StopExperiment(epb.StopExperimentRequest(id=shop.experiment.id))
    (resolved,) = shop.evaluate()  # it no longer runs: its alert resolves
    assert (resolved.change, resolved.alert.rule, resolved.alert.state) == (
        Change.RESOLVED, "significant", AlertState.RESOLVED)
    assert shop.srv.app.alerts.store.open_fingerprints([AlertKind.EXPERIMENT]) == set()


def test_a_failed_read_of_the_experiments_resolves_nothing(server_factory,  # type: ignore[no-untyped-def]
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    shop = Shop(server_factory)
    shop.convert("1", 100, 1000)
    shop.convert("2", 10, 100)
    (raised,) = shop.evaluate()

    def broken(**_: Any) -> list[Any]:
        raise RuntimeError("database is locked")
    monkeypatch.setattr(shop.srv.app.experiments, "list", broken)
    assert shop.evaluate() == []
    assert shop.srv.app.alerts.get(raised.alert.id).state is AlertState.OPEN


def test_significance_alerts_can_be_switched_off(server_factory) -> None:  # type: ignore[no-untyped-def]
    shop = Shop(server_factory, MODELCTL_ALERTS_EXPERIMENT_SIGNIFICANCE="false")
    shop.convert("1", 100, 1000)
    shop.convert("2", 300, 1000)
    assert shop.evaluate() == [] and shop.experiment_alerts() == []
