"""DriftService with synthetic data of known truth: references, windows, scores, checks, bounds, the gate."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import numpy as np
import pytest
from scipy import stats

from modelctl_server.clock import FakeClock
from modelctl_server.config import DriftSettings, ThresholdSettings
from modelctl_server.deployments import ParamOverrides, Strategy
from modelctl_server.drift import DriftService, FeatureKind, ReferenceSource, StoredProfile
from modelctl_server.telemetry.sample import TelemetrySample

from deploy_support import START, World, history

N = 2000


class MemoryProfiles:
    """A ProfileStore in a dict, counting writes."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], StoredProfile] = {}
        self.saves = 0

    def load(self, model: str, version: str) -> StoredProfile | None:
        return self.rows.get((model, version))

    def save(self, profile: StoredProfile, at: dt.datetime) -> None:
        self.saves += 1
        self.rows[(profile.model, profile.version)] = profile


def sample(clock: FakeClock, version: str = "1", model: str = "fraud", **fields: Any) -> TelemetrySample:
    return TelemetrySample(model=model, version=version, at=clock.now(), **fields)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def store() -> MemoryProfiles:
    return MemoryProfiles()


def service(store: MemoryProfiles, clock: FakeClock, **drift: Any) -> DriftService:
    return DriftService(store, clock, DriftSettings(**drift), ThresholdSettings())


def test_reference_samples_then_live_traffic_shifted_by_one_sd(store: MemoryProfiles, clock: FakeClock) -> None:
    rng = np.random.default_rng(3)
    svc = service(store, clock)
    age_ref, income_ref = rng.normal(40, 10, N), rng.normal(3000, 500, N)
    svc.ingest([sample(clock, reference=True, numeric={"age": age_ref.tolist(), "income": income_ref.tolist()})])
    before = svc.report("fraud", "1")
    assert before.reference_source is ReferenceSource.REFERENCE_SAMPLES
    assert any("once live values arrive" in note for note in before.notes)
    assert before.features[0].note.startswith("reference has 2000 values")

    clock.advance(5)
    age_live, income_live = rng.normal(50, 10, N), rng.normal(3000, 500, N)  # age shifts by one sd
    for chunk in range(4):  # several batches add up
        part = slice(chunk * 500, (chunk + 1) * 500)
        svc.ingest([sample(clock, requests=500, numeric={"age": age_live[part].tolist(),
                                                         "income": income_live[part].tolist()})])
    clock.advance(1)
    report = svc.report("fraud", "1")
    age, income = report.features
    assert (age.name, age.kind, income.name) == ("age", FeatureKind.NUMERIC, "income")
    assert age.psi > 0.25 and age.ks_p_value < 0.01 and age.drifted
    assert age.ks_statistic == pytest.approx(stats.ks_2samp(age_ref, age_live).statistic, abs=0.02)
    assert income.psi < 0.1 and not income.drifted
    assert income.ks_statistic == pytest.approx(stats.ks_2samp(income_ref, income_live).statistic, abs=0.02)
    assert (age.reference_samples, age.window_samples) == (N, N)
    assert report.data_score == pytest.approx(age.psi)
    assert report.drifted and report.threshold == 0.1
    assert (report.reference_samples, report.window_samples) == (N, N)
    assert report.window_end == clock.now()
    assert report.window_end - report.window_start == dt.timedelta(hours=1)


def test_reference_from_the_first_live_values(store: MemoryProfiles, clock: FakeClock) -> None:
    rng = np.random.default_rng(5)
    svc = service(store, clock)
    first = rng.normal(0, 1, 420)
    svc.ingest([sample(clock, requests=420, numeric={"x": first.tolist()})])
    building = svc.report("fraud", "1")
    assert building.reference_source is ReferenceSource.FIRST_LIVE_VALUES
    assert building.features[0].note == "reference is being built: 420 of 1000 values"
    assert any("first 1000 live values" in note for note in building.notes)
    assert svc.drift_score("fraud", "1", START, clock.now()) is None  # no score until the reference is sealed

    rest = rng.normal(0, 1, 580 + N)  # 580 complete the reference, the rest is the window
    svc.ingest([sample(clock, requests=len(rest), numeric={"x": rest.tolist()})])
    clock.advance(1)
    stable = svc.report("fraud", "1")
    assert stable.features[0].reference_samples == 1000 and stable.features[0].window_samples == N
    assert stable.features[0].psi < 0.1 and not stable.drifted
    assert not any("being built" in note for note in stable.notes)

    svc.ingest([sample(clock, requests=N, numeric={"x": rng.normal(1, 1, N).tolist()})])
    clock.advance(1)
    assert svc.report("fraud", "1", window_seconds=1.5).features[0].drifted


