"""From a snapshot of reference and window counts to a `DriftReport`: every score defined here.

Per feature (and for the predictions, treated as a numeric feature):
- `psi`: PSI of the window against the reference (deciles for numeric features,
  the reference's categories plus "unseen" for categorical ones; see `stats`).
- numeric: `ks_statistic`, `ks_p_value` (two-sample KS over the fine percentile bins);
  categorical: `chi_square`, `chi_square_p_value` (chi-square of homogeneity).
- `drifted`: psi > threshold AND the test's p-value < `drift.alpha`. Both are
  needed: PSI alone flags noise in small windows, a p-value alone flags
  differences too small to matter in large ones.

Per version:
- `data_score` = the largest feature PSI among features judged (0 when none).
  The deployment drift gate reads it over each step window counting only the
  features whose test is significant (`gate_score`): a step's few values
  cannot fail a healthy canary on PSI noise.
- `prior_score` = the PSI of the predictions (0 when not judged).
- `concept_score` = max(0, reference accuracy - window accuracy), accuracy being
  correct / labelled (0 when either side has no labels).
- `drifted` = a feature drifted, or the predictions drifted, or concept_score > threshold.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from . import stats
from .bins import Bins
from .model import DriftReport, DriftScores, FeatureDrift, FeatureKind, ReferenceSource

PREDICTIONS = "predictions"


@dataclass(frozen=True)
class StreamSnapshot:
    """One feature (or the predictions) at report time; sealed bins and counts are never mutated."""

    name: str
    kind: FeatureKind
    #: None while the reference is being built, or when the reference never had this feature.
    bins: Bins | None
    reference: np.ndarray | None
    #: Reference values gathered so far while building.
    building: int
    window: np.ndarray | None

    @property
    def reference_samples(self) -> int:
        return int(self.reference.sum()) if self.reference is not None else self.building

    @property
    def window_samples(self) -> int:
        return int(self.window.sum()) if self.window is not None else 0


@dataclass(frozen=True)
class Snapshot:
    model: str
    version: str
    window_start: dt.datetime
    window_end: dt.datetime
    #: None when the version has no profile at all (nothing reported yet).
    source: ReferenceSource | None
    #: Reference samples: live values arrived and fixed the bins. Live-built: every stream sealed.
    sealed: bool
    features: tuple[StreamSnapshot, ...]
    predictions: StreamSnapshot | None
    reference_correct: int
    reference_labelled: int
    window_correct: int
    window_labelled: int
    reference_size: int


def build_report(snap: Snapshot, *, threshold: float, alpha: float) -> DriftReport:
    features = tuple(judge(s, snap, threshold, alpha) for s in snap.features)
    if snap.predictions is not None:
        predictions = judge(snap.predictions, snap, threshold, alpha)
    else:
        predictions = FeatureDrift(PREDICTIONS, FeatureKind.NUMERIC, note="no predictions reported")
    judged = [f for f in features if f.judged]
    data_score = max((f.psi for f in judged), default=0.0)
    prior_score = predictions.psi if predictions.judged else 0.0
    reference_accuracy, window_accuracy, concept_score = _concept(snap)
    drifted = any(f.drifted for f in features) or predictions.drifted or concept_score > threshold
    streams = [*features, predictions]
    return DriftReport(
        model=snap.model, version=snap.version, data_score=data_score, prior_score=prior_score,
        concept_score=concept_score, drifted=drifted, features=features, predictions=predictions,
        reference_samples=max((f.reference_samples for f in streams), default=0),
        window_samples=max((f.window_samples for f in streams), default=0),
        window_start=snap.window_start, window_end=snap.window_end, threshold=threshold,
        reference_source=snap.source, reference_accuracy=reference_accuracy, window_accuracy=window_accuracy,
        notes=tuple(_notes(snap, features, predictions, reference_accuracy, window_accuracy)))


def build_scores(snap: Snapshot) -> DriftScores:
    """The scores of `build_report` without the KS and chi-square tests (PSI is cheap, p-values are not)."""
    feature_psi = {s.name: _psi(s) for s in snap.features if _judgeable(s)}
    prior = _psi(snap.predictions) if snap.predictions is not None and _judgeable(snap.predictions) else 0.0
    return DriftScores(snap.model, snap.version, max(feature_psi.values(), default=0.0), prior, _concept(snap)[2],
                       feature_psi)


def gate_score(features: list[StreamSnapshot], alpha: float) -> float | None:
    """The drift gate's score: the largest PSI among features whose shift is significant (p < alpha).

    PSI alone is noisy on a step's few values (about 0.3 on 30 unchanged values over
    ten bins), so a feature whose test cannot tell its window from the reference adds
    0, as it does to `drifted`. None when no feature has a reference and window values.
    """
    judged = [s for s in features if _judgeable(s)]
    if not judged:
        return None
    significant = [_psi(s) for s in judged if _p_value(s) < alpha]
    return max(significant, default=0.0)


def _p_value(s: StreamSnapshot) -> float:
    assert s.reference is not None and s.window is not None
    if s.kind is FeatureKind.NUMERIC:
        return stats.ks_test(s.reference, s.window).p_value
    return stats.chi_square_test(s.reference, s.window).p_value


def judge(s: StreamSnapshot, snap: Snapshot, threshold: float, alpha: float) -> FeatureDrift:
    base = FeatureDrift(s.name, s.kind, reference_samples=s.reference_samples, window_samples=s.window_samples)
    if s.bins is None or s.reference is None:
        return _replace_note(base, _missing_reference(s, snap))
    if not s.window_samples:
        return _replace_note(base, "no values in the window")
    psi = _psi(s)
    assert s.window is not None
    if s.kind is FeatureKind.NUMERIC:
        ks = stats.ks_test(s.reference, s.window)
        return FeatureDrift(s.name, s.kind, psi=psi, ks_statistic=ks.statistic, ks_p_value=ks.p_value,
                            drifted=psi > threshold and ks.p_value < alpha,
                            reference_samples=s.reference_samples, window_samples=s.window_samples)
    chi = stats.chi_square_test(s.reference, s.window)
    return FeatureDrift(s.name, s.kind, psi=psi, chi_square=chi.statistic, chi_square_p_value=chi.p_value,
                        drifted=psi > threshold and chi.p_value < alpha,
                        reference_samples=s.reference_samples, window_samples=s.window_samples)


def _judgeable(s: StreamSnapshot) -> bool:
    return s.bins is not None and s.reference is not None and s.window_samples > 0


def _psi(s: StreamSnapshot) -> float:
    assert s.bins is not None and s.reference is not None and s.window is not None
    return stats.psi(s.bins.psi_counts(s.reference), s.bins.psi_counts(s.window))


def _missing_reference(s: StreamSnapshot, snap: Snapshot) -> str:
    if snap.source is ReferenceSource.FIRST_LIVE_VALUES:
        return f"reference is being built: {s.building} of {snap.reference_size} values"
    if not snap.sealed:
        return f"reference has {s.building} values; its bins are fixed when the first live values arrive"
    return "not in the reference profile: only live values were sent"


def _replace_note(drift: FeatureDrift, note: str) -> FeatureDrift:
    return FeatureDrift(drift.name, drift.kind, reference_samples=drift.reference_samples,
                        window_samples=drift.window_samples, note=note)


def _concept(snap: Snapshot) -> tuple[float | None, float | None, float]:
    """(reference accuracy, window accuracy, concept score)."""
    reference = _reference_accuracy(snap)
    window = snap.window_correct / snap.window_labelled if snap.window_labelled else None
    drop = max(0.0, reference - window) if reference is not None and window is not None else 0.0
    return reference, window, drop


def _reference_accuracy(snap: Snapshot) -> float | None:
    if not snap.reference_labelled:
        return None
    if snap.source is ReferenceSource.FIRST_LIVE_VALUES and snap.reference_labelled < snap.reference_size:
        return None  # still being built from the first labelled requests
    return snap.reference_correct / snap.reference_labelled


def _notes(snap: Snapshot, features: tuple[FeatureDrift, ...], predictions: FeatureDrift,
           reference_accuracy: float | None, window_accuracy: float | None) -> list[str]:
    if snap.source is None:
        return ["no drift data reported for this version yet: send feature values, predictions or quality "
                "with ReportMetrics (reference samples first, if there is a training set)"]
    notes = []
    if snap.source is ReferenceSource.FIRST_LIVE_VALUES and not snap.sealed:
        notes.append(f"no reference samples were sent: the reference is being built from the first "
                     f"{snap.reference_size} live values of each feature")
    if snap.source is ReferenceSource.REFERENCE_SAMPLES and not snap.sealed:
        notes.append("reference samples received; drift is measured once live values arrive")
    if not features:
        notes.append("no feature values reported")
    elif not any(f.judged for f in features):
        notes.append("no feature has both a reference and values in this window")
    if not predictions.judged:
        notes.append(f"predictions: {predictions.note}")
    if reference_accuracy is None:
        if snap.source is ReferenceSource.FIRST_LIVE_VALUES and snap.reference_labelled:
            notes.append(f"reference accuracy is being built: {snap.reference_labelled} of "
                         f"{snap.reference_size} labelled requests")
        else:
            notes.append("no labelled requests in the reference: concept drift needs quality.labelled")
    elif window_accuracy is None:
        notes.append("no labelled requests in the window: concept drift needs quality.labelled")
    return notes
