"""What the drift engine reports, and what it stores: frozen values, no protobuf, no SQL.

`DriftReport` is what `GetDriftReport` shows and the metrics exporter reads;
`StoredProfile` is the one row per model version that lets a reference
profile outlive the process (`ProfileStore` is where it goes).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any, Protocol


class FeatureKind(enum.Enum):
    """How a feature's values are binned and tested."""

    NUMERIC = "numeric"
    """Real numbers: percentile bins, PSI over deciles, Kolmogorov-Smirnov."""
    CATEGORICAL = "categorical"
    """Strings: one bin per reference category plus one for unseen values, PSI and chi-square."""


class ReferenceSource(enum.Enum):
    """Where a version's reference profile came from."""

    REFERENCE_SAMPLES = "reference"
    """Samples sent with `reference` set: the training or validation data."""
    FIRST_LIVE_VALUES = "live"
    """No reference was sent: the version's first `drift.reference_size` live values per feature."""


@dataclass(frozen=True)
class FeatureDrift:
    """One feature (or the predictions) in the window against the reference.

    Statistics stay 0 when there is no verdict; `note` then says why.
    """

    name: str
    kind: FeatureKind
    psi: float = 0.0
    ks_statistic: float = 0.0
    ks_p_value: float = 0.0
    chi_square: float = 0.0
    chi_square_p_value: float = 0.0
    drifted: bool = False
    reference_samples: int = 0
    window_samples: int = 0
    note: str = ""

    @property
    def judged(self) -> bool:
        """True when the statistics were computed (a reference and window values exist)."""
        return not self.note


@dataclass(frozen=True)
class DriftReport:
    """A model version's drift over one window; see `server/drift/report.py` for each score."""

    model: str
    version: str
    data_score: float
    prior_score: float
    concept_score: float
    drifted: bool
    features: tuple[FeatureDrift, ...]
    predictions: FeatureDrift
    reference_samples: int
    window_samples: int
    window_start: dt.datetime
    window_end: dt.datetime
    threshold: float
    reference_source: ReferenceSource | None
    reference_accuracy: float | None
    window_accuracy: float | None
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class DriftScores:
    """A version's scores without the tests' p-values: what the gauges export every few seconds."""

    model: str
    version: str
    data_score: float
    prior_score: float
    concept_score: float
    #: PSI per feature with a reference and window values.
    feature_psi: dict[str, float]


@dataclass(frozen=True)
class StoredProfile:
    """A reference profile as persisted: `data` is `Profile.to_dict()`, JSON-ready."""

    model: str
    version: str
    source: ReferenceSource
    sealed: bool
    data: dict[str, Any]


class ProfileStore(Protocol):
    """Where profiles persist: `store.drift.SqlDriftProfiles` in production, a dict in tests."""

    def load(self, model: str, version: str) -> StoredProfile | None:
        ...

    def save(self, profile: StoredProfile, at: dt.datetime) -> None:
        ...
