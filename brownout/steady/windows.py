"""Fixed time windows over request records, and their statistics.

A record belongs to the window of its ``scheduled_at`` (when it *should* have been sent),
so a stalled server shows up in the window it stalled, not when the answer finally came.
Definitions, per window of length W:

* ``sent``: records not dropped; ``errors``: 5xx or transport failures among them;
* ``error_rate`` = errors / sent; ``dropped_rate`` = dropped / (sent + dropped);
* ``throughput_rps`` = (sent − errors) / W — good answers per second;
* latency percentiles over every sent record (errors included: a timeout is slow).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from brownout.histogram import Histogram
from brownout.records import RequestRecord


@dataclass(frozen=True)
class WindowGrid:
    """Windows of ``length`` seconds starting at run second ``origin``: [origin + i·length, …)."""

    length: float
    origin: float = 0.0

    def index_of(self, t: float) -> int:
        return math.floor((t - self.origin) / self.length + 1e-9)

    def bounds(self, index: int) -> tuple[float, float]:
        start = self.origin + index * self.length
        return start, start + self.length


@dataclass(frozen=True)
class WindowStats:
    index: int
    start: float
    end: float
    sent: int
    errors: int
    dropped: int
    statuses: dict[str, int]
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    mean_ms: float | None

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def scheduled(self) -> int:
        return self.sent + self.dropped

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.sent if self.sent else None

    @property
    def dropped_rate(self) -> float | None:
        return self.dropped / self.scheduled if self.scheduled else None

    @property
    def throughput_rps(self) -> float:
        return (self.sent - self.errors) / self.duration if self.duration > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "index": self.index, "start": self.start, "end": self.end, "sent": self.sent,
            "errors": self.errors, "dropped": self.dropped, "statuses": dict(self.statuses),
            "error_rate": self.error_rate, "dropped_rate": self.dropped_rate,
            "throughput_rps": self.throughput_rps, "p50_ms": self.p50_ms, "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms, "max_ms": self.max_ms, "mean_ms": self.mean_ms,
        }


def _status_class(record: RequestRecord) -> str:
    if record.dropped:
        return "dropped"
    if record.status == 0:
        return record.error or "transport"
    return f"{record.status // 100}xx"


class WindowAccumulator:
    """Counts and a latency histogram for one window (or a merge of several)."""

    __slots__ = ("index", "start", "end", "sent", "errors", "dropped", "statuses", "histogram")

    def __init__(self, index: int, start: float, end: float) -> None:
        self.index, self.start, self.end = index, start, end
        self.sent = self.errors = self.dropped = 0
        self.statuses: dict[str, int] = {}
        self.histogram = Histogram()

    def add(self, record: RequestRecord) -> None:
        cls = _status_class(record)
        self.statuses[cls] = self.statuses.get(cls, 0) + 1
        if record.dropped:
            self.dropped += 1
            return
        self.sent += 1
        if record.failed:
            self.errors += 1
        self.histogram.record(record.latency_s)

    def merge(self, other: WindowAccumulator) -> None:
        self.start, self.end = min(self.start, other.start), max(self.end, other.end)
        self.sent += other.sent
        self.errors += other.errors
        self.dropped += other.dropped
        for k, v in other.statuses.items():
            self.statuses[k] = self.statuses.get(k, 0) + v
        self.histogram.merge(other.histogram)

    def stats(self) -> WindowStats:
        h = self.histogram
        ms = (lambda p: round(h.percentile(p) * 1000, 3)) if h.count else (lambda p: None)
        return WindowStats(
            index=self.index, start=self.start, end=self.end, sent=self.sent, errors=self.errors,
            dropped=self.dropped, statuses=dict(self.statuses),
            p50_ms=ms(50), p95_ms=ms(95), p99_ms=ms(99),
            max_ms=round(h.max_us / 1000, 3) if h.count else None,
            mean_ms=round(h.mean * 1000, 3) if h.count else None,
        )
