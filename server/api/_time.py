"""datetime/seconds <-> google.protobuf Timestamp/Duration."""

from __future__ import annotations

import datetime as dt

from google.protobuf import duration_pb2, timestamp_pb2


def ts(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def duration(seconds: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromNanoseconds(int(round(seconds * 1e9)))
    return out


def seconds_of(value: duration_pb2.Duration) -> float:
    return value.seconds + value.nanos / 1e9
