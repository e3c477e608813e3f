"""Durations as people write them (`500ms`, `30s`, `5m`, `1h30m`, `30d`, `2w`), for the SDK and the CLI."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Union

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_UNITS_HINT = "write e.g. 30s, 5m, 1h, 30d or 1h30m"
#: What SDK calls take for a duration: seconds, a timedelta, or text like "30s".
DurationLike = Union[float, int, dt.timedelta, str]
#: The longest google.protobuf.Duration (10,000 years): anything longer cannot be sent.
MAX_SECONDS = 315_576_000_000.0


def parse_duration(text: str, *, allow_zero: bool = False) -> float:
    """Seconds in `text`: `500ms`, `30s`, `5m`, `1h30m`, `30d`, `2w`; a bare number means seconds."""
    compact = text.strip().lower().replace(" ", "")
    if not compact:
        raise ValueError(f"empty duration; {_UNITS_HINT}")
    try:
        seconds = float(compact)
    except ValueError:
        seconds = _sum_of_parts(text, compact)
    return check_seconds(seconds, text, allow_zero=allow_zero)


def check_seconds(seconds: float, shown: object, *, allow_zero: bool = False) -> float:
    """`seconds` if it is a duration the wire can carry, else a ValueError that shows `shown`."""
    if allow_zero and seconds == 0:
        return 0.0
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{shown!r} must be a positive duration; {_UNITS_HINT}")
    if seconds > MAX_SECONDS:
        raise ValueError(f"{shown!r} is longer than 10,000 years, the longest duration there is")
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


def duration_seconds(value: DurationLike, what: str = "duration", *, allow_zero: bool = False) -> float:
    """Seconds in `value` (seconds, a timedelta or "30s"); positive unless `allow_zero`, and sendable."""
    try:
        if isinstance(value, dt.timedelta):
            seconds = value.total_seconds()
        elif isinstance(value, str):
            seconds = parse_duration(value, allow_zero=True)
        else:
            seconds = float(value)
        return check_seconds(seconds, value, allow_zero=allow_zero)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: {exc}") from None
