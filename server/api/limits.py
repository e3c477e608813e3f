"""What one request may cost: bytes per message and entries per repeated field, per RPC.

An outside fuzz run sent requests of up to 12 MB to every RPC (the transport then took
16 MB) and the process grew from 149 to 455 MB without coming back: a parsed message and
the lists its validation builds cost several times its bytes, and the allocator keeps
what it got. So the cost is bounded before any work:

- the transport refuses a message bigger than the largest limit below (`transport_limit`)
  with RESOURCE_EXHAUSTED from its length prefix, before buffering it;
- each RPC's deserializer refuses a message bigger than that RPC's own limit before
  parsing it (RESOURCE_EXHAUSTED, not retriable: the same request is always too big);
- after parsing, a repeated field or map with more than `MAX_REPEATED` entries is
  INVALID_ARGUMENT naming the field, before the servicer runs. ReportMetrics and
  UploadArtifact bound their own repeated fields (samples per report, values per
  sample, chunk bytes) and are not walked.

Artifacts are streamed: each UploadArtifact message is one chunk (the SDK sends at
most 4 MiB), so the limit bounds a chunk, not the artifact.
"""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from ..errors import FieldViolation, ResourceExhaustedError, ValidationError

KIB = 1024
MIB = 1024 * KIB

#: Every request not listed below: names, filters, parameters, tokens. Far above any real one.
DEFAULT_MAX_BYTES = 256 * KIB
#: Per RPC (the name after /modelctl.v1.ModelController/), where a real request is bigger.
MAX_BYTES: dict[str, int] = {
    # 1000 samples of latencies, features, predictions: batches bigger than this are split by the SDK.
    "ReportMetrics": 4 * MIB,
    # One chunk (at most 4 MiB in the SDK) plus the header's fields.
    "UploadArtifact": 4 * MIB + 64 * KIB,
}
#: Entries in any one repeated field or map of a request whose RPC does not bound its own.
MAX_REPEATED = 10_000
#: RPCs whose handler checks its repeated fields' lengths first thing (see telemetry_rpcs).
OWN_REPEATED_LIMITS = frozenset({"ReportMetrics", "UploadArtifact"})
#: RPCs whose handler refuses NUL in every text field itself (`check_text` is not run for them): ReportMetrics'
#: names must match patterns without it and its categories are checked one by one. Its raw doubles hold 0
#: bytes, so the generic walk ran for nearly every report: 50 us for one with twenty features.
OWN_TEXT_CHECKS = frozenset({"ReportMetrics"})

_MESSAGE = FieldDescriptor.TYPE_MESSAGE
_STRING = FieldDescriptor.TYPE_STRING


class RequestTooLargeError(ResourceExhaustedError):
    """A request message over its RPC's byte limit; sending it again will not help."""

    retriable = False


def max_bytes(rpc: str) -> int:
    """The byte limit of one request message of `rpc` ("" for other services: health, reflection)."""
    return MAX_BYTES.get(rpc, DEFAULT_MAX_BYTES)


def transport_limit(configured: int) -> int:
    """What the gRPC server itself accepts: no more than the largest per-RPC limit, nor than configured."""
    return min(configured, max(DEFAULT_MAX_BYTES, *MAX_BYTES.values()))


def check_size(rpc: str, size: int) -> RequestTooLargeError | None:
    limit = max_bytes(rpc)
    if size <= limit:
        return None
    name = rpc or "this call"
    return RequestTooLargeError(f"request of {size} bytes is over the {limit}-byte limit of {name}"
                                + ("; send fewer samples per report" if rpc == "ReportMetrics" else ""))


def check_repeated(rpc: str, message: Message) -> ValidationError | None:
    """A ValidationError naming the first repeated field or map over `MAX_REPEATED`, else None."""
    if rpc in OWN_REPEATED_LIMITS:
        return None
    field = _overfull(message, "")
    if field is None:
        return None
    return ValidationError(FieldViolation(field, f"at most {MAX_REPEATED} entries per request"))


def check_text(data: bytes, message: Message) -> ValidationError | None:
    """A ValidationError naming the first text field (or map key) holding a NUL character, else None.

    PostgreSQL text cannot hold NUL, so such a value would fail deep in a write as an
    internal error; no name, label or reason needs one. `data` is the raw request: a
    string with NUL has a 0 byte, so most requests skip the walk.
    """
    if b"\x00" not in data:
        return None
    field = _nul_text(message, "")
    if field is None:
        return None
    return ValidationError(FieldViolation(field, "must not contain NUL characters"))


def _nul_text(message: Message, prefix: str) -> str | None:
    for fd, value in message.ListFields():
        path = f"{prefix}{fd.name}"
        if fd.type == _STRING:
            values = value if fd.is_repeated else (value,)
            for n, text in enumerate(values):
                if "\x00" in text:
                    return f"{path}[{n}]" if fd.is_repeated else path
        elif fd.type == _MESSAGE and fd.is_repeated and fd.message_type.GetOptions().map_entry:
            key_field, value_field = fd.message_type.fields_by_name["key"], fd.message_type.fields_by_name["value"]
            for key, item in value.items():
                if key_field.type == _STRING and "\x00" in key:
                    return path
                if value_field.type == _STRING and "\x00" in item:
                    return f"{path}[{key}]"
                if value_field.type == _MESSAGE:
                    found = _nul_text(item, f"{path}[{key}].")
                    if found:
                        return found
        elif fd.type == _MESSAGE:
            for n, item in enumerate(value if fd.is_repeated else (value,)):
                found = _nul_text(item, f"{path}[{n}]." if fd.is_repeated else f"{path}.")
                if found:
                    return found
    return None


def _overfull(message: Message, prefix: str) -> str | None:
    for fd, value in message.ListFields():
        path = f"{prefix}{fd.name}"
        if fd.is_repeated:
            if len(value) > MAX_REPEATED:
                return path
            if fd.type != _MESSAGE:
                continue
            if fd.message_type.GetOptions().map_entry:
                value_field = fd.message_type.fields_by_name["value"]
                items = list(value.items()) if value_field.type == _MESSAGE else []
                for key, item in items:
                    found = _overfull(item, f"{path}[{key}].")
                    if found:
                        return found
                continue
            for n, item in enumerate(value):
                found = _overfull(item, f"{path}[{n}].")
                if found:
                    return found
        elif fd.type == _MESSAGE:
            found = _overfull(value, f"{path}.")
            if found:
                return found
    return None
