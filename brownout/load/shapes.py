"""Load shapes: the target arrival rate (requests/s) as a pure function of elapsed time.

Every shape is a frozen dataclass with ``rate_at(t)`` and ``duration``, and describes itself
as piecewise-linear ``segments()`` so the schedule can invert the rate integral exactly.
``parse_load_shape`` is the one parser from user data (experiment ``load:`` or CLI flags).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar, Union, cast

from faults.errors import InvalidInput, InvalidInputs
from faults.units import parse_duration


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of time over which the rate moves linearly from ``rate_start`` to ``rate_end``."""

    start: float
    end: float
    rate_start: float
    rate_end: float

    @property
    def area(self) -> float:
        """Expected number of arrivals in the segment (the rate integral)."""
        return (self.rate_start + self.rate_end) / 2.0 * (self.end - self.start)

    def area_until(self, t: float) -> float:
        x = min(max(t, self.start), self.end) - self.start
        span = self.end - self.start
        slope = (self.rate_end - self.rate_start) / span if span > 0 else 0.0
        return self.rate_start * x + slope * x * x / 2.0

    def time_at_area(self, area: float) -> float:
        """Inverse of ``area_until``: when the integral from ``start`` reaches ``area``."""
        r0 = self.rate_start
        span = self.end - self.start
        slope = (self.rate_end - r0) / span if span > 0 else 0.0
        if slope == 0.0:
            return self.start + area / r0
        # Root of r0*x + slope*x²/2 = area in the form that stays stable for either sign.
        return self.start + 2.0 * area / (r0 + math.sqrt(max(0.0, r0 * r0 + 2.0 * slope * area)))


class Shape(Protocol):
    name: ClassVar[str]

    @property
    def duration(self) -> float: ...

    def rate_at(self, t: float) -> float: ...

    def segments(self) -> tuple[Segment, ...]: ...


def _stairs(rates: list[float], step_duration: float) -> tuple[Segment, ...]:
    return tuple(
        Segment(i * step_duration, (i + 1) * step_duration, r, r) for i, r in enumerate(rates)
    )


def _stair_rates(start: float, end: float, step: float) -> list[float]:
    """start, start±step, ... up to ``end`` (included even when not a whole step away)."""
    direction = 1.0 if end >= start else -1.0
    count = int(math.floor(abs(end - start) / step + 1e-9)) + 1
    rates = [start + direction * step * i for i in range(count)]
    if abs(rates[-1] - end) > 1e-9:
        rates.append(end)
    return rates


@dataclass(frozen=True, slots=True)
class ConstantShape:
    name: ClassVar[str] = "constant"
    rate: float
    duration: float

    def rate_at(self, t: float) -> float:
        return self.rate if 0.0 <= t < self.duration else 0.0

    def segments(self) -> tuple[Segment, ...]:
        return (Segment(0.0, self.duration, self.rate, self.rate),)


@dataclass(frozen=True, slots=True)
class SoakShape(ConstantShape):
    """A long constant rate; a separate name so reports and CI jobs say what they ran."""

    name: ClassVar[str] = "soak"


@dataclass(frozen=True, slots=True)
class RampShape:
    name: ClassVar[str] = "ramp"
    start_rate: float
    end_rate: float
    duration: float

    def rate_at(self, t: float) -> float:
        if not 0.0 <= t < self.duration:
            return 0.0
        return self.start_rate + (self.end_rate - self.start_rate) * t / self.duration

    def segments(self) -> tuple[Segment, ...]:
        return (Segment(0.0, self.duration, self.start_rate, self.end_rate),)


@dataclass(frozen=True, slots=True)
class SpikeShape:
    """``rate`` until ``at``, ``peak`` for ``hold``, then ``rate`` again until ``duration``."""

    name: ClassVar[str] = "spike"
    rate: float
    peak: float
    at: float
    hold: float
    duration: float

    def rate_at(self, t: float) -> float:
        if not 0.0 <= t < self.duration:
            return 0.0
        return self.peak if self.at <= t < self.at + self.hold else self.rate

    def segments(self) -> tuple[Segment, ...]:
        end_peak = self.at + self.hold
        parts = [
            Segment(0.0, self.at, self.rate, self.rate),
            Segment(self.at, end_peak, self.peak, self.peak),
            Segment(end_peak, self.duration, self.rate, self.rate),
        ]
        return tuple(s for s in parts if s.end > s.start)


