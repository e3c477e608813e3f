"""Requests for every ModelController RPC, generated from the proto descriptors (hypothesis).

Nothing here names an RPC or a field: the strategies walk `controller_pb2.DESCRIPTOR`,
so a new RPC, message or field is fuzzed the day it is added. Values lean on the
edges a hostile or buggy client sends: empty and 10k-character strings, NUL and
odd unicode, extreme and non-finite numbers, timestamps and durations out of range,
unknown enum numbers, repeated fields and maps far past any limit, and raw or
mutated bytes. `Target` sends them as bytes over a generic channel, as any
identity (none, a bad token, viewer, operator, admin), and returns the status code.

Used by tests/test_fuzz.py (a short run in `make test`) and scripts/fuzz.py (long runs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from modelctl.v1 import controller_pb2

SERVICE = controller_pb2.DESCRIPTOR.services_by_name["ModelController"]
METHODS: list[MethodDescriptor] = list(SERVICE.methods)
IDENTITIES = ("none", "bad-token", "viewer", "operator", "admin")
#: Names that exist in the seeded state, so some generated calls get past validation and NOT_FOUND.
KNOWN = ("fraud", "1", "2", "pod-a")
#: Past every per-request limit: repeated fields and maps of this many entries.
HUGE = 20_001
MAX_DEPTH = 4

_T = FieldDescriptor
_INT_RANGES = {
    _T.TYPE_INT32: (-2 ** 31, 2 ** 31 - 1), _T.TYPE_SINT32: (-2 ** 31, 2 ** 31 - 1),
    _T.TYPE_SFIXED32: (-2 ** 31, 2 ** 31 - 1), _T.TYPE_UINT32: (0, 2 ** 32 - 1), _T.TYPE_FIXED32: (0, 2 ** 32 - 1),
    _T.TYPE_INT64: (-2 ** 63, 2 ** 63 - 1), _T.TYPE_SINT64: (-2 ** 63, 2 ** 63 - 1),
    _T.TYPE_SFIXED64: (-2 ** 63, 2 ** 63 - 1), _T.TYPE_UINT64: (0, 2 ** 64 - 1), _T.TYPE_FIXED64: (0, 2 ** 64 - 1),
}
_EDGE_STRINGS = ["", " ", "a", "\x00", "a\x00b", "x" * 10_000, "é🙂\u202e\u200b", "../../etc/passwd", "%s%n",
                 "Robert'); DROP TABLE models;--", "\ud7ff\ue000", "line\nbreak", "*", "1.0.0-rc.1+build"]
_EDGE_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 1e308, -1e308, 1.7976931348623157e308, 5e-324, math.inf, -math.inf,
                math.nan, 1e9, 1e15]


def strings() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(KNOWN), st.sampled_from(_EDGE_STRINGS),
                     st.text(max_size=24), st.text(alphabet=st.characters(codec="utf-8"), max_size=8))


def _ints(kind: int) -> st.SearchStrategy[int]:
    lo, hi = _INT_RANGES[kind]
    edges = [v for v in (lo, hi, 0, 1, -1, 2, 100, 10 ** 6, 2 ** 31, 2 ** 53) if lo <= v <= hi]
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi), st.integers(max(lo, -5), min(hi, 1000)))


def _scalar(fd: FieldDescriptor) -> st.SearchStrategy[Any]:
    if fd.type == _T.TYPE_STRING:
        return strings()
    if fd.type == _T.TYPE_BYTES:
        return st.one_of(st.binary(max_size=64), st.just(b"\x00" * 1024), st.just(b"\xff" * 300_000))
    if fd.type in (_T.TYPE_DOUBLE, _T.TYPE_FLOAT):
        values = st.one_of(st.sampled_from(_EDGE_FLOATS), st.floats(allow_nan=True, allow_infinity=True))
        if fd.type == _T.TYPE_FLOAT:
            values = values.filter(lambda v: not math.isfinite(v) or abs(v) < 3.4e38)
        return values
    if fd.type == _T.TYPE_BOOL:
        return st.booleans()
    if fd.type == _T.TYPE_ENUM:
        known = [v.number for v in fd.enum_type.values]
        return st.one_of(st.sampled_from(known), st.sampled_from([max(known) + 1, 99, -1, 2 ** 31 - 1]))
    return _ints(fd.type)


def _timestamp_or_duration(name: str) -> st.SearchStrategy[dict[str, int]]:
    seconds = st.sampled_from([0, 1, -1, 1_700_000_000, 253_402_300_799, 253_402_300_800, -62_135_596_801,
                               315_576_000_001, -315_576_000_001, 2 ** 63 - 1, -2 ** 63])
    nanos = st.sampled_from([0, 1, 999_999_999, 1_000_000_000, -1, -999_999_999, 2 ** 31 - 1])
    return st.fixed_dictionaries({}, optional={"seconds": seconds, "nanos": nanos})


def _value(fd: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if fd.type == _T.TYPE_MESSAGE:
        return message_values(fd.message_type, depth + 1)
    return _scalar(fd)


def _field(fd: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if fd.is_repeated and fd.type == _T.TYPE_MESSAGE and fd.message_type.GetOptions().map_entry:
        key, value = fd.message_type.fields_by_name["key"], fd.message_type.fields_by_name["value"]
        small = st.dictionaries(_scalar(key), _value(value, depth), max_size=3)
        # A map far past any limit: HUGE distinct keys (a repeated key would collapse).
        huge = st.builds(lambda v: {_key_of(key, n): v for n in range(HUGE)}, _value(value, MAX_DEPTH))
        return st.one_of(small, small, small, huge)
    if fd.is_repeated:
        small = st.lists(_value(fd, depth), max_size=3)
        huge = st.builds(lambda v: [v] * HUGE, _value(fd, MAX_DEPTH))
        return st.one_of(small, small, small, huge)
    return _value(fd, depth)


def _key_of(fd: FieldDescriptor, n: int) -> Any:
    if fd.type == _T.TYPE_STRING:
        return f"k{n}"
    if fd.type == _T.TYPE_BOOL:
        return bool(n % 2)
    return n


def message_values(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Any]:
    """A dict of field values for `descriptor` (or a Timestamp/Duration's parts), any subset of fields."""
    if descriptor.full_name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
        return _timestamp_or_duration(descriptor.full_name)
    if depth >= MAX_DEPTH:
        return st.just({})
    return st.fixed_dictionaries({}, optional={fd.name: _field(fd, depth) for fd in descriptor.fields})


def build(descriptor: Descriptor, values: dict[str, Any]) -> Message:
    message = message_factory.GetMessageClass(descriptor)()
    _fill(message, values)
    return message


def _fill(message: Message, values: dict[str, Any]) -> None:
    fields = message.DESCRIPTOR.fields_by_name
    for name, value in values.items():
        fd = fields[name]
        target = getattr(message, name) if fd.is_repeated or fd.type == _T.TYPE_MESSAGE else None
        if fd.is_repeated and fd.type == _T.TYPE_MESSAGE and fd.message_type.GetOptions().map_entry:
            value_fd = fd.message_type.fields_by_name["value"]
            for k, v in value.items():
                if value_fd.type == _T.TYPE_MESSAGE:
                    _fill(target[k], v)
                else:
                    target[k] = v
        elif fd.is_repeated and fd.type == _T.TYPE_MESSAGE:
            for v in value:
                _fill(target.add(), v)
        elif fd.is_repeated:
            target.extend(value)
        elif fd.type == _T.TYPE_MESSAGE:
            target.SetInParent()
            _fill(target, value)
        else:
            setattr(message, name, value)


def requests(method: MethodDescriptor) -> st.SearchStrategy[bytes]:
    """Serialized requests of `method`: generated messages, or their bytes mutated, or random bytes."""
    messages = message_values(method.input_type).map(lambda v: build(method.input_type, v).SerializeToString())
    return st.one_of(messages, messages, messages, mutated(messages), st.binary(max_size=256))


def mutated(payloads: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """A payload with bytes flipped, cut short, or doubled: a client's framing bugs."""
    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(payloads))
        how = draw(st.sampled_from(["flip", "cut", "double", "append"]))
        if how == "flip" and data:
            for _ in range(draw(st.integers(1, 4))):
                i = draw(st.integers(0, len(data) - 1))
                data[i] = draw(st.integers(0, 255))
        elif how == "cut" and data:
            data = data[:draw(st.integers(0, len(data) - 1))]
        elif how == "double":
            data = data + data
        else:
            data += draw(st.binary(min_size=1, max_size=16))
        return bytes(data)
    return mutate()


@dataclass
class Outcome:
    code: grpc.StatusCode
    details: str


class Target:
    """Sends raw request bytes to one server as any identity; streams are read briefly, then cancelled."""

    def __init__(self, address: str, tokens: dict[str, str], *, timeout: float = 10.0,
                 stream_timeout: float = 0.5) -> None:
        self.channel = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 * 2 ** 20)])
        self.tokens = {"none": None, "bad-token": "not-a-real-token", **tokens}
        self.timeout = timeout
        self.stream_timeout = stream_timeout

    def call(self, method: MethodDescriptor, payload: bytes, identity: str) -> Outcome:
        path = f"/{SERVICE.full_name}/{method.name}"
        token = self.tokens[identity]
        metadata = [("authorization", f"Bearer {token}")] if token else []
        try:
            if method.client_streaming and method.server_streaming:
                call = self.channel.stream_stream(path)(iter([payload]), metadata=metadata,
                                                         timeout=self.stream_timeout)
                _drain(call)
            elif method.client_streaming:
                self.channel.stream_unary(path)(iter([payload, payload]), metadata=metadata, timeout=self.timeout)
            elif method.server_streaming:
                _drain(self.channel.unary_stream(path)(payload, metadata=metadata, timeout=self.stream_timeout))
            else:
                self.channel.unary_unary(path)(payload, metadata=metadata, timeout=self.timeout)
        except grpc.RpcError as exc:
            return Outcome(exc.code(), exc.details() or "")
        return Outcome(grpc.StatusCode.OK, "")

    def close(self) -> None:
        self.channel.close()


def _drain(call: Iterator[Any], limit: int = 3) -> None:
    for n, _ in enumerate(call):
        if n + 1 >= limit:
            call.cancel()  # type: ignore[attr-defined]
            return


def acceptable(method: MethodDescriptor, outcome: Outcome) -> bool:
    """The contract: never UNKNOWN or INTERNAL; a stream may run out its short deadline or be cancelled."""
    if outcome.code in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL):
        return False
    if outcome.code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        return method.server_streaming
    return True
