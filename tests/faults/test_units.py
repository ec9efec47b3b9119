"""Durations and the bounds on numbers from outside: finite, in range, ValueError never OverflowError."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from faults.catalogue import build_fault, build_match
from faults.errors import InvalidInput
from faults.units import MAX_DEPTH, MAX_SECONDS, check_numbers, format_duration, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("250ms", 0.25), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("1.5", 1.5), (" 2 s ", 2.0), ("10us", 1e-5),
    (0, 0.0), (7, 7.0), (0.5, 0.5), ("8784h", MAX_SECONDS), (int(MAX_SECONDS), MAX_SECONDS),
])
def test_durations_users_write(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [
    math.nan, math.inf, -math.inf, -1, -0.5, 10**4000, -(10**4000), 1e300, MAX_SECONDS + 1, int(MAX_SECONDS) + 1,
    "9" * 400 + "h", "1e400", "nan", "inf", "-1s", "8785h", True, None, [], "1 parsec", "\u0663s", "1" * 100,
])
def test_anything_else_is_a_value_error(value: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    assert type(info.value) is ValueError  # never OverflowError, which pydantic would not turn into a 400
    assert len(str(info.value)) < 200  # a 4,000-digit value is not echoed back


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0.25, 30, 300, 7200)] == ["250ms", "30s", "5m", "2h"]


@pytest.mark.parametrize(("value", "field", "message"), [
    ({"a": math.nan}, "a", "finite"),
    ({"a": [1, {"b": math.inf}]}, "a[1].b", "finite"),
    ({"seed": 2**63}, "seed", "64 bits"),
    ({"seed": -(2**63) - 1}, "seed", "64 bits"),
    ([[[]]], "[0][0]", None),
])
def test_check_numbers_names_the_field(value: object, field: str, message: str | None) -> None:
    if message is None:
        check_numbers(value)  # shallow: fine
        return
    with pytest.raises(InvalidInput, match=message) as info:
        check_numbers(value)
    assert info.value.field == field


def test_check_numbers_limits_depth_and_accepts_the_edges() -> None:
    check_numbers({"a": [2**63 - 1, -(2**63), 1e308, -0.0, True, None, "NaN"]})
    deep: object = 1
    for _ in range(MAX_DEPTH):
        deep = [deep]
    check_numbers(deep)
    with pytest.raises(InvalidInput, match="nested deeper"):
        check_numbers([deep])


def test_check_numbers_walks_dataclasses() -> None:
    @dataclass(frozen=True)
    class Params:
        delay: float
        nested: tuple[float, ...] = ()

    check_numbers(Params(1.0, (2.0,)))
    with pytest.raises(InvalidInput) as info:
        check_numbers(Params(1.0, (math.inf,)), "params")
    assert info.value.field == "params.nested[0]"


@pytest.mark.parametrize("params", [{"delay_ms": math.nan}, {"delay_ms": "inf"}, {"delay_ms": "NaN"},
                                    {"delay_ms": 1, "jitter_ms": 10**30}])
def test_fault_params_must_be_finite_whatever_the_source(params: dict[str, object]) -> None:
    """Config files (YAML .nan) and pydantic's string coercion ("inf") reach build_fault too."""
    with pytest.raises(InvalidInput) as info:
        build_fault("latency", params)
    assert str(info.value).startswith("params.")


@pytest.mark.parametrize("match", [{"probability": math.nan}, {"first_n": 10**30}, {"every_nth": "1e400"}])
def test_match_numbers_must_be_finite_and_in_range(match: dict[str, object]) -> None:
    with pytest.raises(InvalidInput) as info:
        build_match(match)
    assert str(info.value).startswith("match.")
