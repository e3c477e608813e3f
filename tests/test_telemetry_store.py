"""MetricsStore: aggregation on ingest, windows, p95 accuracy, bounded memory, validation."""

from __future__ import annotations

import datetime as dt
import threading

import numpy as np
import pytest

from modelctl_server.clock import FakeClock
from modelctl_server.errors import ValidationError
from modelctl_server.telemetry import LatencyHistogram, MetricsStore
from modelctl_server.telemetry.histogram import TOP_MS, bucket_of

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def at(seconds: float) -> dt.datetime:
    return START + dt.timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def store(clock: FakeClock) -> MetricsStore:
    return MetricsStore(clock)


def test_reports_in_one_bucket_become_one_data_point(store: MetricsStore) -> None:
    for _ in range(100):
        store.ingest("fraud", "v2", requests=10, errors=1, latency_ms=[20.0] * 10, at=at(0.5))
    assert store.data_points("fraud", "v2") == 1
    w = store.window("fraud", "v2", at(0), at(1))
    assert (w.requests, w.errors, w.error_rate, w.latency_samples) == (1000, 100, 0.1, 1000)


def test_ingest_says_which_series_got_data(store: MetricsStore, clock: FakeClock) -> None:
    got = store.ingest("fraud", "v2", requests=5, errors=2)
    assert (got.model, got.version, got.requests, got.errors, got.at) == ("fraud", "v2", 5, 2, clock.now())


def test_window_sums_the_reports_made_in_it(store: MetricsStore) -> None:
    store.ingest("fraud", "v2", requests=10, at=at(5))
    store.ingest("fraud", "v2", requests=20, errors=4, at=at(10.7))
    store.ingest("fraud", "v2", requests=40, at=at(20))
    store.ingest("fraud", "v1", requests=1000, at=at(12))  # another version is another series
    w = store.window("fraud", "v2", at(10.5), at(19.9))
    assert (w.requests, w.errors, w.since, w.until) == (20, 4, at(10.5), at(19.9))
    assert store.window("fraud", "v2", at(0), at(30)).requests == 70
    assert store.window("fraud", "v3", at(0), at(30)).requests == 0


def test_a_report_made_at_the_window_start_belongs_before_it(store: MetricsStore) -> None:
    # It describes requests served before it was made: a step starting now has not seen them.
    store.ingest("fraud", "v2", requests=10, errors=10, at=at(10))
    assert store.window("fraud", "v2", at(10), at(20)).requests == 0
    assert store.window("fraud", "v2", at(9), at(10)).requests == 10


def test_a_bucket_straddling_the_window_start_counts_whole(store: MetricsStore) -> None:
    store.ingest("fraud", "v2", requests=1, at=at(10.2))
    store.ingest("fraud", "v2", requests=2, at=at(10.7))
    # The 1 s bucket cannot be split: with a report after the start, it counts whole, so nothing is missed.
    assert store.window("fraud", "v2", at(10.5), at(20)).requests == 3
    # With every report at or before the start, it does not count at all.
    assert store.window("fraud", "v2", at(10.7), at(20)).requests == 0


def test_empty_window_reads_as_no_data(store: MetricsStore) -> None:
    w = store.window("fraud", "v2", at(0), at(10))
    assert (w.requests, w.error_rate, w.latency_samples, w.latency_p95_ms) == (0, 0.0, 0, None)


def test_p95_from_samples_is_within_two_percent(store: MetricsStore) -> None:
    samples = [float(ms) for ms in range(1, 1001)]
    store.ingest("fraud", "v2", requests=1000, latency_ms=samples, at=at(1))
    w = store.window("fraud", "v2", at(0), at(2))
    assert w.latency_p95_ms == pytest.approx(950, rel=0.02)
    assert w.latency_p50_ms == pytest.approx(500, rel=0.02)
    assert w.latency_p99_ms == pytest.approx(990, rel=0.02)


def test_reported_quantiles_read_back_as_reported(store: MetricsStore) -> None:
    quantiles = {0.5: 20.0, 0.95: 80.0, 0.99: 300.0}
    store.ingest("fraud", "v2", requests=200, latency_quantiles=quantiles, at=at(1))
    store.ingest("fraud", "v2", requests=200, latency_quantiles=quantiles, at=at(2))
    w = store.window("fraud", "v2", at(0), at(3))
    assert w.latency_samples == pytest.approx(400)
    assert w.latency_p50_ms == pytest.approx(20, rel=0.02)
    assert w.latency_p95_ms == pytest.approx(80, rel=0.02)
    assert w.latency_p99_ms == pytest.approx(300, rel=0.02)


def test_latency_samples_may_be_a_subset_of_requests(store: MetricsStore) -> None:
    store.ingest("fraud", "v2", requests=1000, latency_ms=[10.0] * 30, at=at(1))
    w = store.window("fraud", "v2", at(0), at(2))
    assert (w.requests, w.latency_samples) == (1000, 30)


