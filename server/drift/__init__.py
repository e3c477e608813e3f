"""Drift: reference profiles and live windows counted in the same bins, PSI / KS / chi-square on ingest.

Plain Python and numpy/scipy: no protobuf, no gRPC, no SQL. `DriftService` is
the entry point; `report.py` defines every score.
"""

from .model import DriftReport, DriftScores, FeatureDrift, FeatureKind, ProfileStore, ReferenceSource, StoredProfile
from .service import DriftService, Footprint

__all__ = ["DriftReport", "DriftScores", "DriftService", "FeatureDrift", "FeatureKind", "Footprint", "ProfileStore",
           "ReferenceSource", "StoredProfile"]