def test_prior_drift_on_predictions(store: MemoryProfiles, clock: FakeClock) -> None:
    rng = np.random.default_rng(8)
    svc = service(store, clock)
    svc.ingest([sample(clock, reference=True, numeric={"x": rng.normal(0, 1, N).tolist()},
                       predictions=rng.beta(2, 5, N).tolist())])
    clock.advance(1)
    svc.ingest([sample(clock, requests=N, numeric={"x": rng.normal(0, 1, N).tolist()},
                       predictions=rng.beta(5, 2, N).tolist())])
    clock.advance(1)
    report = svc.report("fraud", "1")
    assert report.data_score < 0.1 and not report.features[0].drifted
    assert report.predictions.name == "predictions" and report.predictions.drifted
    assert report.prior_score == pytest.approx(report.predictions.psi) and report.prior_score > 0.25
    assert report.drifted


def test_concept_drift_from_labelled_quality(store: MemoryProfiles, clock: FakeClock) -> None:
    svc = service(store, clock)
    svc.ingest([sample(clock, reference=True, correct=900, labelled=1000)])
    assert any("no labelled requests in the window" in n for n in svc.report("fraud", "1").notes)
    svc.ingest([sample(clock, requests=500, correct=440, labelled=500)])
    clock.advance(1)
    slight = svc.report("fraud", "1")
    assert (slight.reference_accuracy, slight.window_accuracy) == (0.9, 0.88)
    assert slight.concept_score == pytest.approx(0.02) and not slight.drifted
    svc.ingest([sample(clock, requests=500, correct=260, labelled=500)])
    clock.advance(1)
    dropped = svc.report("fraud", "1")
    assert dropped.window_accuracy == pytest.approx(0.7)
    assert dropped.concept_score == pytest.approx(0.2) and dropped.drifted


def test_live_built_reference_accuracy_takes_the_first_labelled_requests(store: MemoryProfiles,
                                                                         clock: FakeClock) -> None:
    svc = service(store, clock, reference_size=100)
    svc.ingest([sample(clock, requests=60, correct=57, labelled=60)])
    report = svc.report("fraud", "1")
    assert report.reference_accuracy is None
    assert any("60 of 100 labelled" in n for n in report.notes)
    # 40 more complete the reference (30 of them right, pro rata), the other 60 are the window's.
    svc.ingest([sample(clock, requests=100, correct=76, labelled=100)])
    clock.advance(1)
    report = svc.report("fraud", "1")
    assert report.reference_accuracy == pytest.approx(0.87)
    assert report.window_accuracy == pytest.approx(46 / 60)


def test_categorical_mix_change(store: MemoryProfiles, clock: FakeClock) -> None:
    rng = np.random.default_rng(13)
    svc = service(store, clock)
    names = ["fr", "de", "it"]
    reference = rng.choice(names, N, p=[0.6, 0.3, 0.1]).tolist()
    live = rng.choice(names + ["es"], N, p=[0.3, 0.3, 0.2, 0.2]).tolist()
    svc.ingest([sample(clock, reference=True, categorical={"country": reference})])
    clock.advance(1)
    svc.ingest([sample(clock, requests=N, categorical={"country": live})])
    clock.advance(1)
    (country,) = svc.report("fraud", "1").features
    assert country.kind is FeatureKind.CATEGORICAL and country.drifted
    table = np.array([[reference.count(n) for n in names] + [0], [live.count(n) for n in names + ["es"]]])
    expected = stats.chi2_contingency(table)
    assert country.chi_square == pytest.approx(expected.statistic)
    assert country.chi_square_p_value == pytest.approx(expected.pvalue)


def test_check_names_each_bad_feature(store: MemoryProfiles, clock: FakeClock) -> None:
    svc = service(store, clock, max_features=3)
    svc.ingest([sample(clock, requests=1, numeric={"age": [30.0]}, categorical={"country": ["fr"]})])
    problems = svc.check([
        sample(clock, requests=1, categorical={"age": ["old"]}),              # numeric before
        sample(clock, requests=1, numeric={"score": [1.0]}),
        sample(clock, requests=1, categorical={"score": ["x"]}),              # numeric earlier in this request
        sample(clock, requests=1, numeric={"extra": [1.0]}),                  # a 4th feature
        sample(clock, version="2", requests=1, categorical={"age": ["old"]}),  # another version: fine
    ])
    assert [p.field for p in problems] == ["samples[0].features[age]", "samples[2].features[score]",
                                           "samples[3].features[extra]"]
    assert "numeric" in problems[0].description and "drift.max_features" in problems[2].description
    assert svc.check([sample(clock, requests=1, numeric={"age": [1.0]})]) == []
    assert [p.field for p in svc.check([sample(clock, requests=1, numeric={"": [1.0]})])] == ["samples[0].features[]"]


