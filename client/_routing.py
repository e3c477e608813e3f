"""Picking a version for a request from a traffic split: the pure part of `TrafficRouter`.

Each split is laid out as intervals over [0, 100) in a fixed order of versions
(sorted by name, zero weights left out): with {"1": 90, "2": 10}, "1" owns
[0, 90) and "2" owns [90, 100). A request key is hashed to a stable point in
[0, 100) and served by the interval holding it, so

- the same key gets the same version for as long as the split is unchanged,
  in every process (the hash is blake2b, not Python's per-process `hash`);
- when a canary's share grows from 10 to 25 %, its interval widens to
  [75, 100): only keys in [75, 90) move, all from the old version to the new.
  With two versions, which is every canary and blue-green, no key ever moves
  any other way. With three or more, a version between two that change may
  shift along; weights are still exact.

The point is salted with the model name, so the keys that land in a small
canary for one model are not the same keys for every other model's canary.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from dataclasses import dataclass
from typing import Mapping

#: The width of the line the versions share: weights are percentages.
SCALE = 100.0
_HASH_BYTES = 8


def key_point(key: str, salt: str = "") -> float:
    """A stable, uniformly spread point in [0, 100) for `key`."""
    salt_bytes = salt.encode()
    # Length-prefixed so that ("ab", "c") and ("a", "bc") cannot collide.
    data = len(salt_bytes).to_bytes(4, "big") + salt_bytes + key.encode()
    digest = hashlib.blake2b(data, digest_size=_HASH_BYTES).digest()
    return int.from_bytes(digest, "big") / 2 ** (8 * _HASH_BYTES) * SCALE


@dataclass(frozen=True)
class SplitTable:
    """A split as intervals: `versions[i]` owns [bounds[i-1], bounds[i]) (bounds[-1] == 100)."""

    versions: tuple[str, ...]
    bounds: tuple[float, ...]

    @classmethod
    def from_weights(cls, weights: Mapping[str, float]) -> SplitTable | None:
        """The table for `weights` (any scale; normalised to 100), or None when nothing has weight."""
        usable = {version: float(weight) for version, weight in weights.items()
                  if math.isfinite(weight) and weight > 0}
        total = sum(usable.values())
        if not usable or total <= 0:
            return None
        versions = tuple(sorted(usable))
        bounds, running = [], 0.0
        for version in versions:
            running += usable[version]
            bounds.append(running / total * SCALE)
        bounds[-1] = SCALE  # no rounding gap at the top for a point to fall into
        return cls(versions, tuple(bounds))

    def version_at(self, point: float) -> str:
        """The version owning `point` in [0, 100)."""
        index = bisect.bisect_right(self.bounds, point)
        return self.versions[min(index, len(self.versions) - 1)]

    def weights(self) -> dict[str, float]:
        lower, shares = 0.0, {}
        for version, upper in zip(self.versions, self.bounds):
            shares[version] = upper - lower
            lower = upper
        return shares
