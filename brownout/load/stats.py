"""Per-window load statistics: latency percentiles, status classes, bytes, drops, in-flight.

A request belongs to the window in which it was *scheduled* (not when it finished), so a
stall shows up in the windows whose requests it delayed. Edge cases are tallied apart
(``brownout.load.edgecases``) and never enter these numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from brownout.histogram import Histogram
from brownout.records import RequestRecord


@dataclass(frozen=True, slots=True)
class WindowStats:
    index: int  # -1 for a total over the run
    start_s: float
    end_s: float
    completed: int  # requests that got a response or a transport error (not dropped)
    dropped: int
    status_2xx: int
    status_3xx: int
    status_4xx: int
    status_5xx: int
    transport_errors: int
    bytes_received: int
    in_flight_max: int
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    mean_ms: float

    @property
    def scheduled(self) -> int:
        return self.completed + self.dropped

    @property
    def errors(self) -> int:
        """5xx and transport errors: what counts against an SLA's error rate."""
        return self.status_5xx + self.transport_errors

    @property
    def error_rate(self) -> float:
        return self.errors / self.completed if self.completed else 0.0

    @property
    def dropped_rate(self) -> float:
        return self.dropped / self.scheduled if self.scheduled else 0.0

    @property
    def throughput(self) -> float:
        """Completed requests per second of the window."""
        span = self.end_s - self.start_s
        return self.completed / span if span > 0 else 0.0


class _Acc:
    __slots__ = ("hist", "classes", "dropped", "bytes", "in_flight_max")

    def __init__(self) -> None:
        self.hist = Histogram()
        self.classes = [0, 0, 0, 0, 0, 0]  # transport error, 1xx (unused), 2xx, 3xx, 4xx, 5xx
        self.dropped = 0
        self.bytes = 0
        self.in_flight_max = 0

    def add(self, r: RequestRecord) -> None:
        if r.dropped:
            self.dropped += 1
            return
        self.hist.record(r.latency_s)
        self.classes[min(r.status // 100, 5)] += 1
        self.bytes += r.bytes_received

    def merge(self, other: _Acc) -> None:
        self.hist.merge(other.hist)
        self.classes = [a + b for a, b in zip(self.classes, other.classes)]
        self.dropped += other.dropped
        self.bytes += other.bytes
        self.in_flight_max = max(self.in_flight_max, other.in_flight_max)

    def freeze(self, index: int, start: float, end: float) -> WindowStats:
        h = self.hist
        ms = {q: h.percentile(q) * 1000 for q in (50, 90, 95, 99, 99.9)}
        c = self.classes
        return WindowStats(
            index=index, start_s=start, end_s=end, completed=h.count, dropped=self.dropped,
            status_2xx=c[2], status_3xx=c[3], status_4xx=c[4], status_5xx=c[5], transport_errors=c[0],
            bytes_received=self.bytes, in_flight_max=self.in_flight_max, p50_ms=ms[50], p90_ms=ms[90],
            p95_ms=ms[95], p99_ms=ms[99], p999_ms=ms[99.9], max_ms=h.max_us / 1000, mean_ms=h.mean * 1000,
        )


class Windowed:
    """Aggregates records into fixed windows keyed by index (``scheduled_at // window_s``)."""

    def __init__(self, window_s: float = 1.0) -> None:
        if not window_s > 0:
            raise ValueError("window_s must be > 0")
        self.window_s = window_s
        self._windows: dict[int, _Acc] = {}
        self.in_flight = 0  # latest value the engine reported, for live views
        self.sent = 0

    def _acc(self, index: int) -> _Acc:
        acc = self._windows.get(index)
        if acc is None:
            acc = self._windows[index] = _Acc()
        return acc

    def add(self, record: RequestRecord) -> None:
        if record.edge_case is not None:
            return
        self._acc(int(record.scheduled_at // self.window_s)).add(record)

    def observe_in_flight(self, t: float, in_flight: int) -> None:
        self.in_flight = in_flight
        acc = self._acc(int(t // self.window_s))
        if in_flight > acc.in_flight_max:
            acc.in_flight_max = in_flight

    def indexes(self) -> list[int]:
        return sorted(self._windows)

    def window(self, index: int) -> WindowStats:
        acc = self._windows.get(index) or _Acc()
        return acc.freeze(index, index * self.window_s, (index + 1) * self.window_s)

    def windows(self) -> list[WindowStats]:
        return [self.window(i) for i in self.indexes()]

    def total(self, start_s: float = 0.0, end_s: float | None = None) -> WindowStats:
        """Everything recorded, as one window (index -1) spanning [start_s, end_s)."""
        acc = _Acc()
        for a in self._windows.values():
            acc.merge(a)
        if end_s is None:
            end_s = (max(self._windows) + 1) * self.window_s if self._windows else start_s
        return acc.freeze(-1, start_s, end_s)
