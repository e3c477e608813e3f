"""DriftService: folds reported samples into reference profiles and live windows, and reports drift.

`ReportMetrics` calls `check(samples)` before it journals a request (a bad
feature refuses the whole request, changing nothing) and `ingest(samples)`
after. The deployment engine reads `drift_score` (its `DriftSource`) for the
drift gate; `GetDriftReport` reads `report`.

Lifecycle of a version's reference (see `profile.py`): reference samples build
it until the first live values seal it; without them the first live values
build it. Reference samples that arrive after sealing (or while a live-built
reference grows) start a new profile and clear the live windows: the old
windows were counted in the old bins and compare with nothing new.

Persistence: the profile is written when a reference batch arrives, when it
seals, and at most every `persist_interval` seconds while a live-built
reference grows (plus `flush()`, which the metrics component calls). Once
sealed nothing is written on ingest: live windows are memory only, rebuilt by
the traffic after a restart. Thread-safe: RPCs run on a thread pool.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import threading
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..clock import Clock
from ..config import DriftSettings, ThresholdSettings, parse_model_thresholds
from ..errors import FieldViolation
from ..telemetry.sample import TelemetrySample
from .model import DriftReport, DriftScores, FeatureKind, ProfileStore, ReferenceSource, StoredProfile
from .profile import Profile, Stream
from .report import Snapshot, StreamSnapshot, build_report, build_scores, gate_score
from .window import LiveWindow

log = logging.getLogger(__name__)

#: Live windows reach back at least an hour, and at most a day, whatever drift.window says.
MIN_RETENTION, MAX_RETENTION = 3600.0, 86_400.0
MAX_FEATURE_NAME = 128

_Key = tuple[str, str]


@dataclass(frozen=True)
class Footprint:
    """What the service holds in memory, for tests and status: every number here is bounded."""

    versions: int
    buckets: int
    counters: int
    reference_values: int


@dataclass
class _Version:
    profile: Profile | None
    window: LiveWindow
    last_used: float
    dirty: bool = False
    last_persist: float = -math.inf
    persist_lock: threading.Lock = field(default_factory=threading.Lock)


class DriftService:
    def __init__(self, store: ProfileStore, clock: Clock, settings: DriftSettings | None = None,
                 thresholds: ThresholdSettings | None = None, *, bucket_seconds: float = 10.0,
                 max_series: int = 256, persist_interval: float = 5.0) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._versions: dict[_Key, _Version] = {}
        self._bucket_seconds = bucket_seconds
        self._max_series = max_series
        self._persist_interval = persist_interval
        self.reconfigure(settings or DriftSettings(), thresholds or ThresholdSettings())

    def reconfigure(self, settings: DriftSettings, thresholds: ThresholdSettings) -> None:
        """New settings after a config reload; profiles and windows are kept, windows resized to drift.window."""
        model_thresholds = parse_model_thresholds(settings.model_thresholds)
        with self._lock:
            self.settings = settings
            self._default_threshold = thresholds.drift_score
            self._model_thresholds = model_thresholds
            #: How far back windows reach (they keep this many seconds of buckets).
            self.retention_seconds = min(max(settings.window, MIN_RETENTION), MAX_RETENTION)
            for state in self._versions.values():
                state.window.max_buckets = self._window_buckets()

    def threshold(self, model: str) -> float:
        """drift.model_thresholds' entry for the model, else thresholds.drift_score."""
        return self._model_thresholds.get(model, self._default_threshold)

    # --- the ingest path --------------------------------------------------------------------------------------

    def check(self, samples: Sequence[TelemetrySample]) -> list[FieldViolation]:
        """What `ingest` would refuse: a feature changing kind, too many features, a bad feature name.

        Kinds are checked across the samples of this request and against what
        the version already showed; `samples[i].features[name]` names the field.
        """
        problems: list[FieldViolation] = []
        kinds: dict[_Key, dict[str, FeatureKind]] = {}
        for i, sample in enumerate(samples):
            if not (sample.numeric or sample.categorical):
                continue
            key = (sample.model, sample.version)
            if key not in kinds:
                kinds[key] = self._known_kinds(key)
            self._check_sample(i, sample, kinds[key], problems)
        return problems

    def _check_sample(self, i: int, sample: TelemetrySample, known: dict[str, FeatureKind],
                      problems: list[FieldViolation]) -> None:
        for name in sorted(set(sample.numeric) & set(sample.categorical)):
            problems.append(FieldViolation(f"samples[{i}].features[{name}]",
                                           "has numeric and categorical values; a feature is one or the other"))
        for kind, names in ((FeatureKind.NUMERIC, sample.numeric), (FeatureKind.CATEGORICAL, sample.categorical)):
            for name in names:
                at = f"samples[{i}].features[{name[:MAX_FEATURE_NAME]}]"
                if not name or len(name) > MAX_FEATURE_NAME or not name.isprintable():
                    problems.append(FieldViolation(at, f"a name is 1-{MAX_FEATURE_NAME} printable characters"))
                    continue
                before = known.get(name)
                if before is None:
                    if len(known) >= self.settings.max_features:
                        problems.append(FieldViolation(at, (
                            f"{sample.model} version {sample.version} already has {len(known)} features, "
                            f"the most drift.max_features allows")))
                        continue
                    known[name] = kind
                elif before is not kind:
                    problems.append(FieldViolation(at, (
                        f"{name!r} is {before.value} for {sample.model} version {sample.version}; "
                        f"it cannot be sent as {kind.value}")))

    def ingest(self, samples: Sequence[TelemetrySample]) -> None:
        """Fold checked samples into the references and live windows; persist what must survive a restart."""
        due: dict[_Key, tuple[_Version, bool]] = {}
        for sample, earliest in _coalesced(samples, self._bucket_seconds):
            key = (sample.model, sample.version)
            while True:
                state = self._state(key)
                with self._lock:
                    # check another version's first use did not evict this one meanwhile: what is folded into
                    # a forgotten copy is never saved (a reference would be acknowledged, then lost)
                    if self._versions.get(key) is not state:
                        continue
                    force = self._fold(state, sample)
                    if earliest < sample.at:  # a merged sample: its bucket spans from its first one
                        state.window.widen(earliest)
                    state.last_used = self._clock.monotonic()
                    break
            due[key] = (state, force or (key in due and due[key][1]))
        for key, (state, force) in due.items():
            self._persist(key, force=force, state=state)

    def _fold(self, state: _Version, sample: TelemetrySample) -> bool:
        """Fold one sample in (lock held); True when the profile must be written now."""
        s = self.settings
        # ReportMetrics refused non-finite values: arrays as they come (no copy), lists for categories.
        numeric = {name: np.asarray(values, dtype=np.float64) for name, values in sample.numeric.items()}
        categorical = {name: list(values) for name, values in sample.categorical.items()}
        predictions = np.asarray(sample.predictions, dtype=np.float64)
        if sample.reference:
            profile = state.profile
            if profile is None or profile.source is ReferenceSource.FIRST_LIVE_VALUES or profile.sealed:
                # A new reference: a fresh profile, and windows counted in its bins from now on.
                kinds = dict(profile.kinds) if profile else {}
                state.profile = profile = Profile(ReferenceSource.REFERENCE_SAMPLES, kinds=kinds)
                state.window = self._new_window()
            profile.add_reference(numeric, categorical, predictions, sample.correct, sample.labelled,
                                  s.reference_max_values)
            state.dirty = True
            return True
        profile = state.profile
        if profile is None:
            profile = state.profile = Profile(ReferenceSource.FIRST_LIVE_VALUES)
        force = False
        if profile.source is ReferenceSource.REFERENCE_SAMPLES and not profile.sealed:
            profile.seal()
            state.dirty = force = True
        live = profile.source is ReferenceSource.FIRST_LIVE_VALUES
        size = s.reference_size
        counted: dict[str, np.ndarray] = {}
        for kind, features in ((FeatureKind.NUMERIC, numeric), (FeatureKind.CATEGORICAL, categorical)):
            for name, values in features.items():
                if name not in profile.kinds and len(profile.kinds) >= s.max_features:
                    continue  # refused by check; a concurrent request may still race past it
                if profile.kinds.setdefault(name, kind) is not kind:
                    continue
                stream = profile.stream_for(name, kind, size)
                if stream is None:
                    continue  # not in the reference: reported, not counted
                rest, sealed_now = profile.absorb(stream, values, size) if live else (values, False)
                state.dirty |= len(rest) != len(values)
                force |= sealed_now
                if len(rest) and stream.bins is not None:
                    counted[name] = stream.bins.count(rest)
        counted_predictions = None
        stream = profile.predictions_stream(size) if len(predictions) else None
        if stream is not None:
            rest, sealed_now = profile.absorb(stream, predictions, size) if live else (predictions, False)
            state.dirty |= len(rest) != len(predictions)
            force |= sealed_now
            if len(rest) and stream.bins is not None:
                counted_predictions = stream.bins.count(rest)
        correct, labelled = sample.correct, sample.labelled
        if live and labelled:
            correct, labelled = profile.absorb_quality(correct, labelled, size)
            state.dirty |= labelled != sample.labelled
        if counted or counted_predictions is not None or labelled:
            state.window.add(sample.at, counted, counted_predictions, correct, labelled)
        return force

    # --- reading ----------------------------------------------------------------------------------------------

    def drift_score(self, model: str, version: str, since: dt.datetime, until: dt.datetime) -> float | None:
        """The drift gate's score between `since` and `until`: the largest PSI of a significantly shifted
        feature (KS or chi-square p < drift.alpha, as for `drifted`), 0 when none is; None without a
        sealed reference and values."""
        state = self._state((model, version))
        with self._lock:
            if state.profile is None:
                return None
            streams = list(self._streams(state, since, until)[0])
        return gate_score(streams, self.settings.alpha)

    def report(self, model: str, version: str, window_seconds: float | None = None) -> DriftReport:
        """Drift of the last `window_seconds` (default drift.window, at most the retention) of a version.

        A version with no data gets a report whose notes say what is missing.
        The caller checks the version is registered (this service knows only what was reported).
        """
        snap = self._snapshot(model, version, window_seconds)
        # Statistics outside the lock: the snapshot holds sealed bins (never mutated) and fresh sums.
        return build_report(snap, threshold=self.threshold(model), alpha=self.settings.alpha)

    def scores(self, model: str, version: str) -> DriftScores:
        """The report's scores over drift.window, without p-values: cheap enough for the gauges."""
        return build_scores(self._snapshot(model, version, None))

    def _snapshot(self, model: str, version: str, window_seconds: float | None) -> Snapshot:
        seconds = min(window_seconds or self.settings.window, self.retention_seconds)
        until = self._clock.now()
        since = until - dt.timedelta(seconds=seconds)
        state = self._state((model, version))
        with self._lock:
            profile = state.profile
            features, predictions, counts = self._streams(state, since, until)
            snap = Snapshot(
                model=model, version=version, window_start=since, window_end=until,
                source=profile.source if profile else None, sealed=bool(profile and profile.sealed),
                features=features, predictions=predictions,
                reference_correct=profile.correct if profile else 0,
                reference_labelled=profile.labelled if profile else 0,
                window_correct=counts[0], window_labelled=counts[1], reference_size=self.settings.reference_size)
        return snap

    def _streams(self, state: _Version, since: dt.datetime, until: dt.datetime
                 ) -> tuple[tuple[StreamSnapshot, ...], StreamSnapshot | None, tuple[int, int]]:
        profile = state.profile
        if profile is None:
            return (), None, (0, 0)
        window = state.window.counts(since, until)
        features = []
        for name in sorted(set(profile.features) | set(profile.kinds)):
            stream = profile.features.get(name)
            kind = stream.kind if stream is not None else profile.kinds[name]
            features.append(_snapshot(name, kind, stream, window.features.get(name)))
        predictions = None
        if profile.predictions is not None:
            predictions = _snapshot("predictions", FeatureKind.NUMERIC, profile.predictions, window.predictions)
        return tuple(features), predictions, (window.correct, window.labelled)

    def tracked(self) -> list[tuple[str, str]]:
        """Versions held in memory with a profile: what the metrics exporter publishes."""
        with self._lock:
            return sorted(key for key, state in self._versions.items() if state.profile is not None)

    def footprint(self) -> Footprint:
        with self._lock:
            buckets = counters = reference = 0
            for state in self._versions.values():
                buckets += len(state.window)
                counters += state.window.counters()
                if state.profile is not None:
                    streams = [*state.profile.features.values(), state.profile.predictions]
                    reference += sum(len(s.building.values) for s in streams if s and s.building)
                    counters += sum(s.counts.size for s in streams if s is not None and s.counts is not None)
            return Footprint(len(self._versions), buckets, counters, reference)

    # --- state and persistence --------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every profile changed since it was last written (the live-built ones, throttled on ingest)."""
        with self._lock:
            dirty = [key for key, state in self._versions.items() if state.dirty]
        for key in dirty:
            self._persist(key, force=True)

    def _persist(self, key: _Key, *, force: bool, state: _Version | None = None) -> None:
        """Write the version's profile if due; `state` is the one just folded into, even if evicted since."""
        if state is None:
            with self._lock:
                state = self._versions.get(key)
            if state is None:
                return
        with state.persist_lock:  # one writer per version, each writing the state as it is when it writes
            with self._lock:
                now = self._clock.monotonic()
                if state.profile is None or not state.dirty:
                    return
                if not force and now - state.last_persist < self._persist_interval:
                    return
                profile = state.profile
                stored = StoredProfile(key[0], key[1], profile.source, profile.sealed, profile.to_dict())
                state.dirty = False
                state.last_persist = now
            try:
                self._store.save(stored, self._clock.now())
            except Exception:  # noqa: BLE001 - the report is already acknowledged: retry at the next write
                log.warning("could not save the drift profile of %s version %s; will retry", *key, exc_info=True)
                with self._lock:
                    state.dirty = True

    def _state(self, key: _Key) -> _Version:
        """The version's state, loading its stored profile on first use (the read happens outside the lock)."""
        with self._lock:
            state = self._versions.get(key)
            if state is not None:
                return state
        stored = self._store.load(*key)
        with self._lock:
            state = self._versions.get(key)
            if state is None:
                profile = Profile.from_dict(stored.data) if stored is not None else None
                state = self._versions[key] = _Version(profile, self._new_window(), self._clock.monotonic())
                self._evict_idle(keep=key)
            return state

    def _evict_idle(self, keep: _Key) -> None:
        while len(self._versions) > self._max_series:
            # the longest idle, and one already saved before one whose changes would be lost
            idle = min((k for k in self._versions if k != keep),
                       key=lambda k: (self._versions[k].dirty, self._versions[k].last_used))
            if self._versions[idle].dirty:
                log.info("forgetting idle drift state of %s version %s before its reference was saved", *idle)
            del self._versions[idle]

    def _known_kinds(self, key: _Key) -> dict[str, FeatureKind]:
        state = self._state(key)
        with self._lock:
            return dict(state.profile.kinds) if state.profile is not None else {}

    def _new_window(self) -> LiveWindow:
        return LiveWindow(self._bucket_seconds, self._window_buckets())

    def _window_buckets(self) -> int:
        return max(1, math.ceil(self.retention_seconds / self._bucket_seconds))


