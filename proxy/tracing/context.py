"""W3C trace context by hand, and the sampling decision, before (and without) the SDK.

An OpenTelemetry SDK span costs about half of what a whole forwarded request does, so the
decision whether to trace an exchange is made here, on plain integers: follow an incoming
``traceparent``'s sampled flag (parent-based), else draw the low 64 bits of a new trace id and
keep it when they are below ``ratio * 2**64``, the rule of OpenTelemetry's
``TraceIdRatioBased`` (so a downstream using it with the same ratio agrees). Only sampled
exchanges ever reach the SDK. The header is parsed only when it is there.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from proxy.h1 import header_value

__all__ = ["MASK_64", "Sampler", "TraceParent", "format_traceparent", "header_value", "new_span_id", "new_trace_id",
           "parse_traceparent", "span_hex", "trace_hex"]

MASK_64 = (1 << 64) - 1
_NEVER = 1 << 62  # the gap at ratio 0: a count no proxy reaches
_HEX = frozenset(b"0123456789abcdef")
_ids = random.Random()  # trace and span ids: unique enough, not secrets (and ~10x cheaper than os.urandom)


@dataclass(frozen=True, slots=True)
class TraceParent:
    """A valid ``traceparent``: version 00's fields (later versions are read as 00, as the spec says)."""

    trace_id: int
    span_id: int
    flags: int

    @property
    def sampled(self) -> bool:
        return bool(self.flags & 1)


def parse_traceparent(value: bytes | str) -> TraceParent | None:
    """``00-<32 hex>-<16 hex>-<2 hex>``, lower case, ids not all zero; None when invalid."""
    raw = value.encode("latin-1") if isinstance(value, str) else value
    raw = raw.strip(b" \t")
    if len(raw) < 55 or raw[2:3] != b"-" or raw[35:36] != b"-" or raw[52:53] != b"-":
        return None
    version = raw[:2]
    if version == b"ff" or (version == b"00" and len(raw) != 55) or (len(raw) > 55 and raw[55:56] != b"-"):
        return None
    if not _HEX.issuperset(raw[:2]) or not _HEX.issuperset(raw[3:35]) or not _HEX.issuperset(raw[36:52]) \
            or not _HEX.issuperset(raw[53:55]):
        return None
    trace_id, span_id = int(raw[3:35], 16), int(raw[36:52], 16)
    if not trace_id or not span_id:
        return None
    return TraceParent(trace_id, span_id, int(raw[53:55], 16))


def format_traceparent(trace_id: int, span_id: int, sampled: bool = True) -> bytes:
    return b"00-%032x-%016x-%s" % (trace_id, span_id, b"01" if sampled else b"00")


def new_span_id() -> int:
    return _ids.getrandbits(64) or 1


def new_trace_id() -> int:
    return (_ids.getrandbits(64) << 64 | _ids.getrandbits(64)) or 1


def trace_hex(trace_id: int) -> str:
    return f"{trace_id:032x}"


def span_hex(span_id: int) -> str:
    return f"{span_id:016x}"


class Sampler:
    """Sample by trace id, at ``ratio``; ``follow_parent``: an incoming sampled flag decides instead."""

    __slots__ = ("ratio", "bound", "follow_parent")

    def __init__(self, ratio: float, follow_parent: bool = True) -> None:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"sample ratio {ratio!r} is not within [0, 1]")
        self.ratio = ratio
        self.bound = round(ratio * (MASK_64 + 1))  # as TraceIdRatioBased computes it
        self.follow_parent = follow_parent

    def gap(self) -> int:
        """How many new traces from here to the next sampled one (1: the very next): geometric at
        ``ratio``, so counting down to it samples exactly as a draw per trace would, for one
        decrement per trace instead of a draw (``sampled_trace_id`` then makes an id that the
        ratio rule keeps, so a downstream sampling by id at the same ratio agrees)."""
        if self.ratio >= 1.0:
            return 1
        if not self.bound:
            return _NEVER
        return 1 + int(math.log(1.0 - _ids.random()) / math.log1p(-self.ratio))

    def sampled_trace_id(self) -> int:
        """A new trace id that ``new_trace`` would have kept: its low 64 bits below the bound."""
        low = _ids.randrange(self.bound) if self.bound <= MASK_64 else _ids.getrandbits(64)
        return _ids.getrandbits(64) << 64 | low or 1

    def new_trace(self) -> int:
        """A new trace id when the new trace is sampled, else 0 (then nothing more was drawn)."""
        bound = self.bound
        if not bound:
            return 0
        low = _ids.getrandbits(64)
        if low >= bound:
            return 0
        return _ids.getrandbits(64) << 64 | low or 1

    def keeps(self, parent: TraceParent) -> bool:
        """Is an exchange that continues ``parent``'s trace sampled?"""
        if self.follow_parent:
            return parent.sampled
        return (parent.trace_id & MASK_64) < self.bound
