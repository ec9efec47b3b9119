"""stream: preemption stalls — after event K, again every K events, on a share of streams, pauses drawn
from a distribution as ``latency`` draws them; old files (one fixed stall) mean what they meant."""

from __future__ import annotations

import random
import statistics
from typing import Any

import pytest

from faults.catalogue import build_fault
from faults.distributions import draw_ms
from faults.errors import InvalidInput, InvalidInputs
from faults.latency import LatencyFault
from tests.faults.test_stream import UPSTREAM, run


def stall_times(writes: list[tuple[float, bytes]]) -> list[tuple[int, float]]:
    """(writes before the pause, its length) for every pause between two writes."""
    return [(i + 1, b[0] - a[0]) for i, (a, b) in enumerate(zip(writes, writes[1:], strict=False)) if b[0] > a[0]]


async def test_a_plain_stall_is_still_one_fixed_stall(make_exchange: Any, clock: Any) -> None:
    writes, ex = await run({"stall_after_events": 3, "stall_ms": 2000}, make_exchange, clock)
    assert stall_times(writes) == [(3, pytest.approx(2.0))]
    assert ex.details == {"stalls": 1, "stalled_ms": 2000.0, "last_stall_after_events": 3, "paused_ms": 2000.0}


async def test_stalls_repeat_every_k_events(make_exchange: Any, clock: Any) -> None:
    # 7 counted events (role, 5 tokens, finish; [DONE] is not counted): stalls after 2, 4 and 6.
    writes, ex = await run({"stall_after_events": 2, "stall_every_events": 2, "stall_ms": 500}, make_exchange, clock)
    assert stall_times(writes) == [(2, pytest.approx(0.5)), (4, pytest.approx(0.5)), (6, pytest.approx(0.5))]
    assert len(writes) == len(UPSTREAM)
    assert ex.details is not None and ex.details["stalls"] == 3 and ex.details["last_stall_after_events"] == 6
    assert ex.details["stalled_ms"] == pytest.approx(1500.0)


async def test_coalesced_writes_take_every_stall_they_pass(make_exchange: Any, clock: Any) -> None:
    writes, ex = await run({"stall_after_events": 1, "stall_every_events": 1, "stall_ms": 100, "coalesce": 3},
                           make_exchange, clock)
    # writes of 3 events: before the 2nd write events 1..3 were sent → three stalls at once; 7 in all
    assert clock.sleeps[:3] == pytest.approx([0.1, 0.1, 0.1])
    assert ex.details is not None and ex.details["stalls"] == 6  # the last write follows event 6


async def test_a_fixed_stall_on_every_stream_draws_nothing(make_exchange: Any, clock: Any) -> None:
    """Old seeded runs stay reproducible: no rng draw unless the probability or the pause needs one."""
    writes, ex = await run({"stall_after_events": 2, "stall_every_events": 3, "stall_ms": 100}, make_exchange, clock)
    assert ex.rng.getstate() == random.Random(1).getstate()


async def test_preempt_probability_is_drawn_once_per_stream(make_exchange: Any, clock: Any) -> None:
    stalled = 0
    for seed in range(400):
        clock.t = clock.start
        writes, ex = await run({"stall_after_events": 1, "stall_every_events": 2, "stall_ms": 50,
                                "preempt_probability": 0.3}, make_exchange, clock, seed=seed)
        stalls = stall_times(writes)
        # 7 counted events: a preempted stream stalls after 1, 3, 5 and 7 (before [DONE])
        assert stalls in ([], [(n, pytest.approx(0.05)) for n in (1, 3, 5, 7)])
        stalled += bool(stalls)
        assert (ex.details or {}).get("stalls", 0) == len(stalls)
    assert 0.24 <= stalled / 400 <= 0.36  # binomial sd 0.023: ± 2.6 sd


async def test_stall_pauses_follow_the_distribution(make_exchange: Any, clock: Any) -> None:
    pauses: list[float] = []
    for seed in range(300):
        clock.t = clock.start
        clock.sleeps.clear()
        writes, _ = await run({"stall_after_events": 1, "stall_every_events": 1, "stall_ms": 200,
                               "stall_distribution": "lognormal", "stall_sigma": 0.5, "stall_max_ms": 900},
                              make_exchange, clock, seed=seed)
        pauses += [s * 1000 for s in clock.sleeps]
    assert len(pauses) == 300 * 7
    assert 180 <= statistics.median(pauses) <= 220  # lognormal: the median is stall_ms
    assert max(pauses) <= 900 and max(pauses) > 600  # clipped at stall_max_ms, and the tail reaches it


def test_stalls_draw_exactly_as_latency_draws() -> None:
    for distribution in ("fixed", "uniform", "normal", "lognormal", "pareto"):
        stream = build_fault("stream", {"stall_after_events": 1, "stall_ms": 100, "stall_jitter_ms": 30,
                                        "stall_distribution": distribution, "stall_sigma": 0.7, "stall_alpha": 1.5,
                                        "stall_max_ms": 5000})
        latency = LatencyFault(delay_ms=100, jitter_ms=30, distribution=distribution, sigma=0.7, alpha=1.5, max_ms=5000)
        a, b, c = random.Random(7), random.Random(7), random.Random(7)
        for _ in range(50):
            want = draw_ms(c, distribution, 100, 30, sigma=0.7, alpha=1.5, max_ms=5000)
            assert stream.draw_stall_ms(_Ex(a)) == latency.draw_ms(_Ex(b)) == want  # type: ignore[arg-type]


class _Ex:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng


@pytest.mark.parametrize(("params", "field"), [
    ({"stall_every_events": 2, "first_event_delay_ms": 1}, "params.stall_every_events"),
    ({"preempt_probability": 0.5, "first_event_delay_ms": 1}, "params.preempt_probability"),
    ({"stall_after_events": 1, "stall_ms": 10, "stall_every_events": 0}, "params.stall_every_events"),
    ({"stall_after_events": 1, "stall_ms": 10, "preempt_probability": 1.5}, "params.preempt_probability"),
    ({"stall_after_events": 1, "stall_ms": 10, "stall_sigma": 0}, "params.stall_sigma"),
    ({"stall_after_events": 1, "stall_ms": 10, "stall_jitter_ms": -1}, "params.stall_jitter_ms"),
    ({"stall_after_events": 1, "stall_ms": 10, "stall_distribution": "zipf"}, "params.stall_distribution"),
    ({"stall_after_events": 1, "stall_ms": float("nan")}, "params.stall_ms"),
])
def test_validation_names_the_parameter(params: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        build_fault("stream", params)
    errors = err.value.errors if isinstance(err.value, InvalidInputs) else [err.value]
    assert field in [e.field for e in errors]