def _coalesced(samples: Sequence[TelemetrySample],
               bucket_seconds: float) -> list[tuple[TelemetrySample, dt.datetime]]:
    """The samples with features, where consecutive live ones of a version in one window bucket become one;
    each with the earliest time it stands for (a merged sample is timed by its last).

    Folding them one by one or as one counts the same values in the same bins and bucket, but as
    one it costs one pass per feature instead of one per sample: ReportMetrics hands over a batch of
    reports at a time. Reference samples and labelled ones (whose accuracy a live-built reference
    takes in proportion) are folded alone, and end the run of their version, so order is kept.
    """
    groups: list[list[TelemetrySample]] = []
    open_runs: dict[_Key, tuple[int, list[TelemetrySample]]] = {}
    for sample in samples:
        if not sample.has_features:
            continue
        key = (sample.model, sample.version)
        if sample.reference or sample.labelled:
            open_runs.pop(key, None)
            groups.append([sample])
            continue
        bucket = LiveWindow.bucket_key(sample.at, bucket_seconds)
        run = open_runs.get(key)
        if run is None or run[0] != bucket:
            run = open_runs[key] = (bucket, [])
            groups.append(run[1])
        run[1].append(sample)
    return [(group[0], group[0].at) if len(group) == 1 else (_merged(group), min(x.at for x in group))
            for group in groups]


def _merged(run: list[TelemetrySample]) -> TelemetrySample:
    """Live samples of one version and window bucket as one sample, values in arrival order."""
    numeric: dict[str, list[np.ndarray]] = {}
    categorical: dict[str, list[str]] = {}
    for sample in run:
        for name, values in sample.numeric.items():
            numeric.setdefault(name, []).append(np.asarray(values, dtype=np.float64))
        for name, words in sample.categorical.items():
            categorical.setdefault(name, []).extend(words)
    predictions = [np.asarray(x.predictions, dtype=np.float64) for x in run if len(x.predictions)]
    return dataclasses.replace(
        run[-1], numeric={name: np.concatenate(parts) for name, parts in numeric.items()}, categorical=categorical,
        predictions=np.concatenate(predictions) if predictions else np.empty(0, dtype=np.float64))


def _snapshot(name: str, kind: FeatureKind, stream: Stream | None, window: np.ndarray | None) -> StreamSnapshot:
    if stream is None:
        return StreamSnapshot(name, kind, None, None, 0, None)
    building = len(stream.building.values) if stream.building is not None else 0
    return StreamSnapshot(name, kind, stream.bins, stream.counts, building,
                          window if stream.bins is not None else None)
