"""A worker's share of a distributed run: every N-th arrival of one global schedule.

The master's shape gives one global arrival schedule, the same one the local engine sends
(``brownout.load.schedule``: arrival k is due when the rate integral reaches k + 0.5). A run
is cut into *epochs*; in an epoch of N workers, the worker in slot s sends arrivals
``from_k + s, from_k + s + N, ...``. The N shares are disjoint and together they are the
global schedule exactly, so the aggregate rate is the target rate (to one request per
window) and each worker carries 1/N of it, at every point of a ramp or spike. When a
worker joins or leaves, the master starts a new epoch at a global index a moment ahead
(``reassign``); arrivals before it keep the old split.

Arrival k is computed directly (O(log segments)), so a worker walks only its own share.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from brownout.load.shapes import Segment
from faults.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Epoch:
    """From global arrival ``from_k`` on (run second ``at``), slot ``slot`` of ``of`` workers."""

    from_k: int
    slot: int
    of: int
    at: float = 0.0

    def __post_init__(self) -> None:
        if self.of < 1 or not 0 <= self.slot < self.of or self.from_k < 0:
            raise InvalidInput(f"need 0 <= slot < of and from_k >= 0, got slot {self.slot} of {self.of} "
                               f"from {self.from_k}", "epoch")


class GlobalSchedule:
    """The arrival times of a shape, by index: ``time_of(k)`` equals the k-th of ``arrival_times``."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self._segments: list[tuple[float, Segment]] = []  # (integral before it, segment), non-empty only
        self._ends: list[float] = []
        before = 0.0
        for seg in segments:
            if seg.area <= 0.0:
                continue
            end = before + seg.area  # accumulated as arrival_times does, so the float values agree
            self._segments.append((before, seg))
            self._ends.append(end)
            before = end
        n = max(0, math.ceil(before - 0.5))  # arrivals: every k with k + 0.5 < the whole integral
        while n and n - 0.5 >= before:  # float edges: the same test as arrival_times'
            n -= 1
        while n + 0.5 < before:
            n += 1
        self.total = n

    def time_of(self, k: int) -> float:
        area = k + 0.5
        i = bisect.bisect_right(self._ends, area)
        before, seg = self._segments[i]
        if seg.rate_start == seg.rate_end:
            return seg.start + (area - before) * (1.0 / seg.rate_start)
        return seg.time_at_area(area - before)

    def count_before(self, t: float) -> int:
        """How many arrivals are due before run second ``t`` (the index of the first at or after it)."""
        lo, hi = 0, self.total
        while lo < hi:
            mid = (lo + hi) // 2
            if self.time_of(mid) < t:
                lo = mid + 1
            else:
                hi = mid
        return lo


class ShareArrivals(Iterator[float]):
    """One worker's arrival times, in order; ``reassign`` starts a new epoch (same thread only)."""

    def __init__(self, schedule: GlobalSchedule, epoch: Epoch) -> None:
        self._schedule = schedule
        self._pending: list[Epoch] = []
        self._last = -1  # the last index handed out
        self._k = 0
        self._stride = 1
        self.epoch = epoch
        self._enter(epoch)

    def reassign(self, epoch: Epoch) -> None:
        """Take ``epoch`` from its ``from_k`` on. If that index is already behind, from the next one."""
        self._pending.append(epoch)
        self._pending.sort(key=lambda e: e.from_k)

    def _enter(self, epoch: Epoch) -> None:
        self.epoch = epoch
        first = max(epoch.from_k, self._last + 1)
        # The first index >= first in this epoch's residue class (from_k + slot mod of).
        self._k = first + (epoch.from_k + epoch.slot - first) % epoch.of
        self._stride = epoch.of

    def __iter__(self) -> ShareArrivals:
        return self

    def __next__(self) -> float:
        while self._pending and self._k >= self._pending[0].from_k:
            self._enter(self._pending.pop(0))
        if self._k >= self._schedule.total:
            if self._pending:  # a later epoch cannot start past the end either
                self._pending.clear()
            raise StopIteration
        k = self._k
        self._last = k
        self._k += self._stride
        return self._schedule.time_of(k)
