"""The open-loop engine end to end against a real server subprocess on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import urllib.request

from brownout.load.generator import run_load
from brownout.load.shapes import ConstantShape
from brownout.records import RequestRecord


def _hits(server: str, tag: str) -> list[float]:
    with urllib.request.urlopen(f"{server}/hits/{tag}", timeout=5) as resp:
        hits: list[float] = json.loads(resp.read())
    return hits


async def test_500_per_second_for_4_seconds_arrives_on_target(server: str) -> None:
    summary = await run_load(f"{server}/ok/rate", ConstantShape(500, 4))
    hits = _hits(server, "rate")
    assert summary.scheduled == 2000 and summary.dropped == 0 and summary.total.status_2xx == 2000
    assert abs(len(hits) - 2000) <= 100
    rate = (len(hits) - 1) / (hits[-1] - hits[0])  # over ~4 s: a stall of the server only shifts hits
    assert abs(rate - 500) <= 25, rate
    # per second, where a 100 ms stall of the (separate) server moves 50 hits across a boundary
    per_second = [sum(1 for h in hits if hits[0] + i <= h < hits[0] + i + 1) for i in range(3)]
    assert all(abs(n - 500) <= 100 for n in per_second), per_second
    assert abs(summary.achieved_rate - 500) <= 25 and len(summary.windows) == 4


async def test_a_stall_shows_in_every_request_scheduled_during_it(server: str) -> None:
    start = time.monotonic() + 1.0
    end = start + 1.0
    records: list[RequestRecord] = []
    summary = await run_load(f"{server}/stall?start={start}&end={end}", ConstantShape(100, 3), connections=16,
                             on_record=records.append)
    # Timers are good to 1 ms, and a request may start up to 1 ms early: skip the stall's first 5 ms.
    during = [r for r in records if start + 0.005 <= summary.started_at + r.scheduled_at < end]
    assert len(during) >= 90 and all(r.status == 200 for r in during)
    for r in during:  # latency runs from the schedule, so each one carries the rest of the stall
        assert summary.started_at + r.scheduled_at + r.latency_s >= end - 0.002, r
    assert max(r.latency_s for r in during) >= 0.95
    assert summary.total.max_ms >= 950 and summary.dropped == 0
    after = [r for r in records if summary.started_at + r.scheduled_at > end + 0.3]
    assert len(after) >= 50 and statistics.median(r.latency_s for r in after) < 0.2  # the server recovered


async def test_in_flight_cap_produces_dropped_counts(server: str) -> None:
    records: list[RequestRecord] = []
    summary = await run_load(f"{server}/delay/0.5", ConstantShape(100, 1), in_flight_cap=10,
                             on_record=records.append)
    dropped = [r for r in records if r.dropped]
    assert summary.dropped == len(dropped) > 50
    assert all(r.error == "in_flight_cap" for r in dropped)
    assert summary.sent + summary.dropped == summary.scheduled == 100
    assert summary.total.dropped == summary.dropped and summary.total.in_flight_max == 10
    assert summary.total.completed == summary.sent


async def test_bounded_by_request_cap_and_by_stop(server: str) -> None:
    capped = await run_load(f"{server}/ok/cap", ConstantShape(200, 10), max_requests=50)
    assert capped.scheduled == capped.sent == 50 and capped.stopped_early and capped.elapsed_s < 1.0
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.3, stop.set)
    t0 = time.monotonic()
    stopped = await run_load(f"{server}/ok/stop", ConstantShape(100, 30), stop=stop)
    # 30 due by the stop; the upper bound allows the stop to fire half a second late
    assert time.monotonic() - t0 < 5 and stopped.stopped_early and 20 <= stopped.scheduled <= 80


async def test_timeouts_are_counted_as_transport_errors(server: str) -> None:
    summary = await run_load(f"{server}/hang", ConstantShape(20, 0.5), request_timeout=0.3)
    assert summary.total.transport_errors == summary.sent == 10 and summary.total.error_rate == 1.0
    assert 290 <= summary.total.p50_ms <= 1000  # never before the timeout; late only on a busy machine


class JumpingClock:
    """Monotonic time that leaps ahead when told: the generator finds itself that far behind its
    schedule at once, as after a stall of its event loop, without a real stall (whose length a
    busy machine would stretch, and the count of drops with it)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


async def test_a_saturated_generator_counts_drops_instead_of_sending_late(server: str) -> None:
    clock = JumpingClock()
    records: list[RequestRecord] = []

    def consume(record: RequestRecord) -> None:
        records.append(record)
        if len(records) == 1:  # the first answer arrives: one second behind from here on
            clock.offset += 1.0

    summary = await run_load(f"{server}/ok/saturated", ConstantShape(100, 2), on_record=consume,
                             max_start_lag=0.5, clock=clock)
    first = records[0]
    leap = first.scheduled_at + first.latency_s  # when the clock leapt, since the start
    assert summary.client_lag_max_s >= 0.99
    dropped = [r for r in records if r.dropped]
    # Due every 10 ms: those due in the first 0.5 s after the leap are over max_start_lag (about
    # 50) and dropped; the next 0.5 s are late but within it, so they are sent. More drops would
    # need a real stall of over half a second on top.
    assert 45 <= summary.dropped <= 55, summary.dropped
    assert all(r.error == "saturated" and leap - 0.01 <= r.scheduled_at <= leap + 0.51 for r in dropped), \
        (leap, [r.scheduled_at for r in dropped])
    assert summary.sent + summary.dropped == summary.scheduled == 200
    assert summary.total.dropped == summary.dropped


async def test_a_tick_that_runs_past_the_end_opens_no_window_after_the_load(server: str) -> None:
    # The clock leaps past the load's end at its first answer: the ticks that send the rest run
    # after the end (within max_start_lag, so nothing is dropped). Their in-flight samples belong to
    # the schedule's last window, not to an empty one after it (a CI run reported [400]*5 + [0]).
    clock = JumpingClock()

    def leap(record: RequestRecord) -> None:
        clock.offset = 1.5

    summary = await run_load(f"{server}/ok/late", ConstantShape(100, 1), on_record=leap, max_start_lag=5.0,
                             clock=clock)
    assert summary.client_lag_max_s >= 1.0 and summary.dropped == 0 and summary.sent == 100
    assert [w.index for w in summary.windows] == [0] and summary.windows[0].in_flight_max >= 1


async def test_a_tick_that_runs_before_the_start_opens_no_window_before_the_load(server: str) -> None:
    # Timers are good to 1 ms, so the first tick may run just before t = 0 (a CI run reported
    # [0] + [400]*5). Here the clock steps back 50 ms once the first timer is armed: that tick runs
    # 45 ms early, sends nothing, and its in-flight sample belongs to the first window.
    clock = JumpingClock()
    asyncio.get_running_loop().call_soon(lambda: setattr(clock, "offset", -0.05))
    summary = await run_load(f"{server}/ok/early", ConstantShape(100, 1), clock=clock)
    assert summary.sent == 100 and summary.dropped == 0
    assert [w.index for w in summary.windows] == [0]