def test_new_reference_after_sealing_starts_a_new_profile(store: MemoryProfiles, clock: FakeClock) -> None:
    rng = np.random.default_rng(21)
    svc = service(store, clock)
    svc.ingest([sample(clock, reference=True, numeric={"x": rng.normal(0, 1, N).tolist()})])
    svc.ingest([sample(clock, requests=N, numeric={"x": rng.normal(2, 1, N).tolist()})])
    clock.advance(1)
    assert svc.report("fraud", "1").drifted
    # Retrained on the new data: a new reference replaces the profile and clears the window.
    svc.ingest([sample(clock, reference=True, numeric={"x": rng.normal(2, 1, N).tolist()})])
    report = svc.report("fraud", "1")
    assert report.window_samples == 0 and not report.drifted
    svc.ingest([sample(clock, requests=N, numeric={"x": rng.normal(2, 1, N).tolist()})])
    clock.advance(1)
    report = svc.report("fraud", "1")
    assert report.features[0].psi < 0.1 and report.features[0].window_samples == N


def test_model_thresholds_override_the_default(store: MemoryProfiles, clock: FakeClock) -> None:
    svc = service(store, clock, model_thresholds=("fraud=5",))
    rng = np.random.default_rng(2)
    for model in ("fraud", "churn"):
        svc.ingest([sample(clock, model=model, reference=True, numeric={"x": rng.normal(0, 1, N).tolist()})])
        svc.ingest([sample(clock, model=model, requests=N, numeric={"x": rng.normal(1, 1, N).tolist()})])
    clock.advance(1)
    fraud, churn = svc.report("fraud", "1"), svc.report("churn", "1")
    assert (fraud.threshold, churn.threshold) == (5.0, 0.1)
    assert not fraud.drifted and churn.drifted


def test_drift_score_reads_only_the_window(store: MemoryProfiles, clock: FakeClock) -> None:
    rng = np.random.default_rng(4)
    svc = service(store, clock)
    assert svc.drift_score("fraud", "1", START, clock.now()) is None  # nothing reported
    svc.ingest([sample(clock, reference=True, numeric={"x": rng.normal(0, 1, N).tolist()})])
    assert svc.drift_score("fraud", "1", START, clock.now()) is None  # no live values yet
    clock.advance(30)
    svc.ingest([sample(clock, requests=N, numeric={"x": rng.normal(0, 1, N).tolist()})])
    step = clock.now()
    clock.advance(30)
    svc.ingest([sample(clock, requests=N, numeric={"x": rng.normal(1.5, 1, N).tolist()})])
    clock.advance(1)
    calm = svc.drift_score("fraud", "1", step - dt.timedelta(seconds=1), step)
    shifted = svc.drift_score("fraud", "1", step, clock.now())
    assert calm is not None and calm < 0.1
    assert shifted is not None and shifted > 0.25
    assert svc.drift_score("fraud", "1", clock.now(), clock.now() + dt.timedelta(seconds=5)) is None


def test_profiles_are_written_when_needed_and_survive_a_new_service(store: MemoryProfiles, clock: FakeClock) -> None:
    rng = np.random.default_rng(6)
    svc = service(store, clock)
    reference = rng.normal(0, 1, N)
    svc.ingest([sample(clock, reference=True, numeric={"x": reference.tolist()})])
    assert store.saves == 1 and not store.rows[("fraud", "1")].sealed
    svc.ingest([sample(clock, requests=10, numeric={"x": rng.normal(0, 1, 10).tolist()})])
    assert store.saves == 2 and store.rows[("fraud", "1")].sealed  # sealed: bins and counts only
    assert "values" not in store.rows[("fraud", "1")].data["features"]["x"]
    for _ in range(20):
        svc.ingest([sample(clock, requests=10, numeric={"x": rng.normal(0, 1, 10).tolist()})])
    assert store.saves == 2  # nothing written on the common path once sealed

    restarted = service(store, FakeClock(clock.now()))
    shifted = rng.normal(1, 1, N)
    restarted.ingest([sample(clock, requests=N, numeric={"x": shifted.tolist()})])
    (x,) = restarted.report("fraud", "1").features
    assert x.reference_samples == N and x.drifted
    assert x.ks_statistic == pytest.approx(stats.ks_2samp(reference, shifted).statistic, abs=0.02)


