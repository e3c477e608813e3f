"""Pure parsing of what people type: `key=value` pairs (and, from `modelctl._durations`, durations).

Kept free of Click so it is trivially testable; `_params` wraps these into
Click parameter types that turn a `ValueError` into a usage error.
"""

from __future__ import annotations

import math

from .._durations import format_duration, parse_duration

__all__ = ["format_duration", "parse_duration", "parse_key_value", "parse_metric"]


def parse_key_value(text: str) -> tuple[str, str]:
    """`team=fraud` -> ("team", "fraud"); the value may itself contain '='."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"{text!r} is not KEY=VALUE")
    return key, value


def parse_metric(text: str) -> tuple[str, float]:
    """`auc=0.91` -> ("auc", 0.91); the value must be a finite number."""
    key, raw = parse_key_value(text)
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{text!r}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r}: the value must be a finite number")
    return key, value
