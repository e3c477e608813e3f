"""Pure parsing of what people type: `key=value` pairs and durations like `30s`, `5m`, `30d`.

Kept free of Click so it is trivially testable; `_params` wraps these into
Click parameter types that turn a `ValueError` into a usage error.
"""

from __future__ import annotations

import math
import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_UNITS_HINT = "write e.g. 30s, 5m, 1h, 30d or 1h30m"


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


def parse_duration(text: str, *, allow_zero: bool = False) -> float:
    """Seconds in `text`: `500ms`, `30s`, `5m`, `1h30m`, `30d`, `2w`; a bare number means seconds."""
    compact = text.strip().lower().replace(" ", "")
    if not compact:
        raise ValueError(f"empty duration; {_UNITS_HINT}")
    try:
        seconds = float(compact)
    except ValueError:
        seconds = _sum_of_parts(text, compact)
    if allow_zero and seconds == 0:
        return 0.0
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{text!r} must be a positive duration; {_UNITS_HINT}")
    return seconds


def _sum_of_parts(text: str, compact: str) -> float:
    position, total = 0, 0.0
    for part in _DURATION_PART.finditer(compact):
        if part.start() != position:
            break
        total += float(part.group(1)) * _UNIT_SECONDS[part.group(2)]
        position = part.end()
    if position != len(compact):
        raise ValueError(f"{text!r} is not a duration; {_UNITS_HINT}")
    return total


def format_duration(seconds: float) -> str:
    """The short form people read: 0.00034 -> '0.34ms', 0.25 -> '250ms', 93784 -> '1d2h3m4s'."""
    if seconds < 1:
        millis = seconds * 1000
        return f"{millis:.2g}ms" if millis < 1 else f"{round(millis)}ms"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts) or "0s"
