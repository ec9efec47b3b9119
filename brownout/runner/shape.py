"""The method's load: the experiment's shape, then held at its last rate while recovery is watched."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from brownout.load.shapes import ConstantShape, Segment, Shape


@dataclass(frozen=True, slots=True)
class HeldTail:
    """``body`` followed by ``tail_s`` seconds at ``body``'s final rate (a replay's: its mean rate)."""

    name: ClassVar[str] = "held"
    body: Shape
    tail_s: float

    @property
    def duration(self) -> float:
        return self.body.duration + self.tail_s

    def rate_at(self, t: float) -> float:
        end = self.body.duration
        return self.body.rate_at(t) if t < end else self._final_rate()

    def _final_rate(self) -> float:
        if hasattr(self.body, "arrival_offsets"):
            return baseline_rate(self.body)  # a replay's tail runs at its mean rate
        return self.body.rate_at(max(0.0, self.body.duration - 1e-9))

    def arrival_offsets(self) -> Iterator[float] | None:
        """A replay's own arrivals, then the tail at its mean rate (None: the body has no arrivals of its own)."""
        explicit = getattr(self.body, "arrival_offsets", None)
        if explicit is None:
            return None
        return self._replayed(explicit())

    def _replayed(self, body: Iterator[float]) -> Iterator[float]:
        yield from body
        end = self.body.duration
        rate = self._final_rate()
        k = 0.5
        while (t := end + k / rate) < end + self.tail_s:
            yield t
            k += 1.0

    def segments(self) -> tuple[Segment, ...]:
        segments = self.body.segments()
        if self.tail_s <= 0:
            return segments
        end = self.body.duration
        final = self._final_rate()
        return (*segments, Segment(end, end + self.tail_s, final, final))


def recovery_tail(body_s: float, faults_end: float, within: float, window: float) -> float:
    """Seconds the method's load is held past its shape so that recovery can be judged: until one
    full window after the recovery deadline (``faults_end`` + ``within``, method-relative)."""
    return max(0.0, faults_end + within + window - body_s)


def baseline_rate(body: Shape) -> float:
    """The rate the method starts with (a replay: its mean rate, its first second says little)."""
    mean = getattr(body, "mean_rate", None)
    return max(mean if mean is not None else body.rate_at(0.0), 1.0)


def baseline_shape(body: Shape, seconds: float) -> ConstantShape:
    """The baseline runs at the rate the method starts with."""
    return ConstantShape(rate=baseline_rate(body), duration=seconds)
