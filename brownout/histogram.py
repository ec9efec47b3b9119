"""An HDR-style latency histogram: log-linear buckets, better than 1% relative precision.

Values are recorded in microseconds. Below 256 µs each value has its own bucket; above,
each power of two is split into 128 sub-buckets, so a bucket is at most 1/128 (0.8%) wide
relative to its value. Recording is O(1); histograms merge exactly by adding counts, so
histograms kept apart (per worker, per proxy) and merged give the same percentiles as one
histogram that saw everything. ``to_dict``/``from_dict`` is a compact JSON form (non-empty
buckets only) for sending a histogram between processes or machines.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from faults.errors import InvalidInput

_SUB_BITS = 7
_SUB = 1 << _SUB_BITS  # 128 sub-buckets per power of two
_LINEAR_LIMIT = _SUB * 2


def _index(us: int) -> int:
    if us < _LINEAR_LIMIT:
        return us
    shift = us.bit_length() - _SUB_BITS - 1
    return (shift + 1) * _SUB + (us >> shift)


def _value(index: int) -> int:
    """Midpoint of the bucket with this index, in microseconds."""
    if index < _LINEAR_LIMIT:
        return index
    shift = index // _SUB - 2
    low = (index % _SUB + _SUB) << shift
    return low + ((1 << shift) >> 1)


class Histogram:
    __slots__ = ("_counts", "count", "total_us", "max_us", "min_us")

    def __init__(self) -> None:
        self._counts: Counter[int] = Counter()
        self.count = 0
        self.total_us = 0
        self.max_us = 0
        self.min_us = 0

    def record(self, seconds: float) -> None:
        us = max(0, int(seconds * 1_000_000))
        self._counts[_index(us)] += 1
        if self.count == 0 or us < self.min_us:
            self.min_us = us
        if us > self.max_us:
            self.max_us = us
        self.count += 1
        self.total_us += us

    def merge(self, other: Histogram) -> None:
        if other.count == 0:
            return
        self._counts.update(other._counts)
        self.min_us = other.min_us if self.count == 0 else min(self.min_us, other.min_us)
        self.max_us = max(self.max_us, other.max_us)
        self.count += other.count
        self.total_us += other.total_us

    def to_dict(self) -> dict[str, Any]:
        """``{"buckets": [[index, count], ...], "total_us", "min_us", "max_us"}``, JSON-ready."""
        return {"buckets": [[i, self._counts[i]] for i in sorted(self._counts)],
                "total_us": self.total_us, "min_us": self.min_us, "max_us": self.max_us}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], field: str = "histogram") -> Histogram:
        """The histogram ``to_dict`` wrote; InvalidInput naming the field when it is not one."""

        def count(value: Any, where: str) -> int:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInput(f"must be an integer >= 0, got {value!r}", f"{field}.{where}")
            return value

        if not isinstance(data, Mapping) or not isinstance(data.get("buckets"), list):
            raise InvalidInput("must be an object with a 'buckets' list", field)
        h = cls()
        for n, pair in enumerate(data["buckets"]):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise InvalidInput("must be [index, count]", f"{field}.buckets[{n}]")
            index, seen = count(pair[0], f"buckets[{n}][0]"), count(pair[1], f"buckets[{n}][1]")
            if seen:
                h._counts[index] += seen
        h.count = sum(h._counts.values())
        h.total_us, h.min_us, h.max_us = (count(data.get(k), k) for k in ("total_us", "min_us", "max_us"))
        if h.count and not h.min_us <= h.max_us:
            raise InvalidInput("min_us must be <= max_us", field)
        if not h.count and (h.total_us or h.min_us or h.max_us):
            raise InvalidInput("an empty histogram has no total, min or max", field)
        return h

    def percentile(self, p: float) -> float:
        """The p-th percentile (0–100) in seconds; 0.0 when empty."""
        if self.count == 0:
            return 0.0
        rank = max(1, int(round(p / 100.0 * self.count + 0.5 - 1e-9)))
        rank = min(rank, self.count)
        seen = 0
        for index in sorted(self._counts):
            seen += self._counts[index]
            if seen >= rank:
                return min(max(_value(index), self.min_us), self.max_us) / 1_000_000
        return self.max_us / 1_000_000

    def percentiles(self, ps: Iterable[float]) -> dict[float, float]:
        return {p: self.percentile(p) for p in ps}

    @property
    def mean(self) -> float:
        return self.total_us / self.count / 1_000_000 if self.count else 0.0