def test_a_live_built_reference_is_saved_while_it_grows_throttled(store: MemoryProfiles, clock: FakeClock) -> None:
    svc = service(store, clock, reference_size=100)
    svc.ingest([sample(clock, requests=10, numeric={"x": [1.0] * 10})])
    assert store.saves == 1  # the first growth is written at once
    svc.ingest([sample(clock, requests=10, numeric={"x": [2.0] * 10})])
    assert store.saves == 1  # then at most every persist_interval (5 s)
    svc.flush()
    assert store.saves == 2 and len(store.rows[("fraud", "1")].data["features"]["x"]["values"]) == 20
    svc.ingest([sample(clock, requests=90, numeric={"x": [3.0] * 90})])
    assert store.saves == 3 and store.rows[("fraud", "1")].sealed  # sealing is written at once
    restarted = service(store, clock, reference_size=100)
    assert restarted.report("fraud", "1").features[0].reference_samples == 100


def test_memory_stays_bounded_however_long_the_traffic(store: MemoryProfiles, clock: FakeClock) -> None:
    rng = np.random.default_rng(9)
    svc = DriftService(store, clock, DriftSettings(reference_max_values=1000, max_features=5), ThresholdSettings(),
                       max_series=3)
    features = {f"f{i}": rng.normal(0, 1, 3000).tolist() for i in range(5)}
    for _ in range(10):  # 30,000 reference values per feature: thinned to at most 1000
        svc.ingest([sample(clock, reference=True, numeric=features)])
    assert svc.footprint().reference_values <= 5 * 1000
    batch = {name: values[:200] for name, values in features.items()}
    svc.ingest([sample(clock, requests=200, numeric=batch)])
    one_version = svc.footprint()
    for _ in range(1500):  # 4 hours and 10 minutes in 10 s steps
        clock.advance(10)
        svc.ingest([sample(clock, requests=200, numeric=batch, predictions=batch["f0"])])
    grown = svc.footprint()
    assert grown.versions == 1 and grown.buckets == 360  # the last hour of 10 s buckets
    assert grown.reference_values == 0 and grown.counters <= 360 * (6 * 100 + 2) + one_version.counters
    for version in ("2", "3", "4", "5"):  # more versions than max_series: the idle ones are forgotten
        svc.ingest([sample(clock, version=version, requests=1, numeric={"f0": [0.0]})])
    assert svc.footprint().versions == 3
    assert ("fraud", "1") not in svc.tracked()


def test_the_drift_gate_fails_a_canary_whose_traffic_drifts(clock: FakeClock) -> None:
    rng = np.random.default_rng(17)
    drift = service(MemoryProfiles(), clock)
    world = World(drift=drift, clock=clock)  # type: ignore[arg-type]
    world.repo.add_model("fraud", ["v1", "v2"], live="v1")  # type: ignore[attr-defined]
    drift.ingest([sample(clock, version="v2", reference=True, numeric={"age": rng.normal(40, 10, N).tolist()})])
    d = world.deploy("v2", Strategy.CANARY, dataclasses.replace(
        ParamOverrides(step_interval=30, min_samples=20, progress_deadline=120, failure_limit=1)))
    world.tick(d)
    world.clock.advance(1)
    world.report("v2", 40)
    drift.ingest([sample(clock, version="v2", requests=40, numeric={"age": rng.normal(40, 10, 400).tolist()})])
    assert [e[1] for e in history(world.tick(d, 29))] == ["PROGRESSING"]  # step 1 passed: no drift
    world.clock.advance(1)
    world.report("v2", 40)
    drift.ingest([sample(clock, version="v2", requests=40, numeric={"age": rng.normal(60, 10, 400).tolist()})])
    events = history(world.tick(d, 29))
    assert events[-1][1] in ("ROLLING_BACK", "ROLLED_BACK")
    dep = world.controller.get(d)
    assert "drift-score gate failed" in dep.reason


