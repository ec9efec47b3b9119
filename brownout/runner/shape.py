"""The method's load: the experiment's shape, then held at its last rate while recovery is watched."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from brownout.load.shapes import ConstantShape, Segment, Shape


@dataclass(frozen=True, slots=True)
class HeldTail:
    """``body`` followed by ``tail_s`` seconds at ``body``'s final rate."""

    name: ClassVar[str] = "held"
    body: Shape
    tail_s: float

    @property
    def duration(self) -> float:
        return self.body.duration + self.tail_s

    def rate_at(self, t: float) -> float:
        end = self.body.duration
        return self.body.rate_at(t) if t < end else self.body.rate_at(max(0.0, end - 1e-9))

    def segments(self) -> tuple[Segment, ...]:
        segments = self.body.segments()
        if self.tail_s <= 0:
            return segments
        end = self.body.duration
        final = self.rate_at(end)
        return (*segments, Segment(end, end + self.tail_s, final, final))


def recovery_tail(body_s: float, faults_end: float, within: float, window: float) -> float:
    """Seconds the method's load is held past its shape so that recovery can be judged: until one
    full window after the recovery deadline (``faults_end`` + ``within``, method-relative)."""
    return max(0.0, faults_end + within + window - body_s)


def baseline_shape(body: Shape, seconds: float) -> ConstantShape:
    """The baseline runs at the rate the method starts with."""
    return ConstantShape(rate=max(body.rate_at(0.0), 1.0), duration=seconds)