def test_memory_is_bounded_per_series(clock: FakeClock) -> None:
    store = MetricsStore(clock, max_data_points=60)
    for second in range(600):
        store.ingest("fraud", "v2", requests=1, at=at(second))
    assert store.data_points("fraud", "v2") == 60
    # The oldest were dropped: only the last minute is left.
    assert store.window("fraud", "v2", at(0), at(600)).requests == 60
    # A report older than everything kept, with no room left, is counted as dropped, not stored.
    store.ingest("fraud", "v2", requests=5, at=at(1))
    assert store.dropped_late == 1
    assert store.data_points("fraud", "v2") == 60


def test_late_report_within_retention_lands_in_its_own_bucket(store: MetricsStore) -> None:
    store.ingest("fraud", "v2", requests=1, at=at(10))
    store.ingest("fraud", "v2", requests=2, at=at(5))
    assert store.window("fraud", "v2", at(4), at(6)).requests == 2
    assert store.window("fraud", "v2", at(9), at(11)).requests == 1


def test_number_of_series_is_bounded_dropping_the_idlest(clock: FakeClock) -> None:
    store = MetricsStore(clock, max_series=2)
    store.ingest("m", "a", requests=1)
    clock.advance(1)
    store.ingest("m", "b", requests=1)
    clock.advance(1)
    store.ingest("m", "a", requests=1)
    clock.advance(1)
    store.ingest("m", "c", requests=1)
    assert store.series() == [("m", "a"), ("m", "c")]


def test_forget_drops_a_model(store: MetricsStore) -> None:
    store.ingest("m", "a", requests=1)
    store.ingest("m", "b", requests=1)
    store.ingest("n", "a", requests=1)
    store.forget("m", "a")
    assert store.series() == [("m", "b"), ("n", "a")]
    store.forget("m")
    assert store.series() == [("n", "a")]


@pytest.mark.parametrize(("kwargs", "fields"), [
    ({"requests": -1}, {"requests"}),
    ({"requests": 5, "errors": 6}, {"errors"}),
    ({"requests": 5, "errors": -1}, {"errors"}),
    ({"requests": 1, "latency_ms": [float("nan")]}, {"latency_ms"}),
    ({"requests": 1, "latency_ms": [-3.0]}, {"latency_ms"}),
    ({"requests": 1, "latency_quantiles": {1.5: 10.0}}, {"latency_quantiles"}),
    ({"requests": 1, "latency_quantiles": {0.5: 50.0, 0.95: 10.0}}, {"latency_quantiles"}),
    ({"requests": 1, "latency_ms": [1.0], "latency_quantiles": {0.5: 1.0}}, {"latency_quantiles"}),
])
def test_bad_reports_name_every_bad_field(store: MetricsStore, kwargs: dict, fields: set[str]) -> None:
    with pytest.raises(ValidationError) as err:
        store.ingest("fraud", "v2", **kwargs)
    assert {v.field for v in err.value.violations} == fields
    assert store.series() == []


def test_empty_names_are_refused(store: MetricsStore) -> None:
    with pytest.raises(ValidationError) as err:
        store.ingest("", "", requests=1)
    assert {v.field for v in err.value.violations} == {"model", "version"}


def test_concurrent_reports_all_count(store: MetricsStore) -> None:
    def report() -> None:
        for _ in range(500):
            store.ingest("fraud", "v2", requests=2, errors=1, latency_ms=[5.0, 6.0])

    threads = [threading.Thread(target=report) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w = store.window("fraud", "v2", at(-1), at(1))
    assert (w.requests, w.errors, w.latency_samples) == (4000, 2000, 4000)


def test_histogram_merges_and_reports_nothing_when_empty() -> None:
    a, b = LatencyHistogram(), LatencyHistogram()
    assert a.quantile(0.95) is None
    a.add_samples([10.0] * 90)
    b.add_samples([1000.0] * 10)
    a.merge(b)
    assert a.total == 100
    assert a.quantile(0.5) == pytest.approx(10, rel=0.02)
    assert a.quantile(0.95) == pytest.approx(1000, rel=0.02)
    assert len(a) == 2
    zero = LatencyHistogram()
    zero.add(0.0)
    assert zero.quantile(0.5) == 0.0


def test_vectorised_bucketing_agrees_with_bucket_of_on_every_value_even_huge_ones() -> None:
    rng = np.random.default_rng(7)
    edges = [0.0, 0.01, 0.010001, 1e-300, 5.0, 1e6, TOP_MS, TOP_MS * 0.999999, 1e308, float("inf"), float("nan")]
    for value in edges + rng.lognormal(2, 3, 2000).tolist():
        h = LatencyHistogram()
        h.add_samples(np.full(20, value))  # 16 or more: the vectorised path
        # 1e308 and inf once landed in bucket -2**63 (the log overflowed before the cast)
        assert h.to_dict() == {str(bucket_of(value)): 20.0}, value
