"""datetime/seconds <-> google.protobuf Timestamp/Duration."""

from __future__ import annotations

import datetime as dt

from google.protobuf import duration_pb2, timestamp_pb2

from ..errors import FieldViolation, ValidationError

#: What google.protobuf.Timestamp can turn into a datetime: 0001-01-01 .. 9999-12-31.
MIN_TIME_SECONDS, MAX_TIME_SECONDS = -62_135_596_800, 253_402_300_799


def ts(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def is_datetime(value: timestamp_pb2.Timestamp) -> bool:
    """Whether `ToDatetime` can turn `value` into a date (years 1..9999, nanos 0..999999999)."""
    return MIN_TIME_SECONDS <= value.seconds <= MAX_TIME_SECONDS and 0 <= value.nanos <= 999_999_999


def datetime_of(value: timestamp_pb2.Timestamp, field: str) -> dt.datetime:
    """A request's Timestamp as an aware UTC datetime; INVALID_ARGUMENT naming `field` if it is no date.

    `ToDatetime` raises ValueError past year 9999 or on nanos outside 0..999999999,
    which the interceptor could only answer as INTERNAL.
    """
    if not is_datetime(value):
        raise ValidationError(FieldViolation(field, "must be a date between the years 1 and 9999 "
                                                    "(nanos 0..999999999)"))
    return value.ToDatetime(tzinfo=dt.timezone.utc)


def duration(seconds: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromNanoseconds(int(round(seconds * 1e9)))
    return out


def seconds_of(value: duration_pb2.Duration) -> float:
    return value.seconds + value.nanos / 1e9