def test_scores_match_the_report_without_the_tests(store: MemoryProfiles, clock: FakeClock) -> None:
    rng = np.random.default_rng(31)
    svc = service(store, clock)
    svc.ingest([sample(clock, reference=True, numeric={"a": rng.normal(0, 1, N).tolist()},
                       categorical={"b": rng.choice(["x", "y"], N).tolist()}, predictions=rng.random(N).tolist(),
                       correct=90, labelled=100)])
    svc.ingest([sample(clock, requests=N, numeric={"a": rng.normal(1, 1, N).tolist()},
                       categorical={"b": rng.choice(["x", "y"], N).tolist()}, predictions=rng.random(N).tolist(),
                       correct=50, labelled=100)])
    clock.advance(1)
    report, scores = svc.report("fraud", "1"), svc.scores("fraud", "1")
    assert scores.feature_psi == {f.name: f.psi for f in report.features}
    assert (scores.data_score, scores.prior_score, scores.concept_score) == (
        report.data_score, report.prior_score, report.concept_score)


def test_a_reference_folded_while_its_version_is_evicted_is_still_saved(store: MemoryProfiles,
                                                                         clock: FakeClock) -> None:
    svc = DriftService(store, clock, DriftSettings(), ThresholdSettings(), max_series=1)
    load = svc._state
    raced = []

    def racing(key: tuple[str, str]) -> Any:  # another thread's first report of version 2 lands in between
        state = load(key)
        if key == ("fraud", "1") and not raced:
            raced.append(load(("fraud", "2")))
        return state

    svc._state = racing  # type: ignore[method-assign]
    svc.ingest([sample(clock, reference=True, numeric={"x": [float(i) for i in range(100)]})])
    assert ("fraud", "1") in store.rows  # acknowledged, so written, not folded into a forgotten copy
    svc._state = load  # type: ignore[method-assign]
    assert svc.report("fraud", "1").features[0].reference_samples == 100


def test_a_lowered_reference_size_seals_without_swallowing_live_values(store: MemoryProfiles,
                                                                       clock: FakeClock) -> None:
    svc = service(store, clock, reference_size=100)
    svc.ingest([sample(clock, requests=80, numeric={"x": [float(i) for i in range(80)]})])
    svc.reconfigure(DriftSettings(reference_size=50), ThresholdSettings())  # RestartSystem with a smaller size
    svc.ingest([sample(clock, requests=100, numeric={"x": [float(i) for i in range(100)]})])
    (x,) = svc.report("fraud", "1").features
    assert (x.reference_samples, x.window_samples) == (80, 100)


def test_a_reload_with_a_longer_drift_window_keeps_and_reports_that_much(store: MemoryProfiles,
                                                                         clock: FakeClock) -> None:
    svc = service(store, clock, window=3600.0)
    svc.ingest([sample(clock, reference=True, numeric={"x": [float(i % 10) for i in range(100)]})])
    svc.reconfigure(DriftSettings(window=7200.0), ThresholdSettings())  # RestartSystem: drift.window = 2h
    assert svc.retention_seconds == 7200.0
    for _ in range(720):  # two hours of one value every 10 s
        svc.ingest([sample(clock, requests=1, numeric={"x": [1.0]})])
        clock.advance(10)
    report = svc.report("fraud", "1")
    assert report.window_end - report.window_start == dt.timedelta(hours=2)
    assert report.features[0].window_samples == 719  # all but the value exactly at the start: 2 h, not 1 h
    svc.reconfigure(DriftSettings(window=3600.0), ThresholdSettings())  # and back: windows shrink again
    svc.ingest([sample(clock, requests=1, numeric={"x": [1.0]})])
    assert svc.footprint().buckets == 360


def test_the_gate_ignores_psi_noise_of_a_small_unshifted_window(store: MemoryProfiles, clock: FakeClock) -> None:
    """30 unchanged values have a PSI near 0.3 over ten bins: noise the gate must not fail a canary on."""
    rng = np.random.default_rng(11)
    svc = service(store, clock)
    svc.ingest([sample(clock, reference=True, numeric={"x": rng.normal(0, 1, N).tolist()})])
    clock.advance(1)
    step = clock.now()
    clock.advance(1)
    svc.ingest([sample(clock, requests=30, numeric={"x": rng.normal(0, 1, 30).tolist()})])
    clock.advance(1)
    noisy = svc.report("fraud", "1", 2.5).features[0]
    assert noisy.psi > 0.1 and not noisy.drifted  # the raw PSI alone would fail a 0.1 gate
    assert svc.drift_score("fraud", "1", step, clock.now()) == 0.0
    # The same few values, shifted by three standard deviations, are significant and count.
    svc.ingest([sample(clock, requests=30, numeric={"x": rng.normal(3, 1, 30).tolist()})])
    clock.advance(1)
    shifted = svc.drift_score("fraud", "1", step, clock.now())
    assert shifted is not None and shifted > 0.25