class _Stairs:
    """Duration, rate and segments of a staircase, from ``rates()`` and ``step_duration``."""

    __slots__ = ()
    step_duration: float

    def rates(self) -> list[float]:
        raise NotImplementedError

    @property
    def duration(self) -> float:
        return len(self.rates()) * self.step_duration

    def rate_at(self, t: float) -> float:
        rates = self.rates()
        i = int(t // self.step_duration) if t >= 0 else -1
        return rates[i] if 0 <= i < len(rates) else 0.0

    def segments(self) -> tuple[Segment, ...]:
        return _stairs(self.rates(), self.step_duration)


@dataclass(frozen=True, slots=True)
class StepsShape(_Stairs):
    """Stairs from ``start_rate`` to ``end_rate`` by ``step``, each held ``step_duration``."""

    name: ClassVar[str] = "steps"
    start_rate: float
    end_rate: float
    step: float
    step_duration: float

    def rates(self) -> list[float]:
        return _stair_rates(self.start_rate, self.end_rate, self.step)



@dataclass(frozen=True, slots=True)
class StressShape(_Stairs):
    """Stairs up from ``start_rate`` by ``step`` to at most ``max_rate``; the stress search
    (``brownout.load.stress``) stops at the first step that breaks the SLA."""

    name: ClassVar[str] = "stress"
    start_rate: float
    step: float
    step_duration: float
    max_rate: float

    def rates(self) -> list[float]:
        return _stair_rates(self.start_rate, max(self.max_rate, self.start_rate), self.step)



AnyShape = Union[ConstantShape, SoakShape, RampShape, SpikeShape, StepsShape, StressShape]

# shape name -> (class, {user key: (dataclass field, kind)}); kind is "rate" or "duration".
_SPEC: dict[str, tuple[type, dict[str, tuple[str, str]]]] = {
    "constant": (ConstantShape, {"rate": ("rate", "rate"), "duration": ("duration", "duration")}),
    "soak": (SoakShape, {"rate": ("rate", "rate"), "duration": ("duration", "duration")}),
    "ramp": (RampShape, {
        "from": ("start_rate", "rate"), "to": ("end_rate", "rate"), "duration": ("duration", "duration"),
    }),
    "spike": (SpikeShape, {
        "rate": ("rate", "rate"), "peak": ("peak", "rate"), "at": ("at", "duration"),
        "hold": ("hold", "duration"), "duration": ("duration", "duration"),
    }),
    "steps": (StepsShape, {
        "from": ("start_rate", "rate"), "to": ("end_rate", "rate"), "step": ("step", "rate"),
        "step_duration": ("step_duration", "duration"),
    }),
    "stress": (StressShape, {
        "from": ("start_rate", "rate"), "step": ("step", "rate"),
        "step_duration": ("step_duration", "duration"), "max": ("max_rate", "rate"),
    }),
}

SHAPE_NAMES: tuple[str, ...] = tuple(_SPEC)
# Every key any shape reads; other keys of ``load:`` (payloads, edge_cases, ...) are not ours.
SHAPE_KEYS: frozenset[str] = frozenset(k for _, keys in _SPEC.values() for k in keys) | {"shape"}
# Keys that may be 0 (a ramp from zero, a spike at the very start).
_MAY_BE_ZERO = {("ramp", "from"), ("ramp", "to"), ("spike", "at"), ("spike", "rate")}


def _field(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _number(value: Any, kind: str) -> float:
    if kind == "duration":
        return parse_duration(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"must be a number (requests per second), got {value!r}")
    return float(value)


def parse_load_shape(data: Mapping[str, Any], field_prefix: str = "load") -> AnyShape:
    """Build the shape named by ``data["shape"]`` (default ``constant``) from its keys.

    Keys that belong to another shape are errors (a ``peak`` on a constant load is a typo,
    not something to ignore); keys no shape uses are left to the caller. All problems are
    reported at once, each naming its dotted field.
    """
    name = data.get("shape", "constant")
    if name not in _SPEC:
        raise InvalidInput(
            f"unknown shape {name!r}; known shapes: {', '.join(SHAPE_NAMES)}", _field(field_prefix, "shape")
        )
    cls, keys = _SPEC[name]
    errors: list[InvalidInput] = []
    values: dict[str, float] = {}
    for key in sorted((SHAPE_KEYS - {"shape"} - set(keys)) & set(data)):
        errors.append(InvalidInput(f"does not apply to shape {name!r} (it takes {', '.join(keys)})",
                                   _field(field_prefix, key)))
    for key, (attr, kind) in keys.items():
        where = _field(field_prefix, key)
        if key not in data or data[key] is None:
            errors.append(InvalidInput(f"required for shape {name!r}", where))
            continue
        try:
            value = _number(data[key], kind)
        except ValueError as exc:
            errors.append(InvalidInput(str(exc), where))
            continue
        zero_ok = (name, key) in _MAY_BE_ZERO
        if value < 0 or (value == 0 and not zero_ok):
            errors.append(InvalidInput(f"must be {'>=' if zero_ok else '>'} 0, got {data[key]!r}", where))
            continue
        values[attr] = value
    if not errors:
        errors.extend(_cross_checks(name, values, field_prefix))
    if errors:
        raise errors[0] if len(errors) == 1 else InvalidInputs(errors)
    return cast(AnyShape, cls(**values))


def _cross_checks(name: str, v: dict[str, float], prefix: str) -> list[InvalidInput]:
    if name == "spike":
        if v["at"] + v["hold"] > v["duration"]:
            return [InvalidInput("at + hold must be <= duration", _field(prefix, "hold"))]
    if name == "ramp" and v["start_rate"] == 0 and v["end_rate"] == 0:
        return [InvalidInput("a ramp from 0 to 0 sends nothing", _field(prefix, "to"))]
    if name == "stress" and v["max_rate"] < v["start_rate"]:
        return [InvalidInput("must be >= from", _field(prefix, "max"))]
    return []


S = TypeVar("S", ConstantShape, SoakShape, RampShape, SpikeShape, StepsShape, StressShape)


def scale_time(shape: S, factor: float) -> S:
    """The same shape with every duration and offset multiplied (``--time-scale``)."""
    if not factor > 0:
        raise InvalidInput(f"must be > 0, got {factor!r}", "time_scale")
    timed = [attr for _, keys in [_SPEC[shape.name]] for attr, kind in keys.values() if kind == "duration"]
    return dataclasses.replace(shape, **{a: getattr(shape, a) * factor for a in timed})
