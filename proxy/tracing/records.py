"""The proxy's spans as plain records, and their OTLP protobuf encoding, written by hand.

On the data path a sampled exchange makes two ``SpanRecord``s (a few µs); the export thread
encodes a batch straight to the bytes of an ``ExportTraceServiceRequest`` (OTLP's
``opentelemetry/proto/collector/trace/v1``). Going through the SDK instead costs ~30 µs per
span to start and end and ~30 µs more to encode, which at a 1 % ratio alone would be most of
the budget (``benchmarks/tracing_bench.py``). Only the fields Brownout sets are written;
field numbers and wire types follow ``trace.proto``, ``common.proto`` and ``resource.proto``.
The tests decode every export with ``opentelemetry-proto``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

KIND_INTERNAL, KIND_SERVER, KIND_CLIENT = 1, 2, 3
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200  # SpanFlags: whether the parent is remote is known / it is

Attributes = Mapping[str, str | bool | int | float]


class SpanRecord:
    """One span: ids as integers, times in ns since the epoch, flat attributes. Built by its owner
    (a plain slotted object: the data path makes two per sampled exchange), then handed to a
    ``SpanExport`` once ``end_ns`` is set, and never touched again."""

    __slots__ = ("trace_id", "span_id", "parent_id", "parent_remote", "trace_state", "name", "kind", "start_ns",
                 "end_ns", "attributes", "fixed", "events", "links", "status", "status_message")

    def __init__(self, trace_id: int, span_id: int, parent_id: int, name: str, kind: int, start_ns: int,
                 attributes: dict[str, str | bool | int | float] | None = None, *, end_ns: int = 0, fixed: bytes = b"",
                 parent_remote: bool = False, trace_state: str = "", links: Sequence[tuple[int, int]] = ()) -> None:
        self.trace_id, self.span_id, self.parent_id = trace_id, span_id, parent_id
        self.parent_remote, self.trace_state = parent_remote, trace_state
        self.name, self.kind, self.start_ns, self.end_ns = name, kind, start_ns, end_ns
        self.attributes = attributes if attributes is not None else {}
        self.fixed = fixed  # attributes every span of its kind shares, encoded once (``span_attributes``)
        self.events: list[tuple[int, str, Attributes]] = []
        self.links = links  # (trace id, span id) of spans this one relates to, outside its own trace
        self.status, self.status_message = STATUS_UNSET, ""

    def event(self, name: str, attributes: Attributes, time_ns: int) -> None:
        self.events.append((time_ns, name, attributes))

    def fail(self, error_type: str, message: str = "") -> None:
        """``error.type`` and an ERROR status."""
        self.attributes["error.type"] = error_type
        self.status, self.status_message = STATUS_ERROR, message


# -- the wire format

_pack_fixed64 = struct.Struct("<Q").pack
_pack_double = struct.Struct("<d").pack
_SMALL = [bytes([n]) for n in range(128)]
_FLAGS_LOCAL = b"\x85\x01" + struct.pack("<I", _HAS_IS_REMOTE)  # flags: field 16, fixed32
_FLAGS_REMOTE = b"\x85\x01" + struct.pack("<I", _HAS_IS_REMOTE | _IS_REMOTE)


def _varint(n: int) -> bytes:
    if n < 128:
        return _SMALL[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its tag byte(s), the length, the payload."""
    size = len(payload)
    return tag + (_SMALL[size] if size < 128 else _varint(size)) + payload


_key_cache: dict[str, bytes] = {}
_pair_cache: dict[tuple[str, str], bytes] = {}  # KeyValue of a (key, string value) pair: most repeat span to span
_CACHE_LIMIT = 4096  # entries each; once full, new keys and pairs are encoded every time
# Values cached per key: a key whose values never repeat (a request id, a URL with ids in it) stops
# being cached here, so it cannot fill the cache and shut out the pairs that do repeat.
_VALUES_PER_KEY = 64
_cached_values: dict[str, int] = {}


