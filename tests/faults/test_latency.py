"""latency: parameters, distributions (seeded) and where the delay happens."""

from __future__ import annotations

import random
import statistics

import pytest

from faults.base import PROCEED, Hook
from faults.catalogue import build_fault
from faults.errors import InvalidInputs
from faults.latency import LatencyFault


def test_good_params_build() -> None:
    fault = build_fault("latency", {"delay_ms": 200, "jitter_ms": 50, "distribution": "normal", "phase": "response"})
    assert fault == LatencyFault(delay_ms=200, jitter_ms=50, distribution="normal", phase="response")
    assert fault.params()["delay_ms"] == 200


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"delay_ms": -1}, "params.delay_ms"),
        ({"jitter_ms": -5}, "params.jitter_ms"),
        ({"max_ms": -1}, "params.max_ms"),
        ({"sigma": 0}, "params.sigma"),
        ({"alpha": 0}, "params.alpha"),
        ({"distribution": "gamma"}, "params.distribution"),
        ({"phase": "connection"}, "params.phase"),
        ({"delay": 100}, "params.delay"),
    ],
)
def test_bad_params_name_the_field(params: dict, field: str) -> None:
    with pytest.raises(InvalidInputs) as err:
        build_fault("latency", params)
    assert [e.field for e in err.value.errors] == [field]


def test_unknown_param_says_so() -> None:
    with pytest.raises(InvalidInputs) as err:
        build_fault("latency", {"delay_ms": 1, "delay_sec": 1})
    assert err.value.errors[0].message == "unknown key (did you mean 'delay_ms'?)"


@pytest.mark.parametrize("distribution", ["fixed", "uniform", "normal"])
def test_distribution_mean_near_delay_and_clipped(distribution: str, make_exchange) -> None:
    fault = LatencyFault(delay_ms=100, jitter_ms=30, distribution=distribution, max_ms=150)
    ex = make_exchange(seed=42)
    draws = [fault.draw_ms(ex) for _ in range(2000)]
    assert all(0.0 <= d <= 150.0 for d in draws)
    assert statistics.fmean(draws) == pytest.approx(100.0, abs=3.0)


def test_fixed_without_jitter_is_exact(make_exchange) -> None:
    ex = make_exchange()
    assert {LatencyFault(delay_ms=250).draw_ms(ex) for _ in range(10)} == {250.0}


def test_normal_draws_are_clipped_at_zero(make_exchange) -> None:
    ex = make_exchange()
    draws = [LatencyFault(delay_ms=10, jitter_ms=100, distribution="normal").draw_ms(ex) for _ in range(500)]
    assert min(draws) == 0.0


def test_lognormal_median_and_pareto_floor(make_exchange) -> None:
    ex = make_exchange(seed=7)
    logn = [LatencyFault(delay_ms=100, distribution="lognormal", sigma=0.5).draw_ms(ex) for _ in range(2000)]
    assert statistics.median(logn) == pytest.approx(100.0, rel=0.08)
    pareto = [LatencyFault(delay_ms=100, distribution="pareto", alpha=2.0, max_ms=10_000).draw_ms(ex) for _ in range(2000)]
    assert min(pareto) >= 100.0
    assert max(pareto) > 400.0  # a heavy tail


def test_same_seed_same_draws(make_exchange) -> None:
    fault = LatencyFault(delay_ms=100, jitter_ms=50, distribution="uniform")
    assert fault.draw_ms(make_exchange(seed=3)) == fault.draw_ms(make_exchange(seed=3))
    assert fault.draw_ms(make_exchange(seed=3)) != fault.draw_ms(make_exchange(seed=4))


async def test_request_phase_sleeps_before_upstream(make_exchange, clock) -> None:
    fault = LatencyFault(delay_ms=250)
    ex = make_exchange()
    assert await fault.on_request(ex) is PROCEED
    assert clock.sleeps == [0.25]
    assert await fault.on_response(ex) is PROCEED
    assert clock.sleeps == [0.25]


async def test_response_phase_sleeps_after_upstream(make_exchange, clock) -> None:
    fault = LatencyFault(delay_ms=1500, phase="response")
    ex = make_exchange()
    assert await fault.on_request(ex) is PROCEED
    assert clock.sleeps == []
    assert await fault.on_response(ex) is PROCEED
    assert clock.sleeps == [1.5]


def test_hooks() -> None:
    assert LatencyFault().hooks() == {Hook.ON_REQUEST} and LatencyFault(phase="response").hooks() == {Hook.ON_RESPONSE}


def test_draws_use_only_the_exchange_rng(make_exchange) -> None:
    state = random.getstate()
    LatencyFault(delay_ms=5, jitter_ms=5).draw_ms(make_exchange())
    assert random.getstate() == state
