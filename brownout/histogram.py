"""An HDR-style latency histogram: log-linear buckets, better than 1% relative precision.

Values are recorded in microseconds. Below 256 µs each value has its own bucket; above,
each power of two is split into 128 sub-buckets, so a bucket is at most 1/128 (0.8%) wide
relative to its value. Recording is O(1); histograms merge by adding counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

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