def _key(key: str) -> bytes:
    """KeyValue.key (field 1) encoded once per distinct key."""
    encoded = _key_cache.get(key)
    if encoded is None:
        encoded = _field(b"\x0a", key.encode())
        if len(_key_cache) < _CACHE_LIMIT:
            _key_cache[key] = encoded
    return encoded


def _any_value(value: Any) -> bytes:
    """AnyValue: string 1, bool 2, int 3 (int64), double 4."""
    if isinstance(value, str):
        return _field(b"\x0a", value.encode("utf-8", "replace"))
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + _pack_double(value)
    return _field(b"\x0a", str(value).encode("utf-8", "replace"))


def _key_value(key: str, value: Any) -> bytes:
    """One KeyValue: key 1, value 2 (AnyValue); a pair with a string value is kept in the cache."""
    encoded = _key(key) + _field(b"\x12", _any_value(value))
    if type(value) is str and len(_pair_cache) < _CACHE_LIMIT:
        cached = _cached_values.get(key, 0)
        if cached < _VALUES_PER_KEY:
            _cached_values[key] = cached + 1
            _pair_cache[(key, value)] = encoded
    return encoded


def _attributes(tag: bytes, attributes: Attributes) -> bytes:
    """Repeated KeyValue under ``tag``: the export thread's innermost loop. The cache holds only
    pairs with a string value, so ``("k", True)`` never finds ``("k", "...")`` (it would find
    ``("k", 1)``, which is why no other kind is kept)."""
    parts = []
    for pair in attributes.items():
        encoded = _pair_cache.get(pair) or _key_value(*pair)
        size = len(encoded)
        parts.append(tag + (_SMALL[size] if size < 128 else _varint(size)) + encoded)
    return b"".join(parts)


def span_attributes(attributes: Attributes) -> bytes:
    """Span attributes (field 9) encoded now, for ``SpanRecord.fixed``."""
    return _attributes(b"\x4a", attributes)


def encode_span(span: SpanRecord) -> bytes:
    parts = [b"\x0a\x10" + span.trace_id.to_bytes(16, "big"), b"\x12\x08" + span.span_id.to_bytes(8, "big")]
    if span.trace_state:
        parts.append(_field(b"\x1a", span.trace_state.encode("latin-1", "replace")))
    if span.parent_id:
        parts.append(b"\x22\x08" + span.parent_id.to_bytes(8, "big"))
    parts += [_field(b"\x2a", span.name.encode("utf-8", "replace")), b"\x30" + _SMALL[span.kind],
              b"\x39" + _pack_fixed64(span.start_ns), b"\x41" + _pack_fixed64(span.end_ns),
              span.fixed, _attributes(b"\x4a", span.attributes)]
    for time_ns, name, attributes in span.events:  # Event: time 1 (fixed64), name 2, attributes 3
        parts.append(_field(b"\x5a", b"\x09" + _pack_fixed64(time_ns) + _field(b"\x12", name.encode())
                            + _attributes(b"\x1a", attributes)))
    for trace_id, span_id in span.links:  # Link: trace_id 1, span_id 2
        parts.append(_field(b"\x6a", b"\x0a\x10" + trace_id.to_bytes(16, "big") + b"\x12\x08" + span_id.to_bytes(8, "big")))
    if span.status:  # Status: message 2, code 3
        message = _field(b"\x12", span.status_message.encode("utf-8", "replace")) if span.status_message else b""
        parts.append(_field(b"\x7a", message + b"\x18" + _varint(span.status)))
    parts.append(_FLAGS_REMOTE if span.parent_remote else _FLAGS_LOCAL)
    return b"".join(parts)


def encode_export(spans: Iterable[SpanRecord], resource: Attributes, scope: str, version: str) -> bytes:
    """An ``ExportTraceServiceRequest``: one resource, one instrumentation scope, these spans."""
    scope_message = _field(b"\x0a", _field(b"\x0a", scope.encode()) + _field(b"\x12", version.encode()))
    scope_spans = scope_message + b"".join(_field(b"\x12", encode_span(s)) for s in spans)
    resource_spans = _field(b"\x0a", _attributes(b"\x0a", resource)) + _field(b"\x12", scope_spans)
    return _field(b"\x0a", resource_spans)
