"""Fixed time windows over request records: the one statistics model of runs, stress and ``brownout load``.

A record belongs to the window of its ``scheduled_at`` (when it *should* have been sent),
so a stalled server shows up in the window it stalled, not when the answer finally came.
Edge cases are tallied apart (``brownout.load.edgecases``) and never enter these numbers.

Definitions, per window [start, end) of length W:

* ``sent``: requests sent (answered, or failed in transport); ``dropped``: scheduled but never
  sent (in-flight cap, saturated generator); ``scheduled`` = sent + dropped;
* ``errors``: 5xx answers and transport failures among ``sent`` (a 4xx is the client's fault);
* ``error_rate`` = errors / sent;
* ``dropped_rate`` = dropped / scheduled;
* ``throughput_rps`` = (sent − errors) / W: good answers per second, so a server that
  answers fast with 500s has no throughput;
* latency percentiles (p50, p90, p95, p99, p99.9), max and mean over every sent request,
  errors included (a timeout is slow), from a log-linear histogram (< 1% relative error);
* ``statuses``: counts by outcome: ``2xx``…``5xx``, a transport error's name (``timeout``,
  ``connect``, ``reset``, ``protocol``), ``dropped``.

``None`` means no data, never zero: an empty window has no error rate and no latency (not
0.0). ``error_rate`` and the latencies are None when nothing was sent; ``dropped_rate`` and
``throughput_rps`` are None when nothing was scheduled (a window where everything was
dropped has throughput 0.0 and dropped rate 1.0: the server did not take the load). An SLA
bound on an SLI without data gives a "no data" verdict that neither fails the window nor
counts as held (``brownout.steady.verdicts``).

``WindowAccumulator`` gathers one window (or a merge of several: a phase, a run, the same
window from several load generators or proxies). ``merge`` is exact for every count and
for the latency histogram (percentiles of a merge are those of one histogram that saw
everything); ``in_flight_max`` merges as the max, which is exact for windows of one
generator and a lower bound across generators. ``to_dict``/``from_dict`` carry an
accumulator between processes as JSON. ``WindowSeries`` keeps the accumulators of a run on
a ``WindowGrid``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from brownout.histogram import Histogram
from brownout.records import RequestRecord
from faults.errors import InvalidInput

_PERCENTILES = (("p50_ms", 50), ("p90_ms", 90), ("p95_ms", 95), ("p99_ms", 99), ("p999_ms", 99.9))


@dataclass(frozen=True)
class WindowGrid:
    """Windows of ``length`` seconds starting at run second ``origin``: [origin + i·length, …)."""

    length: float
    origin: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.length) and self.length > 0):
            raise InvalidInput(f"must be > 0, got {self.length!r}", "window")

    def index_of(self, t: float) -> int:
        return math.floor((t - self.origin) / self.length + 1e-9)

    def bounds(self, index: int) -> tuple[float, float]:
        start = self.origin + index * self.length
        return start, start + self.length


@dataclass(frozen=True)
class WindowStats:
    """One window's figures, frozen. ``index`` is -1 for a merged span (a phase, a run, a step)."""

    index: int
    start: float
    end: float
    sent: int
    errors: int
    dropped: int
    statuses: Mapping[str, int] = field(default_factory=dict)
    bytes_received: int = 0
    in_flight_max: int = 0
    p50_ms: float | None = None
    p90_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    p999_ms: float | None = None
    max_ms: float | None = None
    mean_ms: float | None = None

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
    def throughput_rps(self) -> float | None:
        if not self.scheduled:
            return None
        return (self.sent - self.errors) / self.duration if self.duration > 0 else 0.0

    @property
    def completed(self) -> int:
        """Alias of ``sent`` (every sent request completes: answered or failed), for older callers."""
        return self.sent

    @property
    def status_2xx(self) -> int:
        return self.statuses.get("2xx", 0)

    @property
    def status_3xx(self) -> int:
        return self.statuses.get("3xx", 0)

    @property
    def status_4xx(self) -> int:
        return self.statuses.get("4xx", 0)

    @property
    def status_5xx(self) -> int:
        return self.statuses.get("5xx", 0)

    @property
    def transport_errors(self) -> int:
        """Sent requests that got no HTTP answer (timeout, connect, reset, protocol)."""
        answered = sum(self.statuses.get(f"{c}xx", 0) for c in range(1, 6))
        return self.sent - answered

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index, "start": self.start, "end": self.end, "sent": self.sent,
            "errors": self.errors, "dropped": self.dropped, "statuses": dict(self.statuses),
            "bytes_received": self.bytes_received, "in_flight_max": self.in_flight_max,
            "error_rate": self.error_rate, "dropped_rate": self.dropped_rate,
            "throughput_rps": self.throughput_rps, "p50_ms": self.p50_ms, "p90_ms": self.p90_ms,
            "p95_ms": self.p95_ms, "p99_ms": self.p99_ms, "p999_ms": self.p999_ms,
            "max_ms": self.max_ms, "mean_ms": self.mean_ms,
        }


