"""Arrival times from a shape: deterministic and evenly spaced along the rate integral.

The k-th request (k = 0, 1, ...) is due when the integral of the rate reaches k + 0.5, so
the number of arrivals in any window is the window's integral rounded: a constant 500/s for
4 s is exactly 2,000 requests, a ramp gets denser exactly as its rate rises. No randomness:
two runs of one experiment send the same requests at the same offsets.
"""

from __future__ import annotations

from collections.abc import Iterator

from brownout.load.shapes import Shape


def arrival_times(shape: Shape) -> Iterator[float]:
    """Seconds since the start at which each request is due, in order, all < ``duration``
    (a shape that knows its arrivals, a replay, gives them itself: ``arrival_offsets()``)."""
    explicit = getattr(shape, "arrival_offsets", None)
    offsets = explicit() if explicit is not None else None
    if offsets is not None:
        yield from offsets
        return
    k = 0.5
    before = 0.0  # integral up to the current segment's start
    for seg in shape.segments():
        area = seg.area
        if area <= 0.0:
            continue
        end = before + area
        if seg.rate_start == seg.rate_end:
            # Constant stretch (the common case, and the hot path at high rates): no sqrt.
            start, gap = seg.start, 1.0 / seg.rate_start
            while k < end:
                yield start + (k - before) * gap
                k += 1.0
        else:
            while k < end:
                yield seg.time_at_area(k - before)
                k += 1.0
        before = end


def integral(shape: Shape, t0: float, t1: float) -> float:
    """Expected arrivals in [t0, t1): the rate integral."""
    return sum(seg.area_until(t1) - seg.area_until(t0) for seg in shape.segments())


def count_between(times: list[float], t0: float, t1: float) -> int:
    return sum(1 for t in times if t0 <= t < t1)
