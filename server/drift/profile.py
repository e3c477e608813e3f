"""A model version's reference profile: raw values while it is built, bins and counts once sealed.

Two ways to build one:

- From `reference` samples (source REFERENCE_SAMPLES). Each feature keeps at
  most `reference_max_values` values, thinned evenly and deterministically
  (`Reservoir`). The profile is sealed, every feature at once, when the first
  live values arrive: bins are fixed at the reference's percentiles (or its
  categories) and only the bin edges and the reference's counts are kept.
- From live traffic when no reference was sent (source FIRST_LIVE_VALUES): each
  feature (and the predictions) takes its first `reference_size` live values
  and seals on its own when it has them; the labelled quality likewise takes
  the first `reference_size` labelled requests.

A sealed stream never changes again, so windows counted in its bins stay comparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .bins import Bins, bins_from_dict, bins_from_reference
from .model import FeatureKind, ReferenceSource


class Reservoir:
    """At most `limit` values, evenly spread over everything added.

    Keeps every `stride`-th value seen; when full, drops every other kept value
    and doubles the stride. So it holds between limit/2 and limit values taken at
    regular positions of the stream, the same ones on every run.
    """

    def __init__(self, limit: int, values: Sequence[Any] = (), *, stride: int = 1, seen: int | None = None) -> None:
        if limit < 2:
            raise ValueError("a reservoir needs room for at least two values")
        self.limit = limit
        self.values: list[Any] = list(values)
        self.stride = stride
        self.seen = len(self.values) if seen is None else seen

    def add(self, values: Sequence[Any]) -> None:
        start, n = 0, len(values)
        while start < n:
            first = start + (-self.seen) % self.stride  # the next position on the stride
            if first >= n:
                self.seen += n - start
                return
            if len(self.values) >= self.limit:
                self.values = self.values[::2]
                self.stride *= 2
                continue
            taken = _as_list(values[first::self.stride][:self.limit - len(self.values)])
            last = first + (len(taken) - 1) * self.stride
            self.values.extend(taken)
            self.seen += last + 1 - start
            start = last + 1


@dataclass
class Stream:
    """One feature's (or the predictions') reference: values while building, bins and counts once sealed."""

    kind: FeatureKind
    building: Reservoir | None = None
    bins: Bins | None = None
    counts: np.ndarray | None = None

    @property
    def sealed(self) -> bool:
        return self.bins is not None

    @property
    def samples(self) -> int:
        """Values in the reference: kept values while building, counted ones once sealed."""
        if self.counts is not None:
            return int(self.counts.sum())
        return len(self.building.values) if self.building else 0

    def seal(self) -> None:
        if self.sealed or self.building is None or not self.building.values:
            return
        values = self.building.values
        self.bins = bins_from_reference(self.kind, values)
        self.counts = self.bins.count(values)
        self.building = None

    def to_dict(self) -> dict[str, Any]:
        if self.bins is not None and self.counts is not None:
            return {"kind": self.kind.value, "bins": self.bins.to_dict(), "counts": self.counts.tolist()}
        r = self.building
        return {"kind": self.kind.value, "values": list(r.values) if r else [], "limit": r.limit if r else 2,
                "stride": r.stride if r else 1, "seen": r.seen if r else 0}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stream:
        kind = FeatureKind(data["kind"])
        if "bins" in data:
            return cls(kind, bins=bins_from_dict(kind, data["bins"]),
                       counts=np.asarray(data["counts"], dtype=np.int64))
        return cls(kind, Reservoir(int(data["limit"]), data["values"], stride=int(data["stride"]),
                                   seen=int(data["seen"])))


class Profile:
    """The reference of one model version; the service holds its lock while calling these methods."""

    def __init__(self, source: ReferenceSource, *, sealed: bool = False, features: dict[str, Stream] | None = None,
                 predictions: Stream | None = None, correct: int = 0, labelled: int = 0,
                 kinds: dict[str, FeatureKind] | None = None) -> None:
        self.source = source
        #: Reference samples only: the bins are fixed (live values arrived).
        self._sealed = sealed
        self.features: dict[str, Stream] = features or {}
        self.predictions = predictions
        #: Labelled requests of the reference, and how many the model got right.
        self.correct = correct
        self.labelled = labelled
        #: Every feature's kind as first seen, in reference or live data: a feature never changes kind.
        self.kinds: dict[str, FeatureKind] = kinds or {}

    @property
    def sealed(self) -> bool:
        """Reference samples: sealed at the first live values. Live-built: every stream sealed."""
        if self.source is ReferenceSource.REFERENCE_SAMPLES:
            return self._sealed
        streams = [*self.features.values(), *([self.predictions] if self.predictions else [])]
        return bool(streams) and all(s.sealed for s in streams)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

    # --- reference samples ---------------------------------------------------------------------------------

    def add_reference(self, numeric: dict[str, Sequence[float]], categorical: dict[str, Sequence[str]],
                      predictions: Sequence[float], correct: int, labelled: int, limit: int) -> None:
        for kind, features in ((FeatureKind.NUMERIC, numeric), (FeatureKind.CATEGORICAL, categorical)):
            for name, values in features.items():
                stream = self.features.get(name)
                if stream is None:
                    stream = self.features[name] = Stream(kind, Reservoir(limit))
                    self.kinds.setdefault(name, kind)
                if stream.building is not None and stream.kind is kind:
                    stream.building.add(values)
        if len(predictions):
            if self.predictions is None:
                self.predictions = Stream(FeatureKind.NUMERIC, Reservoir(limit))
            if self.predictions.building is not None:
                self.predictions.building.add(predictions)
        self.correct += correct
        self.labelled += labelled

    def seal(self) -> None:
        """Fix the bins of every stream (reference samples, at the first live values)."""
        for stream in self.features.values():
            stream.seal()
        if self.predictions is not None:
            self.predictions.seal()
        self._sealed = True

    # --- first live values ---------------------------------------------------------------------------------

    def absorb(self, stream: Stream, values: Sequence[Any], size: int) -> tuple[Sequence[Any], bool]:
        """Live-built reference: take values until `size`; returns (the rest, whether it sealed now)."""
        if stream.sealed or stream.building is None:
            return values, False
        room = max(0, size - len(stream.building.values))  # drift.reference_size may have been lowered since
        stream.building.values.extend(_as_list(values[:room]))
        stream.building.seen = len(stream.building.values)
        if len(stream.building.values) < size:
            return (), False
        stream.seal()
        return values[room:], True

    def absorb_quality(self, correct: int, labelled: int, size: int) -> tuple[int, int]:
        """Live-built reference accuracy from the first `size` labelled requests; returns the rest."""
        room = max(0, size - self.labelled)
        if labelled <= room:
            self.correct += correct
            self.labelled += labelled
            return 0, 0
        taken_correct = round(correct * room / labelled)
        self.correct += taken_correct
        self.labelled += room
        return correct - taken_correct, labelled - room

    def stream_for(self, name: str, kind: FeatureKind, size: int) -> Stream | None:
        """The feature's stream; a live-built profile starts one for a new feature, a reference one does not."""
        stream = self.features.get(name)
        if stream is None and self.source is ReferenceSource.FIRST_LIVE_VALUES:
            stream = self.features[name] = Stream(kind, Reservoir(max(size, 2)))
        return stream if stream is not None and stream.kind is kind else None

    def predictions_stream(self, size: int) -> Stream | None:
        if self.predictions is None and self.source is ReferenceSource.FIRST_LIVE_VALUES:
            self.predictions = Stream(FeatureKind.NUMERIC, Reservoir(max(size, 2)))
        return self.predictions

    # --- persistence ---------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.value,
            "sealed": self._sealed,
            "features": {name: stream.to_dict() for name, stream in self.features.items()},
            "predictions": self.predictions.to_dict() if self.predictions else None,
            "correct": self.correct,
            "labelled": self.labelled,
            "kinds": {name: kind.value for name, kind in self.kinds.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        predictions = data.get("predictions")
        return cls(ReferenceSource(data["source"]), sealed=bool(data.get("sealed")),
                   features={name: Stream.from_dict(s) for name, s in data.get("features", {}).items()},
                   predictions=Stream.from_dict(predictions) if predictions else None,
                   correct=int(data.get("correct", 0)), labelled=int(data.get("labelled", 0)),
                   kinds={name: FeatureKind(k) for name, k in data.get("kinds", {}).items()})


def _as_list(values: Sequence[Any]) -> list[Any]:
    """Plain Python values (numpy scalars would not survive JSON)."""
    return values.tolist() if isinstance(values, np.ndarray) else list(values)
