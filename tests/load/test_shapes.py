"""Every shape as a pure function of time, and the one parser that builds them (no sleeping)."""

from __future__ import annotations

import pytest

from brownout.load.shapes import (
    SHAPE_KEYS, ConstantShape, RampShape, SoakShape, SpikeShape, StepsShape, StressShape, parse_load_shape,
    scale_time,
)
from faults.errors import InvalidInput, InvalidInputs


def test_constant_and_soak_hold_their_rate_and_stop_at_the_end() -> None:
    for shape in (ConstantShape(50, 10), SoakShape(50, 10)):
        assert [shape.rate_at(t) for t in (0, 5, 9.999)] == [50, 50, 50]
        assert shape.rate_at(10) == 0 and shape.rate_at(-0.1) == 0
        assert shape.duration == 10


def test_ramp_is_linear_from_start_to_end() -> None:
    ramp = RampShape(10, 110, 100)
    assert ramp.rate_at(0) == 10
    assert ramp.rate_at(50) == pytest.approx(60)
    assert ramp.rate_at(99) == pytest.approx(109)
    assert ramp.rate_at(100) == 0
    assert RampShape(100, 0, 10).rate_at(5) == pytest.approx(50)  # ramps down too


def test_spike_goes_base_peak_base() -> None:
    spike = SpikeShape(rate=50, peak=500, at=60, hold=30, duration=180)
    assert [spike.rate_at(t) for t in (0, 59.9, 60, 89.9, 90, 179)] == [50, 50, 500, 500, 50, 50]
    assert spike.duration == 180 and spike.rate_at(180) == 0


def test_steps_climb_by_step_and_include_the_end() -> None:
    steps = StepsShape(100, 350, 100, 10)
    assert steps.rates() == [100, 200, 300, 350]
    assert steps.duration == 40
    assert [steps.rate_at(t) for t in (0, 9.9, 10, 25, 39.9, 40)] == [100, 100, 200, 300, 350, 0]
    assert StepsShape(300, 100, 100, 1).rates() == [300, 200, 100]  # downward stairs


def test_stress_climbs_to_max() -> None:
    stress = StressShape(start_rate=100, step=100, step_duration=5, max_rate=500)
    assert stress.rates() == [100, 200, 300, 400, 500]
    assert stress.duration == 25
    assert stress.rate_at(12) == 300 and stress.rate_at(25) == 0


@pytest.mark.parametrize("shape", [
    ConstantShape(5, 3), RampShape(0, 30, 7), SpikeShape(5, 50, 2, 1, 6), StepsShape(1, 9, 2, 0.5),
    StressShape(10, 5, 1, 30), SoakShape(2, 4),
])
def test_segments_agree_with_rate_at(shape) -> None:  # type: ignore[no-untyped-def]
    segs = shape.segments()
    assert segs[0].start == 0 and segs[-1].end == pytest.approx(shape.duration)
    for seg in segs:
        mid = (seg.start + seg.end) / 2
        expected = seg.rate_start + (seg.rate_end - seg.rate_start) / 2
        assert shape.rate_at(mid) == pytest.approx(expected)


def test_parse_every_shape_from_experiment_keys() -> None:
    assert parse_load_shape({"rate": 50, "duration": "3m"}) == ConstantShape(50, 180)
    assert parse_load_shape({"shape": "soak", "rate": 5, "duration": "1h"}) == SoakShape(5, 3600)
    assert parse_load_shape({"shape": "ramp", "from": 0, "to": 100, "duration": "30s"}) == RampShape(0, 100, 30)
    assert parse_load_shape({"shape": "spike", "rate": 50, "peak": 500, "at": "60s", "hold": "30s",
                             "duration": "3m"}) == SpikeShape(50, 500, 60, 30, 180)
    assert parse_load_shape({"shape": "steps", "from": 10, "to": 50, "step": 10, "step_duration": "500ms"}) \
        == StepsShape(10, 50, 10, 0.5)
    assert parse_load_shape({"shape": "stress", "from": 100, "step": 50, "step_duration": 10, "max": 1000}) \
        == StressShape(100, 50, 10, 1000)


def test_parse_ignores_keys_that_are_not_shape_keys() -> None:
    data = {"rate": 5, "duration": 1, "payloads": "x.jsonl", "edge_cases": {"oversized": 0.1}}
    assert parse_load_shape(data) == ConstantShape(5, 1)
    assert "payloads" not in SHAPE_KEYS and {"shape", "peak", "step_duration"} <= SHAPE_KEYS


def test_parse_errors_name_every_field() -> None:
    with pytest.raises(InvalidInputs) as info:
        parse_load_shape({"shape": "spike", "rate": "fast", "peak": -1, "at": "soon", "hold": 1,
                          "duration": 10, "step": 3}, field_prefix="load")
    fields = {e.field for e in info.value.errors}
    assert fields == {"load.rate", "load.peak", "load.at", "load.step"}
    with pytest.raises(InvalidInput, match="unknown shape 'wave'") as one:
        parse_load_shape({"shape": "wave"})
    assert one.value.field == "load.shape"
    with pytest.raises(InvalidInput) as missing:
        parse_load_shape({"shape": "constant", "rate": 5}, field_prefix="")
    assert missing.value.field == "duration" and "required" in missing.value.message
    with pytest.raises(InvalidInput, match="at \\+ hold") as cross:
        parse_load_shape({"shape": "spike", "rate": 1, "peak": 2, "at": 8, "hold": 5, "duration": 10})
    assert cross.value.field == "load.hold"
    with pytest.raises(InvalidInput):
        parse_load_shape({"rate": True, "duration": 1})  # booleans are not rates


def test_scale_time_multiplies_durations_only() -> None:
    spike = scale_time(SpikeShape(50, 500, 60, 30, 180), 0.1)
    assert (spike.rate, spike.peak) == (50, 500)
    assert (spike.at, spike.hold, spike.duration) == pytest.approx((6, 3, 18))
    assert scale_time(StressShape(10, 10, 4, 50), 0.5).step_duration == 2
