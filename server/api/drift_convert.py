"""Drift reports, domain -> wire: the only place `drift` domain objects meet protobuf."""

from __future__ import annotations

from modelctl.v1 import drift_pb2 as _pb

from ..drift.model import DriftReport, FeatureDrift, FeatureKind, ReferenceSource
from ._time import ts

_KINDS = {FeatureKind.NUMERIC: _pb.FEATURE_TYPE_NUMERIC, FeatureKind.CATEGORICAL: _pb.FEATURE_TYPE_CATEGORICAL}
_SOURCES = {ReferenceSource.REFERENCE_SAMPLES: _pb.REFERENCE_SOURCE_REFERENCE_SAMPLES,
            ReferenceSource.FIRST_LIVE_VALUES: _pb.REFERENCE_SOURCE_FIRST_LIVE_VALUES}


def feature_to_proto(f: FeatureDrift) -> _pb.FeatureDrift:
    return _pb.FeatureDrift(name=f.name, type=_KINDS[f.kind], psi=f.psi, ks_statistic=f.ks_statistic,
                            ks_p_value=f.ks_p_value, chi_square=f.chi_square, chi_square_p_value=f.chi_square_p_value,
                            drifted=f.drifted, reference_samples=f.reference_samples,
                            window_samples=f.window_samples, note=f.note)


def report_to_proto(r: DriftReport) -> _pb.DriftReport:
    out = _pb.DriftReport(
        model=r.model, version=r.version, data_score=r.data_score, prior_score=r.prior_score,
        concept_score=r.concept_score, drifted=r.drifted, features=[feature_to_proto(f) for f in r.features],
        reference_samples=r.reference_samples, window_samples=r.window_samples, window_start=ts(r.window_start),
        window_end=ts(r.window_end), threshold=r.threshold,
        reference_source=_SOURCES.get(r.reference_source, _pb.REFERENCE_SOURCE_UNSPECIFIED),  # type: ignore[arg-type]
        predictions=feature_to_proto(r.predictions), notes=list(r.notes))
    if r.reference_accuracy is not None:
        out.reference_accuracy = r.reference_accuracy
    if r.window_accuracy is not None:
        out.window_accuracy = r.window_accuracy
    return out