def test_a_models_drift_threshold_is_its_deployments_gate_default(clock: FakeClock) -> None:
    drift = service(MemoryProfiles(), clock, model_thresholds=("fraud=0.3",))
    world = World(drift=drift, clock=clock)  # type: ignore[arg-type]
    world.repo.add_model("fraud", ["v1", "v2", "v3"], live="v1")  # type: ignore[attr-defined]
    first = world.controller.get(world.deploy("v2", Strategy.CANARY))
    assert first.params.thresholds.drift_score == 0.3
    world.controller.abort(first.id)
    # A threshold given with the deployment still wins.
    second = world.controller.get(world.deploy("v3", Strategy.CANARY, ParamOverrides(drift_score=0.05)))
    assert second.params.thresholds.drift_score == 0.05


def _mixed_traffic(clock: FakeClock, rng: np.random.Generator) -> list[TelemetrySample]:
    """Live values building a reference across sample boundaries, a reference batch in the middle, a new
    window bucket, categorical values, predictions and labels: what one ingest call may be handed."""
    out: list[TelemetrySample] = []

    def live(n: int, shift: float = 0.0, **extra: Any) -> None:
        out.append(sample(clock, requests=n,
                          numeric={"age": rng.normal(40 + shift, 10, n), "income": rng.normal(3, 1, n)},
                          categorical={"country": list(rng.choice(["fr", "de", "us"], n))},
                          predictions=rng.random(n), **extra))

    for n in (300, 450, 400):  # the live-built reference (size 1000) fills up in the third sample
        live(n)
    live(200, labelled=50, correct=40)  # labelled: folded alone
    live(250, shift=8)
    out.append(sample(clock, reference=True, numeric={"age": rng.normal(40, 10, 800), "income": rng.normal(3, 1, 800)},
                      categorical={"country": list(rng.choice(["fr", "de"], 800))}, predictions=rng.random(800)))
    live(300, shift=5)
    live(300, shift=5)
    clock.advance(10)  # the next window bucket
    live(350, shift=6)
    out.append(sample(clock, model="other", numeric={"x": rng.random(100)}))
    live(150, shift=6)
    return out


def test_one_ingest_of_many_samples_counts_what_one_ingest_per_sample_counts(clock: FakeClock) -> None:
    """ReportMetrics hands a batch of reports to one ingest call, which folds a version's consecutive live
    samples in one window bucket as one: the profiles, windows and reports must not differ in any way."""
    traffic = _mixed_traffic(clock, np.random.default_rng(11))
    clock.advance(1)
    one_by_one, together = MemoryProfiles(), MemoryProfiles()
    a, b = service(one_by_one, clock), service(together, clock)
    for x in traffic:
        a.ingest([x])
    b.ingest(traffic)
    for model, version in (("fraud", "1"), ("other", "1")):
        assert a.report(model, version) == b.report(model, version)
        assert a.report(model, version, window_seconds=5) == b.report(model, version, window_seconds=5)
        assert a.scores(model, version) == b.scores(model, version)
    assert one_by_one.rows == together.rows
    report = b.report("fraud", "1")
    assert report.reference_source is ReferenceSource.REFERENCE_SAMPLES and report.features


def test_coalesced_samples_keep_the_earliest_time_of_their_bucket(clock: FakeClock) -> None:
    """A merged sample is timed by its last; its bucket still spans from the first, as one by one would,
    so a gate reading a window that ends between the two still counts them."""
    rng = np.random.default_rng(5)
    reference = sample(clock, reference=True, numeric={"age": rng.normal(0, 1, 2000)})
    clock.advance(20)
    start = clock.now()
    first = sample(clock, numeric={"age": rng.normal(3, 1, 500)})
    clock.advance(3)  # the same 10 s bucket
    second = sample(clock, numeric={"age": rng.normal(3, 1, 500)})
    a, b = service(MemoryProfiles(), clock), service(MemoryProfiles(), clock)
    for x in (reference, first, second):
        a.ingest([x])
    b.ingest([reference, first, second])
    until = start + dt.timedelta(seconds=1)
    score = a.drift_score("fraud", "1", start - dt.timedelta(seconds=1), until)
    assert score is not None and score > 1
    assert b.drift_score("fraud", "1", start - dt.timedelta(seconds=1), until) == score