def outcome_of(record: RequestRecord) -> str:
    """The ``statuses`` key of a record."""
    if record.dropped:
        return "dropped"
    if record.status == 0:
        return record.error or "transport"
    return f"{min(record.status // 100, 5)}xx"


def _ms(us: float) -> float:
    return round(us / 1000, 3)


class WindowAccumulator:
    """Counts and a latency histogram for one window (or a merge of several)."""

    __slots__ = ("index", "start", "end", "sent", "errors", "dropped", "bytes_received", "in_flight_max",
                 "statuses", "histogram")

    def __init__(self, index: int, start: float, end: float) -> None:
        self.index, self.start, self.end = index, start, end
        self.sent = self.errors = self.dropped = self.bytes_received = self.in_flight_max = 0
        self.statuses: dict[str, int] = {}
        self.histogram = Histogram()

    def add(self, record: RequestRecord) -> None:
        key = outcome_of(record)
        self.statuses[key] = self.statuses.get(key, 0) + 1
        if record.dropped:
            self.dropped += 1
            return
        self.sent += 1
        self.errors += record.failed
        self.bytes_received += record.bytes_received
        self.histogram.record(record.latency_s)

    def observe_in_flight(self, in_flight: int) -> None:
        if in_flight > self.in_flight_max:
            self.in_flight_max = in_flight

    def merge(self, other: WindowAccumulator) -> None:
        """Add ``other`` in (exact; the span grows to cover both)."""
        self.start, self.end = min(self.start, other.start), max(self.end, other.end)
        self.sent += other.sent
        self.errors += other.errors
        self.dropped += other.dropped
        self.bytes_received += other.bytes_received
        self.in_flight_max = max(self.in_flight_max, other.in_flight_max)
        for key, n in other.statuses.items():
            self.statuses[key] = self.statuses.get(key, 0) + n
        self.histogram.merge(other.histogram)

    def stats(self) -> WindowStats:
        h = self.histogram
        latency: dict[str, float | None] = {name: None for name, _ in _PERCENTILES}
        latency["max_ms"] = latency["mean_ms"] = None
        if h.count:
            latency = {name: _ms(h.percentile(p) * 1_000_000) for name, p in _PERCENTILES}
            latency["max_ms"] = _ms(h.max_us)
            latency["mean_ms"] = _ms(h.total_us / h.count)
        return WindowStats(
            index=self.index, start=self.start, end=self.end, sent=self.sent, errors=self.errors,
            dropped=self.dropped, statuses=dict(self.statuses), bytes_received=self.bytes_received,
            in_flight_max=self.in_flight_max, **latency,
        )

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "start": self.start, "end": self.end, "sent": self.sent,
                "errors": self.errors, "dropped": self.dropped, "bytes_received": self.bytes_received,
                "in_flight_max": self.in_flight_max, "statuses": dict(self.statuses),
                "histogram": self.histogram.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], field: str = "window") -> WindowAccumulator:
        """What ``to_dict`` wrote (e.g. by another load generator); InvalidInput naming the field if not."""
        if not isinstance(data, Mapping):
            raise InvalidInput("must be an object", field)

        def number(key: str, *, integer: bool) -> Any:
            value = data.get(key)
            ok = isinstance(value, int) if integer else isinstance(value, (int, float))
            if isinstance(value, bool) or not ok or not math.isfinite(value) or (integer and value < 0):
                raise InvalidInput(f"must be {'an integer >= 0' if integer else 'a finite number'}, got {value!r}",
                                   f"{field}.{key}")
            return value

        index = data.get("index")
        if isinstance(index, bool) or not isinstance(index, int):
            raise InvalidInput(f"must be an integer, got {index!r}", f"{field}.index")
        acc = cls(index, float(number("start", integer=False)), float(number("end", integer=False)))
        for key in ("sent", "errors", "dropped", "bytes_received", "in_flight_max"):
            setattr(acc, key, number(key, integer=True))
        statuses = data.get("statuses")
        if not isinstance(statuses, Mapping) or not all(
                isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
                for k, v in statuses.items()):
            raise InvalidInput("must map outcomes to counts >= 0", f"{field}.statuses")
        acc.statuses = dict(statuses)
        acc.histogram = Histogram.from_dict(data.get("histogram"), f"{field}.histogram")  # type: ignore[arg-type]
        if acc.histogram.count != acc.sent or acc.errors > acc.sent or acc.statuses.get("dropped", 0) != acc.dropped \
                or sum(acc.statuses.values()) != acc.sent + acc.dropped:
            raise InvalidInput("counts disagree (histogram count = sent, errors <= sent, statuses sum to "
                               "sent + dropped)", field)
        return acc


