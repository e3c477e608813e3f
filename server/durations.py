"""Durations written the way operators write them: `500ms`, `30s`, `5m`, `1h30m`."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class DurationError(ValueError):
    pass


def parse_duration(text: str) -> float:
    """Seconds in `text`; a bare number means seconds."""
    s = text.strip().lower().replace(" ", "")
    if not s:
        raise DurationError("empty duration")
    try:
        return float(s)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise DurationError(f"{text!r} is not a duration (write e.g. 500ms, 30s, 5m, 1h)")
    return total


def format_duration(seconds: float) -> str:
    """The shortest readable form: 0.5 -> '500ms', 90 -> '1m30s'."""
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    frac = seconds - whole
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    out = (f"{h}h" if h else "") + (f"{m}m" if m else "")
    if s or frac or not out:
        out += f"{s + frac:g}s"
    return out
