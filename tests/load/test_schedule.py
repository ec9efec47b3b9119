"""Arrival times: deterministic, evenly spaced, the count per window equals the rate integral."""

from __future__ import annotations

import pytest

from brownout.load.schedule import arrival_times, count_between, integral
from brownout.load.shapes import ConstantShape, RampShape, SpikeShape, StepsShape, StressShape


def test_constant_rate_is_exact_and_evenly_spaced() -> None:
    times = list(arrival_times(ConstantShape(500, 4)))
    assert len(times) == 2000
    gaps = {round(b - a, 9) for a, b in zip(times, times[1:])}
    assert gaps == {0.002}
    assert times[0] == pytest.approx(0.001) and times[-1] < 4


@pytest.mark.parametrize("shape", [
    RampShape(0, 100, 10), RampShape(100, 10, 5), SpikeShape(20, 200, 2, 1, 5), StepsShape(10, 40, 10, 1),
    StressShape(50, 25, 0.5, 150),
])
def test_count_in_every_window_is_the_integral(shape) -> None:  # type: ignore[no-untyped-def]
    times = list(arrival_times(shape))
    assert times == sorted(times) and all(0 <= t < shape.duration for t in times)
    assert len(times) == round(integral(shape, 0, shape.duration))
    step = shape.duration / 10
    for i in range(10):
        t0, t1 = i * step, (i + 1) * step
        assert abs(count_between(times, t0, t1) - integral(shape, t0, t1)) <= 1.0


def test_ramp_gets_denser_as_its_rate_rises() -> None:
    times = list(arrival_times(RampShape(0, 1000, 2)))
    first = count_between(times, 0, 0.5)
    last = count_between(times, 1.5, 2)
    assert first == pytest.approx(62.5, abs=1) and last == pytest.approx(437.5, abs=1)  # 250·t² integrated


def test_same_shape_same_schedule() -> None:
    shape = SpikeShape(10, 100, 1, 1, 3)
    assert list(arrival_times(shape)) == list(arrival_times(shape))