class WindowSeries:
    """A run's windows on a grid, filled record by record; edge cases are left out.

    ``in_flight`` and ``sent`` are live counters the load engine updates for the live view
    (requests on the wire now; requests sent so far, edge cases included).
    """

    def __init__(self, grid: WindowGrid | float = 1.0) -> None:
        self.grid = grid if isinstance(grid, WindowGrid) else WindowGrid(grid)
        self._windows: dict[int, WindowAccumulator] = {}
        self.in_flight = 0
        self.sent = 0

    @property
    def length(self) -> float:
        return self.grid.length

    def accumulator(self, index: int) -> WindowAccumulator:
        acc = self._windows.get(index)
        if acc is None:
            acc = self._windows[index] = WindowAccumulator(index, *self.grid.bounds(index))
        return acc

    def add(self, record: RequestRecord) -> None:
        if record.edge_case is None:
            self.accumulator(self.grid.index_of(record.scheduled_at)).add(record)

    def observe_in_flight(self, t: float, in_flight: int) -> None:
        self.in_flight = in_flight
        self.accumulator(self.grid.index_of(t)).observe_in_flight(in_flight)

    def merge(self, other: WindowSeries) -> None:
        """Add another series on the same grid in, window by window (exact)."""
        if other.grid != self.grid:
            raise ValueError(f"cannot merge windows on {other.grid} into windows on {self.grid}")
        for index, acc in other._windows.items():
            self.accumulator(index).merge(acc)

    def indexes(self) -> list[int]:
        return sorted(self._windows)

    def window(self, index: int) -> WindowStats:
        acc = self._windows.get(index)
        return acc.stats() if acc is not None else WindowAccumulator(index, *self.grid.bounds(index)).stats()

    def windows(self) -> list[WindowStats]:
        return [self.window(i) for i in self.indexes()]

    def total(self, start: float = 0.0, end: float | None = None) -> WindowStats:
        """Everything recorded, as one window (index -1) spanning [start, end)."""
        if end is None:
            end = self.grid.bounds(max(self._windows))[1] if self._windows else start
        acc = WindowAccumulator(-1, start, end)
        for a in self._windows.values():
            acc.merge(a)
        acc.start, acc.end = start, end  # the span asked for, not the windows' union
        return acc.stats()
